//! Per-step token prediction (language modeling, copying): cross-entropy at every scored step;
//! token accuracy and perplexity. Steps whose target is -1 (the data's ignore index) count
//! nowhere, as PyTorch's `ignore_index`.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Options of `lm` (none yet).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LmConfig {}

impl LmConfig {
    /// Mean cross-entropy over the scored rows. Args: `logits` [R, K], `targets` [R] (-1:
    /// unscored). Returns [1] (0 when no row is scored).
    pub fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        let [r, _] = logits.dims();
        // burn's cross-entropy has no ignore index: gather a valid class, then mask the row out.
        let mask = targets.clone().greater_equal_elem(0).float(); // [R]
        let safe = targets.clamp_min(0).reshape([r, 1]); // [R, 1]
        let picked = log_softmax(logits, 1).gather(1, safe).reshape([r]); // [R]
        let count = mask.clone().sum().clamp_min(1.0); // [1]
        -(picked * mask).sum() / count
    }
}
