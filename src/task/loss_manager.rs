//! The loss manager of a chain (`model.options.loss`): a weighted sum of named terms over the
//! values of the `forward` command, each term logged as `loss/<name>` and each weight
//! optionally following a schedule (a KL warm-up).
//!
//! Terms: `mse` and `l1` (mean over every element), `cross_entropy` (input logits
//! `[B, T, K]`, target `y`, the batch's class labels; mean over the labels that are neither
//! negative nor `ignore_index`, as PyTorch's `ignore_index`), `kl_gaussian` (KL of `N(mu, exp(logvar))`
//! from `N(0, 1)`, summed over the latent features, mean over rows; `input` names the
//! Gaussian's output, whose `.mu` and `.logvar` it reads, or lists both).

use std::collections::BTreeMap;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Named, check};
use crate::data::BatchTargets;
use crate::model::chain::links::Shape;
use crate::train::schedules::Schedule;

/// The batch's labels as a target name.
pub const LABELS: &str = "y";

/// The kinds of term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy of logits against the class labels `y`.
    CrossEntropy,
    /// Mean squared error against a value.
    Mse,
    /// Mean absolute error against a value.
    L1,
    /// KL divergence of a diagonal Gaussian from the standard normal.
    KlGaussian,
}

/// One value name or several.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Names {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

fn one() -> f64 {
    1.0
}

/// One term of the loss.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossTermConfig {
    /// Name logged as `loss/<name>`.
    pub name: String,
    /// The kind.
    #[serde(rename = "_name_")]
    pub kind: LossKind,
    /// Value(s) of the `forward` command the term reads.
    pub input: Names,
    /// The value compared against (`x`: the batch input, `y`: the labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Weight in the sum (the schedule's base value).
    #[serde(default = "one")]
    pub weight: f64,
    /// Schedule of the weight over optimizer steps (any `scheduler` entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Named>,
    /// `cross_entropy`: a label that is not scored, besides the negative ones (the data's -1,
    /// PyTorch's default -100), e.g. a padding class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_index: Option<i64>,
}

/// A checked term.
#[derive(Debug, Clone)]
struct Term {
    name: String,
    kind: LossKind,
    inputs: Vec<String>,
    target: Option<String>,
    weight: f64,
    schedule: Option<Schedule>,
    ignore_index: Option<i64>,
}

/// Where in training a weight is read: optimizer step, total steps, steps per epoch.
#[derive(Debug, Clone, Copy)]
pub struct At {
    /// Optimizer step.
    pub step: usize,
    /// Total optimizer steps of the run.
    pub total: usize,
    /// Optimizer steps per epoch.
    pub per_epoch: usize,
}

/// The checked terms.
#[derive(Debug, Clone)]
pub struct LossManager {
    terms: Vec<Term>,
}

/// Metric names of a loss list (`loss`, `loss/<name>`), before it is checked.
pub fn metric_names(cfg: &[LossTermConfig]) -> Vec<String> {
    std::iter::once("loss".to_string()).chain(cfg.iter().map(|t| format!("loss/{}", t.name))).collect()
}

