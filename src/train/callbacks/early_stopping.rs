//! `trainer.early_stopping: {monitor, mode, patience, min_delta}`: stop when the monitored
//! validation metric has not improved by more than `min_delta` for `patience` validations
//! (epochs, or checks within them with `trainer.val_check_interval`; Lightning's `EarlyStopping`). Its state lives in the checkpoint, so a resumed run counts on.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::experiment::ExperimentConfig;
use crate::train::Mode;
use crate::train::callback::{Callback, EpochEnd};

/// Options of early stopping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// Validation metric watched (default: `trainer.monitor`).
    #[serde(default)]
    pub monitor: Option<String>,
    /// Direction (default: `trainer.mode`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Validations without improvement before stopping (≥ 1).
    pub patience: usize,
    /// Smallest change that counts as an improvement (≥ 0).
    #[serde(default)]
    pub min_delta: f64,
}

/// Counted across epochs and checkpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    best: Option<f64>,
    bad_epochs: usize,
}

/// The early-stopping callback.
pub struct EarlyStopping {
    monitor: String,
    mode: Mode,
    patience: usize,
    min_delta: f64,
}

impl EarlyStopping {
    /// From `trainer.early_stopping`, if set.
    pub fn from_config(cfg: &ExperimentConfig) -> Result<Option<Box<dyn Callback>>> {
        let Some(es) = &cfg.trainer.early_stopping else { return Ok(None) };
        Ok(Some(Box::new(EarlyStopping {
            monitor: es.monitor.clone().unwrap_or_else(|| cfg.trainer.monitor.clone()),
            mode: es.mode.unwrap_or(cfg.trainer.mode),
            patience: es.patience,
            min_delta: es.min_delta,
        })))
    }
}

impl Callback for EarlyStopping {
    fn name(&self) -> &'static str {
        "early_stopping"
    }

    fn on_epoch_end(&mut self, end: &EpochEnd, slot: &mut serde_json::Value) -> Result<bool> {
        if end.val.is_empty() {
            return Ok(false); // an epoch without validation counts neither way
        }
        let mut st: State = serde_json::from_value(slot.clone()).unwrap_or_default();
        let v = *end.val.get(&self.monitor).ok_or_else(|| {
            anyhow::anyhow!("`trainer.early_stopping.monitor`: no validation metric `{}`", self.monitor)
        })?;
        let improved = match (st.best, self.mode) {
            (None, _) => true,
            (Some(b), Mode::Max) => v > b + self.min_delta,
            (Some(b), Mode::Min) => v < b - self.min_delta,
        };
        if improved {
            st = State { best: Some(v), bad_epochs: 0 };
        } else {
            st.bad_epochs += 1;
        }
        let stop = st.bad_epochs >= self.patience;
        *slot = serde_json::to_value(&st)?;
        if stop {
            eprintln!(
                "early stopping: {} did not improve by more than {} for {} validations",
                self.monitor, self.min_delta, self.patience
            );
        }
        Ok(stop)
    }
}
