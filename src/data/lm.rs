//! Language modeling on raw text files (WikiText-103's `wiki.{train,valid,test}.tokens` or any
//! train/valid/test text): word level (whitespace tokens plus `<eos>` per line) or character
//! level (`level: char`, newlines included), a vocabulary built from the training file by
//! frequency, the stream cut into windows whose targets are the next tokens.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets, data_dir, read_text};

/// Options of `wikitext103`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LmTextConfig {
    /// Folder with the three files (default `$DATA_PATH/wt103`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Training file name.
    #[serde(default = "train")]
    pub train_file: String,
    /// Validation file name.
    #[serde(default = "valid")]
    pub valid_file: String,
    /// Test file name.
    #[serde(default = "test")]
    pub test_file: String,
    /// Tokens per window.
    #[serde(default = "seq_len")]
    pub seq_len: usize,
    /// Keep only the most frequent tokens (null = all); the rest become `<unk>`.
    #[serde(default)]
    pub max_vocab: Option<usize>,
    /// Tokens: whitespace-separated words or single characters.
    #[serde(default)]
    pub level: Level,
}

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Whitespace-separated words plus `<eos>` per line.
    #[default]
    Word,
    /// Characters (Unicode scalar values), newlines included.
    Char,
}

impl Level {
    /// The tokens of a text.
    pub fn tokens<'a>(self, text: &'a str) -> Box<dyn Iterator<Item = std::borrow::Cow<'a, str>> + 'a> {
        match self {
            Level::Word => Box::new(words(text).map(std::borrow::Cow::Borrowed)),
            Level::Char => Box::new(text.chars().map(|c| std::borrow::Cow::Owned(c.to_string()))),
        }
    }

    /// Text from tokens (words joined by spaces, `<eos>` as a line end; characters as they are).
    pub fn join(self, tokens: &[&str]) -> String {
        match self {
            Level::Char => tokens.concat(),
            Level::Word => {
                let mut out = String::new();
                for t in tokens {
                    if *t == "<eos>" {
                        out.push('\n');
                    } else {
                        if !(out.is_empty() || out.ends_with('\n')) {
                            out.push(' ');
                        }
                        out.push_str(t);
                    }
                }
                out
            }
        }
    }
}

fn train() -> String {
    "wiki.train.tokens".into()
}
fn valid() -> String {
    "wiki.valid.tokens".into()
}
fn test() -> String {
    "wiki.test.tokens".into()
}
fn seq_len() -> usize {
    512
}

/// Id of `<unk>` (unknown and out-of-vocabulary words).
pub const UNK: u32 = 0;
/// Id of `<eos>` (end of each non-empty line).
pub const EOS: u32 = 1;

fn read(path: &Path) -> Result<String, DataError> {
    read_text(path, "a text file of the LM corpus")
}

/// Words of a text, `<eos>` after each non-empty line.
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.lines().filter(|l| !l.trim().is_empty()).flat_map(|l| l.split_whitespace().chain(std::iter::once("<eos>")))
}

/// The vocabulary: `<unk>`, `<eos>`, then tokens by descending training frequency (ties by
/// token).
pub fn build_vocab(train: &str, max_vocab: Option<usize>) -> HashMap<String, u32> {
    build_vocab_at(train, max_vocab, Level::Word)
}

/// [`build_vocab`] for tokens of `level`.
pub fn build_vocab_at(train: &str, max_vocab: Option<usize>, level: Level) -> HashMap<String, u32> {
    let mut counts: HashMap<std::borrow::Cow<str>, usize> = HashMap::new();
    for w in level.tokens(train).filter(|w| w != "<eos>" && w != "<unk>") {
        *counts.entry(w).or_default() += 1;
    }
    let mut by_freq: Vec<(std::borrow::Cow<str>, usize)> = counts.into_iter().collect();
    by_freq.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keep = max_vocab.map_or(by_freq.len(), |m| m.saturating_sub(2));
    let mut vocab: HashMap<String, u32> = [("<unk>".to_string(), UNK), ("<eos>".to_string(), EOS)].into();
    for (i, (w, _)) in by_freq.into_iter().take(keep).enumerate() {
        vocab.insert(w.to_string(), i as u32 + 2);
    }
    vocab
}

/// Windows of `l` input tokens and their next tokens, from one file.
fn windows(
    text: &str,
    vocab: &HashMap<String, u32>,
    l: usize,
    level: Level,
    path: &Path,
) -> Result<SeqData, DataError> {
    let ids: Vec<u32> = level.tokens(text).map(|w| vocab.get(w.as_ref()).copied().unwrap_or(UNK)).collect();
    let n = ids.len().saturating_sub(1) / l;
    if n == 0 {
        return Err(DataError::Corrupt {
            path: path.to_path_buf(),
            msg: format!("{} tokens, fewer than one window of {l}", ids.len()),
        });
    }
    let inputs: Vec<f32> = ids[..n * l].iter().map(|&t| t as f32).collect();
    let next = ids[1..n * l + 1].to_vec();
    Ok(SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Tokens { ids: next, vocab: vocab.len() },
        lengths: None,
        vocab: Some(vocab.len()),
    })
}

/// Loads the three files.
pub fn load(cfg: &LmTextConfig) -> Result<DataModule, DataError> {
    if cfg.seq_len == 0 {
        return Err(DataError::Invalid("`data.seq_len` must be at least 1".into()));
    }
    let dir = data_dir(&cfg.path, "wt103");
    let paths = [dir.join(&cfg.train_file), dir.join(&cfg.valid_file), dir.join(&cfg.test_file)];
    let train_text = read(&paths[0])?;
    let vocab = build_vocab_at(&train_text, cfg.max_vocab, cfg.level);
    let train = windows(&train_text, &vocab, cfg.seq_len, cfg.level, &paths[0])?;
    let val = windows(&read(&paths[1])?, &vocab, cfg.seq_len, cfg.level, &paths[1])?;
    let test = windows(&read(&paths[2])?, &vocab, cfg.seq_len, cfg.level, &paths[2])?;
    Ok(DataModule { train, val, test })
}

/// The tokens by id (`<unk>` first), rebuilt from the training file as `load` builds them.
pub fn vocabulary(cfg: &LmTextConfig) -> Result<Vec<String>, DataError> {
    let path = data_dir(&cfg.path, "wt103").join(&cfg.train_file);
    let vocab = build_vocab_at(&read(&path)?, cfg.max_vocab, cfg.level);
    let mut tokens = vec![String::new(); vocab.len()];
    for (t, id) in vocab {
        tokens[id as usize] = t;
    }
    Ok(tokens)
}
