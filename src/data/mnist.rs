//! Sequential (and permuted) MNIST: each 28×28 image as 784 steps of one pixel in [0, 1].

use std::path::PathBuf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, check_fraction, data_dir, idx, split_indices};

/// Options of `smnist` / `psmnist`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MnistConfig {
    /// Folder with the four IDX files (default `$DATA_PATH/mnist`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Apply one fixed pixel permutation (null: `psmnist` does, `smnist` does not).
    #[serde(default)]
    pub permute: Option<bool>,
    /// Seed of that permutation.
    #[serde(default = "seed42")]
    pub permute_seed: u64,
    /// Fraction of the training images held out for validation.
    #[serde(default = "val_split")]
    pub val_split: f64,
    /// Seed of the train/val split.
    #[serde(default = "seed42")]
    pub split_seed: u64,
    /// Use only the first this many training images (null = all); for quick experiments.
    #[serde(default)]
    pub limit_train: Option<usize>,
    /// Use only the first this many test images (null = all).
    #[serde(default)]
    pub limit_test: Option<usize>,
}

fn seed42() -> u64 {
    42
}
fn val_split() -> f64 {
    0.1
}

/// The fixed permutation of `n` pixels for `seed`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    p.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    p
}

/// Reads one image/label file pair into a split.
fn read_split(
    dir: &std::path::Path,
    prefix: &str,
    limit: Option<usize>,
    perm: Option<&[usize]>,
) -> Result<SeqData, DataError> {
    let img_path = idx::find(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lbl_path = idx::find(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read(&img_path, 3)?;
    let labels = idx::read(&lbl_path, 1)?;
    if images.dims[0] != labels.dims[0] {
        return Err(DataError::Corrupt {
            path: lbl_path,
            msg: format!("{} labels for {} images in {}", labels.dims[0], images.dims[0], img_path.display()),
        });
    }
    if let Some(&bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(DataError::Corrupt { path: lbl_path, msg: format!("label {bad} outside 0..=9") });
    }
    if let Some(p) = perm
        && images.dims[1] * images.dims[2] != p.len()
    {
        return Err(DataError::Corrupt {
            path: img_path,
            msg: format!(
                "header fields rows×columns are {}×{}; the permutation of permuted MNIST needs 28×28 images",
                images.dims[1], images.dims[2]
            ),
        });
    }
    let n = limit.map_or(images.dims[0], |k| k.min(images.dims[0]));
    let l = images.dims[1] * images.dims[2];
    let mut inputs = Vec::with_capacity(n * l);
    for i in 0..n {
        let img = &images.data[i * l..(i + 1) * l];
        match perm {
            Some(p) => inputs.extend(p.iter().map(|&j| img[j] as f32 / 255.0)),
            None => inputs.extend(img.iter().map(|&v| v as f32 / 255.0)),
        }
    }
    let labels = labels.data[..n].iter().map(|&v| v as u32).collect();
    Ok(SeqData::dense(inputs, l, 1, Targets::Classes { labels, n_classes: 10 }))
}

/// Loads MNIST from `data.path` or `$DATA_PATH/mnist`; `permute` applies the fixed permutation.
pub fn load(cfg: &MnistConfig, permute: bool) -> Result<DataModule, DataError> {
    check_fraction("data.val_split", cfg.val_split)?;
    let dir = data_dir(&cfg.path, "mnist");
    let perm = permute.then(|| permutation(784, cfg.permute_seed));
    let train_all = read_split(&dir, "train", cfg.limit_train, perm.as_deref())?;
    let test = read_split(&dir, "t10k", cfg.limit_test, perm.as_deref())?;
    if test.seq_len != train_all.seq_len {
        return Err(DataError::Corrupt {
            path: idx::find(&dir, "t10k-images-idx3-ubyte")?,
            msg: format!(
                "header fields rows×columns give {} pixels per image, the training images have {}",
                test.seq_len, train_all.seq_len
            ),
        });
    }
    let (tr, va) = split_indices(train_all.len(), cfg.val_split, cfg.split_seed);
    Ok(DataModule { train: train_all.subset(&tr), val: train_all.subset(&va), test })
}
