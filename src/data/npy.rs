//! `data=npy`: bring your own arrays. `X_{train,val,test}.npy` hold [n, C, L] (or [n, L, C],
//! or [n, L] for one channel) as float32/float64/int, `y_*.npy` hold [n] (or [n, K] values);
//! channels become the input features of each step.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::npy_format::{NpyArray, read_npy};
use super::{DataError, DataModule, SeqData, Targets, data_dir};

/// How `X` arrays are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NpyLayout {
    /// [n, C, L]: channels first (PyTorch's Conv1d layout, aframe's).
    #[default]
    Ncl,
    /// [n, L, C]: channels last.
    Nlc,
}

/// What `y` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NpyTargets {
    /// Class indices 0..K (integers, or floats with integral values), shape [n] or [n, 1].
    #[default]
    Classes,
    /// Real values, shape [n] or [n, K].
    Values,
}

/// Options of `npy`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpyConfig {
    /// Folder holding `X_{train,val,test}.npy` and `y_*.npy` (default `$DATA_PATH/npy`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Layout of the `X` arrays with three axes.
    #[serde(default)]
    pub layout: NpyLayout,
    /// What `y` holds.
    #[serde(default)]
    pub targets: NpyTargets,
    /// Number of classes (default: the largest label of any split plus one).
    #[serde(default)]
    pub n_classes: Option<usize>,
}

impl Default for NpyConfig {
    fn default() -> Self {
        Self { path: None, layout: NpyLayout::Ncl, targets: NpyTargets::Classes, n_classes: None }
    }
}

const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Loads the three splits from `<path>`, `sub` naming the default folder under `$DATA_PATH`.
pub fn load_from(cfg: &NpyConfig, sub: &str) -> Result<DataModule, DataError> {
    let dir = data_dir(&cfg.path, sub);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for s in SPLITS {
        let (x, y) = (read_npy(&dir.join(format!("X_{s}.npy")))?, read_npy(&dir.join(format!("y_{s}.npy")))?);
        xs.push(inputs(&x, cfg.layout)?);
        ys.push(y);
    }
    let (l, c) = (xs[0].1, xs[0].2);
    for (i, (_, li, ci)) in xs.iter().enumerate().skip(1) {
        if (*li, *ci) != (l, c) {
            let p = dir.join(format!("X_{}.npy", SPLITS[i]));
            return Err(DataError::Corrupt {
                path: p,
                msg: format!("header field `shape`: {li} steps × {ci} channels, X_train.npy has {l} × {c}"),
            });
        }
    }
    let n_classes = match cfg.targets {
        NpyTargets::Classes => Some(class_count(cfg, &ys)?),
        NpyTargets::Values => None,
    };
    let mut splits = Vec::new();
    for ((x, _, _), y) in xs.into_iter().zip(&ys) {
        let n = x.len() / (l * c);
        let targets = targets(y, n, n_classes, &dir)?;
        splits.push(SeqData::dense(x, l, c, targets));
    }
    let test = splits.pop().expect("three splits");
    let val = splits.pop().expect("three splits");
    let train = splits.pop().expect("three splits");
    Ok(DataModule { train, val, test })
}

/// Loads `data=npy`.
pub fn load(cfg: &NpyConfig) -> Result<DataModule, DataError> {
    load_from(cfg, "npy")
}

/// `X` as row-major [n, L, C] f32, with L and C.
fn inputs(x: &NpyArray, layout: NpyLayout) -> Result<(Vec<f32>, usize, usize), DataError> {
    let bad = |msg: String| DataError::Corrupt { path: x.path.clone(), msg };
    let (n, l, c) = match (x.shape.as_slice(), layout) {
        (&[n, l], _) => (n, l, 1),
        (&[n, c, l], NpyLayout::Ncl) => (n, l, c),
        (&[n, l, c], NpyLayout::Nlc) => (n, l, c),
        (s, _) => return Err(bad(format!("header field `shape`: {s:?}; expected [n, C, L], [n, L, C] or [n, L]"))),
    };
    if n == 0 || l == 0 || c == 0 {
        return Err(bad(format!("header field `shape`: {:?} has an empty axis", x.shape)));
    }
    let v = x.to_f32()?;
    if layout == NpyLayout::Nlc || c == 1 {
        return Ok((v, l, c));
    }
    // [n, C, L] -> [n, L, C].
    let mut out = vec![0f32; v.len()];
    for (src, dst) in v.chunks(c * l).zip(out.chunks_mut(c * l)) {
        for ch in 0..c {
            for t in 0..l {
                dst[t * c + ch] = src[ch * l + t];
            }
        }
    }
    Ok((out, l, c))
}

/// The number of classes: `n_classes`, else the largest label plus one.
fn class_count(cfg: &NpyConfig, ys: &[NpyArray]) -> Result<usize, DataError> {
    if let Some(k) = cfg.n_classes {
        if k < 2 {
            return Err(DataError::Invalid(format!("`data.n_classes` must be at least 2, got {k}")));
        }
        return Ok(k);
    }
    let mut max = 0f64;
    for y in ys {
        for v in y.to_f64()? {
            max = max.max(v);
        }
    }
    Ok((max as usize + 1).max(2))
}

/// Targets of a split from `y`, checked against the `n` samples of its `X`.
fn targets(y: &NpyArray, n: usize, n_classes: Option<usize>, dir: &Path) -> Result<Targets, DataError> {
    let bad = |msg: String| DataError::Corrupt { path: y.path.clone(), msg };
    let (rows, dim) = match y.shape.as_slice() {
        &[r] => (r, 1),
        &[r, k] => (r, k),
        s => return Err(bad(format!("header field `shape`: {s:?}; expected [n] or [n, K]"))),
    };
    if rows != n {
        let x = y.path.file_name().map(|f| f.to_string_lossy().replacen("y_", "X_", 1)).unwrap_or_default();
        return Err(bad(format!("header field `shape`: {rows} samples, but {} has {n}", dir.join(x).display())));
    }
    let v = y.to_f64()?;
    match n_classes {
        None => Ok(Targets::Values { values: v.iter().map(|&x| x as f32).collect(), dim }),
        Some(k) => {
            if dim != 1 {
                return Err(bad(format!("header field `shape`: {:?}; class labels need [n] or [n, 1]", y.shape)));
            }
            let labels = v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if x.fract() != 0.0 || x < 0.0 || x >= k as f64 {
                        Err(bad(format!("label {x} at index {i} is not a class in 0..{k}")))
                    } else {
                        Ok(x as u32)
                    }
                })
                .collect::<Result<_, _>>()?;
            Ok(Targets::Classes { labels, n_classes: k })
        }
    }
}
