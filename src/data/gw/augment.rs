//! aframe's online augmentation (`SignalInverter`, `SignalReverser`, `ChannelSwapper`,
//! `ChannelMuter`) for windows whose injections are already in the data.
//!
//! aframe inverts and reverses each detector's *background* before injecting; here a noise
//! window (label 0) is all background, so it gets the per-detector sign flip and time reversal,
//! while an injected window keeps its noise (it cannot be separated from the signal).
//! Swap and mute turn injected windows into negatives, at aframe's rates per injected window:
//! a swap replaces one random detector with the same detector of another injected window of
//! the batch (two detectors, two different events), a mute replaces it with the same detector
//! of a noise window (noise, no signal: what zeroing the waveform leaves in aframe).

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::DataError;

/// Probabilities of each augmentation (aframe's defaults).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GwAugment {
    /// Per noise window and detector: negate the series (`SignalInverter(0.5)`).
    pub sign_flip: f64,
    /// Per noise window and detector: reverse the series in time (`SignalReverser(0.5)`).
    pub time_reverse: f64,
    /// Per injected window: swap a detector with another injected window's, label 0
    /// (`swap_prob` 0.014).
    pub swap_prob: f64,
    /// Per injected window: replace a detector by noise, label 0 (`mute_prob` 0.055).
    pub mute_prob: f64,
}

impl Default for GwAugment {
    fn default() -> Self {
        Self { sign_flip: 0.5, time_reverse: 0.5, swap_prob: 0.014, mute_prob: 0.055 }
    }
}

impl GwAugment {
    /// Checks every probability is in [0, 1], naming `data.augment.<key>`.
    pub fn validate(&self) -> Result<(), DataError> {
        for (k, p) in [
            ("sign_flip", self.sign_flip),
            ("time_reverse", self.time_reverse),
            ("swap_prob", self.swap_prob),
            ("mute_prob", self.mute_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DataError::Invalid(format!("`data.augment.{k}` must be in [0, 1], got {p}")));
            }
        }
        Ok(())
    }

    /// Augments a batch in place. Args: `x` row-major [B, L, C]; `labels` [B] (1 = injection).
    pub fn apply(&self, x: &mut [f32], labels: &mut [u32], l: usize, c: usize, rng: &mut ChaCha8Rng) {
        let row = l * c;
        let orig = x.to_vec();
        let positives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 1).collect();
        let negatives: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 0).collect();
        let copy_channel = |x: &mut [f32], to: usize, from: usize, ch: usize| {
            for t in 0..l {
                x[to * row + t * c + ch] = orig[from * row + t * c + ch];
            }
        };
        for &i in &negatives {
            for ch in 0..c {
                let flip = rng.random_bool(self.sign_flip);
                let reverse = rng.random_bool(self.time_reverse);
                for t in 0..l {
                    let src = if reverse { l - 1 - t } else { t };
                    let v = orig[i * row + src * c + ch];
                    x[i * row + t * c + ch] = if flip { -v } else { v };
                }
            }
        }
        if c < 2 {
            return;
        }
        for &i in &positives {
            let u: f64 = rng.random();
            let ch = rng.random_range(0..c);
            if u < self.swap_prob && positives.len() > 1 {
                let mut j = positives[rng.random_range(0..positives.len() - 1)];
                if j == i {
                    j = *positives.last().expect("two or more");
                }
                copy_channel(x, i, j, ch);
                labels[i] = 0;
            } else if u < self.swap_prob + self.mute_prob && !negatives.is_empty() {
                let j = negatives[rng.random_range(0..negatives.len())];
                copy_channel(x, i, j, ch);
                labels[i] = 0;
            }
        }
    }
}
