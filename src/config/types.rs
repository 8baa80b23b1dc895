//! Typed sections of an experiment. Every struct rejects unknown keys; registry-backed choices
//! (`model.layer`, `data`, `task`, `scheduler`) are [`Named`] and validated by their registry.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::{ConfigError, from_value_at, suggest};

/// A registry choice: `_name_` plus that entry's options (`layer: s4d` is shorthand for
/// `layer: {_name_: s4d}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Named {
    /// The registered name.
    pub name: String,
    /// Every other key, validated by the registry entry.
    pub options: Mapping,
}

impl Named {
    /// Deserializes the options into the entry's typed config, naming `path` in errors.
    pub fn options_as<T: DeserializeOwned>(&self, path: &str) -> Result<T, ConfigError> {
        from_value_at(Value::Mapping(self.options.clone()), path)
    }

    /// Rebuilds a `Named` from a typed config (so printed configs show every default).
    pub fn from_typed<T: Serialize>(name: &str, typed: &T) -> Self {
        let options = match serde_yaml::to_value(typed) {
            Ok(Value::Mapping(m)) => m,
            _ => Mapping::new(),
        };
        Self { name: name.to_string(), options }
    }

    /// The error for a name that is not registered.
    pub fn unknown(&self, what: &str, path: &str, registered: &[&str]) -> ConfigError {
        let names: Vec<String> = registered.iter().map(|s| s.to_string()).collect();
        ConfigError::Key {
            path: super::join_path(path, "_name_"),
            msg: format!(
                "unknown {what} `{}`{}; registered: {}",
                self.name,
                suggest(&self.name, &names),
                names.join(", ")
            ),
        }
    }
}

impl<'de> Deserialize<'de> for Named {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::String(name) => Ok(Named { name, options: Mapping::new() }),
            Value::Mapping(mut options) => match options.remove("_name_") {
                Some(Value::String(name)) => Ok(Named { name, options }),
                Some(other) => Err(D::Error::custom(format!(
                    "invalid type: {}, expected a registered name under `_name_`",
                    super::inline_yaml(&other)
                ))),
                None => Err(D::Error::custom("missing field `_name_`")),
            },
            other => Err(D::Error::custom(format!(
                "invalid type: {}, expected a name or a mapping with `_name_`",
                super::inline_yaml(&other)
            ))),
        }
    }
}

impl Serialize for Named {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = Mapping::new();
        m.insert("_name_".into(), Value::String(self.name.clone()));
        for (k, v) in &self.options {
            m.insert(k.clone(), v.clone());
        }
        m.serialize(s)
    }
}

/// A whole experiment: `wavessm fit` needs nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name: runs go to `<logger.save_dir>/<name>/version_N` (default
    /// `<data>-<layer>`, e.g. `digits-s4d`).
    #[serde(default)]
    pub name: String,
    /// Seed of parameter init, data order, dropout; fixed seed, same run.
    #[serde(default)]
    pub seed: u64,
    /// The backbone and its layer.
    pub model: ModelConfig,
    /// The dataset (registry `data`).
    pub data: Named,
    /// Batching.
    #[serde(default)]
    pub loader: LoaderConfig,
    /// Loss, metrics and output size (registry `task`).
    pub task: Named,
    /// Optimizer and parameter groups.
    pub optimizer: OptimizerConfig,
    /// Learning-rate schedule (registry `scheduler`).
    pub scheduler: Named,
    /// Loop length, accumulation, clipping, checkpoint selection.
    pub trainer: TrainerConfig,
    /// Where runs are written.
    #[serde(default)]
    pub logger: LoggerConfig,
}

impl ExperimentConfig {
    /// Validates a composed tree: structure here, registry entries by their registries.
    pub fn from_value(tree: Value) -> Result<Self, ConfigError> {
        let mut cfg: ExperimentConfig = from_value_at(tree, "")?;
        cfg.canonicalize()?;
        Ok(cfg)
    }

