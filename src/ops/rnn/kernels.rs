//! The math of the fused recurrences on plain slices: a group of up to four sequences per
//! rayon task, stepped together so that each step's `h·W_hhᵀ` products share one pass over
//! `W_hh`; backpropagation through time over the stored gates; the `W_hh` gradient as one
//! matrix product afterwards. This file holds what the three recurrences share.
//!
//! Layouts are batch-major and row-major: `gx` [B, L, G·H] (the input projections of all
//! steps, gate blocks in PyTorch's order), `w_hh` [G·H, H].

use crate::ops::simd::{mul_add, simd_dispatch};

/// `out += a·w` for rows `a` [R, K] and a row-major `w` [K, N] into `out` [R, N]: four rows
/// of `w` per pass over each output row (a quarter of the loads and stores of an axpy loop),
/// all R rows before the next four, so `w` streams from memory once per call and the rows
/// reuse it from L1.
#[inline(always)]
fn rows_mat_acc<const FMA: bool>(out: &mut [f32], a: &[f32], w: &[f32], n: usize) {
    let r = out.len() / n;
    let k = a.len() / r.max(1);
    let mut kb = 0;
    while kb + 4 <= k {
        let (w0, w1, w2, w3) =
            (&w[kb * n..][..n], &w[(kb + 1) * n..][..n], &w[(kb + 2) * n..][..n], &w[(kb + 3) * n..][..n]);
        for (o, c) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            let [a0, a1, a2, a3] = [c[kb], c[kb + 1], c[kb + 2], c[kb + 3]];
            for ((((o, v0), v1), v2), v3) in o.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
                *o = mul_add::<FMA>(
                    a3,
                    *v3,
                    mul_add::<FMA>(a2, *v2, mul_add::<FMA>(a1, *v1, mul_add::<FMA>(a0, *v0, *o))),
                );
            }
        }
        kb += 4;
    }
    for kk in kb..k {
        let wk = &w[kk * n..][..n];
        for (o, c) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (o, v) in o.iter_mut().zip(wk) {
                *o = mul_add::<FMA>(c[kk], *v, *o);
            }
        }
    }
}

/// `e^x` for f32 in a form the compiler vectorizes (Cephes' polynomial on `x - n·ln 2`,
/// scaled by `2^n` through the exponent bits); relative error about 2e-7.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The logistic function `1/(1+e^{-x})`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2/(1+e^{2x})` (absolute error about 1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

/// The initial state of sequence `b` followed by its states `0..L-1`, the `h_{t-1}` of every
/// step: [L, H] rows from `h0` [B, H] and the state sequence (row stride `stride`, offset 0).
fn prev_states(h0: &[f32], seq: &[f32], stride: usize, b: usize, l: usize, h: usize, out: &mut [f32]) {
    out[..h].copy_from_slice(&h0[b * h..][..h]);
    for t in 1..l {
        out[t * h..][..h].copy_from_slice(&seq[((b * l) + t - 1) * stride..][..h]);
    }
}

/// Sequences `b0..b0 + nr` of a batch-major buffer with `n` values per sequence.
fn rows(v: &[f32], b0: usize, nr: usize, n: usize) -> &[f32] {
    &v[b0 * n..][..nr * n]
}

/// `Σ_{b,t} da[b,t]ᵀ·h_{t-1}[b]`: the gradient of a recurrent weight [G, H] from the gate
/// gradients `da` [B·L, G] and the previous states `hprev` [B·L, H], as one matrix product.
fn weight_grad(da: &[f32], hprev: &[f32], g: usize, h: usize) -> Vec<f32> {
    let rows = da.len() / g.max(1);
    let mut dw = vec![0f32; g * h];
    if rows == 0 || g == 0 || h == 0 {
        return dw;
    }
    // SAFETY: dims and strides describe the three buffers: dw [G, H] row-major, daᵀ [G, rows]
    // read from da [rows, G], hprev [rows, H].
    unsafe {
        gemm::gemm(
            g,
            h,
            rows,
            dw.as_mut_ptr(),
            1,
            h as isize,
            false,
            da.as_ptr(),
            g as isize,
            1,
            hprev.as_ptr(),
            1,
            h as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
    dw
}

/// `wᵀ` of a row-major [R, C] matrix.
fn transpose(w: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = w[i * c + j];
        }
    }
    t
}

/// Sequences one task steps together: enough tasks for every thread, and at most four, whose
/// `h·W_hhᵀ` rows share one pass over `W_hh` per step.
fn group_size(b: usize) -> usize {
    b.div_ceil(rayon::current_num_threads().max(1)).clamp(1, 4)
}

/// Sizes of a recurrence: batch, length, hidden width.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Batch size B.
    pub b: usize,
    /// Sequence length L.
    pub l: usize,
    /// Hidden width H.
    pub h: usize,
}

mod elman;
mod gru;
mod lipschitz;
mod lstm;

pub use elman::{rnn, rnn_grad};
pub use gru::{gru, gru_grad};
pub use lipschitz::{Lip, lipschitz, lipschitz_grad};
pub use lstm::{lstm, lstm_grad};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_activations_match_std() {
        let mut worst = (0f32, 0f32, 0f32);
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            worst.0 = worst.0.max((exp(x) - x.exp()).abs() / x.exp());
            worst.1 = worst.1.max((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
            worst.2 = worst.2.max((tanh(x) - x.tanh()).abs());
        }
        assert!(worst.0 < 5e-7 && worst.1 < 2e-7 && worst.2 < 3e-7, "{worst:?}");
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-30 && sigmoid(200.0) == 1.0);
    }

    #[test]
    fn rows_mat_acc_is_a_product() {
        let (r, k, n) = (3, 7, 5); // a remainder of three rows of `w` after the blocks of four
        let a: Vec<f32> = (0..r * k).map(|i| i as f32 * 0.25 - 1.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let mut out = vec![1f32; r * n];
        rows_mat_acc::<false>(&mut out, &a, &w, n);
        for ri in 0..r {
            for j in 0..n {
                let e: f32 = 1.0 + (0..k).map(|i| a[ri * k + i] * w[i * n + j]).sum::<f32>();
                assert!((out[ri * n + j] - e).abs() < 1e-4, "{ri},{j}: {} vs {e}", out[ri * n + j]);
            }
        }
    }
}
