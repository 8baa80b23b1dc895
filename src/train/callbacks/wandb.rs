//! The seeds' `wandb:` keys (`project`, `group`, `name`, `tags`, `entity`; `wandb=null` is off).
//! There is no W&B client here: the keys are run metadata (in `config.yaml`, TensorBoard's text
//! and MLflow tags), and `wandb sync --sync-tensorboard <run>/tb` uploads a run; the fit prints
//! that command once.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::experiment::ExperimentConfig;
use crate::train::callback::{Callback, FitStart};

/// W&B run metadata.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WandbConfig {
    /// W&B project.
    #[serde(default)]
    pub project: Option<String>,
    /// Run group.
    #[serde(default)]
    pub group: Option<String>,
    /// Run name.
    #[serde(default)]
    pub name: Option<String>,
    /// Run tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Team or user.
    #[serde(default)]
    pub entity: Option<String>,
}

/// The metadata as `(key, value)` tags (`wandb.project`, …; tags joined by commas).
pub fn tag_pairs(w: &WandbConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in [("project", &w.project), ("group", &w.group), ("name", &w.name), ("entity", &w.entity)] {
        if let Some(v) = v {
            out.push((format!("wandb.{k}"), v.clone()));
        }
    }
    if !w.tags.is_empty() {
        out.push(("wandb.tags".into(), w.tags.join(",")));
    }
    out
}

/// The metadata as `key=value` strings.
pub fn tags(w: &WandbConfig) -> Vec<String> {
    tag_pairs(w).into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Prints how to upload the run to W&B.
pub struct WandbHint {
    tensorboard: bool,
    project: Option<String>,
    entity: Option<String>,
}

impl WandbHint {
    /// When `wandb:` keys are given.
    pub fn from_config(cfg: &ExperimentConfig) -> Result<Option<Box<dyn Callback>>> {
        let Some(w) = &cfg.wandb else { return Ok(None) };
        Ok(Some(Box::new(WandbHint {
            tensorboard: cfg.logger.tensorboard.is_some(),
            project: w.project.clone(),
            entity: w.entity.clone(),
        })))
    }
}

impl Callback for WandbHint {
    fn name(&self) -> &'static str {
        "wandb"
    }

    fn on_fit_start(&mut self, start: &FitStart) -> Result<()> {
        let mut cmd = "wandb sync --sync-tensorboard".to_string();
        if let Some(p) = &self.project {
            cmd.push_str(&format!(" --project {p}"));
        }
        if let Some(e) = &self.entity {
            cmd.push_str(&format!(" --entity {e}"));
        }
        let tb = start.run.root.join("tb");
        let extra = if self.tensorboard { "" } else { " (add `logger=[csv,tensorboard]` so the run has event files)" };
        eprintln!("note: wandb keys are run metadata here; upload this run with `{cmd} {}`{extra}", tb.display());
        Ok(())
    }
}
