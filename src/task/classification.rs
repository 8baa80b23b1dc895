//! Classification: cross-entropy with optional label smoothing; accuracy, and for two classes
//! the binary-detection metrics of [`super::binary`].

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Options of `classification`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationConfig {
    /// Label smoothing ε (as `torch.nn.CrossEntropyLoss(label_smoothing=ε)`).
    #[serde(default)]
    pub label_smoothing: f64,
    /// Two classes: the false-positive rate up to which `pauc` integrates (aframe's 1e-3).
    #[serde(default = "default_max_fpr")]
    pub max_fpr: f64,
    /// Two classes: false-positive rates at which the detection efficiency `eff@fpr<r>` is
    /// reported.
    #[serde(default = "default_fprs")]
    pub efficiency_fprs: Vec<f64>,
}

/// aframe's partial-AUROC limit.
pub(super) fn default_max_fpr() -> f64 {
    1e-3
}
/// The false-positive rates of the reported efficiencies.
pub(super) fn default_fprs() -> Vec<f64> {
    vec![1e-3, 1e-2, 1e-1]
}

impl Default for ClassificationConfig {
    fn default() -> Self {
        Self { label_smoothing: 0.0, max_fpr: default_max_fpr(), efficiency_fprs: default_fprs() }
    }
}

impl ClassificationConfig {
    /// Checks ranges, naming `{path}.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let at = |k: &str| crate::config::join_path(path, k);
        crate::config::check::fraction(&at("label_smoothing"), self.label_smoothing)?;
        super::binary::check_rates(path, self.max_fpr, &self.efficiency_fprs)
    }

    /// Mean cross-entropy. Args: `logits` [B, K], `targets` [B]. Returns [1].
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [b, k] = logits.dims();
        let logp = log_softmax(logits, 1); // [B, K]
        let nll = -logp.clone().gather(1, targets.reshape([b, 1])).mean(); // [1]
        let eps = self.label_smoothing;
        if eps > 0.0 {
            let smooth = -logp.sum_dim(1).mean() / k as f64;
            nll * (1.0 - eps) + smooth * eps
        } else {
            nll
        }
    }
}
