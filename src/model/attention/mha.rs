//! Multi-head self-attention with `torch.nn.MultiheadAttention`'s parameters. On the CPU the
//! attention is one fused op (`ops::attention`); elsewhere it runs in blocks of queries so that
//! no more than a [QUERY_BLOCK, L] score block per (batch, head) exists at a time in the forward
//! pass.

use burn::module::{Module, Param};
use burn::nn::{Dropout, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Distribution, Tensor};

use super::pos::rope;
use crate::ops::attention::Opts;
use crate::ops::dropout::{active_rate, draw_seed, dropout};

/// Queries per score block: [256, L] scores per (batch, head) at L = 4096 is 4 MiB.
pub const QUERY_BLOCK: usize = 256;

/// Keys and values of the positions seen so far, after the rotary embedding: [B, nH, T, hd]
/// each.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Keys [B, nH, T, hd].
    pub k: Tensor<4>,
    /// Values [B, nH, T, hd].
    pub v: Tensor<4>,
}

impl KvCache {
    /// Cached positions T.
    pub fn len(&self) -> usize {
        self.k.dims()[2]
    }

    /// Whether no position is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `torch.nn.MultiheadAttention` (self-attention, packed input projection).
#[derive(Module, Debug)]
pub struct MultiheadAttention {
    /// Packed Q, K, V projections, [3H, H] (PyTorch's layout: rows `[0, H)` are `W_q`).
    pub in_proj_weight: Param<Tensor<2>>,
    /// Packed Q, K, V biases, [3H].
    pub in_proj_bias: Param<Tensor<1>>,
    /// Output projection H → H.
    pub out_proj: Linear,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
    /// Number of heads nH.
    #[module(skip)]
    pub n_heads: usize,
    /// Whether query `i` attends to keys `0..=i` only.
    #[module(skip)]
    pub causal: bool,
    /// Whether queries and keys get rotary embeddings.
    #[module(skip)]
    pub rope: bool,
}

/// Options that shape [`MultiheadAttention::new`].
pub struct MhaOptions {
    /// Heads.
    pub n_heads: usize,
    /// Causal mask.
    pub causal: bool,
    /// Rotary embeddings.
    pub rope: bool,
    /// Dropout on the attention probabilities.
    pub dropout: Dropout,
}

impl MultiheadAttention {
    /// PyTorch's init: Xavier-uniform `in_proj_weight`, zero biases.
    pub fn new(h: usize, o: MhaOptions, device: &Device) -> Self {
        let bound = (6.0 / (h + 3 * h) as f64).sqrt();
        let mut out_proj = LinearConfig::new(h, h).init(device);
        out_proj.bias = Some(Param::from_tensor(Tensor::zeros([h], device)));
        Self {
            in_proj_weight: Param::from_tensor(Tensor::random(
                [3 * h, h],
                Distribution::Uniform(-bound, bound),
                device,
            )),
            in_proj_bias: Param::from_tensor(Tensor::zeros([3 * h], device)),
            out_proj,
            dropout: o.dropout,
            n_heads: o.n_heads,
            causal: o.causal,
            rope: o.rope,
        }
    }

