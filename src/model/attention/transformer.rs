//! `model.layer: transformer`: `torch.nn.TransformerEncoderLayer` (multi-head self-attention and
//! a feed-forward sub-block, each residual, pre- or post-norm), causal or bidirectional, with
//! sinusoidal, learned or rotary positions. Field names are the reference's state_dict keys.
//! Step mode keeps a KV cache.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::mha::{KvCache, MhaOptions, MultiheadAttention};
use super::norm::LayerNorm;
use super::pos::{PosKind, sinusoids};
use crate::config::ConfigError;
use crate::model::ssm::StepError;
use crate::model::{LayerOptions, SeqLayer};
use crate::ops::dropout::dropout;
use crate::ops::gelu;
use crate::weights::names::{Layout, Map};

/// Activation of the feed-forward sub-block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(0, a)` (PyTorch's default).
    #[default]
    Relu,
    /// The exact (erf) GELU.
    Gelu,
}

/// Options of the `transformer` layer (`model.layer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransformerConfig {
    /// Attention heads; must divide d_model.
    pub n_heads: usize,
    /// Causal (each position attends to itself and earlier ones; has a step mode) or
    /// bidirectional.
    pub causal: bool,
    /// Pre-norm (`x + SA(LN(x))`) or post-norm (`LN(x + SA(x))`, PyTorch's default).
    pub norm_first: bool,
    /// Feed-forward width (`dim_feedforward`); None: 4·d_model.
    pub ff: Option<usize>,
    /// Dropout on the attention probabilities, both residual branches and the feed-forward
    /// activation.
    pub dropout: f64,
    /// Feed-forward activation.
    pub activation: Activation,
    /// Positions.
    pub pos: PosKind,
    /// Positions of `pos: learned` (None: the data's sequence length).
    pub max_len: Option<usize>,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        Self {
            n_heads: 4,
            causal: true,
            norm_first: true,
            ff: None,
            dropout: 0.1,
            activation: Activation::Relu,
            pos: PosKind::Sin,
            max_len: None,
        }
    }
}

impl LayerOptions for TransformerConfig {
    type Layer = Transformer;

    /// Checks ranges; errors name the key under `path`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        if self.n_heads == 0 {
            return bad("n_heads", "must be at least 1".into());
        }
        if self.ff == Some(0) {
            return bad("ff", "must be at least 1".into());
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad("dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        match (self.pos, self.max_len) {
            (_, Some(0)) => bad("max_len", "must be at least 1".into()),
            (PosKind::Learned, None) => bad("max_len", "`pos: learned` needs the number of positions".into()),
            _ => Ok(()),
        }
    }

    /// `n_heads` must divide the width, into an even head size for `pos: rope`.
    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError::Key { path: format!("{path}.n_heads"), msg });
        if self.n_heads == 0 || !h.is_multiple_of(self.n_heads) {
            return bad(format!("{} heads do not divide d_model = {h}", self.n_heads));
        }
        if self.pos == PosKind::Rope && !(h / self.n_heads).is_multiple_of(2) {
            return bad(format!("`pos: rope` needs an even head size, d_model / n_heads = {}", h / self.n_heads));
        }
        Ok(())
    }

    /// Learned positions default to the data's length.
    fn set_l_max(&mut self, l: usize) {
        if self.pos == PosKind::Learned && self.max_len.is_none() {
            self.max_len = Some(l);
        }
    }

    /// `pool: auto` reads the last position when causal (the only one that has attended to
    /// the whole input), the mean when bidirectional.
    fn pool(&self) -> crate::model::PoolKind {
        if self.causal { crate::model::PoolKind::Last } else { crate::model::PoolKind::Mean }
    }

    /// PyTorch's init (Xavier-uniform packed projections, zero attention biases, default
    /// `Linear`s, identity norms); learned positions N(0, 0.02²).
    fn init(&self, h: usize, device: &Device) -> Transformer {
        let f = self.ff.unwrap_or(4 * h);
        let new_dropout = || DropoutConfig::new(self.dropout).init();
        let opts = MhaOptions {
            n_heads: self.n_heads.max(1),
            causal: self.causal,
            rope: self.pos == PosKind::Rope,
            dropout: new_dropout(),
        };
        Transformer {
            self_attn: MultiheadAttention::new(h, opts, device),
            linear1: LinearConfig::new(h, f).init(device),
            linear2: LinearConfig::new(f, h).init(device),
            norm1: LayerNorm::new(h, device),
            norm2: LayerNorm::new(h, device),
            pos_embedding: (self.pos == PosKind::Learned).then(|| {
                let n = self.max_len.unwrap_or(1).max(1);
                Param::from_tensor(Tensor::random([n, h], Distribution::Normal(0.0, 0.02), device))
            }),
            dropout: new_dropout(),
            dropout1: new_dropout(),
            dropout2: new_dropout(),
            norm_first: self.norm_first,
            activation: self.activation,
            pos: self.pos,
        }
    }
}

