//! Datasets as in-memory sequences, a registry selecting them by `data._name_`, and batching.

pub mod aan;
pub mod adding;
pub mod augment;
pub mod char_vocab;
pub mod cifar;
pub mod copying;
pub mod digits;
pub mod gw;
pub mod idx;
pub mod inputs;
pub mod listops;
pub mod lm;
pub mod loader;
pub mod mfcc;
pub mod mnist;
pub mod npy;
pub mod npy_format;
pub mod pathfinder;
mod pathfinder_draw;
pub mod pathfinder_gen;
pub mod prepared;
pub mod shard;
mod shard_check;
pub mod speech;
pub mod synthetic;
pub mod text_folder;
pub mod ucr;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub use inputs::{Dtype, Encoding, Inputs};
pub use loader::{BatchIter, LoaderConfig};
pub use prepared::{DataSpec, PreparedMode};

crate::registry! {
    /// Datasets selectable as `data` (one line per dataset).
    pub enum DataConfig ("dataset") {
        "digits" => Digits(digits::DigitsConfig),
        "smnist" => Smnist(mnist::MnistConfig),
        "psmnist" => Psmnist(mnist::MnistConfig),
        "scifar" => Scifar(cifar::CifarConfig),
        "adding" => Adding(adding::AddingConfig),
        "associative_recall" => AssociativeRecall(synthetic::RecallConfig),
        "induction_heads" => InductionHeads(synthetic::InductionConfig),
        "listops" => Listops(listops::ListOpsConfig),
        "pathfinder" => Pathfinder(pathfinder::PathfinderConfig),
        "speech_commands" => SpeechCommands(speech::SpeechConfig),
        "ucr" => Ucr(ucr::UcrConfig),
        "text_folder" => TextFolder(text_folder::TextFolderConfig),
        "imdb" => Imdb(text_folder::TextFolderConfig),
        "aan" => Aan(aan::AanConfig),
        "wikitext103" => Wikitext103(lm::LmTextConfig),
        "copying" => Copying(copying::CopyingConfig),
        "selective_copying" => SelectiveCopying(copying::CopyingConfig),
        "npy" => Npy(npy::NpyConfig),
        "gw" => Gw(gw::GwConfig),
        "gw_strain" => GwStrain(gw::strain::GwStrainConfig),
    }
}

impl DataConfig {
    /// The tokens by id and what a token is, for data whose inputs are text tokens a model can
    /// generate (word- or character-level language modeling); `None` for other data.
    pub fn vocabulary(&self) -> Option<Result<(Vec<String>, lm::Level), DataError>> {
        match self {
            DataConfig::Wikitext103(c) => Some(lm::vocabulary(c).map(|v| (v, c.level))),
            _ => None,
        }
    }

    /// Loads (or generates) the train/val/test splits.
    pub fn load(&self) -> Result<DataModule, DataError> {
        match self {
            DataConfig::Digits(c) => digits::load(c),
            DataConfig::Smnist(c) => mnist::load(c, c.permute.unwrap_or(false)),
            DataConfig::Psmnist(c) => mnist::load(c, c.permute.unwrap_or(true)),
            DataConfig::Scifar(c) => cifar::load(c),
            DataConfig::Adding(c) => adding::load(c),
            DataConfig::AssociativeRecall(c) => synthetic::load_recall(c),
            DataConfig::InductionHeads(c) => synthetic::load_induction(c),
            DataConfig::Listops(c) => listops::load(c),
            DataConfig::Pathfinder(c) => pathfinder::load(c),
            DataConfig::SpeechCommands(c) => speech::load(c),
            DataConfig::Ucr(c) => ucr::load(c),
            DataConfig::TextFolder(c) => text_folder::load(c),
            DataConfig::Imdb(c) => text_folder::load_imdb(c),
            DataConfig::Aan(c) => aan::load(c),
            DataConfig::Wikitext103(c) => lm::load(c),
            DataConfig::Copying(c) => copying::load(c, false),
            DataConfig::SelectiveCopying(c) => copying::load(c, true),
            DataConfig::Npy(c) => npy::load(c),
            DataConfig::Gw(c) => gw::load(c),
            DataConfig::GwStrain(c) => gw::strain::load(c),
        }
    }
}

