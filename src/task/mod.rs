//! Tasks own the loss, the metrics and the decoder's output size; selected by `task._name_`.

pub mod binary;
pub mod classification;
pub mod lm;
pub mod loss_manager;
pub mod regression;
pub mod shifted_pearson;

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::config::ConfigError;
use crate::data::{BatchTargets, TargetKind};

crate::registry! {
    /// Tasks selectable as `task` (one line per task).
    pub enum TaskConfig ("task") {
        "classification" => Classification(classification::ClassificationConfig),
        "regression" => Regression(regression::RegressionConfig),
        "lm" => Lm(lm::LmConfig),
        "adaptivelm" => AdaptiveLm(crate::model::adaptive::AdaptiveConfig),
    }
}

impl TaskConfig {
    /// Checks the task's numeric options under `path`.
    pub fn validate(&self, path: &str) -> Result<(), crate::config::ConfigError> {
        match self {
            TaskConfig::Classification(c) => c.validate(path),
            TaskConfig::AdaptiveLm(a) => a.validate(path),
            TaskConfig::Regression(_) | TaskConfig::Lm(_) => Ok(()),
        }
    }
}

impl TaskConfig {
    /// Decoder outputs K for a dataset's targets, or why the pair does not fit.
    pub fn d_output(&self, kind: TargetKind) -> Result<usize, ConfigError> {
        let mismatch = |want: &str| ConfigError::Key {
            path: "task._name_".into(),
            msg: format!("task `{}` needs {want}, but the dataset has {kind:?} targets", self.name()),
        };
        match (self, kind) {
            (TaskConfig::Classification(_), TargetKind::Classes(k)) => Ok(k),
            (TaskConfig::Regression(_), TargetKind::Values(k)) => Ok(k),
            (TaskConfig::Lm(_) | TaskConfig::AdaptiveLm(_), TargetKind::Tokens(v)) => Ok(v),
            (TaskConfig::Classification(_), _) => Err(mismatch("class labels")),
            (TaskConfig::Regression(_), _) => Err(mismatch("real-valued targets")),
            (TaskConfig::Lm(_), _) => Err(mismatch("per-step tokens (e.g. `data=wikitext103`, `data=copying`)")),
            (TaskConfig::AdaptiveLm(_), _) => Err(mismatch("per-step tokens of a text (e.g. `data=wikitext103`)")),
        }
    }

    /// Whether the task predicts every step (the model must not pool).
    pub fn per_step(&self) -> bool {
        matches!(self, TaskConfig::Lm(_) | TaskConfig::AdaptiveLm(_))
    }

    /// Mean loss of a batch. Args: `out` [R, K]: one row per sequence, or per step for `lm`.
    pub fn loss(&self, out: Tensor<2>, y: &BatchTargets) -> Tensor<1> {
        match (self, y) {
            (TaskConfig::Classification(c), BatchTargets::Classes(t)) => c.loss(out, t.clone()),
            (TaskConfig::Lm(l), BatchTargets::Classes(t)) => l.loss(out, t.clone()),
            // The adaptive softmax's outputs are log-probabilities: log_softmax leaves them as
            // they are, so this is the reference's adaptive NLL.
            (TaskConfig::AdaptiveLm(_), BatchTargets::Classes(t)) => lm::LmConfig::default().loss(out, t.clone()),
            (TaskConfig::Regression(r), BatchTargets::Values(t)) => r.loss(out, t.clone()),
            _ => unreachable!("d_output() checked that task and targets agree"),
        }
    }

    /// A fresh metric accumulator for an evaluation pass.
    pub fn metrics(&self) -> Metrics {
        let binary = match self {
            TaskConfig::Classification(c) => Some((c.max_fpr, c.efficiency_fprs.clone())),
            _ => None,
        };
        Metrics {
            classification: !matches!(self, TaskConfig::Regression(_)),
            perplexity: self.per_step(),
            binary,
            ..Default::default()
        }
    }

    /// Names of the metrics an evaluation with `k` outputs reports (`trainer.monitor` picks one).
    pub fn metric_names(&self, k: usize) -> Vec<String> {
        let mut m = self.metrics();
        m.k = k;
        m.finish().into_keys().collect()
    }
}

/// Sums over batches, turned into metric values at the end of a pass.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    classification: bool,
    perplexity: bool,
    n: usize,
    loss_sum: f64,
    correct: usize,
    sq_err: f64,
    abs_err: f64,
    values: usize,
    /// Classification: `max_fpr` and the efficiency rates, used when there are two classes.
    binary: Option<(f64, Vec<f64>)>,
    /// Outputs per row seen by `update`.
    k: usize,
    /// Two classes: each scored row's log-odds of class 1, and whether it is class 1.
    scores: Vec<f64>,
    positive: Vec<bool>,
}

impl Metrics {
    /// Adds one batch whose mean loss is `loss`. Args: `out` [R, K] on the host as row-major
    /// `f32`; rows whose class is -1 are not scored.
    pub fn update(&mut self, out: &[f32], k: usize, y: &BatchTargets, loss: f64) {
        let rows = out.len() / k;
        self.k = k;
        let binary = k == 2 && self.binary.is_some() && !self.perplexity;
        match y {
            BatchTargets::Classes(t) => {
                let labels: Vec<i64> = t.clone().try_into_vec_as::<i64>().expect("int labels");
                let mut scored = 0;
                for (row, &label) in out.chunks(k).zip(&labels).filter(|(_, l)| **l >= 0) {
                    scored += 1;
                    if binary {
                        self.scores.push(row[1] as f64 - row[0] as f64);
                        self.positive.push(label == 1);
                    }
                    if argmax(row) == label as usize {
                        self.correct += 1;
                    }
                }
                self.n += scored;
                self.loss_sum += loss * scored as f64;
            }
            BatchTargets::Values(t) => {
                self.n += rows;
                self.loss_sum += loss * rows as f64;
                let vals: Vec<f32> = t.clone().try_into_vec_as::<f32>().expect("float targets");
                for (p, v) in out.iter().zip(&vals) {
                    let e = (*p - *v) as f64;
                    self.sq_err += e * e;
                    self.abs_err += e.abs();
                }
                self.values += vals.len();
            }
        }
    }

    /// Metric values by name (`loss`, `accuracy` or `mse`/`mae`; with two classes also `auroc`,
    /// `pauc` and `eff@fpr<r>`, exact over every row seen; ½, ½ and 0 while a class is missing).
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        let n = self.n.max(1) as f64;
        m.insert("loss".into(), self.loss_sum / n);
        if self.perplexity {
            m.insert("perplexity".into(), (self.loss_sum / n).exp());
        }
        if self.classification {
            m.insert("accuracy".into(), self.correct as f64 / n);
            if let Some((max_fpr, fprs)) = self.binary.as_ref().filter(|_| self.k == 2 && !self.perplexity) {
                let (s, p) = (&self.scores, &self.positive);
                m.insert("auroc".into(), binary::auroc(s, p).unwrap_or(0.5));
                m.insert("pauc".into(), binary::partial_auroc(s, p, *max_fpr).unwrap_or(0.5));
                for r in fprs {
                    m.insert(format!("eff@fpr{r}"), binary::efficiency_at(s, p, *r).unwrap_or(0.0));
                }
            }
        } else {
            let v = self.values.max(1) as f64;
            m.insert("mse".into(), self.sq_err / v);
            m.insert("mae".into(), self.abs_err / v);
        }
        m
    }
}

/// Index of the largest value (first on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best }).0
}
