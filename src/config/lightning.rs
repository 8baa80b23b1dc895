//! LightningCLI files (`class_path` / `init_args`) read as ours, as the Wave SSM seed writes
//! them: `model` is the task (its `init_args.network` the sequence model), `data` the dataset,
//! `trainer.logger` / `trainer.callbacks` the loggers and callbacks, `optimizer` and
//! `lr_scheduler` the optimizer and schedule, `seed_everything` the seed.
//!
//! A class path maps to a registered name through each registry's explicit alias table
//! ([`Registry::aliases`], matched on the whole path or its last component), else through the
//! last component in snake case (`wavesAI.model.S4D` → `s4d`). An unknown class path is an
//! error that names it and lists what is registered. Choosing another entry than the tree held
//! drops the old entry's options (as a Hydra group choice would); `init_args` merge on top.

use serde_yaml::{Mapping, Value};

use super::overrides::merge;
use super::{ConfigError, inline_yaml};

/// One registry as class paths see it.
#[derive(Debug, Clone, Copy)]
pub struct Registry<'a> {
    /// What it registers (for messages): `task`, `layer`, …
    pub what: &'a str,
    /// Registered names.
    pub names: &'a [&'a str],
    /// Class paths (whole, or last component) that are not their snake-case name.
    pub aliases: &'a [(&'a str, &'a str)],
}

/// The registries a LightningCLI file can name, and which network keys belong to the backbone.
#[derive(Debug, Clone, Copy)]
pub struct Registries<'a> {
    /// `model.class_path`.
    pub task: Registry<'a>,
    /// `model.init_args.network.class_path`.
    pub layer: Registry<'a>,
    /// `data.class_path`.
    pub data: Registry<'a>,
    /// `optimizer.class_path`.
    pub optimizer: Registry<'a>,
    /// `lr_scheduler.class_path`.
    pub scheduler: Registry<'a>,
    /// `trainer.logger.class_path`.
    pub logger: Registry<'a>,
    /// Network `init_args` that are backbone keys (`d_model`, `n_layers`, …); the rest go to
    /// the layer.
    pub model_keys: &'a [&'a str],
    /// Data `init_args` that are loader keys (`batch_size`, …).
    pub loader_keys: &'a [&'a str],
}

/// Aliases of the task registry.
pub const TASK_ALIASES: &[(&str, &str)] = &[
    ("ClassificationTask", "classification"),
    ("SequenceClassification", "classification"),
    ("RegressionTask", "regression"),
    ("LanguageModelingTask", "lm"),
    ("LMTask", "lm"),
    ("AdaptiveLMTask", "adaptivelm"),
];
/// Aliases of the layer registry.
pub const LAYER_ALIASES: &[(&str, &str)] = &[("S4DLayer", "s4d"), ("S4Layer", "s4"), ("DSSLayer", "dss")];
/// Aliases of the data registry.
pub const DATA_ALIASES: &[(&str, &str)] = &[
    ("SequentialMNIST", "smnist"),
    ("PermutedMNIST", "psmnist"),
    ("SequentialCIFAR10", "scifar"),
    ("ListOps", "listops"),
    ("WikiText103", "wikitext103"),
    ("AddingProblem", "adding"),
];
/// Aliases of the optimizer registry.
pub const OPTIMIZER_ALIASES: &[(&str, &str)] =
    &[("torch.optim.AdamW", "adamw"), ("AdamW", "adamw"), ("RMSprop", "rmsprop"), ("lion_pytorch.Lion", "lion")];
/// Aliases of the scheduler registry.
pub const SCHEDULER_ALIASES: &[(&str, &str)] = &[
    ("StepLR", "step"),
    ("MultiStepLR", "multistep"),
    ("ExponentialLR", "exponential"),
    ("OneCycleLR", "one_cycle"),
    ("ReduceLROnPlateau", "plateau"),
    ("SequentialLR", "sequential"),
    ("CosineAnnealingLR", "cosine_warmup"),
    ("CosineAnnealingWarmRestarts", "cosine_restarts"),
    ("PolynomialLR", "polynomial"),
    ("ConstantLR", "constant"),
];
/// Aliases of the loggers.
pub const LOGGER_ALIASES: &[(&str, &str)] = &[
    ("lightning.pytorch.loggers.TensorBoardLogger", "tensorboard"),
    ("TensorBoardLogger", "tensorboard"),
    ("CSVLogger", "csv"),
    ("MLFlowLogger", "mlflow"),
];

/// torch argument names that differ from ours, by class (last component).
const RENAMES: &[(&str, &str, &str)] = &[
    ("CosineAnnealingLR", "T_max", "training_steps"),
    ("CosineAnnealingWarmRestarts", "T_0", "cycle_steps"),
    ("CosineAnnealingWarmRestarts", "T_mult", "cycle_mul"),
    ("PolynomialLR", "total_iters", "training_steps"),
];

