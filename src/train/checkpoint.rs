//! Checkpoint files (`*.bpk`): one file holding the model and optimizer as burnpack sections
//! plus the trainer state, each section checksummed, written atomically (temp file, fsync,
//! rename, fsync of the folder) so a crash never leaves a broken `last.bpk`.
//!
//! Layout: `WAVESSM\x02`, u32 LE header length, u32 LE CRC-32 of the header, JSON header, then
//! the sections in order. The header's checksum covers the trainer state (epoch, step, best,
//! the embedded config), whose values are also range-checked on load.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scheduler::ScheduleState;

const MAGIC: &[u8; 8] = b"WAVESSM\x02";
/// The first format, whose header had no checksum.
const MAGIC_V1: &[u8; 8] = b"WAVESSM\x01";
/// Largest header accepted (the embedded config is a few kB).
const MAX_HEADER: usize = 64 << 20;

/// Everything besides tensors that a resumed run needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainerState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// Best monitored value so far and its epoch.
    pub best: Option<(f64, usize)>,
    /// Learning-rate schedule states.
    pub schedules: Vec<ScheduleState>,
    /// Validation metrics of the epoch that wrote this checkpoint.
    pub metrics: std::collections::BTreeMap<String, f64>,
    /// The resolved config (YAML), so a checkpoint is self-contained.
    pub config: String,
    /// wavessm version that wrote it.
    pub version: String,
    /// Batches of epoch `epoch` already trained (0 at an epoch boundary; a mid-epoch checkpoint
    /// resumes after them).
    #[serde(default)]
    pub batch: usize,
    /// Factor on the learning rates left by `on_nonfinite: rollback`.
    #[serde(default = "one")]
    pub lr_scale: f64,
    /// Early stopping ended the run.
    #[serde(default)]
    pub stopped_early: bool,
    /// Each callback's own state, by name.
    #[serde(default)]
    pub callbacks: std::collections::BTreeMap<String, serde_json::Value>,
    /// The `checkpoint.save_top_k` best (monitored value, epoch, step of a mid-epoch
    /// validation), best first.
    #[serde(default, deserialize_with = "top_k_entries")]
    pub top_k: Vec<TopK>,
    /// Step of the validation that set `best` (null in checkpoints that predate it).
    #[serde(default)]
    pub best_step: Option<usize>,
    /// Step of the last mid-epoch validation (`trainer.val_check_interval`) whose metrics rows
    /// this checkpoint includes; a resume keeps those rows.
    #[serde(default)]
    pub mid_val_step: Option<usize>,
}

/// A top-k entry: monitored value, epoch (0-based), and the step of a mid-epoch validation.
pub type TopK = (f64, usize, Option<usize>);

/// Reads top-k entries as `[value, epoch, step]`, or `[value, epoch]` as older checkpoints
/// wrote them.
fn top_k_entries<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TopK>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Now(f64, usize, Option<usize>),
        Old(f64, usize),
    }
    let entries = Vec::<Entry>::deserialize(d)?;
    Ok(entries
        .into_iter()
        .map(|e| match e {
            Entry::Now(v, e, s) => (v, e, s),
            Entry::Old(v, e) => (v, e, None),
        })
        .collect())
}

fn one() -> f64 {
    1.0
}

impl TrainerState {
    /// The state of a run that has not trained yet.
    pub fn fresh(schedules: Vec<ScheduleState>, config: String) -> Self {
        Self {
            epoch: 0,
            step: 0,
            best: None,
            schedules,
            metrics: Default::default(),
            config,
            version: env!("CARGO_PKG_VERSION").into(),
            batch: 0,
            lr_scale: 1.0,
            stopped_early: false,
            callbacks: Default::default(),
            top_k: Vec::new(),
            best_step: None,
            mid_val_step: None,
        }
    }

