//! Mamba-2's state-space duality (SSD) scan, chunked as the reference's `ssd_minimal_discrete`:
//! within a chunk the scalar-decay SSM is a masked ("1-semiseparable") matrix applied with
//! matmuls; between chunks the state runs through a short recurrence. Tensor ops only, so the
//! backward pass is autodiff's.

use burn::tensor::{Bool, Tensor};

/// Inputs of [`ssd`]; every head has its own `B`/`C` row (groups already expanded).
#[derive(Debug, Clone)]
pub struct SsdArgs {
    /// Input, `x·dt` in Mamba-2: [B, L, NH, P].
    pub x: Tensor<4>,
    /// Discrete log-decay per step, `A·dt` (≤ 0): [B, L, NH].
    pub a: Tensor<3>,
    /// Input projection: [B, L, NH, N].
    pub b: Tensor<4>,
    /// Output projection: [B, L, NH, N].
    pub c: Tensor<4>,
    /// State before the sequence (None: zero): [B, NH, P, N].
    pub h0: Option<Tensor<4>>,
    /// Chunk length T of the quadratic part (the result does not depend on it).
    pub chunk: usize,
}

/// `h_t = exp(a_t)·h_{t-1} + x_t ⊗ b_t`, `y_t = h_t·c_t` for every head.
///
/// A length that is not a multiple of the chunk is padded with `x = 0, a = 0` steps, which leave
/// the state unchanged.
///
/// Returns (y [B, L, NH, P], the state after the last step [B, NH, P, N]).
pub fn ssd(s: SsdArgs) -> (Tensor<4>, Tensor<4>) {
    let [bsz, l, nh, p] = s.x.dims();
    let n = s.b.dims()[3];
    let t = s.chunk.clamp(1, l.max(1));
    let nc = l.div_ceil(t);
    let pad = nc * t - l;
    let device = s.x.device();
    // [B, L, NH, X] → [B·NH·C, T, X]: one matmul batch per (sequence, head, chunk).
    let chunks4 = |v: Tensor<4>, w: usize| {
        let v = if pad > 0 { Tensor::cat(vec![v, Tensor::zeros([bsz, pad, nh, w], &device)], 1) } else { v };
        v.reshape([bsz, nc, t, nh, w]).permute([0, 3, 1, 2, 4]).reshape([bsz * nh * nc, t, w])
    };
    let x = chunks4(s.x, p); // [BHC, T, P]
    let bm = chunks4(s.b, n); // [BHC, T, N]
    let cm = chunks4(s.c, n); // [BHC, T, N]
    let a = chunks4(s.a.unsqueeze_dim(3), 1).reshape([bsz * nh * nc, t]); // [BHC, T]
    let acs = a.cumsum(1); // [BHC, T]
    let last = acs.clone().narrow(1, t - 1, 1); // [BHC, 1]

    // Intra-chunk: y_l = Σ_{s≤l} exp(acs_l − acs_s)·(c_l·b_s)·x_s.
    let seg = acs.clone().unsqueeze_dim::<3>(2) - acs.clone().unsqueeze_dim::<3>(1); // [BHC, T(l), T(s)]
    let upper = Tensor::<2, Bool>::tril_mask([t, t], 0, &device).unsqueeze_dim::<3>(0).expand([bsz * nh * nc, t, t]);
    // `tril_mask` is true above the diagonal. Masked before the exp: there the difference is positive and may overflow.
    let decay = seg.mask_fill(upper, f32::NEG_INFINITY).exp(); // [BHC, T, T]
    let scores = cm.clone().matmul(bm.clone().swap_dims(1, 2)) * decay; // [BHC, T, T]
    let y_diag = scores.matmul(x.clone()); // [BHC, T, P]

    // Each chunk's own contribution to the state at its end: Σ_s exp(last − acs_s)·x_s ⊗ b_s.
    let to_end = (last.clone() - acs.clone()).exp().unsqueeze_dim::<3>(2); // [BHC, T, 1]
    let states = (x * to_end).swap_dims(1, 2).matmul(bm).reshape([bsz * nh, nc, p, n]); // [BH, C, P, N]

    // Inter-chunk recurrence over the chunk boundaries; `before[c]` is the state entering chunk c.
    let chunk_decay = last.exp().reshape([bsz * nh, nc, 1, 1]); // [BH, C, 1, 1]
    let mut h = match s.h0 {
        Some(h0) => h0.reshape([bsz * nh, 1, p, n]),
        None => Tensor::zeros([bsz * nh, 1, p, n], &device),
    }; // [BH, 1, P, N]
    let mut before = Vec::with_capacity(nc);
    for c in 0..nc {
        before.push(h.clone());
        h = h * chunk_decay.clone().narrow(1, c, 1) + states.clone().narrow(1, c, 1);
    }
    let before = Tensor::cat(before, 1).reshape([bsz * nh * nc, p, n]); // [BHC, P, N]

    // State to output: y_l += exp(acs_l)·c_l·h_before.
    let y_off = cm.matmul(before.swap_dims(1, 2)) * acs.exp().unsqueeze_dim::<3>(2); // [BHC, T, P]
    let y = (y_diag + y_off).reshape([bsz, nh, nc * t, p]).swap_dims(1, 2).narrow(1, 0, l); // [B, L, NH, P]
    (y, h.reshape([bsz, nh, p, n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    /// Host values of a tensor.
    fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().expect("f32 data")
    }

    /// Largest |u - v| relative to the largest |v|.
    fn rel(u: &[f32], v: &[f32]) -> f32 {
        let scale = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        u.iter().zip(v).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
    }

    /// The chunk length changes the algorithm only (chunk 1 is the plain recurrence), in value
    /// and in the gradients of every input.
    #[test]
    fn chunk_length_does_not_change_the_result_or_its_gradients() {
        let dev = Device::flex().autodiff();
        dev.seed(3);
        let (b, l, nh, p, n) = (2, 13, 3, 4, 5);
        let r = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Normal(0.0, 1.0), &dev).require_grad();
        let args = SsdArgs {
            x: r([b, l, nh, p]),
            a: (-Tensor::<3>::random([b, l, nh], Distribution::Uniform(0.0, 0.5), &dev)).require_grad(),
            b: r([b, l, nh, n]),
            c: r([b, l, nh, n]),
            h0: Some(r([b, nh, p, n])),
            chunk: 1,
        };
        let w = Tensor::<4>::random([b, l, nh, p], Distribution::Normal(0.0, 1.0), &dev);
        let run = |chunk: usize| {
            let (y, h) = ssd(SsdArgs { chunk, ..args.clone() });
            let g = ((y.clone() * w.clone()).sum() + h.clone().sum()).backward();
            let mut out = vec![host(y), host(h)];
            out.extend([&args.x, &args.b, &args.c].map(|t| host(t.grad(&g).expect("gradient"))));
            out.push(host(args.a.grad(&g).expect("gradient")));
            out.push(host(args.h0.as_ref().unwrap().grad(&g).expect("gradient")));
            out
        };
        let reference = run(1);
        for chunk in [4, 5, 13, 64] {
            for (i, (u, v)) in run(chunk).iter().zip(&reference).enumerate() {
                assert!(rel(u, v) < 1e-4, "chunk {chunk}: output {i}: {}", rel(u, v));
            }
        }
    }
}
