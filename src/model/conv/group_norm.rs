//! ml4gw's `GroupNorm1D`: statistics over the time axis and the channels of each group, with
//! the biased variance `E[x²] − E[x]²`, and a per-channel affine stored as [C, 1] (its
//! state_dict shapes). See the golden README (`gw/groupnorm1d.json`).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

/// Group normalization of [B, C, L] inputs.
#[derive(Module, Debug)]
pub struct GroupNorm1d {
    /// Per-channel scale [C, 1] (ones at init).
    pub weight: Param<Tensor<2>>,
    /// Per-channel shift [C, 1] (zeros at init).
    pub bias: Param<Tensor<2>>,
    /// Number of groups G (dividing C).
    #[module(skip)]
    pub groups: usize,
    /// Added to the variance.
    #[module(skip)]
    pub eps: f64,
}

impl GroupNorm1d {
    /// `min(groups, channels)` groups, as ml4gw 0.8.5 caps them; `groups` must then divide C
    /// (checked by the model's options).
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([channels, 1], device)),
            bias: Param::from_tensor(Tensor::zeros([channels, 1], device)),
            groups: groups.min(channels).max(1),
            eps: 1e-5,
        }
    }

    /// Args: `x` [B, C, L]. Returns [B, C, L].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, c, l] = x.dims();
        let g = self.groups;
        let xg = x.reshape([b, g, (c / g) * l]); // [B, G, C/G·L]
        let mean = xg.clone().mean_dim(2); // [B, G, 1]
        let var = xg.clone().square().mean_dim(2) - mean.clone().square(); // [B, G, 1]
        let y = (xg - mean) / (var + self.eps).sqrt(); // [B, G, C/G·L]
        let y = y.reshape([b, c, l]); // [B, C, L]
        y * self.weight.val().unsqueeze::<3>() + self.bias.val().unsqueeze::<3>()
    }
}
