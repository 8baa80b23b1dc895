//! LayerNorm with PyTorch's parameter names (`weight`, `bias`), fused on the CPU.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// `torch.nn.LayerNorm`'s default epsilon.
const EPS: f64 = 1e-5;

/// LayerNorm over the last axis with the biased variance, as `torch.nn.LayerNorm`.
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale, [H].
    pub weight: Param<Tensor<1>>,
    /// Shift, [H].
    pub bias: Param<Tensor<1>>,
}

impl LayerNorm {
    /// Identity-initialized norm of width `h`.
    pub fn new(h: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([h], device)),
            bias: Param::from_tensor(Tensor::zeros([h], device)),
        }
    }

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if crate::ops::supported(&x.device()) {
            return crate::ops::layer_norm(x, self.weight.val(), self.bias.val(), EPS);
        }
        let h = self.weight.dims()[0];
        let centered = x.clone() - x.mean_dim(2); // [B, L, H]
        let var = centered.clone().square().mean_dim(2); // [B, L, 1]
        centered / (var + EPS).sqrt() * self.weight.val().reshape([1, 1, h]) + self.bias.val().reshape([1, 1, h])
    }
}
