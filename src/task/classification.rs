//! Classification: cross-entropy with optional label smoothing; accuracy.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Options of `classification`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ClassificationConfig {
    /// Label smoothing ε (as `torch.nn.CrossEntropyLoss(label_smoothing=ε)`).
    #[serde(default)]
    pub label_smoothing: f64,
}

impl ClassificationConfig {
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
