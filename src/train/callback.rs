//! Callbacks of the trainer: every epoch's metrics go to `metrics.csv` and then to each
//! registered callback (early stopping, loggers). Adding one is a file in `callbacks/` plus its
//! line in [`REGISTRY`].
//!
//! The hooks, in order: `on_fit_start` (config, run folder, model size), `on_train_step` (every
//! `trainer.log_every_n_steps` steps), `on_epoch_end` (metrics, learning rates, throughput, the
//! model; also after a mid-epoch validation), `on_image` (a PNG figure, whenever one is made),
//! `on_text` (markdown, e.g. a generated sample), `on_fit_end` (finished, stopped or
//! failed, with the test metrics).

use std::collections::BTreeMap;

use anyhow::Result;

use super::callbacks;
use super::checkpoint::TrainerState;
use super::optim::GroupPlan;
use super::run::{MetricsCsv, RunDir};
use crate::experiment::ExperimentConfig;
use crate::model::Model;

/// Builds a callback from the config, or `None` when the config does not ask for it.
pub type Constructor = fn(&ExperimentConfig) -> Result<Option<Box<dyn Callback>>>;

/// The callbacks, one line each.
pub const REGISTRY: &[Constructor] = &[
    callbacks::early_stopping::EarlyStopping::from_config,
    callbacks::tensorboard::TensorBoard::from_config,
    callbacks::mlflow::Mlflow::from_config,
    callbacks::wandb::WandbHint::from_config,
];

/// What a fit starts with.
pub struct FitStart<'a> {
    /// The resolved config.
    pub cfg: &'a ExperimentConfig,
    /// The run folder.
    pub run: &'a RunDir,
    /// Number of model parameters (scalars).
    pub num_params: usize,
    /// Optimizer steps already done (0 unless resumed).
    pub step: usize,
    /// Whether the fit resumes a run from its checkpoint.
    pub resumed: bool,
}

/// What an epoch ended with, or a mid-epoch validation (`trainer.val_check_interval`).
pub struct EpochEnd<'a> {
    /// Optimizer steps so far.
    pub step: usize,
    /// The epoch that ended (0-based).
    pub epoch: usize,
    /// Its training metrics (`train/…`).
    pub train: &'a BTreeMap<String, f64>,
    /// Its validation metrics (`val/…`; empty on epochs without validation,
    /// `trainer.check_val_every_n_epoch`).
    pub val: &'a BTreeMap<String, f64>,
    /// The learning rate of each optimizer group.
    pub lrs: &'a [f64],
    /// The optimizer groups.
    pub groups: &'a [GroupPlan],
    /// Training throughput of the epoch.
    pub samples_per_sec: f64,
    /// The model after the epoch (for parameter histograms).
    pub model: &'a Model,
    /// A validation within the epoch: `train` and `lrs` are empty, the epoch goes on.
    pub mid_epoch: bool,
}

/// How a fit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FitStatus {
    /// Every epoch ran, or early stopping ended it.
    Finished,
    /// A signal or a step/epoch limit of the caller stopped it; it can be resumed.
    Stopped,
    /// An error ended it.
    Failed,
}

/// What a fit ended with.
pub struct FitEnd<'a> {
    /// The run folder.
    pub run: &'a RunDir,
    /// The trainer's state at the end.
    pub state: &'a TrainerState,
    /// The test metrics, if the best checkpoint was tested.
    pub test: Option<&'a BTreeMap<String, f64>>,
    /// How it ended.
    pub status: FitStatus,
}

/// Something that follows training.
pub trait Callback {
    /// Key of the callback's state in checkpoints.
    fn name(&self) -> &'static str;

    /// Before the first step (also when resuming).
    fn on_fit_start(&mut self, _start: &FitStart) -> Result<()> {
        Ok(())
    }

    /// Every `trainer.log_every_n_steps` optimizer steps.
    fn on_train_step(&mut self, _step: usize, _epoch: usize, _loss: f64, _grad_norm: f64) -> Result<()> {
        Ok(())
    }

    /// After validation; `state` is the callback's own (from the last checkpoint, null at
    /// first). Returns whether training should stop.
    fn on_epoch_end(&mut self, _end: &EpochEnd, _state: &mut serde_json::Value) -> Result<bool> {
        Ok(false)
    }

    /// A figure (PNG bytes) to log under `tag` at `step`.
    fn on_image(&mut self, _tag: &str, _png: &[u8], _step: usize) -> Result<()> {
        Ok(())
    }

    /// A text (markdown) to log under `tag` at `step`.
    fn on_text(&mut self, _tag: &str, _markdown: &str, _step: usize) -> Result<()> {
        Ok(())
    }

    /// When the fit ends (finished, stopped or failed).
    fn on_fit_end(&mut self, _end: &FitEnd) -> Result<()> {
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

    /// Tells every callback that the fit starts.
    pub fn on_fit_start(&mut self, start: &FitStart) -> Result<()> {
        for c in &mut self.list {
            c.on_fit_start(start)?;
        }
        Ok(())
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
            for c in &mut self.list {
                c.on_train_step(step, epoch, loss, norm)?;
            }
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
        let mut stop = false;
        for c in &mut self.list {
            let slot = state.callbacks.entry(c.name().to_string()).or_insert(serde_json::Value::Null);
            stop |= c.on_epoch_end(end, slot)?;
        }
        Ok(stop)
    }

    /// Logs a figure (PNG bytes) with every callback that records images.
    pub fn log_image(&mut self, tag: &str, png: &[u8], step: usize) -> Result<()> {
        for c in &mut self.list {
            c.on_image(tag, png, step)?;
        }
        Ok(())
    }

    /// Logs a text (markdown) with every callback that records text.
    pub fn log_text(&mut self, tag: &str, markdown: &str, step: usize) -> Result<()> {
        for c in &mut self.list {
            c.on_text(tag, markdown, step)?;
        }
        Ok(())
    }

    /// Tells every callback that the fit ended; each is told even if another one fails.
    pub fn on_fit_end(&mut self, end: &FitEnd) -> Result<()> {
        let mut first_err = None;
        for c in &mut self.list {
            if let Err(e) = c.on_fit_end(end) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}