/// `S4D` → `s4d`, `ClassificationTask` → `classification_task`, `TensorBoardLogger` →
/// `tensor_board_logger`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || (prev.is_uppercase() && next_lower) {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out
}

impl Registry<'_> {
    /// The registered name a class path means; `path` is where it was written.
    pub fn resolve(&self, class_path: &str, path: &str) -> Result<String, ConfigError> {
        let last = class_path.rsplit('.').next().unwrap_or(class_path);
        if let Some((_, n)) = self.aliases.iter().find(|(a, _)| *a == class_path || *a == last) {
            return Ok(n.to_string());
        }
        let snake = snake_case(last);
        if self.names.contains(&snake.as_str()) {
            return Ok(snake);
        }
        let aliases: Vec<String> = self.aliases.iter().map(|(a, n)| format!("{a} → {n}")).collect();
        Err(ConfigError::Key {
            path: path.into(),
            msg: format!(
                "unknown class path `{class_path}` (read as `{snake}`); registered {}s: {}; aliases: {}",
                self.what,
                self.names.join(", "),
                aliases.join(", ")
            ),
        })
    }
}

/// Takes `class_path` and `init_args` out of a mapping (`None`: no `class_path`).
fn take_class(m: &mut Mapping, path: &str) -> Result<Option<(String, Mapping)>, ConfigError> {
    let Some(cp) = m.remove("class_path") else {
        return Ok(None);
    };
    let cp = cp.as_str().map(str::to_string).ok_or_else(|| ConfigError::Key {
        path: format!("{path}.class_path"),
        msg: format!("must be a dotted class name, got {}", inline_yaml(&cp)),
    })?;
    let last = cp.rsplit('.').next().unwrap_or(&cp).to_string();
    let mut args = match m.remove("init_args") {
        None | Some(Value::Null) => Mapping::new(),
        Some(Value::Mapping(a)) => a,
        Some(other) => {
            return Err(ConfigError::Key {
                path: format!("{path}.init_args"),
                msg: format!("must be a mapping, got {}", inline_yaml(&other)),
            });
        }
    };
    for (class, from, to) in RENAMES {
        if *class == last
            && let Some(v) = args.remove(*from)
        {
            args.insert((*to).into(), v);
        }
    }
    Ok(Some((cp, args)))
}

/// Sets `section` to registry entry `name` (keeping its options if it already was that entry)
/// and merges `args` on top.
fn choose(section: &mut Value, name: &str, args: Mapping) {
    let same = match section {
        Value::String(s) => s == name,
        Value::Mapping(m) => m.get("_name_").and_then(Value::as_str) == Some(name),
        _ => false,
    };
    if !same {
        *section = Value::Mapping(Mapping::new());
    }
    let mut over = Mapping::new();
    over.insert("_name_".into(), name.into());
    over.extend(args);
    merge(section, Value::Mapping(over));
}

fn section<'a>(root: &'a mut Mapping, key: &str) -> &'a mut Value {
    root.entry(key.into()).or_insert_with(|| Value::Mapping(Mapping::new()))
}

fn as_map<'a>(v: &'a mut Value, path: &str) -> Result<&'a mut Mapping, ConfigError> {
    if v.is_null() {
        *v = Value::Mapping(Mapping::new());
    }
    v.as_mapping_mut().ok_or_else(|| ConfigError::Key { path: path.into(), msg: "must be a mapping".into() })
}

/// Rewrites every LightningCLI section of `tree` into ours; `note` hears what was dropped.
pub fn translate(tree: &mut Value, r: &Registries, note: &mut dyn FnMut(String)) -> Result<(), ConfigError> {
    let Some(root) = tree.as_mapping_mut() else { return Ok(()) };
    if let Some(seed) = root.remove("seed_everything") {
        match seed {
            Value::Number(_) => {
                root.insert("seed".into(), seed);
            }
            other => note(format!("`seed_everything: {}` ignored: the seed is `seed`", inline_yaml(&other))),
        }
    }
    translate_model(root, r)?;
    translate_data(root, r, note)?;
    if let Some(trainer) = root.get_mut("trainer").filter(|t| t.is_mapping()) {
        let mut t = std::mem::take(trainer);
        super::lightning_trainer::translate(as_map(&mut t, "trainer")?, root, r, note)?;
        root.insert("trainer".into(), t);
    }
    if let Some(Value::Mapping(o)) = root.get_mut("optimizer")
        && let Some((cp, args)) = take_class(o, "optimizer")?
    {
        let name = r.optimizer.resolve(&cp, "optimizer.class_path")?;
        o.insert("_name_".into(), name.into());
        merge(root.get_mut("optimizer").expect("present"), Value::Mapping(args));
    }
    if let Some(mut s) = root.remove("lr_scheduler") {
        let m = as_map(&mut s, "lr_scheduler")?;
        match take_class(m, "lr_scheduler")? {
            Some((cp, args)) => {
                let name = r.scheduler.resolve(&cp, "lr_scheduler.class_path")?;
                choose(section(root, "scheduler"), &name, args);
            }
            None => merge(section(root, "scheduler"), s),
        }
    }
    leftover_class_paths(tree, "")
}

