//! Options of the optimizer, the training loop and the run folder (`optimizer:`, `trainer:`,
//! `logger:`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Named, check};

/// Optimizer names (torch's, lower case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    /// Adam (weight decay as an L2 term).
    Adam,
    /// AdamW (decoupled weight decay).
    #[default]
    Adamw,
    /// SGD with optional (Nesterov) momentum and dampening.
    Sgd,
    /// RMSprop (`alpha`, `momentum`, `centered`).
    Rmsprop,
    /// Adagrad (`lr_decay`).
    Adagrad,
    /// Lion (sign of interpolated momentum; `betas`, decoupled weight decay).
    Lion,
}

impl OptimizerName {
    /// The names `optimizer._name_` accepts.
    pub const NAMES: &'static [&'static str] = &["adam", "adamw", "sgd", "rmsprop", "adagrad", "lion"];
}

/// The optimizer (any [`OptimizerName`]) with regex parameter groups, each of which may name
/// its own optimizer and options. Keys an optimizer does not use are ignored by it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Which optimizer.
    #[serde(rename = "_name_", default)]
    pub name: OptimizerName,
    /// Base learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    #[serde(default)]
    pub weight_decay: f64,
    /// Adam betas.
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Adam epsilon (PyTorch's default).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// SGD / RMSprop momentum (torch's default 0).
    #[serde(default)]
    pub momentum: f64,
    /// SGD dampening.
    #[serde(default)]
    pub dampening: f64,
    /// SGD Nesterov momentum (needs momentum > 0 and dampening 0).
    #[serde(default)]
    pub nesterov: bool,
    /// RMSprop smoothing constant.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Centered RMSprop.
    #[serde(default)]
    pub centered: bool,
    /// Adagrad learning-rate decay.
    #[serde(default)]
    pub lr_decay: f64,
    /// Extra groups by regex over parameter paths (`layers.0.layer.kernel.log_dt`); last match wins.
    #[serde(default)]
    pub groups: Vec<ParamGroupConfig>,
}

impl OptimizerConfig {
    /// Checks rates, decays, betas and epsilon, also of every group (a negative rate would
    /// train uphill, a negative decay grow the weights).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::non_negative("optimizer.lr", self.lr)?;
        check::non_negative("optimizer.weight_decay", self.weight_decay)?;
        for (i, b) in self.betas.iter().enumerate() {
            check::fraction(&format!("optimizer.betas.{i}"), *b)?;
        }
        check::positive("optimizer.eps", self.eps)?;
        for (i, g) in self.groups.iter().enumerate() {
            if let Some(lr) = g.lr {
                check::non_negative(&format!("optimizer.groups.{i}.lr"), lr)?;
            }
            if let Some(wd) = g.weight_decay {
                check::non_negative(&format!("optimizer.groups.{i}.weight_decay"), wd)?;
            }
        }
        Ok(())
    }
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_alpha() -> f64 {
    0.99
}

/// One regex-selected parameter group.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamGroupConfig {
    /// Regex matched (searched) against each parameter path.
    pub params: String,
    /// Learning rate of the group (default: the optimizer's).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Weight decay of the group (default: the optimizer's).
    #[serde(default)]
    pub weight_decay: Option<f64>,
    /// The group's own schedule (default: the global `scheduler`).
    #[serde(default)]
    pub scheduler: Option<Named>,
    /// The group's own optimizer (default: the global one); the keys below default to the
    /// global optimizer's.
    #[serde(rename = "_name_", default)]
    pub name: Option<OptimizerName>,
    /// Adam/Lion betas.
    #[serde(default)]
    pub betas: Option<[f64; 2]>,
    /// Epsilon.
    #[serde(default)]
    pub eps: Option<f64>,
    /// SGD / RMSprop momentum.
    #[serde(default)]
    pub momentum: Option<f64>,
    /// SGD dampening.
    #[serde(default)]
    pub dampening: Option<f64>,
    /// SGD Nesterov momentum.
    #[serde(default)]
    pub nesterov: Option<bool>,
    /// RMSprop smoothing constant.
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Centered RMSprop.
    #[serde(default)]
    pub centered: Option<bool>,
    /// Adagrad learning-rate decay.
    #[serde(default)]
    pub lr_decay: Option<f64>,
}

