//! Prepared data: `wavessm data prepare` writes a dataset's splits once as shards under
//! `<data dir>/prepared/<dataset>-<config hash>/{train,val,test}.wsd`, and training maps them
//! instead of parsing the raw files (`data.prepared: auto|always|never`).
//!
//! A folder per config hash lets several configs of one dataset (SC10 and SC35, raw and MFCC)
//! stay prepared side by side. Every shard header repeats the config it was made from and a
//! fingerprint of the raw files, so a shard that no longer matches (the config changed, a raw
//! file was added, removed or modified, the preparation code changed) is reported as stale
//! instead of silently used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::inputs::Encoding;
use super::shard::{self, Provenance, ShardHeader};
use super::{DataConfig, DataError, DataModule, data_dir};
use crate::config::{ConfigError, Named, from_value_at};

/// Bumped whenever a loader changes what it produces, so older shards become stale.
const PIPELINE_VERSION: u32 = 1;
const SPLITS: [&str; 3] = ["train", "val", "test"];

/// Whether training reads prepared shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PreparedMode {
    /// Prepared shards when up to date ones exist, else the raw files.
    #[default]
    Auto,
    /// Prepared shards or an error.
    Always,
    /// Always the raw files.
    Never,
}

/// The `data` section: a registered dataset plus how its prepared shards are used.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// The dataset and its options.
    pub dataset: DataConfig,
    /// `data.prepared`.
    pub prepared: PreparedMode,
    /// `data.prepared_dir`: root of the prepared folders (default `<data dir>/prepared`).
    pub prepared_dir: Option<PathBuf>,
}

/// Where a loaded dataset came from (printed by `fit`, `test`, `bench data`).
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Mapped shards from this folder, inputs stored with this encoding.
    Prepared(PathBuf, Encoding),
    /// Parsed from the raw files (or generated); the reason no shard was used.
    Raw(String),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Prepared(dir, enc) => write!(f, "prepared shards in {} ({enc}, memory-mapped)", dir.display()),
            Source::Raw(why) => write!(f, "raw files ({why})"),
        }
    }
}

/// What `prepare` wrote.
#[derive(Debug, Clone)]
pub struct PrepareReport {
    /// The prepared folder.
    pub folder: PathBuf,
    /// The shard headers, in split order.
    pub headers: Vec<ShardHeader>,
}

/// The folder a dataset reads its files from; None for generated datasets.
fn source_dir(d: &DataConfig) -> Option<PathBuf> {
    Some(match d {
        DataConfig::Smnist(c) | DataConfig::Psmnist(c) => data_dir(&c.path, "mnist"),
        DataConfig::Scifar(c) => data_dir(&c.path, "cifar"),
        DataConfig::Listops(c) => data_dir(&c.path, "listops"),
        DataConfig::Pathfinder(c) => match &c.path {
            Some(p) => p.clone(),
            None => data_dir(&None, "pathfinder").join(format!("pathfinder{}", c.resolution)),
        },
        DataConfig::SpeechCommands(c) => data_dir(&c.path, "speech_commands"),
        DataConfig::Ucr(c) => data_dir(&c.path, "ucr").join(&c.name),
        DataConfig::TextFolder(c) => data_dir(&c.path, "text"),
        DataConfig::Imdb(c) => data_dir(&c.path, "aclImdb"),
        DataConfig::Aan(c) => data_dir(&c.path, "aan"),
        DataConfig::Wikitext103(c) => data_dir(&c.path, "wt103"),
        DataConfig::Npy(c) => data_dir(&c.path, "npy"),
        DataConfig::Gw(c) => data_dir(&c.path, "gw"),
        DataConfig::GwStrain(c) => data_dir(&c.path, "gw_strain"),
        // Generated from their options (digits are embedded): nothing on disk to fingerprint.
        _ => return None,
    })
}

