//! Checkpoint files (`*.bpk`): one file holding the model and optimizer as burnpack sections
//! plus the trainer state, each section checksummed, written atomically (temp file, fsync,
//! rename, fsync of the folder) so a crash never leaves a broken `last.bpk`.
//!
//! Layout: `WAVESSM\x01`, u32 LE header length, JSON header, then the sections in order.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scheduler::ScheduleState;

const MAGIC: &[u8; 8] = b"WAVESSM\x01";

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
        let mut out = Vec::with_capacity(12 + header.len() + self.model.len() + self.optimizer.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.model);
        out.extend_from_slice(&self.optimizer);
        out
    }

    /// Parses bytes read from `path` (named in errors).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let bad = |msg: String| CheckpointError::Corrupt { path: path.to_path_buf(), msg };
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("missing the `WAVESSM` signature".into()));
        }
        let hlen = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let header: Header = bytes
            .get(12..12 + hlen)
            .ok_or_else(|| bad(format!("truncated header ({} of {hlen} bytes)", bytes.len() - 12)))
            .and_then(|h| serde_json::from_slice(h).map_err(|e| bad(format!("header: {e}"))))?;
        let mut pos = 12 + hlen;
        let mut parts = Vec::new();
        for s in &header.sections {
            let end = pos + s.len as usize;
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

    /// Reads and verifies a checkpoint file.
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
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
                schedules: vec![ScheduleState::default()],
                metrics: [("val/accuracy".to_string(), 0.9)].into(),
                config: "seed: 0\n".into(),
                version: "test".into(),
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
}
