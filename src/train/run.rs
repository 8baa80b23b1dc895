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
                    return Ok(Self { root });
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
        Ok(Self { root: root.to_path_buf() })
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

/// Appends `step,epoch,split,name,value` rows.
#[derive(Debug)]
pub struct MetricsCsv {
    file: std::fs::File,
}

impl MetricsCsv {
    /// Opens (creating with a header) `path`; rows after `keep_through_step` are dropped, so a
    /// resumed run does not repeat the steps it redoes.
    pub fn open(path: &Path, keep_through_step: Option<usize>) -> Result<Self> {
        if let Some(limit) = keep_through_step
            && path.is_file()
        {
            let text = std::fs::read_to_string(path)?;
            let kept: Vec<&str> = text
                .lines()
                .enumerate()
                .filter(|(i, l)| {
                    *i == 0 || l.split(',').next().and_then(|s| s.parse::<usize>().ok()).is_some_and(|s| s <= limit)
                })
                .map(|(_, l)| l)
                .collect();
            crate::io::write_atomic(path, |f| f.write_all((kept.join("\n") + "\n").as_bytes()))?;
        }
        let fresh = !path.is_file();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        if fresh {
            writeln!(file, "step,epoch,split,name,value")?;
        }
        Ok(Self { file })
    }

    /// Writes one row.
    pub fn row(&mut self, step: usize, epoch: usize, split: &str, name: &str, value: f64) -> Result<()> {
        writeln!(self.file, "{step},{epoch},{split},{name},{value}")?;
        Ok(())
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
        self.file.flush()?;
        Ok(())
    }
}