/// A problem with data on disk, naming the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file that is not there.
    #[error("{path}: not found ({what}); set `data.path` or $DATA_PATH")]
    Missing { path: PathBuf, what: String },
    /// A file whose content is not what its format promises.
    #[error("{path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    /// An I/O failure.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Options that cannot produce a dataset.
    #[error("data: {0}")]
    Invalid(String),
}

impl DataError {
    /// An I/O failure on `path`: a missing file becomes [`DataError::Missing`] saying `what` was
    /// expected there, non-UTF-8 text [`DataError::Corrupt`], anything else [`DataError::Io`].
    pub fn from_io(path: &Path, what: &str, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::NotFound => DataError::Missing { path: path.to_path_buf(), what: what.into() },
            std::io::ErrorKind::InvalidData => {
                DataError::Corrupt { path: path.to_path_buf(), msg: "not UTF-8 text".into() }
            }
            _ => DataError::Io { path: path.to_path_buf(), source },
        }
    }
}

/// Reads a whole text file (a regular file of at most [`crate::io::MAX_DATA_BYTES`]), naming
/// the file and `what` was expected in errors.
pub fn read_text(path: &Path, what: &str) -> Result<String, DataError> {
    crate::io::read_text_capped(path, crate::io::MAX_DATA_BYTES, "a data file")
        .map_err(|e| DataError::from_io(path, what, e))
}

/// Reads a whole binary data file (a regular file of at most [`crate::io::MAX_DATA_BYTES`]).
pub fn read_bytes(path: &Path, what: &str) -> Result<Vec<u8>, DataError> {
    crate::io::read_capped(path, crate::io::MAX_DATA_BYTES, "a data file")
        .map_err(|e| DataError::from_io(path, what, e))
}

/// Whether `values` f32 values (None: the count overflowed) fit in the memory available.
fn fits(what: &str, values: Option<u64>) -> Result<usize, String> {
    let bytes = values.and_then(|v| v.checked_mul(4)).filter(|&b| b <= isize::MAX as u64);
    let Some(bytes) = bytes else { return Err(format!("{what}: the sizes overflow")) };
    if let Some(avail) = crate::io::mem_available()
        && bytes > avail
    {
        return Err(format!(
            "{what} need {} of memory, this machine has {} available",
            crate::io::human_bytes(bytes),
            crate::io::human_bytes(avail)
        ));
    }
    Ok((bytes / 4) as usize)
}

/// Checks that `values` f32 values (None: the count overflowed) fit in the machine's memory
/// before a loader allocates them; the error names `path` and what the values are.
pub fn check_fits(path: &Path, what: &str, values: Option<u64>) -> Result<usize, DataError> {
    fits(what, values).map_err(|msg| DataError::Corrupt { path: path.to_path_buf(), msg })
}

/// The largest vocabulary of generated tokens: ids are stored as f32, exact up to 2^24.
pub const MAX_GENERATED_VOCAB: usize = 1 << 24;

/// [`check_fits`] for a generated dataset: `values` per sample times the samples of all three
/// splits (`n`), the error naming the config keys that set them (`keys`).
pub fn check_generated(keys: &str, n: [usize; 3], per_sample: Option<u64>) -> Result<(), DataError> {
    let total = n.iter().try_fold(0u64, |acc, &k| acc.checked_add(k as u64));
    let values = total.zip(per_sample).and_then(|(t, p)| t.checked_mul(p));
    fits(&format!("the samples that {keys} ask for"), values).map(|_| ()).map_err(DataError::Invalid)
}

/// A per-step token target that is not scored (loss and metrics skip the step).
pub const IGNORE_INDEX: u32 = u32::MAX;

