//! Text classification from a folder per class (the aclImdb layout):
//! `<path>/<split>/<label>/<file>`. Each document becomes up to `max_len` tokens (0 pads), with
//! its length kept for pooling: bytes (id = byte + 1) by default, or characters of a vocabulary
//! built from the training documents (`tokenizer: char`, as the S4 repo's LRA Text).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::char_vocab::CharVocab;
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
    /// `byte` (256 values + padding) or `char` (a vocabulary from the training documents).
    #[serde(default)]
    pub tokenizer: Tokenizer,
    /// `char`: keep characters seen at least this often in training; the rest become `<unk>`.
    #[serde(default = "min_freq")]
    pub min_freq: usize,
    /// `char`: start each document with `<bos>`.
    #[serde(default)]
    pub append_bos: bool,
    /// `char`: end each document with `<eos>`.
    #[serde(default)]
    pub append_eos: bool,
}

/// How documents become tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tokenizer {
    /// One token per byte.
    #[default]
    Byte,
    /// One token per character (Unicode scalar value), UTF-8 text only.
    Char,
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
fn min_freq() -> usize {
    15
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

/// One document: its file, bytes and class.
struct Doc {
    path: PathBuf,
    bytes: Vec<u8>,
    class: u32,
}

fn read_docs(dir: &Path, classes: &[String], explicit: bool, cfg: &TextFolderConfig) -> Result<Vec<Doc>, DataError> {
    let mut docs = Vec::new();
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
        for f in files.into_iter().take(cfg.max_files_per_class.unwrap_or(usize::MAX)) {
            let bytes = super::read_bytes(&f, "a text document")?;
            docs.push(Doc { path: f, bytes, class: class as u32 });
        }
    }
    if docs.is_empty() {
        return Err(DataError::Corrupt { path: dir.to_path_buf(), msg: "no documents in any class folder".into() });
    }
    Ok(docs)
}

fn text(doc: &Doc) -> Result<&str, DataError> {
    std::str::from_utf8(&doc.bytes).map_err(|e| DataError::Corrupt {
        path: doc.path.clone(),
        msg: format!("not UTF-8 text ({e}); needed by `data.tokenizer: char`"),
    })
}

/// Token ids of the documents, padded to `l`, with their lengths and labels.
fn tokenize(docs: &[Doc], l: usize, n_classes: usize, vocab: Option<&CharVocab>) -> Result<SeqData, DataError> {
    if let Some(first) = docs.first() {
        let what = format!("{} documents padded to {l} tokens", docs.len());
        super::check_fits(&first.path, &what, (docs.len() as u64).checked_mul(l as u64))?;
    }
    let (mut inputs, mut labels, mut lengths) = (vec![0f32; docs.len() * l], Vec::new(), Vec::new());
    for (doc, row) in docs.iter().zip(inputs.chunks_mut(l)) {
        let ids: Vec<u32> = match vocab {
            Some(v) => v.encode(text(doc)?, l),
            None => doc.bytes.iter().take(l).map(|b| *b as u32 + 1).collect(),
        };
        for (slot, id) in row.iter_mut().zip(&ids) {
            *slot = *id as f32;
        }
        labels.push(doc.class);
        lengths.push(ids.len().max(1));
    }
    Ok(SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Classes { labels, n_classes },
        lengths: Some(lengths),
        vocab: Some(vocab.map_or(BYTE_VOCAB, CharVocab::len)),
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
    let specials = cfg.append_bos as usize + cfg.append_eos as usize;
    if cfg.max_len <= specials {
        return Err(DataError::Invalid(format!("`data.max_len` must exceed the {specials} <bos>/<eos> token(s)")));
    }
    if cfg.tokenizer == Tokenizer::Byte {
        for (key, on) in [("append_bos", cfg.append_bos), ("append_eos", cfg.append_eos)] {
            if on {
                return Err(DataError::Invalid(format!("`data.{key}` needs `data.tokenizer: char`")));
            }
        }
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
    let docs = read_docs(&train_dir, &classes, explicit.is_some(), cfg)?;
    let test_docs = read_docs(&root.join(&cfg.test_split), &classes, explicit.is_some(), cfg)?;
    let (tr, va) = split_indices(docs.len(), cfg.val_split, cfg.split_seed);
    // Only the documents trained on shape the vocabulary (no validation or test leakage).
    let vocab = match cfg.tokenizer {
        Tokenizer::Byte => None,
        Tokenizer::Char => {
            let texts = tr.iter().map(|&i| text(&docs[i])).collect::<Result<Vec<_>, _>>()?;
            Some(CharVocab::build(texts, cfg.min_freq, cfg.append_bos, cfg.append_eos, cfg.max_len))
        }
    };
    let all = tokenize(&docs, cfg.max_len, classes.len(), vocab.as_ref())?;
    let test = tokenize(&test_docs, cfg.max_len, classes.len(), vocab.as_ref())?;
    Ok(DataModule { train: all.subset(&tr), val: all.subset(&va), test })
}
