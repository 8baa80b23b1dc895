//! Regression: mean squared error; MSE and MAE.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Options of `regression`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RegressionConfig {}

impl RegressionConfig {
    /// Mean squared error. Args: `pred`, `target` [B, K]. Returns [1].
    pub fn loss(&self, pred: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        (pred - target).square().mean()
    }
}
