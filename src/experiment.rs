//! The resolved experiment: every section typed and validated, plus the checks that span
//! sections. It sits above `config/` (composition) and the registries it checks against.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::config::{ConfigError, ConfigRequest, Named, from_value_at};
use crate::data::LoaderConfig;
use crate::model::ModelConfig;
use crate::train::config::{CheckpointConfig, LoggerConfig, OptimizerConfig, TrainerConfig};

impl ConfigRequest {
    /// Composes, overrides and validates: the one way a run gets its config.
    pub fn resolve(&self) -> Result<ExperimentConfig, ConfigError> {
        let registries = lightning_registries();
        let mut dialect =
            |tree: &mut Value| crate::config::lightning::translate(tree, &registries, &mut |n| eprintln!("note: {n}"));
        ExperimentConfig::from_value(self.compose_with(&mut dialect)?)
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
    /// Free-form tags recorded with the run (D4L's `--tags`).
    #[serde(default)]
    pub tags: Vec<String>,
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
    /// Where runs are written and which loggers follow them.
    #[serde(default)]
    pub logger: LoggerConfig,
    /// The seeds' W&B keys: run metadata (TensorBoard and MLflow tags; upload with `wandb sync`).
    #[serde(default)]
    pub wandb: Option<crate::train::callbacks::wandb::WandbConfig>,
    /// Which checkpoints are kept.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    /// Where the runs of a sweep (`fit -m`) or a study (`tune`) run (registry `launcher`).
    #[serde(default = "local_launcher")]
    pub launcher: Named,
    /// The search of `wavessm tune` (from `hparams_search=<name>` or a `-c` file).
    #[serde(default)]
    pub search: Option<crate::tune::space::SearchConfig>,
}

fn local_launcher() -> Named {
    Named { name: "local".into(), options: Default::default() }
}

/// Backbone keys of `model` (a LightningCLI network's other `init_args` go to the layer).
pub const MODEL_KEYS: &[&str] = &["d_model", "n_layers", "dropout", "norm", "prenorm", "ff", "pool"];
/// Loader keys (a LightningCLI data module's other `init_args` go to the dataset).
pub const LOADER_KEYS: &[&str] = &["batch_size", "eval_batch_size", "shuffle", "drop_last", "subsample"];

/// The registries LightningCLI class paths name, with their alias tables.
pub fn lightning_registries() -> crate::config::lightning::Registries<'static> {
    use crate::config::lightning::*;
    Registries {
        task: Registry { what: "task", names: crate::task::TaskConfig::NAMES, aliases: TASK_ALIASES },
        layer: Registry { what: "layer", names: crate::model::LayerConfig::NAMES, aliases: LAYER_ALIASES },
        data: Registry { what: "dataset", names: crate::data::DataConfig::NAMES, aliases: DATA_ALIASES },
        optimizer: Registry {
            what: "optimizer",
            names: crate::train::config::OptimizerName::NAMES,
            aliases: OPTIMIZER_ALIASES,
        },
        scheduler: Registry {
            what: "scheduler",
            names: crate::train::SchedulerConfig::NAMES,
            aliases: SCHEDULER_ALIASES,
        },
        logger: Registry { what: "logger", names: &["csv", "tensorboard", "mlflow"], aliases: LOGGER_ALIASES },
        model_keys: MODEL_KEYS,
        loader_keys: LOADER_KEYS,
    }
}

/// Keys of `model` that belong to the backbone section itself.
const MODEL_OWN_KEYS: &[&str] =
    &["_name_", "options", "d_model", "n_layers", "dropout", "norm", "prenorm", "ff", "pool", "layer"];

/// Moves the other keys of a registered model (`model: {_name_: chain, links: …}`) under
/// `model.options`, where its registry entry reads them.
fn hoist_model_options(tree: &mut Value) {
    let Some(Value::Mapping(model)) = tree.get_mut("model") else { return };
    let name = model.get("_name_").and_then(Value::as_str).unwrap_or(crate::model::config::SEQUENCE);
    if name == crate::model::config::SEQUENCE {
        return;
    }
    let own: Vec<Value> =
        model.keys().filter(|k| !k.as_str().is_some_and(|k| MODEL_OWN_KEYS.contains(&k))).cloned().collect();
    if own.is_empty() {
        return;
    }
    let mut options = match model.remove("options") {
        Some(Value::Mapping(m)) => m,
        _ => serde_yaml::Mapping::new(),
    };
    for k in own {
        if let Some(v) = model.remove(&k) {
            options.insert(k, v);
        }
    }
    model.insert("options".into(), Value::Mapping(options));
}

impl ExperimentConfig {
    /// Resolves interpolations, then validates a composed tree: structure here, registry entries by their registries.
    pub fn from_value(mut tree: Value) -> Result<Self, ConfigError> {
        crate::config::interpolate::resolve(&mut tree)?;
        hoist_model_options(&mut tree);
        let mut cfg: ExperimentConfig = from_value_at(tree, "")?;
        cfg.canonicalize()?;
        Ok(cfg)
    }

    /// Checks every registry choice and rewrites it with all its defaults filled in.
    pub fn canonicalize(&mut self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            self.name = format!("{}-{}", self.data.name, self.model.display_name());
        }
        let layer = crate::model::LayerConfig::from_named(&self.model.layer, "model.layer")?;
        layer.validate("model.layer")?;
        self.model.pool = layer.resolve_pool(self.model.pool);
        self.model.layer = layer.to_named();
        if let Some(c) = self.model.classifier()? {
            self.model.options = c.to_named().options;
        }
        self.data = crate::data::DataSpec::from_named(&self.data, "data")?.to_named();
        let task = crate::task::TaskConfig::from_named(&self.task, "task")?;
        task.validate("task")?;
        self.task = task.to_named();
        self.scheduler = crate::train::schedules::Schedule::from_named(&self.scheduler, "scheduler")?.to_named();
        let launcher = crate::tune::LauncherConfig::from_named(&self.launcher, "launcher")?;
        launcher.launcher().validate()?;
        self.launcher = launcher.to_named();
        for (i, g) in self.optimizer.groups.iter_mut().enumerate() {
            regex::Regex::new(&g.params).map_err(|e| ConfigError::Key {
                path: format!("optimizer.groups.{i}.params"),
                msg: format!("not a valid regex: {e}"),
            })?;
            if let Some(s) = &g.scheduler {
                let path = format!("optimizer.groups.{i}.scheduler");
                g.scheduler = Some(crate::train::schedules::Schedule::from_named(s, &path)?.to_named());
            }
        }
        self.model.validate()?;
        self.loader.validate()?;
        self.optimizer.validate()?;
        self.trainer.validate()?;
        self.logger.validate()?;
        self.checkpoint.validate()?;
        crate::train::optimizers::validate(&self.optimizer)?;
        if self.loader.subsample == Some(0) {
            return Err(ConfigError::Key { path: "loader.subsample".into(), msg: "must be at least 1 or null".into() });
        }
        if let Some(s) = &self.search {
            s.validate()?;
        }
        crate::config::check_run_name("name", &self.name)?;
        if let Some(n) = &self.logger.name {
            crate::config::check_run_name("logger.name", n)?;
        }
        Ok(())
    }

    /// The resolved config as YAML (what `--print-config` prints and runs save).
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("config serializes")
    }
}