/// Conv-mode state: the KV cache of the positions seen (None before the first).
#[derive(Debug, Clone)]
pub struct TransformerState {
    /// Keys and values so far.
    pub cache: Option<KvCache>,
}

impl TransformerState {
    fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, KvCache::len)
    }
}

/// `torch.nn.TransformerEncoderLayer` (`batch_first=True`).
#[derive(Module, Debug)]
pub struct Transformer {
    /// Multi-head self-attention.
    pub self_attn: MultiheadAttention,
    /// Feed-forward H → F.
    pub linear1: Linear,
    /// Feed-forward F → H.
    pub linear2: Linear,
    /// Norm of the attention sub-block.
    pub norm1: LayerNorm,
    /// Norm of the feed-forward sub-block.
    pub norm2: LayerNorm,
    /// Learned positions [max_len, H] (`pos: learned` only).
    pub pos_embedding: Option<Param<Tensor<2>>>,
    /// Dropout after the feed-forward activation.
    pub dropout: Dropout,
    /// Dropout of the attention branch.
    pub dropout1: Dropout,
    /// Dropout of the feed-forward branch.
    pub dropout2: Dropout,
    /// Pre-norm.
    #[module(skip)]
    pub norm_first: bool,
    /// Feed-forward activation.
    #[module(skip)]
    pub activation: Activation,
    /// Positions.
    #[module(skip)]
    pub pos: PosKind,
}

impl Transformer {
    /// The layer after the cached positions; `keep` asks for the extended cache.
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the extended cache when `keep`).
    fn layer(&self, x: Tensor<3>, cache: Option<&KvCache>, keep: bool) -> (Tensor<3>, Option<KvCache>) {
        let x = self.add_positions(x, cache.map_or(0, KvCache::len)); // [B, L, H]
        if self.norm_first {
            let (a, kv) = self.self_attn.forward(self.norm1.forward(x.clone()), cache, keep);
            let h = x + dropout(&self.dropout1, a);
            (h.clone() + dropout(&self.dropout2, self.ff(self.norm2.forward(h))), kv)
        } else {
            let (a, kv) = self.self_attn.forward(x.clone(), cache, keep);
            let h = self.norm1.forward(x + dropout(&self.dropout1, a));
            (self.norm2.forward(h.clone() + dropout(&self.dropout2, self.ff(h))), kv)
        }
    }

    /// Adds sinusoids or learned rows of positions `offset..offset+L` (learned positions past
    /// `max_len` reuse the last row; step mode refuses them instead).
    ///
    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn add_positions(&self, x: Tensor<3>, offset: usize) -> Tensor<3> {
        let [_, l, h] = x.dims();
        match (&self.pos, &self.pos_embedding) {
            (PosKind::Sin, _) => x.clone() + sinusoids(offset, l, h, &x.device()),
            (PosKind::Learned, Some(pe)) => x + learned_rows(pe.val(), offset, l).unsqueeze::<3>(),
            _ => x,
        }
    }

    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn ff(&self, u: Tensor<3>) -> Tensor<3> {
        let a = self.linear1.forward(u); // [B, L, F]
        let a = match self.activation {
            Activation::Relu => relu(a),
            Activation::Gelu => gelu(a),
        };
        self.linear2.forward(dropout(&self.dropout, a))
    }

    fn no_step(&self) -> Result<(), StepError> {
        if self.self_attn.causal {
            Ok(())
        } else {
            Err(StepError::NoRecurrentForm {
                layer: Self::NAME,
                why: "`model.layer.causal: false`: bidirectional attention looks ahead",
            })
        }
    }

    fn check(&self, x: &[usize; 3], state: Option<&TransformerState>) -> Result<(), StepError> {
        self.no_step()?;
        let h = self.norm1.weight.dims()[0];
        if x[2] != h {
            return Err(StepError::Shape {
                what: "transformer input [B, L, H]",
                expected: vec![x[0], x[1], h],
                got: x.to_vec(),
            });
        }
        if let Some(c) = state.and_then(|s| s.cache.as_ref()) {
            let nh = self.self_attn.n_heads;
            let expected = vec![x[0], nh, c.len(), h / nh];
            for got in [c.k.dims(), c.v.dims()] {
                if got.to_vec() != expected {
                    return Err(StepError::Shape {
                        what: "transformer KV cache [B, nH, T, hd]",
                        expected,
                        got: got.to_vec(),
                    });
                }
            }
        }
        if let Some(pe) = &self.pos_embedding {
            let end = state.map_or(0, TransformerState::len) + x[1];
            if end > pe.dims()[0] {
                return Err(StepError::Shape {
                    what: "transformer positions (pos: learned, max_len)",
                    expected: vec![pe.dims()[0]],
                    got: vec![end],
                });
            }
        }
        Ok(())
    }
}

