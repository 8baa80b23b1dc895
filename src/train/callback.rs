//! Callbacks of the trainer: every epoch's metrics go to `metrics.csv` and then to each
//! registered callback (early stopping, loggers). Adding one is a file in `callbacks/` plus its
//! line in [`REGISTRY`].

use std::collections::BTreeMap;

use anyhow::Result;

use super::callbacks;
use super::checkpoint::TrainerState;
use super::optim::GroupPlan;
use super::run::{MetricsCsv, RunDir};
use crate::experiment::ExperimentConfig;

/// Builds a callback from the config, or `None` when the config does not ask for it.
pub type Constructor = fn(&ExperimentConfig) -> Result<Option<Box<dyn Callback>>>;

/// The callbacks, one line each.
pub const REGISTRY: &[Constructor] = &[callbacks::early_stopping::EarlyStopping::from_config];

/// What an epoch ended with.
pub struct EpochEnd<'a> {
    /// Optimizer steps so far.
    pub step: usize,
    /// The epoch that ended (0-based).
    pub epoch: usize,
    /// Its training metrics (`train/…`).
    pub train: &'a BTreeMap<String, f64>,
    /// Its validation metrics (`val/…`).
    pub val: &'a BTreeMap<String, f64>,
    /// The learning rate of each optimizer group.
    pub lrs: &'a [f64],
    /// The optimizer groups.
    pub groups: &'a [GroupPlan],
}

/// Something that follows training.
pub trait Callback {
    /// Key of the callback's state in checkpoints.
    fn name(&self) -> &'static str;

    /// After each optimizer step.
    fn on_train_step(&mut self, _step: usize, _epoch: usize, _loss: f64, _grad_norm: f64) -> Result<()> {
        Ok(())
    }

    /// After validation; `state` is the callback's own (from the last checkpoint, null at
    /// first). Returns whether training should stop.
    fn on_epoch_end(&mut self, _end: &EpochEnd, _state: &mut serde_json::Value) -> Result<bool> {
        Ok(false)
    }

    /// When the fit ends (finished or stopped), with the test metrics if tested.
    fn on_fit_end(
        &mut self,
        _run: &RunDir,
        _state: &TrainerState,
        _test: Option<&BTreeMap<String, f64>>,
    ) -> Result<()> {
        Ok(())
    }
}

/// The metrics log plus the configured callbacks.
pub struct Callbacks {
    list: Vec<Box<dyn Callback>>,
    log_every: usize,
}

impl Callbacks {
    /// The callbacks the config asks for.
    pub fn new(cfg: &ExperimentConfig) -> Result<Self> {
        let mut list = Vec::new();
        for make in REGISTRY {
            list.extend(make(cfg)?);
        }
        Ok(Self { list, log_every: cfg.trainer.log_every_n_steps.max(1) })
    }

    /// Logs the step's loss and gradient norm every `log_every_n_steps`.
    pub fn on_train_step(
        &mut self,
        csv: &mut MetricsCsv,
        step: usize,
        epoch: usize,
        loss: f64,
        norm: f64,
    ) -> Result<()> {
        if step.is_multiple_of(self.log_every) {
            csv.row(step, epoch, "train", "loss_step", loss)?;
            csv.row(step, epoch, "train", "grad_norm", norm)?;
            csv.flush()?;
        }
        for c in &mut self.list {
            c.on_train_step(step, epoch, loss, norm)?;
        }
        Ok(())
    }

    /// Logs the epoch's metrics and learning rates; returns whether a callback stops training.
    pub fn on_epoch_end(&mut self, csv: &mut MetricsCsv, end: &EpochEnd, state: &mut TrainerState) -> Result<bool> {
        csv.rows(end.step, end.epoch, "train", end.train)?;
        csv.rows(end.step, end.epoch, "val", end.val)?;
        for (g, lr) in end.groups.iter().zip(end.lrs) {
            csv.row(end.step, end.epoch, "train", &format!("lr/{}", g.name), *lr)?;
        }
        csv.flush()?;
        if end.val.is_empty() {
            return Ok(false); // an epoch without validation (`check_val_every_n_epoch`)
        }
        let mut stop = false;
        for c in &mut self.list {
            let slot = state.callbacks.entry(c.name().to_string()).or_insert(serde_json::Value::Null);
            stop |= c.on_epoch_end(end, slot)?;
        }
        Ok(stop)
    }

    /// Tells every callback that the fit ended.
    pub fn on_fit_end(
        &mut self,
        run: &RunDir,
        state: &TrainerState,
        test: Option<&BTreeMap<String, f64>>,
    ) -> Result<()> {
        for c in &mut self.list {
            c.on_fit_end(run, state, test)?;
        }
        Ok(())
    }
}