impl LossManager {
    /// Checks `cfg` against the shapes of the `forward` command's values, naming
    /// `path.<i>.<key>` in errors.
    pub fn new(cfg: &[LossTermConfig], values: &BTreeMap<String, Shape>, path: &str) -> Result<Self, ConfigError> {
        if cfg.is_empty() {
            return Err(ConfigError::Key { path: path.into(), msg: "needs at least one term".into() });
        }
        let mut terms = Vec::new();
        for (i, t) in cfg.iter().enumerate() {
            let p = format!("{path}.{i}");
            let err = |key: &str, msg: String| ConfigError::Key { path: format!("{p}.{key}"), msg };
            if t.name.is_empty() || !t.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err("name", format!("`{}` must be letters, digits or `_`", t.name)));
            }
            if cfg[..i].iter().any(|o| o.name == t.name) {
                return Err(err("name", format!("`{}` is used by an earlier term", t.name)));
            }
            check::non_negative(&format!("{p}.weight"), t.weight)?;
            let schedule =
                t.schedule.as_ref().map(|s| Schedule::from_named(s, &format!("{p}.schedule"))).transpose()?;
            let mut inputs = match &t.input {
                Names::One(n) => vec![n.clone()],
                Names::Many(v) => v.clone(),
            };
            if t.kind == LossKind::KlGaussian && inputs.len() == 1 {
                inputs = vec![format!("{}.mu", inputs[0]), format!("{}.logvar", inputs[0])];
            }
            let want = if t.kind == LossKind::KlGaussian { 2 } else { 1 };
            if inputs.len() != want {
                return Err(err("input", format!("`{:?}` takes {want} input value(s), got {}", t.kind, inputs.len())));
            }
            let shape = |n: &String| {
                values.get(n).copied().ok_or_else(|| {
                    let names: Vec<&String> = values.keys().collect();
                    format!("no value `{n}` in command `forward`; values: {names:?}")
                })
            };
            let shapes = inputs.iter().map(shape).collect::<Result<Vec<_>, _>>().map_err(|m| err("input", m))?;
            match (t.kind, t.target.as_deref()) {
                (LossKind::KlGaussian, None) if shapes[0] == shapes[1] => {}
                (LossKind::KlGaussian, None) => {
                    return Err(err("input", format!("mean {} and log-variance {} differ", shapes[0], shapes[1])));
                }
                (LossKind::KlGaussian, Some(_)) => return Err(err("target", "kl_gaussian takes no target".into())),
                (LossKind::CrossEntropy, Some(LABELS)) => {}
                (LossKind::CrossEntropy, _) => return Err(err("target", "cross_entropy's target is `y`".into())),
                (LossKind::Mse | LossKind::L1, Some(target)) if target != LABELS => {
                    let ts = shape(&target.to_string()).map_err(|m| err("target", m))?;
                    if ts != shapes[0] {
                        return Err(err(
                            "target",
                            format!("input `{}` is {}, target `{target}` is {ts}", inputs[0], shapes[0]),
                        ));
                    }
                }
                (LossKind::Mse | LossKind::L1, _) => {
                    return Err(err("target", "mse and l1 compare against a value such as `x`".into()));
                }
            }
            if t.ignore_index.is_some() && t.kind != LossKind::CrossEntropy {
                return Err(err("ignore_index", "only `cross_entropy` takes an ignore index".into()));
            }
            let (target, ignore_index) = (t.target.clone(), t.ignore_index);
            let (name, kind, weight) = (t.name.clone(), t.kind, t.weight);
            terms.push(Term { name, kind, inputs, target, weight, schedule, ignore_index });
        }
        Ok(Self { terms })
    }

    /// The weight of every term at `at` (None: the base weights, as evaluation uses).
    pub fn weights(&self, at: Option<At>) -> Vec<f64> {
        let state = Default::default();
        self.terms
            .iter()
            .map(|t| match (&t.schedule, at) {
                (Some(s), Some(a)) => s.lr(t.weight, a.step, a.total, a.per_epoch, &state),
                _ => t.weight,
            })
            .collect()
    }

    /// The weighted sum and every term's unweighted value (by name). Args: `values` the
    /// `forward` command's values; `y` the batch's targets; `at` where in training (None:
    /// base weights).
    pub fn loss(
        &self,
        values: &BTreeMap<String, Tensor<3>>,
        y: &BatchTargets,
        at: Option<At>,
    ) -> (Tensor<1>, Vec<(String, Tensor<1>)>) {
        let mut total: Option<Tensor<1>> = None;
        let mut terms = Vec::new();
        for (t, w) in self.terms.iter().zip(self.weights(at)) {
            let v = term(t, values, y);
            let weighted = v.clone() * w;
            total = Some(match total {
                Some(s) => s + weighted,
                None => weighted,
            });
            terms.push((t.name.clone(), v));
        }
        (total.expect("at least one term (checked)"), terms)
    }
}

/// One term's unweighted value [1].
fn term(t: &Term, values: &BTreeMap<String, Tensor<3>>, y: &BatchTargets) -> Tensor<1> {
    let a = values[&t.inputs[0]].clone();
    match t.kind {
        LossKind::Mse => (a - values[t.target.as_ref().expect("checked")].clone()).square().mean(),
        LossKind::L1 => (a - values[t.target.as_ref().expect("checked")].clone()).abs().mean(),
        LossKind::KlGaussian => {
            let [b, l, _] = a.dims();
            let logvar = values[&t.inputs[1]].clone();
            let kl = (logvar.clone().exp() + a.square() - logvar - 1.0).sum() * 0.5; // [1]
            kl / (b * l) as f64
        }
        LossKind::CrossEntropy => {
            let [b, l, k] = a.dims();
            let labels: Tensor<1, Int> = match y {
                BatchTargets::Classes(c) => c.clone(),
                BatchTargets::Values(_) => unreachable!("cross_entropy needs class labels (checked with the task)"),
            };
            crate::task::lm::cross_entropy(a.reshape([b * l, k]), labels.reshape([b * l]), t.ignore_index)
        }
    }
}

/// Sums of the total and of every term over a pass, weighted by batch size.
#[derive(Debug, Clone, Default)]
pub struct TermMetrics {
    n: usize,
    sums: BTreeMap<String, f64>,
}

impl TermMetrics {
    /// Adds one batch of `rows` sequences: its total loss and terms (host values).
    pub fn update(&mut self, total: f64, terms: &[(String, f64)], rows: usize) {
        self.n += rows;
        *self.sums.entry("loss".into()).or_default() += total * rows as f64;
        for (name, v) in terms {
            *self.sums.entry(format!("loss/{name}")).or_default() += v * rows as f64;
        }
    }

    /// Means by name (`loss`, `loss/<name>`).
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let n = self.n.max(1) as f64;
        self.sums.iter().map(|(k, v)| (k.clone(), v / n)).collect()
    }
}
