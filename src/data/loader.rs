//! Epoch iteration: a seeded shuffle that depends only on (seed, epoch), so a resumed run
//! sees exactly the batches an uninterrupted one would.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Batches of indices over a split.
#[derive(Debug, Clone)]
pub struct BatchIter {
    order: Vec<usize>,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
}

impl BatchIter {
    /// Training order for `epoch`: shuffled with `seed` and `epoch` when `shuffle`.
    pub fn new(n: usize, batch_size: usize, shuffle: bool, drop_last: bool, seed: u64, epoch: usize) -> Self {
        let mut order: Vec<usize> = (0..n).collect();
        if shuffle {
            let mix = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix));
        }
        Self { order, batch_size: batch_size.max(1), drop_last, pos: 0 }
    }

    /// Sequential order (evaluation).
    pub fn sequential(n: usize, batch_size: usize) -> Self {
        Self::new(n, batch_size, false, false, 0, 0)
    }

    /// Number of batches this iterator yields in total.
    pub fn num_batches(&self) -> usize {
        let n = self.order.len();
        if self.drop_last { n / self.batch_size } else { n.div_ceil(self.batch_size) }
    }
}

impl Iterator for BatchIter {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let rest = self.order.len() - self.pos;
        if rest == 0 || (self.drop_last && rest < self.batch_size) {
            return None;
        }
        let end = self.pos + rest.min(self.batch_size);
        let out = self.order[self.pos..end].to_vec();
        self.pos = end;
        Some(out)
    }
}

/// Batching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples per micro-batch.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Batch size for validation/test (defaults to `batch_size`).
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Shuffle training data each epoch (seeded by `seed` and the epoch).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Drop the last incomplete training batch.
    #[serde(default)]
    pub drop_last: bool,
    /// Train on the first N training sequences only (null: all; D4L's `--subsample_size`).
    #[serde(default)]
    pub subsample: Option<usize>,
}

impl LoaderConfig {
    /// How many of `n` training sequences an epoch draws from.
    pub fn train_len(&self, n: usize) -> usize {
        self.subsample.map_or(n, |s| s.min(n))
    }
}

/// The largest batch accepted.
pub const MAX_BATCH: usize = 1 << 24;

impl LoaderConfig {
    /// Checks the batch sizes (an `eval_batch_size` of 0 is as wrong as a `batch_size` of 0).
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        crate::config::check::count("loader.batch_size", self.batch_size, MAX_BATCH)?;
        if let Some(b) = self.eval_batch_size {
            crate::config::check::count("loader.eval_batch_size", b, MAX_BATCH)?;
        }
        Ok(())
    }
}

fn default_batch() -> usize {
    32
}
fn yes() -> bool {
    true
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { batch_size: default_batch(), eval_batch_size: None, shuffle: true, drop_last: false, subsample: None }
    }
}
