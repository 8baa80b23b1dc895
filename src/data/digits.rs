//! The embedded default: UCI 8×8 handwritten digits (1,797 images, shipped inside the
//! `smartcore` crate), read row by row as a length-64 sequence of pixels in [0, 1].

use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, check_fraction, split_indices};

/// Options of `digits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigitsConfig {
    /// Fraction of all images used for test.
    #[serde(default = "test_split")]
    pub test_split: f64,
    /// Fraction of the rest used for validation.
    #[serde(default = "val_split")]
    pub val_split: f64,
    /// Seed of both splits.
    #[serde(default = "seed")]
    pub split_seed: u64,
}

fn test_split() -> f64 {
    0.2
}
fn val_split() -> f64 {
    0.1
}
fn seed() -> u64 {
    42
}

/// Loads the digits and splits them.
pub fn load(cfg: &DigitsConfig) -> Result<DataModule, DataError> {
    check_fraction("data.test_split", cfg.test_split)?;
    check_fraction("data.val_split", cfg.val_split)?;
    let ds = smartcore::dataset::digits::load_dataset();
    let l = ds.num_features;
    let inputs = ds.data.iter().map(|v| v / 16.0).collect();
    let labels = ds.target.iter().map(|&t| t as u32).collect();
    let all = SeqData::dense(inputs, l, 1, Targets::Classes { labels, n_classes: 10 });
    let (rest, test) = split_indices(all.len(), cfg.test_split, cfg.split_seed);
    let rest_data = all.subset(&rest);
    let (tr, va) = split_indices(rest_data.len(), cfg.val_split, cfg.split_seed.wrapping_add(1));
    Ok(DataModule { train: rest_data.subset(&tr), val: rest_data.subset(&va), test: all.subset(&test) })
}
