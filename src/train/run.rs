//! A run on disk: `<save_dir>/<name>/version_N/` with `config.yaml`, `metrics.csv` and
//! `checkpoints/{last,best}.bpk`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `…/version_N`.
    pub root: PathBuf,
    /// The held lock (see [`RunDir::lock`]); released when the last clone is dropped or the
    /// process dies.
    lock: Option<std::sync::Arc<std::fs::File>>,
}

impl RunDir {
    /// Creates the next free `version_N` under `save_dir/name`.
    pub fn create(save_dir: &Path, name: &str) -> Result<Self> {
        let base = save_dir.join(name);
        std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        for v in 0.. {
            let root = base.join(format!("version_{v}"));
            // create_dir (not _all) fails if it exists: two runs never share a folder.
            match std::fs::create_dir(&root) {
                Ok(()) => {
                    std::fs::create_dir_all(root.join("checkpoints"))?;
                    return Ok(Self { root, lock: None });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("creating {}", root.display())),
            }
        }
        unreachable!()
    }

    /// An existing run folder (for `--resume`).
    pub fn open(root: &Path) -> Result<Self> {
        anyhow::ensure!(root.join("config.yaml").is_file(), "{}: not a run folder (no config.yaml)", root.display());
        Ok(Self { root: root.to_path_buf(), lock: None })
    }

    /// Takes the run folder for this process: an exclusive advisory lock on `<run>/.lock`
    /// (released by the OS when the process dies), holding the owner's pid. A second process
    /// gets "run in use by pid N". Then removes temp files a crashed writer left behind.
    pub fn lock(&mut self) -> Result<()> {
        use std::os::fd::AsRawFd;
        let path = self.root.join(".lock");
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let owner = std::fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!("{}: run in use by pid {}", self.root.display(), owner.trim());
        }
        f.set_len(0)?;
        write!(f, "{}", std::process::id())?;
        f.flush()?;
        crate::io::remove_stale_temps(&self.root);
        crate::io::remove_stale_temps(&self.root.join("checkpoints"));
        self.lock = Some(std::sync::Arc::new(f));
        Ok(())
    }

    /// Makes `best.bpk` agree with `last` after a crash between their writes: `last` records
    /// the validation that set the best (its step, or for older checkpoints its epoch); if
    /// `last` was written by that validation and `best.bpk` holds another one (or none), `last`
    /// is copied over it.
    pub fn repair_best(&self, last: &super::checkpoint::Checkpoint) -> Result<()> {
        let Some((_, best_epoch)) = last.state.best else { return Ok(()) };
        let set_best = |s: &super::checkpoint::TrainerState| match last.state.best_step {
            Some(step) => s.step == step && (s.batch == 0) == (s.epoch == best_epoch + 1),
            None => s.epoch == best_epoch + 1 && s.batch == 0,
        };
        let best_path = self.checkpoint("best");
        let best_ok = super::checkpoint::Checkpoint::load(&best_path)
            .is_ok_and(|b| set_best(&b.state) && b.state.best == last.state.best);
        if !best_ok && set_best(&last.state) {
            eprintln!("note: {} did not hold the best validation; restored from last.bpk", best_path.display());
            last.save(&best_path)?;
        }
        Ok(())
    }

    /// `config.yaml`.
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.yaml")
    }

    /// `checkpoints/<name>.bpk`.
    pub fn checkpoint(&self, name: &str) -> PathBuf {
        self.root.join("checkpoints").join(format!("{name}.bpk"))
    }

    /// `metrics.csv`.
    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
}

/// Appends `step,epoch,split,name,value` rows, whole lines at a time: rows are buffered and
/// written with one `write_all` per flush, and a torn last line (a kill mid-write) is dropped
/// when the file is opened again.
#[derive(Debug)]
pub struct MetricsCsv {
    file: std::fs::File,
    pending: String,
    splits: std::collections::BTreeSet<String>,
}

/// One `step,epoch,split,name,value` row of `metrics.csv`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRow<'a> {
    /// Optimizer steps done.
    pub step: usize,
    /// Epoch (0-based).
    pub epoch: usize,
    /// `train`, `val` or `test`.
    pub split: &'a str,
    /// Metric name without the split.
    pub name: &'a str,
    /// Its value.
    pub value: f64,
}

