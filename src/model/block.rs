//! A residual block: `x + dropout(layer(norm(x)))` (prenorm) or `norm(x + dropout(layer(x)))`,
//! optionally followed by a pointwise feed-forward sub-block of the same form.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::Layer;
use crate::config::NormKind;

/// LayerNorm's epsilon (PyTorch's default).
const LAYER_NORM_EPS: f64 = 1e-5;

/// Normalization over the feature dimension H.
#[derive(Module, Debug)]
pub enum Norm {
    /// LayerNorm.
    Layer(LayerNorm),
    /// BatchNorm over (B, L) per feature.
    Batch(BatchNorm),
}

impl Norm {
    /// `None` for `NormKind::None`.
    pub fn new(kind: NormKind, h: usize, device: &Device) -> Option<Self> {
        match kind {
            NormKind::Layer => Some(Norm::Layer(LayerNormConfig::new(h).with_epsilon(LAYER_NORM_EPS).init(device))),
            NormKind::Batch => Some(Norm::Batch(BatchNormConfig::new(h).init(device))),
            NormKind::None => None,
        }
    }

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Norm::Layer(n) if crate::ops::supported(&x.device()) => {
                let beta = n.beta.as_ref().map(|b| b.val()).unwrap_or_else(|| n.gamma.val().zeros_like());
                crate::ops::layer_norm(x, n.gamma.val(), beta, LAYER_NORM_EPS)
            }
            Norm::Layer(n) => n.forward(x),
            Norm::Batch(n) => n.forward(x.swap_dims(1, 2)).swap_dims(1, 2),
        }
    }
}

/// Pointwise GELU MLP H → eH → H.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// Expansion.
    pub linear1: Linear,
    /// Projection back.
    pub linear2: Linear,
}

/// One residual block of the backbone.
#[derive(Module, Debug)]
pub struct ResidualBlock {
    /// The sequence layer.
    pub layer: Layer,
    /// Its normalization.
    pub norm: Option<Norm>,
    /// Optional feed-forward sub-block.
    pub ff: Option<FeedForward>,
    /// Normalization of the feed-forward sub-block.
    pub ff_norm: Option<Norm>,
    /// Residual dropout.
    pub dropout: Dropout,
    /// Norm placement.
    #[module(skip)]
    pub prenorm: bool,
}

impl ResidualBlock {
    /// Builds a block around `layer`.
    pub fn new(
        layer: Layer,
        h: usize,
        norm: NormKind,
        prenorm: bool,
        ff: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let ff_block = (ff > 0).then(|| FeedForward {
            linear1: LinearConfig::new(h, ff * h).init(device),
            linear2: LinearConfig::new(ff * h, h).init(device),
        });
        Self {
            layer,
            norm: Norm::new(norm, h, device),
            ff_norm: if ff > 0 { Norm::new(norm, h, device) } else { None },
            ff: ff_block,
            dropout: DropoutConfig::new(dropout).init(),
            prenorm,
        }
    }

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.residual(x, &self.norm, |z| self.layer.forward(z));
        match &self.ff {
            Some(ff) => self.residual(x, &self.ff_norm, |z| ff.linear2.forward(gelu(ff.linear1.forward(z)))),
            None => x,
        }
    }

    fn residual(&self, x: Tensor<3>, norm: &Option<Norm>, f: impl FnOnce(Tensor<3>) -> Tensor<3>) -> Tensor<3> {
        let apply = |z: Tensor<3>| match norm {
            Some(n) => n.forward(z),
            None => z,
        };
        if self.prenorm {
            x.clone() + self.dropout.forward(f(apply(x)))
        } else {
            apply(x.clone() + self.dropout.forward(f(x)))
        }
    }
}
