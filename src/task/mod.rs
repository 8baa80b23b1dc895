//! Tasks own the loss, the metrics and the decoder's output size; selected by `task._name_`.

pub mod autoencoder;
pub mod binary;
pub mod classification;
pub mod lm;
pub mod loss_manager;
pub mod regression;
pub mod shifted_pearson;

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::config::ConfigError;
use crate::data::{Batch, BatchTargets, DataModule, TargetKind};

crate::registry! {
    /// Tasks selectable as `task` (one line per task).
    pub enum TaskConfig ("task") {
        "classification" => Classification(classification::ClassificationConfig),
        "regression" => Regression(regression::RegressionConfig),
        "lm" => Lm(lm::LmConfig),
        "autoencoder" => Autoencoder(autoencoder::AutoencoderConfig),
        "adaptivelm" => AdaptiveLm(crate::model::adaptive::AdaptiveConfig),
    }
}

impl TaskConfig {
    /// Checks the task's numeric options under `path`.
    pub fn validate(&self, path: &str) -> Result<(), crate::config::ConfigError> {
        match self {
            TaskConfig::Classification(c) => c.validate(path),
            TaskConfig::Autoencoder(a) => a.validate(path),
            TaskConfig::AdaptiveLm(a) => a.validate(path),
            TaskConfig::Regression(_) | TaskConfig::Lm(_) => Ok(()),
        }
    }
}

impl TaskConfig {
    /// Decoder outputs K for a dataset's targets and `d_input` features per step (an
    /// autoencoder reconstructs them), or why the pair does not fit.
    pub fn d_output(&self, kind: TargetKind, d_input: usize) -> Result<usize, ConfigError> {
        let mismatch = |want: &str| ConfigError::Key {
            path: "task._name_".into(),
            msg: format!("task `{}` needs {want}, but the dataset has {kind:?} targets", self.name()),
        };
        match (self, kind) {
            (TaskConfig::Classification(_), TargetKind::Classes(k)) => Ok(k),
            (TaskConfig::Regression(_), TargetKind::Values(k)) => Ok(k),
            (TaskConfig::Lm(_) | TaskConfig::AdaptiveLm(_), TargetKind::Tokens(v)) => Ok(v),
            (TaskConfig::Autoencoder(_), TargetKind::Classes(_)) => Ok(d_input),
            (TaskConfig::Autoencoder(_), _) => Err(mismatch("labels 0/1 (1 = signal) for its AUROC")),
            (TaskConfig::Classification(_), _) => Err(mismatch("class labels")),
            (TaskConfig::Regression(_), _) => Err(mismatch("real-valued targets")),
            (TaskConfig::Lm(_), _) => Err(mismatch("per-step tokens (e.g. `data=wikitext103`, `data=copying`)")),
            (TaskConfig::AdaptiveLm(_), _) => Err(mismatch("per-step tokens of a text (e.g. `data=wikitext103`)")),
        }
    }

    /// Whether the task predicts every step (the model must not pool).
    pub fn per_step(&self) -> bool {
        matches!(self, TaskConfig::Lm(_) | TaskConfig::AdaptiveLm(_) | TaskConfig::Autoencoder(_))
    }

    /// The data as this task trains on it, checked against the task's needs (`autoencoder`:
    /// two or more detectors, binary labels, and by default only the injections to train on).
    pub fn prepare_data(&self, data: DataModule) -> Result<DataModule, ConfigError> {
        match (self, data.target_kind()) {
            (TaskConfig::Autoencoder(a), TargetKind::Classes(k)) => {
                a.check_data(data.d_input(), data.train.seq_len, k)?;
                a.training_data(data)
            }
            _ => Ok(data),
        }
    }

    /// Mean loss of a batch. Args: `out` [R, K]: one row per sequence, or per step for `lm`
    /// and `autoencoder`.
    pub fn loss(&self, out: Tensor<2>, batch: &Batch) -> Tensor<1> {
        self.loss_and_rows(out, batch).0
    }

    /// Mean loss of a batch and the rows its metrics score: the outputs themselves, or for
    /// `autoencoder` each window's score [B, 1]. Args: `out` [R, K] as for [`Self::loss`].
    pub fn loss_and_rows(&self, out: Tensor<2>, batch: &Batch) -> (Tensor<1>, Tensor<2>) {
        let y = &batch.y;
        match (self, y) {
            (TaskConfig::Classification(c), BatchTargets::Classes(t)) => (c.loss(out.clone(), t.clone()), out),
            (TaskConfig::Lm(l), BatchTargets::Classes(t)) => (l.loss(out.clone(), t.clone()), out),
            // The adaptive softmax's outputs are log-probabilities: log_softmax leaves them as
            // they are, so this is the reference's adaptive NLL.
            (TaskConfig::AdaptiveLm(_), BatchTargets::Classes(t)) => {
                (lm::LmConfig::default().loss(out.clone(), t.clone()), out)
            }
            (TaskConfig::Regression(r), BatchTargets::Values(t)) => (r.loss(out.clone(), t.clone()), out),
            (TaskConfig::Autoencoder(a), BatchTargets::Classes(_)) => {
                let score = a.score(out, &batch.x); // [B]
                let [b] = score.dims();
                (-score.clone().mean(), score.reshape([b, 1]))
            }
            _ => unreachable!("d_output() checked that task and targets agree"),
        }
    }

    /// A fresh metric accumulator for an evaluation pass.
    pub fn metrics(&self) -> Metrics {
        let binary = match self {
            TaskConfig::Classification(c) => Some((c.max_fpr, c.efficiency_fprs.clone())),
            TaskConfig::Autoencoder(a) => Some((a.max_fpr, a.efficiency_fprs.clone())),
            _ => None,
        };
        Metrics {
            classification: !matches!(self, TaskConfig::Regression(_)),
            perplexity: matches!(self, TaskConfig::Lm(_) | TaskConfig::AdaptiveLm(_)),
            anomaly: matches!(self, TaskConfig::Autoencoder(_)),
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
    /// Rows are one detection score per window (`autoencoder`), ranked against the labels.
    anomaly: bool,
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
    /// `f32` (for `autoencoder` the scores [B, 1]); rows whose class is -1 are not scored.
    pub fn update(&mut self, out: &[f32], k: usize, y: &BatchTargets, loss: f64) {
        let rows = out.len() / k;
        self.k = k;
        if self.anomaly {
            let BatchTargets::Classes(t) = y else { unreachable!("d_output() checked the labels") };
            let labels: Vec<i64> = t.clone().try_into_vec_as::<i64>().expect("int labels");
            for (&s, &label) in out.iter().zip(&labels).filter(|(_, l)| **l >= 0) {
                self.scores.push(s as f64);
                self.positive.push(label == 1);
            }
            self.n += rows;
            self.loss_sum += loss * rows as f64;
            return;
        }
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
    /// `pauc` and `eff@fpr<r>`, exact over every row seen; ½, ½ and 0 while a class is missing;
    /// `autoencoder`: `loss` and those three on its scores).
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        let n = self.n.max(1) as f64;
        m.insert("loss".into(), self.loss_sum / n);
        if self.perplexity {
            m.insert("perplexity".into(), (self.loss_sum / n).exp());
        }
        if self.classification {
            if !self.anomaly {
                m.insert("accuracy".into(), self.correct as f64 / n);
            }
            let binary = self.anomaly || (self.k == 2 && !self.perplexity);
            if let Some((max_fpr, fprs)) = self.binary.as_ref().filter(|_| binary) {
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