impl<'a> MetricRow<'a> {
    /// Parses a row (`None` for the header or a damaged line).
    pub fn parse(line: &'a str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        let [step, epoch, split, name, value] = f[..] else { return None };
        Some(Self { step: step.parse().ok()?, epoch: epoch.parse().ok()?, split, name, value: value.parse().ok()? })
    }

    /// A per-step training row (`loss_step`, `grad_norm`) rather than an end-of-epoch one.
    pub fn per_step(&self) -> bool {
        matches!(self.name, "loss_step" | "grad_norm")
    }
}

/// Where a resumed run continues (see [`MetricsCsv::open`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// The checkpoint's step.
    pub step: usize,
    /// Its epoch (epochs completed).
    pub epoch: usize,
    /// Its last mid-epoch validation's step, whose rows it includes.
    pub mid_val_step: Option<usize>,
}

/// Whether a metrics row survives a resume from `keep` (see [`MetricsCsv::open`]).
fn keep_row(line: &str, keep: Option<ResumePoint>) -> bool {
    let Some(r) = MetricRow::parse(line) else { return false };
    let Some(k) = keep else { return true };
    let end_of_epoch = r.split == "val" || (r.split == "train" && !r.per_step());
    // A mid-epoch validation ran no later than its checkpoint and before the epoch's end.
    let mid_epoch_val = r.split == "val" && k.mid_val_step.is_some_and(|s| r.step <= s);
    r.step <= k.step && !(end_of_epoch && r.epoch >= k.epoch && !mid_epoch_val)
}

impl MetricsCsv {
    /// Opens (creating with a header) `path`. For a resumed run, `keep` is where its checkpoint
    /// stands: rows after that step, and the end-of-epoch rows (train and validation metrics,
    /// learning rates) of that epoch and later, are dropped, so the steps and the epoch it
    /// redoes are not logged twice; the rows of mid-epoch validations the checkpoint includes
    /// stay.
    pub fn open(path: &Path, keep: Option<ResumePoint>) -> Result<Self> {
        let mut splits = std::collections::BTreeSet::new();
        if path.is_file() {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let complete = match text.rfind('\n') {
                Some(i) => &text[..=i],
                None => "",
            };
            let kept: Vec<&str> =
                complete.lines().enumerate().filter(|(i, l)| *i == 0 || keep_row(l, keep)).map(|(_, l)| l).collect();
            splits.extend(kept.iter().skip(1).filter_map(|l| l.split(',').nth(2)).map(str::to_string));
            if kept.len() != text.lines().count() || complete.len() != text.len() {
                crate::io::write_atomic(path, |f| f.write_all((kept.join("\n") + "\n").as_bytes()))?;
            }
        }
        let fresh = !path.is_file();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if fresh {
            file.write_all(b"step,epoch,split,name,value\n")?;
        }
        Ok(Self { file, pending: String::new(), splits })
    }

    /// Queues one row (written by the next [`MetricsCsv::flush`]).
    pub fn row(&mut self, step: usize, epoch: usize, split: &str, name: &str, value: f64) -> Result<()> {
        use std::fmt::Write as _;
        let _ = writeln!(self.pending, "{step},{epoch},{split},{name},{value}");
        self.splits.insert(split.to_string());
        Ok(())
    }

    /// Writes the queued rows in one call.
    pub fn flush(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.file.write_all(self.pending.as_bytes())?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Whether rows of `split` were written (e.g. `test` by an earlier session of the run).
    pub fn has_rows(&self, split: &str) -> bool {
        self.splits.contains(split)
    }

    /// Writes every metric of a split (a `split/` prefix of the names is dropped).
    pub fn rows(
        &mut self,
        step: usize,
        epoch: usize,
        split: &str,
        metrics: &std::collections::BTreeMap<String, f64>,
    ) -> Result<()> {
        let prefix = format!("{split}/");
        for (k, v) in metrics {
            self.row(step, epoch, split, k.strip_prefix(&prefix).unwrap_or(k), *v)?;
        }
        self.flush()
    }
}

impl Drop for MetricsCsv {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