/// Targets of a split.
#[derive(Debug, Clone)]
pub enum Targets {
    /// One class index per sample.
    Classes {
        /// Labels in `0..n_classes`.
        labels: Vec<u32>,
        /// Number of classes.
        n_classes: usize,
    },
    /// `dim` real values per sample.
    Values {
        /// Row-major [n, dim].
        values: Vec<f32>,
        /// Values per sample.
        dim: usize,
    },
    /// One token id per step (language modeling: the next token of each input step; copying:
    /// the recalled token), or [`IGNORE_INDEX`] where the step is not scored.
    Tokens {
        /// Row-major [n, L].
        ids: Vec<u32>,
        /// Vocabulary size.
        vocab: usize,
    },
}

/// One split: `n` sequences of `seq_len` steps with `channels` features each.
#[derive(Debug, Clone)]
pub struct SeqData {
    /// Row-major [n, L, D]: owned f32, or typed values mapped from a prepared shard.
    pub inputs: Inputs,
    /// L.
    pub seq_len: usize,
    /// D.
    pub channels: usize,
    /// One target per sequence.
    pub targets: Targets,
    /// Valid steps of each sequence when lengths vary (the rest is zero padding).
    pub lengths: Option<Vec<usize>>,
    /// For token data: the vocabulary size (inputs then hold token ids, D = 1, 0 = padding).
    pub vocab: Option<usize>,
}

/// What a task needs to know about the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// Classification into this many classes.
    Classes(usize),
    /// Regression with this many outputs.
    Values(usize),
    /// A token per step from a vocabulary of this size.
    Tokens(usize),
}

/// The three splits of a dataset.
#[derive(Debug, Clone)]
pub struct DataModule {
    /// Training split.
    pub train: SeqData,
    /// Validation split (model selection).
    pub val: SeqData,
    /// Test split (reported once at the end).
    pub test: SeqData,
}

impl DataModule {
    /// Features per step D.
    pub fn d_input(&self) -> usize {
        self.train.channels
    }

    /// The vocabulary size when the inputs are tokens.
    pub fn vocab(&self) -> Option<usize> {
        self.train.vocab
    }

    /// Target kind (shared by all splits).
    pub fn target_kind(&self) -> TargetKind {
        self.train.target_kind()
    }

    /// A split by name (`train`, `val`, `test`).
    pub fn split(&self, name: &str) -> Option<&SeqData> {
        match name {
            "train" => Some(&self.train),
            "val" | "validation" => Some(&self.val),
            "test" => Some(&self.test),
            _ => None,
        }
    }
}

/// A batch on a device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Inputs [B, L, D].
    pub x: Tensor<3>,
    /// Targets.
    pub y: BatchTargets,
    /// Valid steps per sample (None: all L).
    pub lengths: Option<Vec<usize>>,
}

/// Targets of a batch.
#[derive(Debug, Clone)]
pub enum BatchTargets {
    /// Class indices [B] (or [B·L] for per-step tokens, rows in batch-major order; -1 marks an
    /// unscored step).
    Classes(Tensor<1, Int>),
    /// Values [B, K].
    Values(Tensor<2>),
}

impl SeqData {
    /// A split of dense, equal-length sequences.
    pub fn dense(inputs: Vec<f32>, seq_len: usize, channels: usize, targets: Targets) -> Self {
        Self { inputs: inputs.into(), seq_len, channels, targets, lengths: None, vocab: None }
    }

    /// Whether each sample is a pair of token documents (two token channels, two lengths).
    pub fn is_pairs(&self) -> bool {
        self.vocab.is_some() && self.channels == 2
    }

    /// The lengths of samples `idx` (both documents' for pairs, in sample order).
    fn pick_lengths(&self, ls: &[usize], idx: &[usize]) -> Vec<usize> {
        let per = if self.is_pairs() { 2 } else { 1 };
        idx.iter().flat_map(|&i| ls[i * per..(i + 1) * per].iter().copied()).collect()
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        match &self.targets {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, dim } => values.len() / dim,
            Targets::Tokens { ids, .. } => ids.len() / self.seq_len,
        }
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Target kind.
    pub fn target_kind(&self) -> TargetKind {
        match &self.targets {
            Targets::Classes { n_classes, .. } => TargetKind::Classes(*n_classes),
            Targets::Values { dim, .. } => TargetKind::Values(*dim),
            Targets::Tokens { vocab, .. } => TargetKind::Tokens(*vocab),
        }
    }

