//! A residual block: `x + dropout(layer(norm(x)))` (prenorm) or `norm(x + dropout(layer(x)))`,
//! optionally followed by a pointwise feed-forward sub-block of the same form.

use crate::ops::gelu;
use burn::module::Module;
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, RmsNorm,
    RmsNormConfig,
};
use burn::tensor::{Device, Tensor};

use std::convert::Infallible;

use super::Layer;
use super::LayerStepper;
use super::NormKind;
use super::ssm::StepError;

/// LayerNorm's epsilon (PyTorch's default).
const LAYER_NORM_EPS: f64 = 1e-5;

/// RMSNorm's epsilon (state-spaces/mamba's `norm_epsilon`).
const RMS_NORM_EPS: f64 = 1e-5;

/// Normalization over the feature dimension H.
#[derive(Module, Debug)]
pub enum Norm {
    /// LayerNorm.
    Layer(LayerNorm),
    /// BatchNorm over (B, L) per feature.
    Batch(BatchNorm),
    /// RMSNorm: `x / sqrt(mean(x²) + eps) · γ`.
    Rms(RmsNorm),
}

impl Norm {
    /// `None` for `NormKind::None`.
    pub fn new(kind: NormKind, h: usize, device: &Device) -> Option<Self> {
        match kind {
            NormKind::Layer => Some(Norm::Layer(LayerNormConfig::new(h).with_epsilon(LAYER_NORM_EPS).init(device))),
            NormKind::Batch => Some(Norm::Batch(BatchNormConfig::new(h).init(device))),
            NormKind::Rms => Some(Norm::Rms(RmsNormConfig::new(h).with_epsilon(RMS_NORM_EPS).init(device))),
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
            Norm::Rms(n) => n.forward(x),
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
        let Ok(x) = self.residual::<Infallible>(x, &self.norm, |z| Ok(self.layer.forward(z)));
        self.feed_forward(x)
    }

    /// One recurrent step of the block: [`ResidualBlock::forward`] applied to the next time
    /// step (norms and feed-forward are pointwise in time).
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    pub fn step(&self, stepper: &mut LayerStepper, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let [b, h] = x.dims();
        let step = |z: Tensor<3>| Ok(self.layer.step(stepper, z.reshape([b, h]))?.reshape([b, 1, h]));
        let x = self.residual(x.reshape([b, 1, h]), &self.norm, step)?; // [B, 1, H]
        Ok(self.feed_forward(x).reshape([b, h]))
    }

    /// Conv mode from the zero state over `x`, with the state the layer ends in (to continue in
    /// step mode, e.g. after a prompt).
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the layer's state after `x`).
    pub fn forward_state(&self, x: Tensor<3>) -> Result<(Tensor<3>, super::LayerState), StepError> {
        let mut state = None;
        let x = self.residual(x, &self.norm, |z| {
            let (y, s) = self.layer.forward_state(z, None)?;
            state = Some(s);
            Ok(y)
        })?;
        Ok((self.feed_forward(x), state.expect("the layer ran")))
    }

    /// The feed-forward sub-block, if any. Args: `x` [B, L, H]. Returns [B, L, H].
    fn feed_forward(&self, x: Tensor<3>) -> Tensor<3> {
        match &self.ff {
            Some(ff) => {
                let Ok(y) = self
                    .residual::<Infallible>(x, &self.ff_norm, |z| Ok(ff.linear2.forward(gelu(ff.linear1.forward(z)))));
                y
            }
            None => x,
        }
    }

    /// `x + dropout(f(norm(x)))` (prenorm) or `norm(x + dropout(f(x)))`, for a fallible `f`.
    fn residual<E>(
        &self,
        x: Tensor<3>,
        norm: &Option<Norm>,
        f: impl FnOnce(Tensor<3>) -> Result<Tensor<3>, E>,
    ) -> Result<Tensor<3>, E> {
        let apply = |z: Tensor<3>| match norm {
            Some(n) => n.forward(z),
            None => z,
        };
        Ok(if self.prenorm {
            x.clone() + crate::ops::dropout::dropout(&self.dropout, f(apply(x))?)
        } else {
            apply(x.clone() + crate::ops::dropout::dropout(&self.dropout, f(x)?))
        })
    }
}
