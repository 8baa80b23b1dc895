//! UCR/UEA time-series archives in the sktime `.ts` format: `<path>/<Name>/<Name>_TRAIN.ts` and
//! `_TEST.ts`, univariate or multivariate, equal or variable length (padded with zeros; batch
//! lengths keep padding out of pooling and losses).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, check_fraction, data_dir, read_text, split_indices};

/// Options of `ucr`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UcrConfig {
    /// Archive folder holding `<name>/<name>_TRAIN.ts` (default `$DATA_PATH/ucr`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Problem name, e.g. `ArrowHead`, `JapaneseVowels`.
    pub name: String,
    /// Fraction of the training series held out for validation.
    #[serde(default = "val_split")]
    pub val_split: f64,
    /// Seed of the train/val split.
    #[serde(default = "seed")]
    pub split_seed: u64,
}

fn val_split() -> f64 {
    0.1
}
fn seed() -> u64 {
    42
}

/// One parsed `.ts` file.
#[derive(Debug, Clone)]
pub struct TsFile {
    /// Class names in `@classLabel` order.
    pub classes: Vec<String>,
    /// Dimensions per step.
    pub dims: usize,
    /// Each series as [L_i, D] row-major, with its label index.
    pub series: Vec<(Vec<f32>, usize)>,
}

/// Parses a `.ts` file (header `@key value` lines, `#` comments, then `@data` rows of
/// `dim0:dim1:…:label`, each dimension comma-separated values).
pub fn parse_ts(text: &str, path: &Path) -> Result<TsFile, DataError> {
    let bad =
        |line: usize, msg: String| DataError::Corrupt { path: path.to_path_buf(), msg: format!("line {line}: {msg}") };
    let mut classes: Option<Vec<String>> = None;
    let mut dims: Option<usize> = None;
    let mut in_data = false;
    let mut series = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let ln = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !in_data {
            let (key, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            match key.to_ascii_lowercase().as_str() {
                "@data" => in_data = true,
                "@classlabel" => {
                    let mut it = rest.split_whitespace();
                    if it.next() != Some("true") {
                        return Err(bad(
                            ln,
                            "only classification archives (`@classLabel true …`) are supported".into(),
                        ));
                    }
                    classes = Some(it.map(str::to_string).collect());
                }
                "@dimensions" => {
                    let d: usize =
                        rest.trim().parse().map_err(|_| bad(ln, format!("`@dimensions {rest}` is not a number")))?;
                    if d == 0 {
                        return Err(bad(ln, "`@dimensions` is 0; a series has at least one dimension".into()));
                    }
                    dims = Some(d);
                }
                "@timestamps" if rest.trim() == "true" => {
                    return Err(bad(ln, "timestamped series are not supported".into()));
                }
                _ => {}
            }
            continue;
        }
        let classes = classes.as_ref().ok_or_else(|| bad(ln, "`@data` before `@classLabel`".into()))?;
        let mut fields: Vec<&str> = line.split(':').collect();
        let label = fields.pop().unwrap_or_default().trim();
        let class = classes
            .iter()
            .position(|c| c == label)
            .ok_or_else(|| bad(ln, format!("label `{label}` is not one of @classLabel {}", classes.join(" "))))?;
        if fields.is_empty() {
            return Err(bad(ln, "no values before the label (`dim0:…:label`)".into()));
        }
        let d = *dims.get_or_insert(fields.len());
        if fields.len() != d {
            return Err(bad(ln, format!("{} dimensions, expected {d}", fields.len())));
        }
        let cols: Vec<Vec<f32>> = fields
            .iter()
            .enumerate()
            .map(|(k, f)| {
                f.split(',')
                    .map(|v| match v.trim() {
                        "?" | "NaN" => {
                            Err(bad(ln, format!("missing value in dimension {k}; fill or drop missing values first")))
                        }
                        t => crate::io::parse_finite_f32(t).map_err(|m| bad(ln, format!("{m} (dimension {k})"))),
                    })
                    .collect()
            })
            .collect::<Result<_, _>>()?;
        let len = cols[0].len();
        if cols.iter().any(|c| c.len() != len) {
            return Err(bad(ln, "dimensions of one series differ in length".into()));
        }
        let mut row = vec![0f32; len * d];
        for (k, col) in cols.iter().enumerate() {
            for (t, v) in col.iter().enumerate() {
                row[t * d + k] = *v;
            }
        }
        series.push((row, class));
    }
    let classes = classes.ok_or_else(|| bad(0, "no `@classLabel` header".into()))?;
    if series.is_empty() {
        return Err(bad(0, "no series after `@data`".into()));
    }
    Ok(TsFile { classes, dims: dims.unwrap_or(1), series })
}

/// Pads the series of a file to `l` steps (recording each length) into a split, after checking
/// that the padded values fit in memory.
fn to_split(f: &TsFile, l: usize, path: &Path) -> Result<SeqData, DataError> {
    let d = f.dims;
    let total = (f.series.len() as u64).checked_mul(l as u64).and_then(|v| v.checked_mul(d as u64));
    let total = super::check_fits(path, &format!("{} series padded to {l} steps", f.series.len()), total)?;
    let mut inputs = vec![0f32; total];
    let mut lengths = Vec::with_capacity(f.series.len());
    for (i, (row, _)) in f.series.iter().enumerate() {
        inputs[i * l * d..][..row.len()].copy_from_slice(row);
        lengths.push(row.len() / d);
    }
    let labels = f.series.iter().map(|(_, c)| *c as u32).collect();
    let varying = lengths.iter().any(|&n| n != l);
    Ok(SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: d,
        targets: Targets::Classes { labels, n_classes: f.classes.len() },
        lengths: varying.then_some(lengths),
        vocab: None,
    })
}

fn read(path: &Path) -> Result<TsFile, DataError> {
    let text = read_text(path, "UCR/UEA `.ts` file")?;
    parse_ts(&text, path)
}

/// Loads `<name>_TRAIN.ts` (split into train/val) and `<name>_TEST.ts`.
pub fn load(cfg: &UcrConfig) -> Result<DataModule, DataError> {
    check_fraction("data.val_split", cfg.val_split)?;
    let dir = data_dir(&cfg.path, "ucr").join(&cfg.name);
    let train_path = dir.join(format!("{}_TRAIN.ts", cfg.name));
    let test_path = dir.join(format!("{}_TEST.ts", cfg.name));
    let (train, test) = (read(&train_path)?, read(&test_path)?);
    if train.classes != test.classes || train.dims != test.dims {
        return Err(DataError::Corrupt {
            path: test_path,
            msg: format!(
                "classes/dimensions ({:?}, {}) differ from the training file's ({:?}, {})",
                test.classes, test.dims, train.classes, train.dims
            ),
        });
    }
    let max_len = |f: &TsFile| f.series.iter().map(|(r, _)| r.len() / f.dims).max().unwrap_or(1);
    let l = max_len(&train).max(max_len(&test));
    let all = to_split(&train, l, &train_path)?;
    let (tr, va) = split_indices(all.len(), cfg.val_split, cfg.split_seed);
    Ok(DataModule { train: all.subset(&tr), val: all.subset(&va), test: to_split(&test, l, &test_path)? })
}
