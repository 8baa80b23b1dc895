//! Sequential CIFAR-10 from the official binary version (`data_batch_{1..5}.bin`,
//! `test_batch.bin`; records of 1 label byte + 1024 R + 1024 G + 1024 B bytes): 1024 steps of
//! RGB (3 channels) or grayscale (1 channel, as LRA Image), z-scored with training statistics.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, check_fraction, data_dir, split_indices};

const RECORD: usize = 1 + 3 * 1024;

/// Options of `scifar`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CifarConfig {
    /// Folder with the `.bin` files or a `cifar-10-batches-bin/` folder (default `$DATA_PATH/cifar`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// One luminance channel (`0.2989 R + 0.5870 G + 0.1140 B`) instead of three.
    #[serde(default)]
    pub grayscale: bool,
    /// Z-score each channel with the training split's mean and standard deviation.
    #[serde(default = "yes")]
    pub normalize: bool,
    /// Fraction of the 50,000 training images held out for validation.
    #[serde(default = "val_split")]
    pub val_split: f64,
    /// Seed of the train/val split.
    #[serde(default = "seed")]
    pub split_seed: u64,
}

fn yes() -> bool {
    true
}
fn val_split() -> f64 {
    0.1
}
fn seed() -> u64 {
    42
}

/// Decodes the records of one batch file into `[n, 1024, C]` pixels in [0, 1] and labels.
pub fn decode(bytes: &[u8], grayscale: bool, path: &Path) -> Result<(Vec<f32>, Vec<u32>), DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            msg: format!("{} bytes is not a whole number of {RECORD}-byte CIFAR-10 records (truncated?)", bytes.len()),
        });
    }
    let c = if grayscale { 1 } else { 3 };
    let n = bytes.len() / RECORD;
    let (mut x, mut y) = (Vec::with_capacity(n * 1024 * c), Vec::with_capacity(n));
    for (i, rec) in bytes.chunks(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::Corrupt {
                path: path.to_path_buf(),
                msg: format!("record {i}: label {} outside 0..=9", rec[0]),
            });
        }
        y.push(rec[0] as u32);
        let (r, g, b) = (&rec[1..1025], &rec[1025..2049], &rec[2049..3073]);
        for p in 0..1024 {
            let (r, g, b) = (r[p] as f32 / 255.0, g[p] as f32 / 255.0, b[p] as f32 / 255.0);
            if grayscale {
                x.push(0.2989 * r + 0.5870 * g + 0.1140 * b);
            } else {
                x.extend([r, g, b]);
            }
        }
    }
    Ok((x, y))
}

fn read(dir: &Path, name: &str, grayscale: bool) -> Result<(Vec<f32>, Vec<u32>), DataError> {
    let candidates = [dir.join(name), dir.join("cifar-10-batches-bin").join(name)];
    let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| DataError::Missing {
        path: candidates[0].clone(),
        what: format!("CIFAR-10 binary file `{name}` (also looked in cifar-10-batches-bin/)"),
    })?;
    let bytes = super::read_bytes(path, "a CIFAR-10 binary batch")?;
    decode(&bytes, grayscale, path)
}

/// Loads the five training batches (split into train/val) and the test batch.
pub fn load(cfg: &CifarConfig) -> Result<DataModule, DataError> {
    check_fraction("data.val_split", cfg.val_split)?;
    let dir = data_dir(&cfg.path, "cifar");
    let c = if cfg.grayscale { 1 } else { 3 };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for k in 1..=5 {
        let (xk, yk) = read(&dir, &format!("data_batch_{k}.bin"), cfg.grayscale)?;
        x.extend(xk);
        y.extend(yk);
    }
    let (mut xt, yt) = read(&dir, "test_batch.bin", cfg.grayscale)?;
    if cfg.normalize {
        for ch in 0..c {
            let vals = x.iter().skip(ch).step_by(c);
            let n = (x.len() / c) as f64;
            let mean = vals.clone().map(|v| *v as f64).sum::<f64>() / n;
            let std = (vals.map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt().max(1e-6);
            for buf in [&mut x, &mut xt] {
                for v in buf.iter_mut().skip(ch).step_by(c) {
                    *v = ((*v as f64 - mean) / std) as f32;
                }
            }
        }
    }
    let classes = |labels| Targets::Classes { labels, n_classes: 10 };
    let all = SeqData::dense(x, 1024, c, classes(y));
    let (tr, va) = split_indices(all.len(), cfg.val_split, cfg.split_seed);
    Ok(DataModule { train: all.subset(&tr), val: all.subset(&va), test: SeqData::dense(xt, 1024, c, classes(yt)) })
}
