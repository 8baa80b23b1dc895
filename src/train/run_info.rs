//! What a run folder says about itself, read without loading a checkpoint: its flattened
//! config, status, epochs and steps, best monitored value and test metrics (from
//! `config.yaml`, `status.json` and `metrics.csv`). `wavessm runs` and sweeps list these.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::status::{self, RunStatus};

/// One run, summarized.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The run folder (`…/<name>/version_N`).
    pub dir: PathBuf,
    /// The experiment name (the folder above the version).
    pub name: String,
    /// `version_N`.
    pub version: String,
    /// running, finished, stopped, interrupted, diverged, failed, crashed or unknown.
    pub status: String,
    /// Epochs with a validation row.
    pub epochs: usize,
    /// Largest optimizer step logged.
    pub steps: usize,
    /// Seconds of training (all sessions; a running one counted up to now).
    pub wall_time: Option<f64>,
    /// `trainer.monitor`.
    pub monitor: String,
    /// Best monitored value and its epoch (1-based).
    pub best: Option<(f64, usize)>,
    /// Test metrics (`test/…`).
    pub test: BTreeMap<String, f64>,
    /// The resolved config, flattened to dotted keys.
    pub config: BTreeMap<String, String>,
}

/// Every run folder (a folder holding `config.yaml`) under `root`, sorted by path.
pub fn find_runs(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if dir.join("config.yaml").is_file() {
            out.push(dir.to_path_buf());
            return;
        }
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut subs: Vec<PathBuf> =
            entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()).collect();
        subs.sort();
        for s in subs {
            walk(&s, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, 6, &mut out);
    out
}

/// `a.b.c = value` for every leaf of a YAML tree (lists are one value).
pub fn flatten(v: &Value, prefix: &str, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Mapping(m) => {
            for (k, v) in m {
                let k = k.as_str().map(str::to_string).unwrap_or_else(|| crate::config::inline_yaml(k));
                flatten(v, &crate::config::join_path(prefix, &k), out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), crate::config::inline_yaml(other));
        }
    }
}

/// Whether a metric improves downwards (losses, perplexity, errors).
pub fn lower_is_better(metric: &str) -> bool {
    let m = metric.rsplit('/').next().unwrap_or(metric);
    m.contains("loss") || m.contains("perplexity") || m.contains("error") || m == "time"
}

impl RunInfo {
    /// Reads a run folder.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let text = crate::io::read_text_capped(&dir.join("config.yaml"), crate::io::MAX_CONFIG_BYTES, "a config file")
            .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("config.yaml").display()))?;
        let tree: Value =
            serde_yaml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", dir.join("config.yaml").display()))?;
        let mut config = BTreeMap::new();
        flatten(&tree, "", &mut config);
        let monitor = config.get("trainer.monitor").cloned().unwrap_or_else(|| "val/accuracy".into());
        let mode_max = config.get("trainer.mode").is_none_or(|m| m != "min");
        let (mut epochs, mut steps, mut best, mut test) = (0, 0, None::<(f64, usize)>, BTreeMap::new());
        let csv = crate::io::read_text_capped(&dir.join("metrics.csv"), crate::io::MAX_DATA_BYTES, "metrics.csv")
            .unwrap_or_default();
        let (split_m, name_m) = monitor.split_once('/').unwrap_or(("val", &monitor));
        for super::run::MetricRow { step, epoch, split, name, value } in
            csv.lines().skip(1).filter_map(super::run::MetricRow::parse)
        {
            steps = steps.max(step);
            if split == "val" && name == "loss" {
                epochs = epochs.max(epoch + 1);
            }
            if split == split_m && name == name_m && value.is_finite() {
                let better = best.is_none_or(|(b, _)| if mode_max { value > b } else { value < b });
                if better {
                    best = Some((value, epoch + 1));
                }
            }
            if split == "test" {
                test.insert(format!("test/{name}"), value);
            }
        }
        let st = RunStatus::read(dir);
        let status = status::current(dir);
        let wall_time =
            st.map(|s| if status == "running" { s.wall_time + status::now() - s.started } else { s.wall_time });
        let name =
            dir.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let version = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self {
            dir: dir.to_path_buf(),
            name,
            version,
            status,
            epochs,
            steps,
            wall_time,
            monitor,
            best,
            test,
            config,
        })
    }
}

/// The config keys whose values differ between `runs` (a key missing in some counts).
pub fn differing_keys(runs: &[RunInfo]) -> Vec<String> {
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.config.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| !matches!(k.as_str(), "name" | "logger.name" | "logger.save_dir"))
        .filter(|k| {
            let first = runs.first().and_then(|r| r.config.get(*k));
            runs.iter().any(|r| r.config.get(*k) != first)
        })
        .cloned()
        .collect()
}
