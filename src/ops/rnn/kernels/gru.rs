//! GRU (gates r, z, n; `b_hn` inside the product with r) forward and backward over whole
//! sequences.

use rayon::prelude::*;

use super::{Dims, group_size, prev_states, rows_mat_acc, sigmoid, simd_dispatch, tanh, transpose, weight_grad};

/// GRU over all steps from `h0` [B, H]: returns the states [B, L, H] and the saved gates
/// `[r, z, n, W_hn·h_{t-1} + b_hn]` [B, L, 4H].
///
/// Args: `gx` [B, L, 3H] = `x·W_ihᵀ + b_ih`; `w_hh` [3H, H]; `b_hh` [3H].
pub fn gru(gx: &[f32], w_hh: &[f32], b_hh: &[f32], h0: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, 3 * h, h); // [H, 3H]
    let (mut out, mut gates) = (vec![0f32; b * l * h], vec![0f32; b * l * 4 * h]);
    if l == 0 || h == 0 {
        return (out, gates);
    }
    let r = group_size(b);
    out.par_chunks_mut(r * l * h).zip(gates.par_chunks_mut(r * l * 4 * h)).enumerate().for_each(
        |(gi, (out, gates))| {
            let (b0, nr) = (gi * r, out.len() / (l * h));
            let gd = Dims { b: nr, l, h };
            gru_group(
                &gx[b0 * l * 3 * h..][..nr * l * 3 * h],
                &wt,
                b_hh,
                h0[b0 * h..][..nr * h].to_vec(),
                out,
                gates,
                gd,
            )
        },
    );
    (out, gates)
}

simd_dispatch! {
    /// A group of sequences of [`gru`]: `gx` [R, L, 3H], `wt` [H, 3H], `hs` [R, H]; writes
    /// `out` [R, L, H] and `gates` [R, L, 4H].
    fn gru_group => gru_group_body(
        gx: &[f32], wt: &[f32], b_hh: &[f32], hs: Vec<f32>, out: &mut [f32], gates: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn gru_group_body<const FMA: bool>(
    gx: &[f32],
    wt: &[f32],
    b_hh: &[f32],
    mut hs: Vec<f32>,
    out: &mut [f32],
    gates: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut gh = vec![0f32; nr * 3 * h];
    for t in 0..l {
        gh.chunks_exact_mut(3 * h).for_each(|row| row.copy_from_slice(b_hh));
        rows_mat_acc::<FMA>(&mut gh, &hs, wt, 3 * h);
        for (ri, ghr) in gh.chunks_exact(3 * h).enumerate() {
            let gi = &gx[(ri * l + t) * 3 * h..][..3 * h];
            let sv = &mut gates[(ri * l + t) * 4 * h..][..4 * h];
            let (r, rest) = sv.split_at_mut(h);
            let (z, rest) = rest.split_at_mut(h);
            let (n, ghn) = rest.split_at_mut(h);
            let hr = &mut hs[ri * h..][..h];
            for j in 0..h {
                r[j] = sigmoid(gi[j] + ghr[j]);
                z[j] = sigmoid(gi[h + j] + ghr[h + j]);
                ghn[j] = ghr[2 * h + j];
                n[j] = tanh(gi[2 * h + j] + r[j] * ghn[j]);
                hr[j] = (1.0 - z[j]) * n[j] + z[j] * hr[j];
            }
            out[(ri * l + t) * h..][..h].copy_from_slice(hr);
        }
    }
}

/// Backward pass of [`gru`] for output gradient `g` [B, L, H]: returns
/// (∂gx [B, L, 3H], ∂w_hh [3H, H], ∂b_hh [3H], ∂h0 [B, H]).
pub fn gru_grad(
    w_hh: &[f32],
    h0: &[f32],
    (out, gates): (&[f32], &[f32]),
    g: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dgh, mut dh0) = (vec![0f32; b * l * 3 * h], vec![0f32; b * l * 3 * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; 3 * h * h], vec![0f32; 3 * h], dh0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * 3 * h)
        .zip(dgh.par_chunks_mut(r * l * 3 * h))
        .zip(dh0.par_chunks_mut(r * h).zip(hprev.par_chunks_mut(r * l * h)))
        .enumerate()
        .for_each(|(gi, ((dgx, dgh), (dh0, hprev)))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, out, h, b0 + ri, l, h, hp);
            }
            let gates = &gates[b0 * l * 4 * h..][..nr * l * 4 * h];
            let g = &g[b0 * l * h..][..nr * l * h];
            gru_group_grad(w_hh, (hprev, gates), g, dgx, dgh, dh0, Dims { b: nr, l, h });
        });
    let dw = weight_grad(&dgh, &hprev, 3 * h, h);
    let mut db = vec![0f32; 3 * h];
    for row in dgh.chunks_exact(3 * h) {
        db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    (dgx, dw, db, dh0)
}

simd_dispatch! {
    /// A group of sequences of [`gru_grad`], backwards in time: `saved` = (`h_{t-1}` [R, L, H],
    /// gates [R, L, 4H]); writes ∂gx, ∂gh [R, L, 3H] and ∂h0 [R, H].
    fn gru_group_grad => gru_group_grad_body(
        w_hh: &[f32], saved: (&[f32], &[f32]), g: &[f32],
        dgx: &mut [f32], dgh: &mut [f32], dh_next: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn gru_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    (hprev, gates): (&[f32], &[f32]),
    g: &[f32],
    dgx: &mut [f32],
    dgh: &mut [f32],
    dh_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut dghb = vec![0f32; nr * 3 * h];
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dhh) in dghb.chunks_exact_mut(3 * h).enumerate() {
            let sv = &gates[(ri * l + t) * 4 * h..][..4 * h];
            let (r, z, n, ghn) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
            let hp = &hprev[(ri * l + t) * h..][..h];
            let gt = &g[(ri * l + t) * h..][..h];
            let dx = &mut dgx[(ri * l + t) * 3 * h..][..3 * h];
            let dn_r = &mut dh_next[ri * h..][..h];
            for j in 0..h {
                let dh = gt[j] + dn_r[j];
                let dan = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                let daz = dh * (hp[j] - n[j]) * z[j] * (1.0 - z[j]);
                let dar = dan * ghn[j] * r[j] * (1.0 - r[j]);
                dx[j] = dar;
                dx[h + j] = daz;
                dx[2 * h + j] = dan;
                dhh[j] = dar;
                dhh[h + j] = daz;
                dhh[2 * h + j] = dan * r[j];
                dn_r[j] = dh * z[j];
            }
            dgh[(ri * l + t) * 3 * h..][..3 * h].copy_from_slice(dhh);
        }
        rows_mat_acc::<FMA>(dh_next, &dghb, w_hh, h);
    }
}
