//! `fit --init-from CKPT [--partial]`: a new run that starts from another run's weights
//! (fine-tuning, D4L's `checkpoint_experiment_id`/`checkpoint_name`), unlike `--resume`, which
//! continues the same run. Weights are matched by parameter path; optimizer state, schedules
//! and counters start fresh.
//!
//! Without `--partial` the checkpoint must hold exactly the model's parameters; with it, the
//! matching subset is loaded and the rest reported. A parameter present in both with another
//! shape is always an error naming the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::store::burn_pack::{Reader, Writer};
use burn::tensor::Bytes;

use super::checkpoint::Checkpoint;

/// What `--init-from` loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// The checkpoint file read.
    pub path: PathBuf,
    /// Parameters loaded.
    pub loaded: Vec<String>,
    /// Parameters of the model the checkpoint lacks (kept at their initialization).
    pub kept: Vec<String>,
    /// Keys of the checkpoint the model lacks (skipped).
    pub skipped: Vec<String>,
}

impl std::fmt::Display for InitReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "init from {}: {} parameters loaded", self.path.display(), self.loaded.len())?;
        if !self.kept.is_empty() {
            write!(f, "; kept at initialization (not in the checkpoint): {}", self.kept.join(", "))?;
        }
        if !self.skipped.is_empty() {
            write!(f, "; skipped (not in this model): {}", self.skipped.join(", "))?;
        }
        Ok(())
    }
}

/// The checkpoint `path` names: a `.bpk` file, or a run folder (its `best.bpk`, else
/// `last.bpk`).
pub fn checkpoint_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let dir = path.join("checkpoints");
    match ["best", "last"].iter().map(|n| dir.join(format!("{n}.bpk"))).find(|p| p.is_file()) {
        Some(p) => Ok(p),
        None => bail!("{}: a run folder without checkpoints/best.bpk or last.bpk", path.display()),
    }
}

/// Parameter shapes of a module by path.
fn shapes<M: Module>(module: &M) -> BTreeMap<String, Vec<usize>> {
    super::optim::params_by_path(module).into_iter().map(|(path, _, shape)| (path, shape)).collect()
}

/// Loads the weights of checkpoint `path` (a file or a run folder) into `model` by parameter
/// path; with `partial`, only the keys both have.
pub fn init_from<M: Module>(model: M, path: &Path, partial: bool) -> Result<(M, InitReport)> {
    let file = checkpoint_file(path)?;
    let ck = Checkpoint::load(&file)?;
    let bad = |e: burn::store::burn_pack::Error| anyhow::anyhow!("{}: model section: {e}", file.display());
    let tensors = Reader::from_bytes(Bytes::from_bytes_vec(ck.model)).map_err(bad)?.into_tensors().map_err(bad)?;
    let ours = shapes(&model);
    let mut report = InitReport { path: file.clone(), ..Default::default() };
    let mut keep = Vec::new();
    for t in tensors {
        match ours.get(&t.name) {
            None => report.skipped.push(t.name.clone()),
            Some(shape) if shape.as_slice() != t.shape.as_slice() => bail!(
                "{}: parameter `{}` has shape {:?} in the checkpoint and {shape:?} in this model",
                file.display(),
                t.name,
                t.shape.as_slice()
            ),
            Some(_) => {
                report.loaded.push(t.name.clone());
                keep.push(t);
            }
        }
    }
    report.kept = ours.keys().filter(|k| !report.loaded.contains(k)).cloned().collect();
    if !partial && (!report.kept.is_empty() || !report.skipped.is_empty()) {
        bail!("{report}; the checkpoint does not fit this model (add --partial to load the matching subset)");
    }
    let bytes = Writer::new(keep).into_bytes().map_err(bad)?;
    let record = ModuleRecord::from_bytes(bytes)
        .map_err(|e| anyhow::anyhow!("{}: model section: {e}", file.display()))?
        .allow_partial(partial);
    let model = model.try_load_record(record).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    Ok((model, report))
}
