//! LipschitzRNN (`h_t = h_{t-1} + ε·α·h_{t-1}·A + ε·tanh(h_{t-1}·W + x_t)`, `h` a row vector)
//! forward and backward over whole sequences.

use rayon::prelude::*;

use super::{Dims, group_size, prev_states, rows, rows_mat_acc, simd_dispatch, tanh, transpose, weight_grad};

/// The constants of the recurrence: step `ε` and the weight `α` of the linear term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lip {
    /// Step size ε.
    pub eps: f32,
    /// Weight α of `h·A`.
    pub alpha: f32,
}

/// `[A | W]` as one row-major [H, 2H] matrix, so one pass gives `[h·A | h·W]`.
fn side_by_side(a: &[f32], w: &[f32], h: usize) -> Vec<f32> {
    let mut m = vec![0f32; 2 * h * h];
    for i in 0..h {
        m[i * 2 * h..][..h].copy_from_slice(&a[i * h..][..h]);
        m[i * 2 * h + h..][..h].copy_from_slice(&w[i * h..][..h]);
    }
    m
}

/// LipschitzRNN over all steps from `h0` [B, H]: returns the states [B, L, H] and the
/// activations `tanh(h_{t-1}·W + x_t)` [B, L, H] (for the backward pass).
/// Args: `x` [B, L, H]; `a`, `w` [H, H].
pub fn lipschitz(x: &[f32], a: &[f32], w: &[f32], h0: &[f32], k: Lip, d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let m = side_by_side(a, w, h);
    let (mut out, mut act) = (vec![0f32; b * l * h], vec![0f32; b * l * h]);
    if l == 0 || h == 0 {
        return (out, act);
    }
    let r = group_size(b);
    out.par_chunks_mut(r * l * h).zip(act.par_chunks_mut(r * l * h)).enumerate().for_each(|(gi, (out, act))| {
        let (b0, nr) = (gi * r, out.len() / (l * h));
        let gd = Dims { b: nr, l, h };
        lip_group(&x[b0 * l * h..][..nr * l * h], &m, h0[b0 * h..][..nr * h].to_vec(), k, (out, act), gd)
    });
    (out, act)
}

simd_dispatch! {
    /// A group of sequences of [`lipschitz`]: `x` [R, L, H], `m` = `[A | W]` [H, 2H], `hs`
    /// [R, H]; writes the states and activations [R, L, H].
    fn lip_group => lip_group_body(x: &[f32], m: &[f32], hs: Vec<f32>, k: Lip, out: (&mut [f32], &mut [f32]), d: Dims)
}

#[inline(always)]
fn lip_group_body<const FMA: bool>(
    x: &[f32],
    m: &[f32],
    mut hs: Vec<f32>,
    k: Lip,
    (out, act): (&mut [f32], &mut [f32]),
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut p = vec![0f32; nr * 2 * h]; // [h·A | x_t + h·W] per row
    for t in 0..l {
        for (ri, pr) in p.chunks_exact_mut(2 * h).enumerate() {
            pr[..h].fill(0.0);
            pr[h..].copy_from_slice(&x[(ri * l + t) * h..][..h]);
        }
        rows_mat_acc::<FMA>(&mut p, &hs, m, 2 * h);
        for (ri, (pr, hr)) in p.chunks_exact(2 * h).zip(hs.chunks_exact_mut(h)).enumerate() {
            let row = (ri * l + t) * h;
            let (o, s) = (&mut out[row..][..h], &mut act[row..][..h]);
            for j in 0..h {
                s[j] = tanh(pr[h + j]);
                hr[j] += k.eps * (k.alpha * pr[j] + s[j]);
                o[j] = hr[j];
            }
        }
    }
}

/// Backward pass of [`lipschitz`] for output gradient `g` [B, L, H], given the states `out`
/// and activations `act`: returns (∂x [B, L, H], ∂A [H, H], ∂W [H, H], ∂h0 [B, H]).
#[allow(clippy::type_complexity)]
pub fn lipschitz_grad(
    a: &[f32],
    w: &[f32],
    h0: &[f32],
    (out, act): (&[f32], &[f32]),
    g: &[f32],
    k: Lip,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dx, mut dh0) = (vec![0f32; b * l * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dx, vec![0f32; h * h], vec![0f32; h * h], dh0);
    }
    // [Aᵀ; Wᵀ] [2H, H]: the adjoint [ε·α·∂h | ∂pre] [R, 2H] times it is the pass to h_{t-1}.
    let mt = transpose(&side_by_side(a, w, h), h, 2 * h);
    let mut e = vec![0f32; b * l * 2 * h]; // [ε·α·∂h_t | ∂pre_t] of every step
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dx.par_chunks_mut(r * l * h)
        .zip(dh0.par_chunks_mut(r * h))
        .zip(e.par_chunks_mut(r * l * 2 * h).zip(hprev.par_chunks_mut(r * l * h)))
        .enumerate()
        .for_each(|(gi, ((dx, dh0), (e, hprev)))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, out, h, b0 + ri, l, h, hp);
            }
            let part = |v| rows(v, b0, nr, l * h);
            lip_group_grad(&mt, part(act), part(g), k, (dx, e), dh0, Dims { b: nr, l, h });
        });
    // Σ_t eᵀ·h_{t-1} = [∂Aᵀ; ∂Wᵀ] [2H, H].
    let dmt = weight_grad(&e, &hprev, 2 * h, h);
    let dm = transpose(&dmt, 2 * h, h); // [H, 2H] = [∂A | ∂W]
    let (mut da, mut dw) = (vec![0f32; h * h], vec![0f32; h * h]);
    for i in 0..h {
        da[i * h..][..h].copy_from_slice(&dm[i * 2 * h..][..h]);
        dw[i * h..][..h].copy_from_slice(&dm[i * 2 * h + h..][..h]);
    }
    (dx, da, dw, dh0)
}

simd_dispatch! {
    /// A group of sequences of [`lipschitz_grad`], backwards in time: `act` and `g` [R, L, H];
    /// writes ∂x [R, L, H], the step adjoints `e` [R, L, 2H] and ∂h0 [R, H].
    fn lip_group_grad => lip_group_grad_body(
        mt: &[f32], act: &[f32], g: &[f32], k: Lip, dx_e: (&mut [f32], &mut [f32]), dh: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn lip_group_grad_body<const FMA: bool>(
    mt: &[f32],
    act: &[f32],
    g: &[f32],
    k: Lip,
    (dx, e): (&mut [f32], &mut [f32]),
    dh: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut et = vec![0f32; nr * 2 * h];
    dh.fill(0.0); // the adjoint of h_t, carried backwards
    for t in (0..l).rev() {
        for (ri, (er, dhr)) in et.chunks_exact_mut(2 * h).zip(dh.chunks_exact_mut(h)).enumerate() {
            let row = (ri * l + t) * h;
            let (st, gt) = (&act[row..][..h], &g[row..][..h]);
            for j in 0..h {
                dhr[j] += gt[j];
                er[j] = k.eps * k.alpha * dhr[j];
                er[h + j] = k.eps * dhr[j] * (1.0 - st[j] * st[j]);
            }
            dx[row..][..h].copy_from_slice(&er[h..]);
            e[(ri * l + t) * 2 * h..][..2 * h].copy_from_slice(er);
        }
        // h_{t-1} reaches h_t directly (identity) and through [h·A | h·W].
        rows_mat_acc::<FMA>(dh, &et, mt, h);
    }
}
