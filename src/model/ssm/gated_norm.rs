//! Mamba-2's gated RMSNorm (`RMSNormGated` with `norm_before_gate=False`): the gate is applied
//! first, then each group of channels is RMS-normalized and scaled by `weight`.

use burn::module::{Module, Param};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor};

/// `rmsnorm(x·SiLU(z))·weight` over groups of `E / groups` channels.
#[derive(Module, Debug)]
pub struct GatedRmsNorm {
    /// Scale, [E].
    pub weight: Param<Tensor<1>>,
    /// Number of channel groups normalized separately.
    #[module(skip)]
    pub groups: usize,
    /// Added to the mean square.
    #[module(skip)]
    pub eps: f64,
}

impl GatedRmsNorm {
    /// A unit-scale norm of width `e` in `groups` groups (`groups` divides `e`).
    pub fn new(e: usize, groups: usize, eps: f64, device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::ones([e], device)), groups, eps }
    }

    /// Args: `x`, `z` [B, L, E]. Returns [B, L, E].
    pub fn forward(&self, x: Tensor<3>, z: Tensor<3>) -> Tensor<3> {
        let [b, l, e] = x.dims();
        let g = self.groups;
        let y = (x * silu(z)).reshape([b, l, g, e / g]); // [B, L, G, E/G]
        let rms = (y.clone().square().mean_dim(3) + self.eps).sqrt(); // [B, L, G, 1]
        (y / rms).reshape([b, l, e]) * self.weight.val().reshape([1, 1, e])
    }
}