/// Direction of a monitored metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// Compute device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// burn's `flex` CPU backend.
    #[default]
    Cpu,
    /// CUDA (build with `--features cuda`).
    Cuda,
    /// A Vulkan, Metal or DX12 GPU through wgpu (build with `--features wgpu`).
    Wgpu,
    /// `BURN_DEVICE` when set, else the first GPU backend built in that has a device, else the CPU.
    Auto,
}

/// Floating-point precision of training (Lightning's spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "PrecisionValue", into = "String")]
pub enum Precision {
    /// f32 everywhere.
    #[default]
    F32,
    /// f16 compute with f32 master weights.
    F16Mixed,
    /// bf16 compute with f32 master weights.
    Bf16Mixed,
}

/// What YAML may hold for `trainer.precision`: `32` is a number, `16-mixed` a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum PrecisionValue {
    Number(u64),
    Text(String),
}

impl TryFrom<PrecisionValue> for Precision {
    type Error = String;

    fn try_from(v: PrecisionValue) -> Result<Self, String> {
        let text = match v {
            PrecisionValue::Number(n) => n.to_string(),
            PrecisionValue::Text(t) => t,
        };
        match text.as_str() {
            "32" | "32-true" => Ok(Self::F32),
            "16-mixed" => Ok(Self::F16Mixed),
            "bf16-mixed" => Ok(Self::Bf16Mixed),
            _ => Err(format!("expected one of 32, 16-mixed, bf16-mixed, got `{text}`")),
        }
    }
}

impl From<Precision> for String {
    fn from(p: Precision) -> String {
        p.to_string()
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "32",
            Self::F16Mixed => "16-mixed",
            Self::Bf16Mixed => "bf16-mixed",
        })
    }
}

/// When to draw a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// A bar on a terminal, a line per epoch otherwise.
    #[default]
    Auto,
    /// Always a bar.
    Always,
    /// Never a bar.
    Never,
}

/// The training loop.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    /// Epochs to train.
    pub max_epochs: usize,
    /// Stop after this many optimizer steps (null = no limit).
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Micro-batches per optimizer step.
    #[serde(default = "one")]
    pub accumulate_grad_batches: usize,
    /// Clip the global L2 norm of all gradients to this value (null = off).
    #[serde(default)]
    pub gradient_clip_val: Option<f64>,
    /// Write the training loss to metrics.csv every this many optimizer steps.
    #[serde(default = "fifty")]
    pub log_every_n_steps: usize,
    /// Train on at most this many batches per epoch (null = all); for smoke tests.
    #[serde(default)]
    pub limit_train_batches: Option<usize>,
    /// Evaluate on at most this many batches (null = all).
    #[serde(default)]
    pub limit_eval_batches: Option<usize>,
    /// Metric that selects `best.bpk` (`val/<metric>`).
    #[serde(default = "default_monitor")]
    pub monitor: String,
    /// Whether the monitored metric should go up or down.
    #[serde(default = "default_mode")]
    pub mode: Mode,
    /// Device to run on.
    #[serde(default)]
    pub device: DeviceKind,
    /// Device indices of the backend (null = its default device); more than one asks for data
    /// parallelism, which no backend built here offers (refused with the reason).
    #[serde(default)]
    pub devices: Option<Vec<usize>>,
    /// Floating-point precision; mixed precision is refused where it is not available.
    #[serde(default)]
    pub precision: Precision,
    /// Progress display.
    #[serde(default)]
    pub progress_bar: ProgressMode,
    /// Evaluate the best checkpoint on the test split when training ends.
    #[serde(default = "yes")]
    pub test_after_fit: bool,
    /// What a non-finite loss, gradient, validation metric or parameter does.
    #[serde(default)]
    pub on_nonfinite: OnNonFinite,
    /// How many times `on_nonfinite: rollback` may roll back before stopping.
    #[serde(default = "three")]
    pub max_rollbacks: usize,
    /// Learning-rate factor applied at each rollback, in (0, 1).
    #[serde(default = "half")]
    pub rollback_lr_factor: f64,
    /// Validate (and select `best`) every this many epochs; the last epoch always validates.
    #[serde(default = "one")]
    pub check_val_every_n_epoch: usize,
    /// Validate within an epoch too (Lightning's `val_check_interval`): an integer N every N
    /// training batches, a fraction f in (0, 1] every ⌊f·batches⌋ batches; in the epochs
    /// `check_val_every_n_epoch` selects, counted from the epoch's start (null: at epoch ends).
    #[serde(default)]
    pub val_check_interval: Option<ValCheckInterval>,
    /// Draw validation figures (confusion matrix, predicted against target, sequences, a text
    /// sample) under `<run>/figures/` and log them as images.
    #[serde(default = "yes")]
    pub val_figures: bool,
    /// Draw them at every this many validated epochs.
    #[serde(default = "one")]
    pub val_figures_every_n_epochs: usize,
    /// Extra sampling-rate factors to validate at (`[2]` logs `val/accuracy@rate2`: a 16 kHz
    /// model on 8 kHz data, as the S4 repo reports Speech Commands).
    #[serde(default)]
    pub eval_rates: Vec<f64>,
    /// Stop when a validation metric stops improving (null = off).
    #[serde(default)]
    pub early_stopping: Option<crate::train::callbacks::early_stopping::EarlyStoppingConfig>,
}

