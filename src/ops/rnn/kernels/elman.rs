//! Elman RNN (`h_t = act(gx_t + W_hh·h_{t-1})`) forward and backward over whole sequences.

use rayon::prelude::*;

use super::{Dims, group_size, prev_states, rows, rows_mat_acc, simd_dispatch, tanh, transpose, weight_grad};

/// Elman RNN over all steps from `h0` [B, H] with tanh (or ReLU when `relu`): returns the
/// states [B, L, H]. Args: `gx` [B, L, H] = `x·W_ihᵀ + b_ih + b_hh`; `w_hh` [H, H].
pub fn rnn(gx: &[f32], w_hh: &[f32], h0: &[f32], relu: bool, d: Dims) -> Vec<f32> {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, h, h);
    let mut out = vec![0f32; b * l * h];
    if l == 0 || h == 0 {
        return out;
    }
    let r = group_size(b);
    out.par_chunks_mut(r * l * h).enumerate().for_each(|(gi, out)| {
        let (b0, nr) = (gi * r, out.len() / (l * h));
        let gd = Dims { b: nr, l, h };
        rnn_group(&gx[b0 * l * h..][..nr * l * h], &wt, h0[b0 * h..][..nr * h].to_vec(), relu, out, gd)
    });
    out
}

simd_dispatch! {
    /// A group of sequences of [`rnn`]: `gx` [R, L, H], `wt` [H, H], `hs` [R, H]; writes
    /// `out` [R, L, H].
    fn rnn_group => rnn_group_body(gx: &[f32], wt: &[f32], hs: Vec<f32>, relu: bool, out: &mut [f32], d: Dims)
}

#[inline(always)]
fn rnn_group_body<const FMA: bool>(gx: &[f32], wt: &[f32], mut hs: Vec<f32>, relu: bool, out: &mut [f32], d: Dims) {
    let Dims { b: nr, l, h } = d;
    let mut a = vec![0f32; nr * h];
    for t in 0..l {
        for (ri, ar) in a.chunks_exact_mut(h).enumerate() {
            ar.copy_from_slice(&gx[(ri * l + t) * h..][..h]);
        }
        rows_mat_acc::<FMA>(&mut a, &hs, wt, h);
        if relu {
            a.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            a.iter_mut().for_each(|v| *v = tanh(*v));
        }
        for (ri, ar) in a.chunks_exact(h).enumerate() {
            out[(ri * l + t) * h..][..h].copy_from_slice(ar);
        }
        hs.copy_from_slice(&a);
    }
}

/// Backward pass of [`rnn`] for output gradient `g` [B, L, H]: returns
/// (∂gx [B, L, H], ∂w_hh [H, H], ∂h0 [B, H]).
pub fn rnn_grad(
    w_hh: &[f32],
    h0: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dh0) = (vec![0f32; b * l * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; h * h], dh0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * h)
        .zip(dh0.par_chunks_mut(r * h).zip(hprev.par_chunks_mut(r * l * h)))
        .enumerate()
        .for_each(|(gi, (dgx, (dh0, hprev)))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, out, h, b0 + ri, l, h, hp);
            }
            let part = |v| rows(v, b0, nr, l * h);
            rnn_group_grad(w_hh, part(out), part(g), relu, dgx, dh0, Dims { b: nr, l, h });
        });
    let dw = weight_grad(&dgx, &hprev, h, h);
    (dgx, dw, dh0)
}

simd_dispatch! {
    /// A group of sequences of [`rnn_grad`], backwards in time: `out` and `g` [R, L, H];
    /// writes ∂gx [R, L, H] and ∂h0 [R, H].
    fn rnn_group_grad => rnn_group_grad_body(
        w_hh: &[f32], out: &[f32], g: &[f32], relu: bool, dgx: &mut [f32], dh_next: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn rnn_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    dgx: &mut [f32],
    dh_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut da = vec![0f32; nr * h];
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dar) in da.chunks_exact_mut(h).enumerate() {
            let row = (ri * l + t) * h;
            let (ht, gt, dn) = (&out[row..][..h], &g[row..][..h], &dh_next[ri * h..][..h]);
            for j in 0..h {
                let dh = gt[j] + dn[j];
                dar[j] = if relu { if ht[j] > 0.0 { dh } else { 0.0 } } else { dh * (1.0 - ht[j] * ht[j]) };
            }
            dgx[row..][..h].copy_from_slice(dar);
        }
        dh_next.fill(0.0);
        rows_mat_acc::<FMA>(dh_next, &da, w_hh, h);
    }
}