/// FNV-1a, 64 bit: a stable hash (std's is randomized per process).
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Names, sizes and modification times of every file under `dir` except `skip` (the prepared
/// folders), hashed: any added, removed, renamed or rewritten raw file changes it.
fn fingerprint(dir: &Path, skip: &Path) -> String {
    let skip = skip.canonicalize().ok();
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if skip.as_deref().is_some_and(|s| d.canonicalize().ok().as_deref() == Some(s)) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let Ok(md) = e.metadata() else { continue };
            if md.is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                let mtime = md.modified().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                entries.push(format!("{rel}\0{}\0{}", md.len(), mtime.map(|t| t.as_nanos()).unwrap_or(0)));
            }
        }
    }
    entries.sort();
    let h = entries.iter().fold(FNV_OFFSET, |h, e| fnv(e.as_bytes(), fnv(b"\n", h)));
    format!("{} files {h:016x}", entries.len())
}

/// `key: a → b` for each top-level key that differs.
fn config_diff(old: &serde_json::Value, new: &serde_json::Value) -> String {
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else { return format!("{old} → {new}") };
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let null = serde_json::Value::Null;
    keys.into_iter()
        .filter(|k| o.get(*k) != n.get(*k))
        .map(|k| format!("{k}: {} → {}", o.get(k).unwrap_or(&null), n.get(k).unwrap_or(&null)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Header fields a dataset's config fixes: (field, value, the config key that sets it).
fn fixed_fields(d: &DataConfig) -> Vec<(&'static str, usize, &'static str)> {
    use super::speech::{Features, WordSet};
    const NAME: &str = "data._name_";
    let classes = |n: usize, key| ("targets_kind.n_classes", n, key);
    let seq = |n: usize, key| ("seq_len", n, key);
    let channels = |n: usize, key| ("channels", n, key);
    match d {
        DataConfig::Smnist(c) | DataConfig::Psmnist(c) => {
            let permuted = c.permute.unwrap_or(matches!(d, DataConfig::Psmnist(_)));
            let mut f = vec![channels(1, NAME), classes(10, NAME)];
            if permuted {
                f.push(seq(784, "data.permute"));
            }
            f
        }
        DataConfig::Scifar(c) => {
            vec![seq(1024, NAME), channels(if c.grayscale { 1 } else { 3 }, "data.grayscale"), classes(10, NAME)]
        }
        DataConfig::Listops(c) => vec![
            seq(c.max_len, "data.max_len"),
            channels(1, NAME),
            classes(10, NAME),
            ("vocab", super::listops::VOCAB_SIZE, NAME),
        ],
        DataConfig::Aan(c) => vec![
            seq(c.max_len, "data.max_len"),
            channels(2, NAME),
            classes(2, NAME),
            ("vocab", super::text_folder::BYTE_VOCAB, NAME),
        ],
        DataConfig::TextFolder(c) | DataConfig::Imdb(c) => {
            let mut f = vec![seq(c.max_len, "data.max_len"), channels(1, NAME)];
            if c.tokenizer == super::text_folder::Tokenizer::Byte {
                f.push(("vocab", super::text_folder::BYTE_VOCAB, "data.tokenizer"));
            }
            f
        }
        DataConfig::Wikitext103(c) => vec![seq(c.seq_len, "data.seq_len"), channels(1, NAME)],
        DataConfig::Pathfinder(c) => {
            vec![seq(c.resolution.saturating_mul(c.resolution), "data.resolution"), channels(1, NAME), classes(2, NAME)]
        }
        DataConfig::SpeechCommands(c) => {
            let mut f = match c.features {
                Features::Raw => {
                    vec![seq(c.seq_len.div_ceil(c.resolution.max(1)), "data.seq_len"), channels(1, "data.features")]
                }
                Features::Mfcc => {
                    let m = super::mfcc::Mfcc::new(super::mfcc::MfccConfig::default());
                    vec![seq(m.frames(c.seq_len), "data.seq_len"), channels(m.config().n_mfcc, "data.features")]
                }
            };
            match c.classes {
                WordSet::Sc10 => f.push(classes(10, "data.classes")),
                WordSet::Sc35 => f.push(classes(35, "data.classes")),
                WordSet::All => {}
            }
            f
        }
        _ => Vec::new(),
    }
}

/// A header field by the name [`fixed_fields`] uses (0 where the header has none).
fn header_field(h: &ShardHeader, field: &str) -> usize {
    match field {
        "seq_len" => h.seq_len,
        "channels" => h.channels,
        "vocab" => h.vocab.unwrap_or(0),
        _ => match h.targets_kind {
            super::shard::TargetKindMeta::Classes { n_classes } => n_classes,
            _ => 0,
        },
    }
}

/// Whether a shard's header agrees with the split it is read as, the config's dataset and
/// sizes, and the first split's shapes (`first`; the splits feed one model).
fn check_agrees(
    h: &ShardHeader,
    split: &str,
    want: &Provenance,
    d: &DataConfig,
    first: Option<&ShardHeader>,
) -> Result<(), String> {
    if h.split != split {
        return Err(format!("header field `split` is {:?}, the file is the {split} split", h.split));
    }
    if h.provenance.dataset != want.dataset {
        return Err(format!(
            "header field `dataset` is {:?}, the config's is {:?}",
            h.provenance.dataset, want.dataset
        ));
    }
    for (field, value, key) in fixed_fields(d) {
        let got = header_field(h, field);
        if got != value {
            return Err(format!("header field `{field}` is {got}, `{key}` needs {value}"));
        }
    }
    if let Some(f) = first {
        let same = [
            ("seq_len", f.seq_len == h.seq_len),
            ("channels", f.channels == h.channels),
            ("vocab", f.vocab == h.vocab),
            ("targets_kind", f.targets_kind == h.targets_kind),
        ];
        if let Some((field, _)) = same.iter().find(|(_, ok)| !ok) {
            return Err(format!("header field `{field}` differs from the {} split's", f.split));
        }
    }
    Ok(())
}

impl DataSpec {
    /// Parses `data`: `prepared` and `prepared_dir` here, every other key by the dataset registry.
    pub fn from_named(named: &Named, path: &str) -> Result<Self, ConfigError> {
        let mut rest = named.clone();
        let mut take = |key: &str| rest.options.remove(key).unwrap_or(Value::Null);
        let (prepared, dir) = (take("prepared"), take("prepared_dir"));
        let at = |key: &str| crate::config::join_path(path, key);
        let prepared =
            if prepared.is_null() { PreparedMode::default() } else { from_value_at(prepared, &at("prepared"))? };
        let prepared_dir = from_value_at(dir, &at("prepared_dir"))?;
        Ok(Self { dataset: DataConfig::from_named(&rest, path)?, prepared, prepared_dir })
    }

    /// Back to a [`Named`] with every default filled in.
    pub fn to_named(&self) -> Named {
        let mut n = self.dataset.to_named();
        n.options.insert("prepared".into(), serde_yaml::to_value(self.prepared).expect("enum serializes"));
        n.options.insert("prepared_dir".into(), serde_yaml::to_value(&self.prepared_dir).expect("path serializes"));
        n
    }

    /// The dataset's config as stored in shard headers: every option but `path` (moving the
    /// data folder keeps its shards valid).
    fn config_json(&self) -> serde_json::Value {
        let mut n = self.dataset.to_named();
        n.options.remove("path");
        serde_json::to_value(&n).expect("config converts to JSON")
    }

    /// Root of this dataset's prepared folders.
    pub fn prepared_root(&self) -> Option<PathBuf> {
        self.prepared_dir.clone().or_else(|| source_dir(&self.dataset).map(|d| d.join("prepared")))
    }

    /// What a shard prepared now from this config would record.
    fn provenance(&self) -> Provenance {
        let config = self.config_json();
        let text = format!("{}|{}|{config}", shard::FORMAT_VERSION, PIPELINE_VERSION);
        let sources = match (source_dir(&self.dataset), self.prepared_root()) {
            (Some(src), Some(root)) => fingerprint(&src, &root),
            _ => "generated".into(),
        };
        Provenance {
            dataset: self.dataset.name().into(),
            config,
            config_hash: format!("{:016x}", fnv(text.as_bytes(), FNV_OFFSET)),
            sources,
        }
    }

    /// The prepared folder of this exact config.
    pub fn prepared_folder(&self) -> Option<PathBuf> {
        let p = self.provenance();
        self.prepared_root().map(|r| r.join(format!("{}-{}", p.dataset, p.config_hash)))
    }

    /// Writes the three splits as prepared shards (atomically, one file per split).
    pub fn prepare(&self) -> Result<PrepareReport, DataError> {
        let name = self.dataset.name();
        let Some(folder) = self.prepared_folder() else {
            return Err(DataError::Invalid(format!(
                "dataset `{name}` is generated from its options and has no data folder to prepare into; \
                 set `data.prepared_dir`"
            )));
        };
        let provenance = self.provenance();
        std::fs::create_dir_all(&folder).map_err(|source| DataError::Io { path: folder.clone(), source })?;
        let headers = match &self.dataset {
            DataConfig::SpeechCommands(c) => super::speech::prepare(c, &folder, &provenance)?,
            other => {
                let dm = other.load()?;
                let mut headers = Vec::new();
                for (split, data) in SPLITS.iter().zip([&dm.train, &dm.val, &dm.test]) {
                    let encoding = match data.vocab {
                        Some(v) => Encoding::for_vocab(v),
                        None => data.inputs.as_owned().map(Encoding::detect).unwrap_or(Encoding::F32),
                    };
                    let path = shard::split_path(&folder, split);
                    headers.push(shard::write_split(&path, &provenance, split, data, encoding)?);
                }
                headers
            }
        };
        Ok(PrepareReport { folder, headers })
    }

    /// Loads the splits as `data.prepared` says, and where they came from.
    pub fn load(&self) -> Result<(DataModule, Source), DataError> {
        if self.prepared == PreparedMode::Never {
            return Ok((self.dataset.load()?, Source::Raw("data.prepared=never".into())));
        }
        match self.lookup()? {
            Ok((dm, source)) => Ok((dm, source)),
            Err(why) if self.prepared == PreparedMode::Always => Err(DataError::Invalid(format!(
                "`data.prepared=always` but {why}; run `wavessm data prepare` with the same data options"
            ))),
            Err(why) => Ok((self.dataset.load()?, Source::Raw(why))),
        }
    }

    /// Up-to-date shards of this config, or why there are none. A shard that exists but is
    /// damaged is an error, not a reason to fall back silently.
    fn lookup(&self) -> Result<Result<(DataModule, Source), String>, DataError> {
        let name = self.dataset.name();
        let (Some(root), Some(folder)) = (self.prepared_root(), self.prepared_folder()) else {
            return Ok(Err(format!("`{name}` is generated; no prepared folder")));
        };
        let want = self.provenance();
        if !shard::split_path(&folder, "train").is_file() {
            return Ok(Err(self.why_missing(&root, &want)));
        }
        let mut parts = Vec::new();
        for split in SPLITS {
            let path = shard::split_path(&folder, split);
            if !path.is_file() {
                return Ok(Err(format!("{} is missing (an interrupted prepare?)", path.display())));
            }
            let (h, data) = shard::open(&path)?;
            if h.provenance.config != want.config {
                return Ok(Err(format!(
                    "{} was made from another config ({})",
                    path.display(),
                    config_diff(&h.provenance.config, &want.config)
                )));
            }
            if h.provenance.sources != want.sources {
                return Ok(Err(format!(
                    "{} is stale: the raw files changed since it was prepared ({} then, {} now)",
                    path.display(),
                    h.provenance.sources,
                    want.sources
                )));
            }
            check_agrees(&h, split, &want, &self.dataset, parts.first().map(|(h0, _)| h0)).map_err(|msg| {
                DataError::Corrupt {
                    path: path.clone(),
                    msg: format!("prepared shard disagrees with the config: {msg}"),
                }
            })?;
            parts.push((h, data));
        }
        let encoding = parts[0].0.encoding;
        let [train, val, test]: [_; 3] = parts.into_iter().map(|(_, d)| d).collect::<Vec<_>>().try_into().expect("3");
        Ok(Ok((DataModule { train, val, test }, Source::Prepared(folder, encoding))))
    }

    /// Why no folder matches: none prepared, or prepared from other configs (named by diff).
    fn why_missing(&self, root: &Path, want: &Provenance) -> String {
        let prefix = format!("{}-", want.dataset);
        let others: Vec<String> = std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .filter_map(|e| shard::read_header(&shard::split_path(&e.path(), "train")).ok())
            .map(|h| match config_diff(&h.provenance.config, &want.config) {
                d if d.is_empty() => "same options, an older preparation version".to_string(),
                d => d,
            })
            .collect();
        if others.is_empty() {
            format!("no prepared shards under {}", root.display())
        } else {
            format!("the prepared shards under {} were made from other configs ({})", root.display(), others.join("; "))
        }
    }
}