    /// Checks values no training could have produced (an edited or damaged header).
    pub fn check(&self) -> Result<(), String> {
        const MAX: usize = 1 << 40;
        if self.epoch > MAX || self.step > MAX || self.batch > MAX {
            return Err(format!("epoch {}, step {}, batch {} out of range", self.epoch, self.step, self.batch));
        }
        if self.step < self.epoch {
            return Err(format!("{} steps cannot complete {} epochs", self.step, self.epoch));
        }
        // A mid-epoch validation's best is of the epoch still running.
        let running = usize::from(self.batch > 0);
        if let Some((v, e)) = self.best
            && (!v.is_finite() || e >= self.epoch + running)
        {
            return Err(format!("best {v} at epoch {e} is impossible after {} epochs", self.epoch));
        }
        if let Some((k, v)) = self.metrics.iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("metric {k} = {v}"));
        }
        if !(self.lr_scale > 0.0 && self.lr_scale <= 1.0) {
            return Err(format!("lr_scale {} out of (0, 1]", self.lr_scale));
        }
        if self.schedules.iter().any(|s| !(s.factor > 0.0 && s.factor.is_finite())) {
            return Err("a schedule factor is not a positive finite number".into());
        }
        if serde_yaml::from_str::<serde_yaml::Value>(&self.config).is_err() {
            return Err("the embedded config is not YAML".into());
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    state: TrainerState,
    sections: Vec<Section>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Section {
    name: String,
    len: u64,
    crc32: u32,
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Trainer state.
    pub state: TrainerState,
    /// Model parameters (burnpack bytes).
    pub model: Vec<u8>,
    /// Optimizer state (burnpack bytes).
    pub optimizer: Vec<u8>,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O failure.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Not a wavessm checkpoint, or damaged.
    #[error("{path}: not a valid wavessm checkpoint: {msg}")]
    Corrupt { path: PathBuf, msg: String },
}

impl From<crate::io::FileError> for CheckpointError {
    fn from(e: crate::io::FileError) -> Self {
        CheckpointError::Io { path: e.path, source: e.source }
    }
}

fn crc(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

impl Checkpoint {
    /// Serializes to bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let sections = [("model", &self.model), ("optimizer", &self.optimizer)]
            .iter()
            .map(|(n, b)| Section { name: n.to_string(), len: b.len() as u64, crc32: crc(b) })
            .collect();
        let header = serde_json::to_vec(&Header { state: self.state.clone(), sections }).expect("header serializes");
        let mut out = Vec::with_capacity(16 + header.len() + self.model.len() + self.optimizer.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc(&header).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.model);
        out.extend_from_slice(&self.optimizer);
        out
    }

    /// Parses bytes read from `path` (named in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let bad = |msg: String| CheckpointError::Corrupt { path: path.to_path_buf(), msg };
        if bytes.len() >= 8 && &bytes[..8] == MAGIC_V1 {
            return Err(bad("written by an older wavessm (format 1, whose header has no checksum); retrain".into()));
        }
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("missing the `WAVESSM` signature".into()));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let hcrc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        if hlen > MAX_HEADER {
            return Err(bad(format!("header length {hlen} exceeds {MAX_HEADER} bytes")));
        }
        let raw = bytes
            .get(16..16 + hlen)
            .ok_or_else(|| bad(format!("truncated header ({} of {hlen} bytes)", bytes.len() - 16)))?;
        if crc(raw) != hcrc {
            return Err(bad("the header fails its checksum (edited or damaged)".into()));
        }
        let header: Header = serde_json::from_slice(raw).map_err(|e| bad(format!("header: {e}")))?;
        header.state.check().map_err(|e| bad(format!("header: {e}")))?;
        let mut pos = 16 + hlen;
        let mut parts = Vec::new();
        for s in &header.sections {
            let end = usize::try_from(s.len).ok().and_then(|n| pos.checked_add(n)).unwrap_or(usize::MAX);
            let b = bytes.get(pos..end).ok_or_else(|| {
                bad(format!("section `{}` truncated: {} of {} bytes", s.name, bytes.len().saturating_sub(pos), s.len))
            })?;
            if crc(b) != s.crc32 {
                return Err(bad(format!("section `{}` fails its checksum", s.name)));
            }
            parts.push((s.name.as_str(), b.to_vec()));
            pos = end;
        }
        if pos != bytes.len() {
            return Err(bad(format!("{} unexpected trailing bytes", bytes.len() - pos)));
        }
        let mut take = |name: &str| {
            parts
                .iter()
                .position(|(n, _)| *n == name)
                .map(|i| parts.swap_remove(i).1)
                .ok_or_else(|| bad(format!("no `{name}` section")))
        };
        let model = take("model")?;
        let optimizer = take("optimizer")?;
        Ok(Self { state: header.state, model, optimizer })
    }

    /// Reads and verifies a checkpoint file (a regular file only: `/dev/zero` is refused).
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
        let meta = std::fs::metadata(path).map_err(io)?;
        if !meta.is_file() {
            return Err(CheckpointError::Corrupt { path: path.to_path_buf(), msg: "not a regular file".into() });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::from_bytes(&bytes, path)
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        crate::io::write_atomic(path, |w| w.write_all(&self.to_bytes())).map_err(CheckpointError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            state: TrainerState {
                epoch: 2,
                step: 40,
                best: Some((0.9, 1)),
                metrics: [("val/accuracy".to_string(), 0.9)].into(),
                ..TrainerState::fresh(vec![ScheduleState::default()], "seed: 0\n".into())
            },
            model: vec![1, 2, 3, 4],
            optimizer: vec![9; 10],
        }
    }

    #[test]
    fn round_trip_and_corruption_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("last.bpk");
        sample().save(&p).unwrap();
        let back = Checkpoint::load(&p).unwrap();
        assert_eq!(back.state, sample().state);
        assert_eq!(back.model, vec![1, 2, 3, 4]);
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        let err = Checkpoint::from_bytes(&bytes, &p).unwrap_err().to_string();
        assert!(err.contains("last.bpk") && err.contains("checksum"), "{err}");
        let err = Checkpoint::from_bytes(&bytes[..n - 3], &p).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = Checkpoint::from_bytes(b"hello world!", &p).unwrap_err().to_string();
        assert!(err.contains("signature"), "{err}");
    }

    #[test]
    fn edited_headers_and_impossible_states_are_refused() {
        let p = Path::new("last.bpk");
        let bytes = sample().to_bytes();
        // An edit inside the header's JSON (epoch 2 -> 9) breaks its checksum.
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let at = text.find("\"epoch\":2").expect("epoch in the header") + 8;
        let mut edited = bytes.clone();
        edited[at] = b'9';
        let err = Checkpoint::from_bytes(&edited, p).unwrap_err().to_string();
        assert!(err.contains("header fails its checksum"), "{err}");
        // A consistent checksum over an impossible state is still refused.
        for bad in [
            TrainerState { best: Some((f64::NAN, 0)), ..sample().state },
            TrainerState { best: Some((0.5, 7)), ..sample().state },
            TrainerState { step: 1, ..sample().state },
            TrainerState { lr_scale: 0.0, ..sample().state },
        ] {
            let ck = Checkpoint { state: bad, ..sample() };
            let err = Checkpoint::from_bytes(&ck.to_bytes(), p).unwrap_err().to_string();
            assert!(err.contains("header:"), "{err}");
        }
        let mut huge = bytes.clone();
        huge[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Checkpoint::from_bytes(&huge, p).unwrap_err().to_string().contains("exceeds"));
        let mut v1 = bytes;
        v1[7] = 1;
        assert!(Checkpoint::from_bytes(&v1, p).unwrap_err().to_string().contains("older wavessm"));
        assert!(Checkpoint::load(Path::new("/dev/zero")).unwrap_err().to_string().contains("not a regular file"));
    }

    #[test]
    fn mid_epoch_bests_and_older_top_k_entries_load() {
        let p = Path::new("last.bpk");
        // A validation within epoch 3 (index 2, 5 batches in) set the best.
        let mid = TrainerState { best: Some((0.95, 2)), batch: 5, best_step: Some(45), step: 45, ..sample().state };
        let ck = Checkpoint { state: mid.clone(), ..sample() };
        assert_eq!(Checkpoint::from_bytes(&ck.to_bytes(), p).unwrap().state, mid);
        // At the epoch boundary the same best would be from the future.
        let ck = Checkpoint { state: TrainerState { batch: 0, ..mid }, ..sample() };
        assert!(Checkpoint::from_bytes(&ck.to_bytes(), p).is_err());
        // Top-k entries were [value, epoch] before they had a step.
        let old: TrainerState = serde_json::from_value(serde_json::json!({
            "epoch": 2, "step": 40, "best": [0.9, 1], "schedules": [], "metrics": {}, "config": "seed: 0\n",
            "version": "0.1.0", "top_k": [[0.9, 1], [0.8, 0]]
        }))
        .unwrap();
        assert_eq!(old.top_k, [(0.9, 1, None), (0.8, 0, None)]);
        assert_eq!((old.best_step, old.mid_val_step), (None, None));
    }
}