/// `trainer.val_check_interval`: a batch count or a fraction of the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ValCheckInterval {
    /// Every this many training batches.
    Batches(usize),
    /// Every this fraction of the epoch's batches.
    Fraction(f64),
}

impl ValCheckInterval {
    /// Batches between validations in an epoch of `per_epoch` batches (at least 1).
    pub fn batches(self, per_epoch: usize) -> usize {
        match self {
            Self::Batches(n) => n,
            Self::Fraction(f) => ((per_epoch as f64 * f) as usize).max(1),
        }
    }
}

/// What the trainer does when a value goes non-finite (NaN or infinite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop, keeping the last good checkpoint, and say which step and tensor went bad.
    #[default]
    Stop,
    /// Drop that optimizer step's update and go on.
    SkipBatch,
    /// Reload the last good checkpoint with a smaller learning rate (bounded times).
    Rollback,
}

impl TrainerConfig {
    /// Checks the numeric options' ranges, naming `trainer.<key>`.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        let bad = |key: &str, msg: String| Err(crate::config::ConfigError::Key { path: format!("trainer.{key}"), msg });
        if self.accumulate_grad_batches == 0 {
            return bad("accumulate_grad_batches", "must be at least 1".into());
        }
        if let Some(c) = self.gradient_clip_val
            && !(c > 0.0 && c.is_finite())
        {
            return bad("gradient_clip_val", format!("must be a finite number > 0 or null, got {c}"));
        }
        if !(self.rollback_lr_factor > 0.0 && self.rollback_lr_factor < 1.0) {
            return bad("rollback_lr_factor", format!("must be in (0, 1), got {}", self.rollback_lr_factor));
        }
        if self.check_val_every_n_epoch == 0 {
            return bad("check_val_every_n_epoch", "must be at least 1".into());
        }
        if self.devices.as_ref().is_some_and(|d| d.is_empty()) {
            return bad("devices", "must list at least one device index, or be null".into());
        }
        match self.val_check_interval {
            Some(ValCheckInterval::Batches(0)) => return bad("val_check_interval", "must be at least 1".into()),
            Some(ValCheckInterval::Fraction(f)) if !(f > 0.0 && f <= 1.0) => {
                return bad(
                    "val_check_interval",
                    format!("must be a batch count ≥ 1 or a fraction of the epoch in (0, 1], got {f}"),
                );
            }
            _ => {}
        }
        if self.val_figures_every_n_epochs == 0 {
            return bad("val_figures_every_n_epochs", "must be at least 1".into());
        }
        if let Some(r) = self.eval_rates.iter().find(|r| !(**r > 0.0 && r.is_finite() && **r <= 1e6)) {
            return bad("eval_rates", format!("rates must be finite numbers in (0, 1e6], got {r}"));
        }
        if self.log_every_n_steps == 0 {
            return bad("log_every_n_steps", "must be at least 1".into());
        }
        if let Some(es) = &self.early_stopping {
            if es.patience == 0 {
                return bad("early_stopping.patience", "must be at least 1".into());
            }
            if !(es.min_delta >= 0.0 && es.min_delta.is_finite()) {
                return bad("early_stopping.min_delta", format!("must be a finite number ≥ 0, got {}", es.min_delta));
            }
        }
        Ok(())
    }
}

