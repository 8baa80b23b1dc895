//! The callbacks, one file each (registered in [`super::callback::REGISTRY`]).

pub mod early_stopping;
pub mod mlflow;
mod mlflow_rest;
pub mod tensorboard;
pub mod tfevents;
pub mod wandb;

use std::collections::BTreeMap;

use serde_yaml::Value;

use crate::experiment::ExperimentConfig;

/// The resolved config as `dotted.key → scalar` (lists and empty maps as one line of JSON), the
/// loggers' hyperparameters.
pub fn flat_config(cfg: &ExperimentConfig) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                for (k, v) in m {
                    let k = k.as_str().map(str::to_string).unwrap_or_else(|| crate::config::inline_yaml(k));
                    walk(&crate::config::join_path(prefix, &k), v, out);
                }
            }
            Value::Tagged(t) => walk(prefix, &t.value, out),
            Value::Sequence(_) | Value::Mapping(_) => {
                // One line in flow style (`[0.9,0.999]`, `{}`).
                out.insert(prefix.to_string(), Value::String(serde_json::to_string(v).unwrap_or_default()));
            }
            scalar => {
                out.insert(prefix.to_string(), scalar.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", &serde_yaml::to_value(cfg).expect("config serializes"), &mut out);
    out
}

/// A flat config value as text.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => crate::config::inline_yaml(other),
    }
}
