//! A chain's commands (`model.options.commands.<name>`): named lists of `{link, method,
//! kwargs}` steps, checked before anything is built, and run over named values.
//!
//! Values: `x` is the batch input; each step reads the previous step's output (the first
//! step `x`) unless `input` names another value, and writes its output under `out` (default:
//! the link's name) plus side outputs as `<out>.<side>` (`latent.mu`, `latent.logvar`).

use std::collections::BTreeMap;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use serde_yaml::Mapping;

use super::links::{Link, LinkSpec, Shape, Steps};
use crate::config::ConfigError;

/// The batch input's value name.
pub const INPUT: &str = "x";

fn forward() -> String {
    "forward".into()
}

/// One step of a command.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// The link to call.
    pub link: String,
    /// Its method.
    #[serde(default = "forward")]
    pub method: String,
    /// Keyword arguments of the method.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub kwargs: Mapping,
    /// The value read (default: the previous step's output; `x` for the first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The name of the output (default: the link's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out: Option<String>,
}

/// The shapes every value of a command has, and its last output.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Values by name.
    pub values: BTreeMap<String, Shape>,
    /// Name of the last step's output.
    pub last: String,
}

/// Checks `steps` of command `name`: links exist, methods and kwargs exist, shapes connect.
/// `widths` holds each link's input width, bound by its first use (or its `d_input`). `x` is
/// the batch input's shape and `k` the task's output size.
pub fn check(
    name: &str,
    steps: &[StepConfig],
    links: &BTreeMap<String, LinkSpec>,
    widths: &mut BTreeMap<String, usize>,
    x: Shape,
    k: usize,
    path: &str,
) -> Result<Checked, ConfigError> {
    let mut values = BTreeMap::from([(INPUT.to_string(), x)]);
    let mut prev = INPUT.to_string();
    if steps.is_empty() {
        return Err(ConfigError::Key { path: path.into(), msg: format!("command `{name}` has no steps") });
    }
    for (i, s) in steps.iter().enumerate() {
        let err = |msg: String| ConfigError::Key {
            path: format!("{path}.{i}"),
            msg: format!("command `{name}`, step {i} (`{}.{}`): {msg}", s.link, s.method),
        };
        let Some(spec) = links.get(&s.link) else {
            let names: Vec<String> = links.keys().cloned().collect();
            return Err(err(format!("no link `{}`; links: {}", s.link, names.join(", "))));
        };
        if !spec.methods().contains(&s.method.as_str()) {
            return Err(err(format!("no method `{}`; `{}` has: {}", s.method, s.link, spec.methods().join(", "))));
        }
        for (key, v) in &s.kwargs {
            let key = key.as_str().unwrap_or("?");
            if !spec.kwargs(&s.method).contains(&key) {
                return Err(err(format!("no keyword argument `{key}`; it takes: {:?}", spec.kwargs(&s.method))));
            }
            if !v.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) {
                return Err(err(format!("`{key}` must be a finite number >= 0")));
            }
        }
        let input_name = s.input.clone().unwrap_or(prev.clone());
        let Some(&input) = values.get(&input_name) else {
            let names: Vec<&String> = values.keys().collect();
            return Err(err(format!("no value `{input_name}` yet; values so far: {names:?}")));
        };
        if spec.has_input_width() {
            let want = *widths.entry(s.link.clone()).or_insert(spec.d_input.unwrap_or(input.width));
            if want != input.width {
                let takes = Shape { width: want, ..input };
                return Err(err(format!("gets `{input_name}` of shape {input}, but `{}` takes {takes}", s.link)));
            }
        }
        let outs = spec.outputs(input, k).map_err(|m| err(format!("gets `{input_name}` of shape {input}, but {m}")))?;
        let out = s.out.clone().unwrap_or(s.link.clone());
        for (side, shape) in outs {
            let key = if side.is_empty() { out.clone() } else { format!("{out}.{side}") };
            values.insert(key, shape);
        }
        prev = out;
    }
    Ok(Checked { values, last: prev })
}

/// Checks that `forward` ends in the model output `[B, 1|L, K]`.
pub fn check_output(c: &Checked, k: usize, path: &str) -> Result<bool, ConfigError> {
    let last = c.values[&c.last];
    if last.width != k {
        let want = Shape { width: k, ..last };
        return Err(ConfigError::Key {
            path: path.into(),
            msg: format!(
                "command `forward` ends in `{}` of shape {last}, but the task needs {want} (set the last link's `d_output`)",
                c.last
            ),
        });
    }
    Ok(last.steps == Steps::All)
}

/// Runs `steps` over the batch input `x` [B, L, D]; returns every value by name.
pub fn run(
    steps: &[StepConfig],
    links: &BTreeMap<String, Link>,
    x: Tensor<3>,
    lengths: Option<&[usize]>,
) -> (BTreeMap<String, Tensor<3>>, String) {
    let l = x.dims()[1];
    let mut values = BTreeMap::from([(INPUT.to_string(), x)]);
    let mut prev = INPUT.to_string();
    for s in steps {
        let input = values[s.input.as_ref().unwrap_or(&prev)].clone();
        let out = s.out.clone().unwrap_or(s.link.clone());
        for (side, t) in links[&s.link].call(&s.method, &s.kwargs, input, l, lengths) {
            let key = if side.is_empty() { out.clone() } else { format!("{out}.{side}") };
            values.insert(key, t);
        }
        prev = out;
    }
    (values, prev)
}