    /// The sequences at `idx`, as a new split (owned f32, also when this one is mapped).
    pub fn subset(&self, idx: &[usize]) -> SeqData {
        let row = self.seq_len * self.channels;
        let mut inputs = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            self.inputs.extend_into(i * row, row, &mut inputs);
        }
        let targets = match &self.targets {
            Targets::Classes { labels, n_classes } => {
                Targets::Classes { labels: idx.iter().map(|&i| labels[i]).collect(), n_classes: *n_classes }
            }
            Targets::Values { values, dim } => Targets::Values {
                values: idx.iter().flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied()).collect(),
                dim: *dim,
            },
            Targets::Tokens { ids, vocab } => Targets::Tokens {
                ids: idx.iter().flat_map(|&i| ids[i * self.seq_len..(i + 1) * self.seq_len].iter().copied()).collect(),
                vocab: *vocab,
            },
        };
        let lengths = self.lengths.as_ref().map(|ls| self.pick_lengths(ls, idx));
        SeqData {
            inputs: inputs.into(),
            seq_len: self.seq_len,
            channels: self.channels,
            targets,
            lengths,
            vocab: self.vocab,
        }
    }

    /// Builds the batch of sequences `idx` on `device`.
    pub fn batch(&self, idx: &[usize], device: &Device) -> Batch {
        self.batch_with(idx, device, |_, _| {})
    }

    /// Builds the batch of sequences `idx` on `device`, after `augment` changed its inputs
    /// (row-major [B, L, D]) and class labels ([B]; empty for other targets) on the host.
    pub fn batch_with(&self, idx: &[usize], device: &Device, augment: impl FnOnce(&mut [f32], &mut [u32])) -> Batch {
        let (l, d) = (self.seq_len, self.channels);
        let row = l * d;
        let mut x = Vec::with_capacity(idx.len() * row);
        for &i in idx {
            self.inputs.extend_into(i * row, row, &mut x);
        }
        let mut classes: Vec<u32> = match &self.targets {
            Targets::Classes { labels, .. } => idx.iter().map(|&i| labels[i]).collect(),
            _ => Vec::new(),
        };
        augment(&mut x, &mut classes);
        let x = Tensor::<3>::from_data(TensorData::new(x, [idx.len(), l, d]), device);
        let y = match &self.targets {
            Targets::Classes { .. } => {
                let y: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
                BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), device))
            }
            Targets::Values { values, dim } => {
                let y: Vec<f32> = idx.iter().flat_map(|&i| values[i * dim..(i + 1) * dim].iter().copied()).collect();
                BatchTargets::Values(Tensor::<2>::from_data(TensorData::new(y, [idx.len(), *dim]), device))
            }
            Targets::Tokens { ids, .. } => {
                let id = |t: u32| if t == IGNORE_INDEX { -1 } else { t as i64 };
                let y: Vec<i64> = idx.iter().flat_map(|&i| ids[i * l..(i + 1) * l].iter().map(|&t| id(t))).collect();
                BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len() * l]), device))
            }
        };
        let lengths = self.lengths.as_ref().map(|ls| self.pick_lengths(ls, idx));
        Batch { x, y, lengths }
    }
}

/// Splits `0..n` into (train, val) index lists with a seeded shuffle; `val_fraction` of them to val.
pub fn split_indices(n: usize, val_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let n_val = ((n as f64) * val_fraction).round() as usize;
    let val = idx.split_off(n - n_val.min(n));
    (idx, val)
}

/// Checks a split fraction.
pub fn check_fraction(name: &str, f: f64) -> Result<(), DataError> {
    if (0.0..1.0).contains(&f) {
        Ok(())
    } else {
        Err(DataError::Invalid(format!("`{name}` must be in [0, 1), got {f}")))
    }
}

/// The folder of a dataset: `data.path`, else `$DATA_PATH/<sub>`, else `./data/<sub>`.
pub fn data_dir(path: &Option<PathBuf>, sub: &str) -> PathBuf {
    match path {
        Some(p) => p.clone(),
        None => std::env::var_os("DATA_PATH")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new("data").to_path_buf())
            .join(sub),
    }
}
