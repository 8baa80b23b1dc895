//! Online augmentation of training batches, chosen by the dataset. Its random draws are a
//! function of (seed, epoch, batch index) only, like the data order, so a resumed run sees
//! exactly the batches an uninterrupted one would.

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{Batch, DataConfig, SeqData};

/// A dataset's augmentation.
#[derive(Debug, Clone)]
pub enum Augmentation {
    /// aframe's sign flips, time reversals, channel swaps and mutes (`data=gw`).
    Gw(super::gw::GwAugment),
}

impl DataConfig {
    /// The augmentation of this dataset's training batches, if it has one.
    pub fn augmentation(&self) -> Option<Augmentation> {
        match self {
            DataConfig::Gw(c) => Some(Augmentation::Gw(c.augment.clone())),
            DataConfig::GwStrain(c) => Some(Augmentation::Gw(c.augment.clone())),
            _ => None,
        }
    }
}

/// Builds training batch number `batch` of `epoch`: `split.batch(idx)`, augmented when `aug`
/// is given, from a generator seeded by (seed, epoch, batch).
pub fn train_batch(
    split: &SeqData,
    idx: &[usize],
    aug: Option<&Augmentation>,
    (seed, epoch, batch): (u64, usize, usize),
    device: &Device,
) -> Batch {
    let Some(aug) = aug else { return split.batch(idx, device) };
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch, batch));
    let (l, c) = (split.seq_len, split.channels);
    split.batch_with(idx, device, |x, labels| match aug {
        Augmentation::Gw(g) => g.apply(x, labels, l, c, &mut rng),
    })
}

/// SplitMix64 over the three numbers: well-spread seeds for neighbouring batches.
fn mix(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mut z =
        seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (batch as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