/// Rows `offset..offset+L` of the learned positions `pe` [n, H], clamped to the last row.
/// Returns [L, H].
fn learned_rows(pe: Tensor<2>, offset: usize, l: usize) -> Tensor<2> {
    let n = pe.dims()[0];
    let inside = n.saturating_sub(offset).min(l);
    let last = pe.clone().narrow(0, n - 1, 1); // [1, H]
    match inside {
        0 => last.repeat_dim(0, l),
        i if i == l => pe.narrow(0, offset, l),
        i => Tensor::cat(vec![pe.narrow(0, offset, i), last.repeat_dim(0, l - i)], 0),
    }
}

impl SeqLayer for Transformer {
    /// Boxed: the cache is two tensors.
    type Stepper = Box<TransformerState>;
    type State = TransformerState;
    const NAME: &'static str = "transformer";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.layer(x, None, false).0
    }

    /// An empty KV cache (`l` is not needed: the cache grows with the steps).
    fn stepper(&self, _batch: usize, _l: usize) -> Result<Box<TransformerState>, StepError> {
        self.no_step()?;
        Ok(Box::new(TransformerState { cache: None }))
    }

    /// One token: attends to the cache and itself, then caches its key and value.
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, s: &mut Box<TransformerState>, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let [b, h] = x.dims();
        let (y, next) = self.forward_state(x.reshape([b, 1, h]), Some(s))?;
        **s = next;
        Ok(y.reshape([b, h]))
    }

    /// The causal layer after the cached positions of `state` (None: none); the returned cache
    /// carries no gradient.
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the cache after `x`).
    fn forward_state(
        &self,
        x: Tensor<3>,
        state: Option<&TransformerState>,
    ) -> Result<(Tensor<3>, TransformerState), StepError> {
        self.check(&x.dims(), state)?;
        let (y, cache) = self.layer(x, state.and_then(|s| s.cache.as_ref()), true);
        Ok((y, TransformerState { cache }))
    }

    /// Continues step mode from a prompt's cache.
    fn set_state(&self, s: &mut Box<TransformerState>, state: &TransformerState) -> Result<(), StepError> {
        self.no_step()?;
        **s = state.clone();
        Ok(())
    }

    /// The cache step mode has built.
    fn state(&self, s: &Box<TransformerState>) -> Result<TransformerState, StepError> {
        self.no_step()?;
        Ok((**s).clone())
    }

    /// `TransformerEncoderLayer`'s keys under `prefix`; `Linear` weights are transposed.
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let map = match rest {
            ["self_attn", "out_proj", "weight"] | ["linear1" | "linear2", "weight"] => Map::Transpose,
            ["self_attn", "in_proj_weight" | "in_proj_bias"]
            | ["self_attn", "out_proj", "bias"]
            | ["linear1" | "linear2", "bias"]
            | ["norm1" | "norm2", "weight" | "bias"] => Map::Same,
            _ => return None,
        };
        Some((format!("{prefix}.{}", rest.join(".")), map))
    }
}