fn yes() -> bool {
    true
}
fn three() -> usize {
    3
}
fn half() -> f64 {
    0.5
}
fn one() -> usize {
    1
}
fn fifty() -> usize {
    50
}
fn default_monitor() -> String {
    "val/accuracy".into()
}
fn default_mode() -> Mode {
    Mode::Max
}

/// Where runs are written and which loggers follow them. Each `configs/logger/<x>.yaml` adds
/// its own key, so `logger=[csv,tensorboard,mlflow]` selects backends by the keys present;
/// `metrics.csv` is the run's own record and is always written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggerConfig {
    /// Root folder of all runs.
    #[serde(default = "default_save_dir")]
    pub save_dir: PathBuf,
    /// Sub-folder name (default: the experiment `name`).
    #[serde(default)]
    pub name: Option<String>,
    /// `metrics.csv` (always on; the key is accepted so `logger=csv` reads naturally).
    #[serde(default)]
    pub csv: CsvLoggerConfig,
    /// TensorBoard event files under `<run>/tb/` (absent: off).
    #[serde(default)]
    pub tensorboard: Option<crate::train::callbacks::tensorboard::TensorBoardConfig>,
    /// An MLflow tracking server (absent: off).
    #[serde(default)]
    pub mlflow: Option<crate::train::callbacks::mlflow::MlflowConfig>,
}

/// Options of the CSV log (none yet).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CsvLoggerConfig {}

fn default_save_dir() -> PathBuf {
    PathBuf::from("runs")
}

impl Default for LoggerConfig {
    fn default() -> Self {
        Self { save_dir: default_save_dir(), name: None, csv: CsvLoggerConfig {}, tensorboard: None, mlflow: None }
    }
}

impl LoggerConfig {
    /// Checks the backends' options, naming `logger.<key>`.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        if let Some(tb) = &self.tensorboard {
            tb.validate("logger.tensorboard")?;
        }
        if let Some(m) = &self.mlflow {
            m.validate("logger.mlflow")?;
        }
        Ok(())
    }
}

/// Which checkpoints a run keeps (`checkpoint:`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Also write `last.bpk` every this many optimizer steps (mid-epoch; null = at epoch ends
    /// only). A mid-epoch checkpoint resumes bit for bit.
    #[serde(default)]
    pub every_n_steps: Option<usize>,
    /// Keep the k best epochs by `trainer.monitor` under `checkpoints/top/` (besides
    /// `best.bpk`); older ones are removed. 1 keeps `best.bpk` only.
    #[serde(default = "one")]
    pub save_top_k: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { every_n_steps: None, save_top_k: 1 }
    }
}

impl CheckpointConfig {
    /// Checks ranges, naming `checkpoint.<key>`.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        let bad = |key: &str, msg: &str| {
            Err(crate::config::ConfigError::Key { path: format!("checkpoint.{key}"), msg: msg.into() })
        };
        if self.every_n_steps == Some(0) {
            return bad("every_n_steps", "must be at least 1 or null");
        }
        if self.save_top_k == 0 || self.save_top_k > 1000 {
            return bad("save_top_k", "must be in 1..=1000");
        }
        Ok(())
    }
}
