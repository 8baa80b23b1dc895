//! Positional information of the Transformer layer: added sinusoids or learned rows, or rotary
//! embeddings of queries and keys.

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Base of the sinusoid and rotary frequencies (Vaswani et al.; RoFormer).
const BASE: f64 = 10_000.0;

/// How the layer knows positions (`model.layer.pos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PosKind {
    /// Fixed sinusoids added to the input.
    #[default]
    Sin,
    /// A learned row per position (`pos_embedding` [max_len, H]) added to the input.
    Learned,
    /// Rotary embeddings of each head's queries and keys: attention sees relative positions.
    Rope,
    /// No positions (attention is permutation-equivariant apart from the causal mask).
    None,
}

/// Sinusoids of positions `offset .. offset + l`: column `2i` is `sin(p/BASE^(2i/H))`, column
/// `2i+1` its cosine. Returns [1, L, H].
pub fn sinusoids(offset: usize, l: usize, h: usize, device: &Device) -> Tensor<3> {
    let mut pe = Vec::with_capacity(l * h);
    for p in offset..offset + l {
        for c in 0..h {
            let angle = p as f64 / BASE.powf((c / 2 * 2) as f64 / h as f64);
            pe.push(if c % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::<1>::from_floats(pe.as_slice(), device).reshape([1, l, h])
}

/// Rotates each head's halves `(x1, x2)` by the angle of positions `offset .. offset + l`:
/// `[x1·cos − x2·sin, x2·cos + x1·sin]` (the half-split layout of GPT-NeoX).
///
/// Args: `x` [B, nH, L, hd] with `hd` even. Returns [B, nH, L, hd].
pub fn rope(x: Tensor<4>, offset: usize) -> Tensor<4> {
    let [_, _, l, hd] = x.dims();
    let half = hd / 2;
    let (mut cos, mut sin) = (Vec::with_capacity(l * half), Vec::with_capacity(l * half));
    for p in offset..offset + l {
        for i in 0..half {
            let angle = p as f64 / BASE.powf(2.0 * i as f64 / hd as f64);
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let device = x.device();
    let table = |v: Vec<f32>| Tensor::<1>::from_floats(v.as_slice(), &device).reshape([1, 1, l, half]);
    let (cos, sin) = (table(cos), table(sin)); // [1, 1, L, hd/2]
    let (x1, x2) = (x.clone().narrow(3, 0, half), x.narrow(3, half, half)); // [B, nH, L, hd/2] each
    Tensor::cat(vec![x1.clone() * cos.clone() - x2.clone() * sin.clone(), x2 * cos + x1 * sin], 3)
}
