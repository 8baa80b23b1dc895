//! Lightning's `trainer:` keys that are not ours: `logger` (one or a list, `class_path` or
//! `false`), `callbacks` (EarlyStopping, ModelCheckpoint, LearningRateMonitor), `accelerator`,
//! `devices`, `precision`, `enable_progress_bar`, `default_root_dir` and the switches wavessm
//! has no use for.

use serde_yaml::{Mapping, Value};

use super::lightning::Registries;
use super::overrides::merge;
use super::{ConfigError, inline_yaml};

fn err(path: &str, msg: String) -> ConfigError {
    ConfigError::Key { path: path.into(), msg }
}

fn set(root: &mut Mapping, section: &str, key: &str, v: Value) {
    let mut inner = Mapping::new();
    inner.insert(key.into(), v);
    let mut outer = Mapping::new();
    outer.insert(section.into(), Value::Mapping(inner));
    let mut tree = Value::Mapping(std::mem::take(root));
    merge(&mut tree, Value::Mapping(outer));
    *root = match tree {
        Value::Mapping(m) => m,
        _ => unreachable!("merging mappings gives a mapping"),
    };
}

/// Moves the Lightning-only keys of `trainer` to where they live here (`root` sections).
pub fn translate(
    trainer: &mut Mapping,
    root: &mut Mapping,
    r: &Registries,
    note: &mut dyn FnMut(String),
) -> Result<(), ConfigError> {
    if let Some(l) = trainer.remove("logger") {
        let loggers = match l {
            Value::Sequence(s) => s,
            Value::Bool(false) | Value::Null => vec![],
            other => vec![other],
        };
        for (i, l) in loggers.into_iter().enumerate() {
            logger(l, &format!("trainer.logger.{i}"), root, r)?;
        }
    }
    if let Some(c) = trainer.remove("callbacks") {
        let Value::Sequence(list) = c else {
            return Err(err("trainer.callbacks", format!("must be a list, got {}", inline_yaml(&c))));
        };
        for (i, cb) in list.into_iter().enumerate() {
            callback(cb, &format!("trainer.callbacks.{i}"), trainer, root, note)?;
        }
    }
    if let Some(a) = trainer.remove("accelerator") {
        match a.as_str() {
            Some("cpu") => {
                trainer.insert("device".into(), "cpu".into());
            }
            Some("gpu" | "cuda") => {
                trainer.insert("device".into(), "cuda".into());
            }
            Some("auto") => {}
            _ => return Err(err("trainer.accelerator", format!("`{}`: use cpu, gpu, cuda or auto", inline_yaml(&a)))),
        }
    }
    // `devices` and `precision` are also keys of ours: a list of indices and null stay for the
    // trainer to check (it names the backends that lack what is asked); Lightning's device count
    // 1 and `auto` mean one device, the default.
    if let Some(d) = trainer.remove("devices") {
        match d {
            Value::Null | Value::Sequence(_) => {
                trainer.insert("devices".into(), d);
            }
            _ if d.as_u64() == Some(1) || d.as_str() == Some("auto") => {}
            _ => return Err(err("trainer.devices", format!("{}: wavessm trains on one device", inline_yaml(&d)))),
        }
    }
    if let Some(p) = trainer.get("precision")
        && !matches!(inline_yaml(p).trim_matches('"'), "32" | "32-true" | "16-mixed" | "bf16-mixed")
    {
        return Err(err(
            "trainer.precision",
            format!("{}: expected 32, 16-mixed or bf16-mixed (wavessm trains in float32)", inline_yaml(p)),
        ));
    }
    if let Some(b) = trainer.remove("enable_progress_bar") {
        let mode = if b.as_bool() == Some(false) { "never" } else { "auto" };
        trainer.insert("progress_bar".into(), mode.into());
    }
    if let Some(d) = trainer.remove("default_root_dir") {
        set(root, "logger", "save_dir", d);
    }
    for key in ["deterministic", "benchmark", "enable_checkpointing", "enable_model_summary", "num_nodes"] {
        if let Some(v) = trainer.remove(key) {
            note(format!("`trainer.{key}: {}` ignored (runs here are deterministic on CPU)", inline_yaml(&v)));
        }
    }
    Ok(())
}

/// One `trainer.logger` entry.
fn logger(l: Value, path: &str, root: &mut Mapping, r: &Registries) -> Result<(), ConfigError> {
    let Value::Mapping(mut m) = l else {
        return Err(err(path, format!("a logger is `{{class_path, init_args}}`, got {}", inline_yaml(&l))));
    };
    let cp = m.remove("class_path").and_then(|v| v.as_str().map(str::to_string));
    let cp = cp.ok_or_else(|| err(&format!("{path}.class_path"), "required key is missing".into()))?;
    let name = r.logger.resolve(&cp, &format!("{path}.class_path"))?;
    let mut args = match m.remove("init_args") {
        Some(Value::Mapping(a)) => a,
        _ => Mapping::new(),
    };
    for key in ["save_dir", "name"] {
        if let Some(v) = args.remove(key) {
            set(root, "logger", key, v);
        }
    }
    args.remove("version");
    // `metrics.csv` is always written: the CSV logger needs no key of its own.
    if name != "csv" {
        set(root, "logger", &name, Value::Mapping(args));
    }
    Ok(())
}

/// One `trainer.callbacks` entry.
fn callback(
    cb: Value,
    path: &str,
    trainer: &mut Mapping,
    root: &mut Mapping,
    note: &mut dyn FnMut(String),
) -> Result<(), ConfigError> {
    let Value::Mapping(mut m) = cb else {
        return Err(err(path, format!("a callback is `{{class_path, init_args}}`, got {}", inline_yaml(&cb))));
    };
    let cp = m.remove("class_path").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let mut args = match m.remove("init_args") {
        Some(Value::Mapping(a)) => a,
        _ => Mapping::new(),
    };
    match cp.rsplit('.').next().unwrap_or("") {
        "EarlyStopping" => {
            args.remove("verbose");
            trainer.insert("early_stopping".into(), Value::Mapping(args));
        }
        "ModelCheckpoint" => {
            for (theirs, section, ours) in [
                ("monitor", "trainer", "monitor"),
                ("mode", "trainer", "mode"),
                ("save_top_k", "checkpoint", "save_top_k"),
                ("every_n_train_steps", "checkpoint", "every_n_steps"),
            ] {
                if let Some(v) = args.remove(theirs) {
                    if section == "trainer" {
                        trainer.insert(ours.into(), v);
                    } else {
                        set(root, section, ours, v);
                    }
                }
            }
            for (k, _) in args {
                note(format!("`{path}.init_args.{}` ignored: checkpoints are last.bpk and best.bpk", inline_yaml(&k)));
            }
        }
        "LearningRateMonitor" => note(format!("`{path}` ignored: the learning rates are logged with the metrics")),
        _ => {
            return Err(err(
                &format!("{path}.class_path"),
                format!("unknown callback `{cp}`; known: EarlyStopping, ModelCheckpoint, LearningRateMonitor"),
            ));
        }
    }
    Ok(())
}