    /// Self-attention of `u` after the cached positions (None: none); `keep` asks for the cache
    /// extended by `u`'s keys and values (step mode), which costs a copy of them.
    ///
    /// Args: `u` [B, L, H]. Returns ([B, L, H], the extended cache when `keep`).
    pub fn forward(&self, u: Tensor<3>, cache: Option<&KvCache>, keep: bool) -> (Tensor<3>, Option<KvCache>) {
        let ([b, l, h], u_device) = (u.dims(), u.device());
        let (nh, offset) = (self.n_heads, cache.map_or(0, KvCache::len));
        let hd = h / nh;
        let w = self.in_proj_weight.val().transpose().unsqueeze::<3>(); // [1, H, 3H]
        let qkv = u.matmul(w) + self.in_proj_bias.val().reshape([1, 1, 3 * h]); // [B, L, 3H]
        // A head's columns are strided in [B, L, 3H], so the reshape copies them.
        let heads = |i: usize| qkv.clone().narrow(2, i * h, h).reshape([b, l, nh, hd]).swap_dims(1, 2); // [B, nH, L, hd]
        let kept = |k: Tensor<4>, v: Tensor<4>| keep.then(|| KvCache { k: k.detach(), v: v.detach() });
        if cache.is_none() && !self.rope && crate::ops::supported(&u_device) {
            // The fused op reads the heads in place and writes them concatenated.
            let o = crate::ops::attention::attention_packed(qkv.clone(), nh, self.opts(0, &u_device)); // [B, L, H]
            let cache = if keep { kept(heads(1), heads(2)) } else { None };
            return (self.out_proj.forward(o), cache);
        }
        let (mut q, mut k, v) = (heads(0), heads(1), heads(2));
        if self.rope {
            q = rope(q, offset);
            k = rope(k, offset);
        }
        let (k, v) = match cache {
            Some(c) => (Tensor::cat(vec![c.k.clone(), k], 2), Tensor::cat(vec![c.v.clone(), v], 2)), // [B, nH, T+L, hd]
            None => (k, v),
        };
        let o = self.attend(q, k.clone(), v.clone(), offset); // [B, nH, L, hd]
        let o = o.swap_dims(1, 2).reshape([b, l, h]); // heads concatenated in order: [B, L, H]
        (self.out_proj.forward(o), kept(k, v))
    }

    /// The fused op's options after `offset` cached positions: the dropout's rate now (0
    /// outside training) and a fresh mask seed.
    fn opts(&self, offset: usize, device: &Device) -> Opts {
        let rate = active_rate(&self.dropout, device);
        let seed = if rate > 0.0 { draw_seed(device) } else { 0 };
        Opts { causal: self.causal, offset, drop: rate as f32, seed }
    }

    /// Softmax attention: the fused op on the CPU (see `ops::attention`), elsewhere in blocks of
    /// [`QUERY_BLOCK`] queries, where a causal block reads only the keys up to its last query.
    ///
    /// Args: `q` [B, nH, L, hd] at positions `offset..offset+L`; `k`, `v` [B, nH, T, hd] with
    /// `T = offset + L`. Returns [B, nH, L, hd].
    fn attend(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, offset: usize) -> Tensor<4> {
        let device = q.device();
        if crate::ops::supported(&device) {
            return crate::ops::attention::attention(q, k, v, self.opts(offset, &device));
        }
        let [_, _, l, hd] = q.dims();
        let t = k.dims()[2];
        let scale = 1.0 / (hd as f64).sqrt();
        let kt = k.swap_dims(2, 3); // [B, nH, hd, T]
        let mut outs = Vec::with_capacity(l.div_ceil(QUERY_BLOCK));
        for start in (0..l).step_by(QUERY_BLOCK) {
            let n = QUERY_BLOCK.min(l - start);
            let keys = if self.causal { offset + start + n } else { t };
            let s = q.clone().narrow(2, start, n).matmul(kt.clone().narrow(3, 0, keys)) * scale; // [B, nH, n, keys]
            let s = if self.causal { s + causal_mask(offset + start, n, keys, &q.device()) } else { s };
            let p = dropout(&self.dropout, softmax(s, 3)); // [B, nH, n, keys]
            outs.push(p.matmul(v.clone().narrow(2, 0, keys))); // [B, nH, n, hd]
        }
        Tensor::cat(outs, 2)
    }
}

/// Additive mask of queries at positions `first..first+n` over keys `0..keys`: 0 where the key
/// is not after the query, −∞ after. Returns [1, 1, n, keys].
fn causal_mask(first: usize, n: usize, keys: usize, device: &Device) -> Tensor<4> {
    let m: Vec<f32> =
        (0..n).flat_map(|i| (0..keys).map(move |j| if j > first + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::<1>::from_floats(m.as_slice(), device).reshape([1, 1, n, keys])
}
