//! Byte-level text classification from a folder per class (the aclImdb layout):
//! `<path>/<split>/<label>/<file>`. Each document becomes up to `max_len` byte tokens
//! (id = byte + 1; 0 pads), with its length kept for pooling.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, check_fraction, data_dir, split_indices};

/// Vocabulary of byte tokens: 256 byte values plus padding.
pub const BYTE_VOCAB: usize = 257;

/// Options of `text_folder`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextFolderConfig {
    /// Root holding `<train_split>/` and `<test_split>/` (default `$DATA_PATH/text`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Tokens per document (longer ones are truncated, shorter ones padded).
    #[serde(default = "max_len")]
    pub max_len: usize,
    /// Folder of the training split.
    #[serde(default = "train")]
    pub train_split: String,
    /// Folder of the test split.
    #[serde(default = "test")]
    pub test_split: String,
    /// Fraction of the training documents held out for validation.
    #[serde(default = "val_split")]
    pub val_split: f64,
    /// Seed of the train/val split.
    #[serde(default = "seed")]
    pub split_seed: u64,
    /// Read at most this many files per class and split (null = all); for quick runs.
    #[serde(default)]
    pub max_files_per_class: Option<usize>,
    /// Class folders to use, in label order (null = every folder of the training split).
    #[serde(default)]
    pub classes: Option<Vec<String>>,
}

fn max_len() -> usize {
    4096
}
fn train() -> String {
    "train".into()
}
fn test() -> String {
    "test".into()
}
fn val_split() -> f64 {
    0.1
}
fn seed() -> u64 {
    42
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> DataError + '_ {
    move |e| DataError::from_io(path, "a folder per class of text files", e)
}

/// Sorted entries of a folder that satisfy `keep`.
fn entries(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io(dir)))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|p| keep(p) && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    Ok(out)
}

fn read_split(dir: &Path, classes: &[String], explicit: bool, cfg: &TextFolderConfig) -> Result<SeqData, DataError> {
    let l = cfg.max_len;
    let (mut inputs, mut labels, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for sub in entries(dir, |p| p.is_dir())? {
        let name = sub.file_name().expect("entry").to_string_lossy().into_owned();
        let class = match classes.iter().position(|c| *c == name) {
            Some(c) => c,
            // With an explicit class list other folders (aclImdb's `unsup`) are not classes.
            None if explicit => continue,
            None => {
                return Err(DataError::Corrupt {
                    path: sub.clone(),
                    msg: format!("class folder `{name}` is not among the training classes {classes:?}"),
                });
            }
        };
        let files = entries(&sub, |p| p.is_file())?;
        for f in files.iter().take(cfg.max_files_per_class.unwrap_or(usize::MAX)) {
            let bytes = std::fs::read(f).map_err(io(f))?;
            let n = bytes.len().min(l);
            let start = inputs.len();
            inputs.resize(start + l, 0.0);
            for (slot, b) in inputs[start..start + n].iter_mut().zip(&bytes) {
                *slot = (*b as f32) + 1.0;
            }
            labels.push(class as u32);
            lengths.push(n.max(1));
        }
    }
    if labels.is_empty() {
        return Err(DataError::Corrupt { path: dir.to_path_buf(), msg: "no documents in any class folder".into() });
    }
    Ok(SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Classes { labels, n_classes: classes.len() },
        lengths: Some(lengths),
        vocab: Some(BYTE_VOCAB),
    })
}

/// Loads the training split (split into train/val) and the test split from `$DATA_PATH/text`.
pub fn load(cfg: &TextFolderConfig) -> Result<DataModule, DataError> {
    load_from(cfg, "text", None)
}

/// LRA Text: aclImdb (`$DATA_PATH/aclImdb`), classes `neg`, `pos` (`unsup` is left out).
pub fn load_imdb(cfg: &TextFolderConfig) -> Result<DataModule, DataError> {
    load_from(cfg, "aclImdb", Some(&["neg", "pos"]))
}

fn load_from(
    cfg: &TextFolderConfig,
    default_dir: &str,
    default_classes: Option<&[&str]>,
) -> Result<DataModule, DataError> {
    check_fraction("data.val_split", cfg.val_split)?;
    if cfg.max_len == 0 {
        return Err(DataError::Invalid("`data.max_len` must be at least 1".into()));
    }
    let root = data_dir(&cfg.path, default_dir);
    let train_dir = root.join(&cfg.train_split);
    let explicit = cfg.classes.clone().or_else(|| default_classes.map(|c| c.iter().map(|s| s.to_string()).collect()));
    let classes: Vec<String> = match &explicit {
        Some(c) => c.clone(),
        None => entries(&train_dir, |p| p.is_dir())?
            .iter()
            .map(|p| p.file_name().expect("entry").to_string_lossy().into_owned())
            .collect(),
    };
    for c in explicit.iter().flatten() {
        if !train_dir.join(c).is_dir() {
            return Err(DataError::Missing { path: train_dir.join(c), what: format!("the folder of class `{c}`") });
        }
    }
    if classes.len() < 2 {
        return Err(DataError::Corrupt {
            path: train_dir,
            msg: format!("{} class folder(s); classification needs at least 2", classes.len()),
        });
    }
    let all = read_split(&train_dir, &classes, explicit.is_some(), cfg)?;
    let test = read_split(&root.join(&cfg.test_split), &classes, explicit.is_some(), cfg)?;
    let (tr, va) = split_indices(all.len(), cfg.val_split, cfg.split_seed);
    Ok(DataModule { train: all.subset(&tr), val: all.subset(&va), test })
}
