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
        cross_entropy(logits, targets, None)
    }
}

/// Mean cross-entropy over the scored rows, as PyTorch's `cross_entropy` with `ignore_index`:
/// rows whose target is negative (the data's -1, PyTorch's default -100) or `ignore_index`
/// count nowhere. Args: `logits` [R, K], `targets` [R]. Returns [1] (0 when no row is scored).
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, ignore_index: Option<i64>) -> Tensor<1> {
    let [r, _] = logits.dims();
    // burn's cross-entropy has no ignore index: gather a valid class, then mask the row out.
    let mut keep = targets.clone().greater_equal_elem(0); // [R]
    if let Some(i) = ignore_index {
        keep = keep.bool_and(targets.clone().not_equal_elem(i));
    }
    let mask = keep.float(); // [R]
    let safe = targets.clamp_min(0).reshape([r, 1]); // [R, 1]
    let picked = log_softmax(logits, 1).gather(1, safe).reshape([r]); // [R]
    let count = mask.clone().sum().clamp_min(1.0); // [1]
    -(picked * mask).sum() / count
}