    /// Checks every registry choice and rewrites it with all its defaults filled in.
    pub fn canonicalize(&mut self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            self.name = format!("{}-{}", self.data.name, self.model.layer.name);
        }
        let layer = crate::model::LayerConfig::from_named(&self.model.layer, "model.layer")?;
        layer.validate("model.layer")?;
        self.model.layer = layer.to_named();
        self.data = crate::data::DataSpec::from_named(&self.data, "data")?.to_named();
        self.task = crate::task::TaskConfig::from_named(&self.task, "task")?.to_named();
        self.scheduler = crate::train::SchedulerConfig::from_named(&self.scheduler, "scheduler")?.to_named();
        for (i, g) in self.optimizer.groups.iter_mut().enumerate() {
            regex::Regex::new(&g.params).map_err(|e| ConfigError::Key {
                path: format!("optimizer.groups.{i}.params"),
                msg: format!("not a valid regex: {e}"),
            })?;
            if let Some(s) = &g.scheduler {
                let path = format!("optimizer.groups.{i}.scheduler");
                g.scheduler = Some(crate::train::SchedulerConfig::from_named(s, &path)?.to_named());
            }
        }
        let positive = |path: &str, v: usize| {
            if v == 0 { Err(ConfigError::Key { path: path.into(), msg: "must be at least 1".into() }) } else { Ok(()) }
        };
        positive("model.d_model", self.model.d_model)?;
        positive("loader.batch_size", self.loader.batch_size)?;
        positive("trainer.accumulate_grad_batches", self.trainer.accumulate_grad_batches)?;
        for (path, p) in [("model.dropout", self.model.dropout)] {
            if !(0.0..1.0).contains(&p) {
                return Err(ConfigError::Key { path: path.into(), msg: format!("must be in [0, 1), got {p}") });
            }
        }
        super::check_run_name("name", &self.name)?;
        if let Some(n) = &self.logger.name {
            super::check_run_name("logger.name", n)?;
        }
        Ok(())
    }

    /// The resolved config as YAML (what `--print-config` prints and runs save).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("config serializes")
    }
}

/// The residual backbone (state-spaces/s4 `SequenceModel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width H of every block.
    pub d_model: usize,
    /// Number of residual blocks.
    pub n_layers: usize,
    /// Dropout after each layer (and in the FF sub-block).
    #[serde(default)]
    pub dropout: f64,
    /// Normalization of each block.
    #[serde(default)]
    pub norm: NormKind,
    /// Normalize before the layer (true) or after the residual sum (false).
    #[serde(default)]
    pub prenorm: bool,
    /// Expansion factor of a pointwise GELU feed-forward sub-block per block (0 = none).
    #[serde(default)]
    pub ff: usize,
    /// How the sequence is reduced before the decoder.
    #[serde(default)]
    pub pool: PoolKind,
    /// The sequence layer (registry `layer`).
    pub layer: Named,
}

/// Normalization inside residual blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// LayerNorm over the feature dimension.
    #[default]
    Layer,
    /// BatchNorm over batch and time.
    Batch,
    /// Identity.
    None,
}

/// Sequence reduction before the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// Mean over valid time steps.
    #[default]
    Mean,
    /// The last time step.
    Last,
    /// No pooling: one output per time step.
    None,
}

/// Batching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples per micro-batch.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Batch size for validation/test (defaults to `batch_size`).
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Shuffle training data each epoch (seeded by `seed` and the epoch).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Drop the last incomplete training batch.
    #[serde(default)]
    pub drop_last: bool,
}

fn default_batch() -> usize {
    32
}
fn yes() -> bool {
    true
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { batch_size: default_batch(), eval_batch_size: None, shuffle: true, drop_last: false }
    }
}

/// Optimizer names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    /// AdamW (decoupled weight decay).
    #[default]
    Adamw,
}

/// AdamW with regex parameter groups.
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
    /// Extra groups by regex over parameter paths (`layers.0.layer.kernel.log_dt`); last match wins.
    #[serde(default)]
    pub groups: Vec<ParamGroupConfig>,
}

fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
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
    /// Progress display.
    #[serde(default)]
    pub progress_bar: ProgressMode,
    /// Evaluate the best checkpoint on the test split when training ends.
    #[serde(default = "yes")]
    pub test_after_fit: bool,
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

/// Where runs are written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggerConfig {
    /// Root folder of all runs.
    #[serde(default = "default_save_dir")]
    pub save_dir: PathBuf,
    /// Sub-folder name (default: the experiment `name`).
    #[serde(default)]
    pub name: Option<String>,
}

fn default_save_dir() -> PathBuf {
    PathBuf::from("runs")
}

impl Default for LoggerConfig {
    fn default() -> Self {
        Self { save_dir: default_save_dir(), name: None }
    }
}

/// Declares a registry of typed configs selected by `_name_`: one line per entry.
#[macro_export]
macro_rules! registry {
    ($(#[$m:meta])* $vis:vis enum $Enum:ident ($what:literal) { $($name:literal => $Variant:ident($Cfg:ty)),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        $vis enum $Enum { $(#[doc = $name] $Variant($Cfg)),+ }

        impl $Enum {
            /// Registered names.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            /// Looks up `named` and validates its options, naming `path` in errors.
            pub fn from_named(named: &$crate::config::Named, path: &str) -> Result<Self, $crate::config::ConfigError> {
                match named.name.as_str() {
                    $($name => Ok($Enum::$Variant(named.options_as(path)?)),)+
                    _ => Err(named.unknown($what, path, Self::NAMES)),
                }
            }

            /// The registered name of this entry.
            pub fn name(&self) -> &'static str {
                match self { $($Enum::$Variant(_) => $name),+ }
            }

            /// Back to a [`Named`]($crate::config::Named) with every default filled in.
            pub fn to_named(&self) -> $crate::config::Named {
                match self { $($Enum::$Variant(c) => $crate::config::Named::from_typed($name, c)),+ }
            }
        }
    };
}