/// `model: {class_path: <task>, init_args: {network: {class_path: <layer>, …}, …}}`.
fn translate_model(root: &mut Mapping, r: &Registries) -> Result<(), ConfigError> {
    let Some(Value::Mapping(model)) = root.get_mut("model") else { return Ok(()) };
    let Some((cp, mut args)) = take_class(model, "model")? else { return Ok(()) };
    let task = r.task.resolve(&cp, "model.class_path")?;
    let network = args.remove("network");
    if let Some(mut net) = network {
        let net = as_map(&mut net, "model.init_args.network")?;
        let (layer_cp, net_args) = take_class(net, "model.init_args.network")?.ok_or_else(|| ConfigError::Key {
            path: "model.init_args.network.class_path".into(),
            msg: "the network needs a `class_path` (a registered layer)".into(),
        })?;
        let layer = r.layer.resolve(&layer_cp, "model.init_args.network.class_path")?;
        let (mut backbone, mut layer_args) = (Mapping::new(), Mapping::new());
        for (k, v) in net_args {
            if k.as_str().is_some_and(|k| r.model_keys.contains(&k)) {
                backbone.insert(k, v);
            } else {
                layer_args.insert(k, v);
            }
        }
        let model = root.get_mut("model").and_then(Value::as_mapping_mut).expect("model is a mapping");
        choose(model.entry("layer".into()).or_insert(Value::Null), &layer, layer_args);
        merge(root.get_mut("model").expect("present"), Value::Mapping(backbone));
    }
    choose(section(root, "task"), &task, args);
    Ok(())
}

/// `data: {class_path: <dataset>, init_args: {batch_size, data_dir, …}}`.
fn translate_data(root: &mut Mapping, r: &Registries, note: &mut dyn FnMut(String)) -> Result<(), ConfigError> {
    let Some(Value::Mapping(data)) = root.get_mut("data") else { return Ok(()) };
    let Some((cp, args)) = take_class(data, "data")? else { return Ok(()) };
    let name = r.data.resolve(&cp, "data.class_path")?;
    let (mut loader, mut rest) = (Mapping::new(), Mapping::new());
    for (k, v) in args {
        match k.as_str() {
            Some(key) if r.loader_keys.contains(&key) => {
                loader.insert(k, v);
            }
            Some("data_dir") => {
                rest.insert("path".into(), v);
            }
            Some(key @ ("num_workers" | "pin_memory" | "persistent_workers")) => {
                note(format!("`data.init_args.{key}` ignored: wavessm loads batches in-process"));
            }
            _ => {
                rest.insert(k, v);
            }
        }
    }
    choose(section(root, "data"), &name, rest);
    merge(section(root, "loader"), Value::Mapping(loader));
    Ok(())
}

/// A `class_path` that no rule read is an error naming where it is.
fn leftover_class_paths(v: &Value, path: &str) -> Result<(), ConfigError> {
    match v {
        Value::Mapping(m) => {
            if m.contains_key("class_path") {
                return Err(ConfigError::Key {
                    path: super::join_path(path, "class_path"),
                    msg: "`class_path` is read under model, model.init_args.network, data, trainer.logger, \
                          trainer.callbacks, optimizer and lr_scheduler only"
                        .into(),
                });
            }
            for (k, v) in m {
                let key = k.as_str().map(str::to_string).unwrap_or_else(|| inline_yaml(k));
                leftover_class_paths(v, &super::join_path(path, &key))?;
            }
            Ok(())
        }
        Value::Sequence(s) => {
            s.iter().enumerate().try_for_each(|(i, v)| leftover_class_paths(v, &super::join_path(path, &i.to_string())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_class_names() {
        for (a, b) in [("S4D", "s4d"), ("ClassificationTask", "classification_task"), ("SGD", "sgd"), ("Adam", "adam")]
        {
            assert_eq!(snake_case(a), b);
        }
        assert_eq!(snake_case("TensorBoardLogger"), "tensor_board_logger");
    }

    #[test]
    fn class_paths_resolve_through_aliases_or_snake_case() {
        let r = Registry { what: "optimizer", names: &["adam", "adamw", "sgd"], aliases: OPTIMIZER_ALIASES };
        assert_eq!(r.resolve("torch.optim.AdamW", "optimizer.class_path").unwrap(), "adamw");
        assert_eq!(r.resolve("torch.optim.SGD", "optimizer.class_path").unwrap(), "sgd");
        let e = r.resolve("torch.optim.LBFGS", "optimizer.class_path").unwrap_err().to_string();
        assert!(
            e.contains("`optimizer.class_path`")
                && e.contains("unknown class path `torch.optim.LBFGS`")
                && e.contains("adam, adamw, sgd"),
            "{e}"
        );
    }
}
