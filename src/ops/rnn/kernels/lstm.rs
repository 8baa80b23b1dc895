//! LSTM (gates i, f, g, o) forward and backward over whole sequences.

use rayon::prelude::*;

use super::{Dims, group_size, prev_states, rows, rows_mat_acc, sigmoid, simd_dispatch, tanh, transpose, weight_grad};

/// LSTM over all steps from `(h0, c0)` [B, H]: returns the states `[h_t, c_t]` [B, L, 2H] and
/// the activated gates `[i, f, g, o]` [B, L, 4H] (what the backward pass needs).
///
/// Args: `gx` [B, L, 4H] = `x·W_ihᵀ + b_ih + b_hh`; `w_hh` [4H, H].
pub fn lstm(gx: &[f32], w_hh: &[f32], h0: &[f32], c0: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, 4 * h, h); // [H, 4H]
    let (mut hc, mut gates) = (vec![0f32; b * l * 2 * h], vec![0f32; b * l * 4 * h]);
    if l == 0 || h == 0 {
        return (hc, gates);
    }
    let r = group_size(b);
    hc.par_chunks_mut(r * l * 2 * h).zip(gates.par_chunks_mut(r * l * 4 * h)).enumerate().for_each(
        |(gi, (hc, gates))| {
            let (b0, nr) = (gi * r, hc.len() / (l * 2 * h));
            let states = |v| rows(v, b0, nr, h).to_vec();
            let gd = Dims { b: nr, l, h };
            lstm_group(&gx[b0 * l * 4 * h..][..nr * l * 4 * h], &wt, states(h0), states(c0), hc, gates, gd)
        },
    );
    (hc, gates)
}

simd_dispatch! {
    /// A group of sequences of [`lstm`]: `gx` [R, L, 4H], `wt` [H, 4H], states [R, H]; writes
    /// `hc` [R, L, 2H] and `gates` [R, L, 4H].
    fn lstm_group => lstm_group_body(
        gx: &[f32], wt: &[f32], hs: Vec<f32>, cs: Vec<f32>, hc: &mut [f32], gates: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn lstm_group_body<const FMA: bool>(
    gx: &[f32],
    wt: &[f32],
    mut hs: Vec<f32>,
    mut cs: Vec<f32>,
    hc: &mut [f32],
    gates: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut a = vec![0f32; nr * 4 * h];
    for t in 0..l {
        for (ri, ar) in a.chunks_exact_mut(4 * h).enumerate() {
            ar.copy_from_slice(&gx[(ri * l + t) * 4 * h..][..4 * h]);
        }
        rows_mat_acc::<FMA>(&mut a, &hs, wt, 4 * h);
        for (ri, ar) in a.chunks_exact_mut(4 * h).enumerate() {
            let (ifg, o) = ar.split_at_mut(3 * h);
            let (i_f, g) = ifg.split_at_mut(2 * h);
            // Two plain loops, not a `chain`: neither its `fold` (not inlined into this AVX copy)
            // nor its `next` (a branch per element) vectorizes.
            for v in i_f.iter_mut() {
                *v = sigmoid(*v);
            }
            for v in o.iter_mut() {
                *v = sigmoid(*v);
            }
            g.iter_mut().for_each(|v| *v = tanh(*v));
            gates[(ri * l + t) * 4 * h..][..4 * h].copy_from_slice(ar);
            let (i, f, g, o) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..]);
            let (hr, cr) = (&mut hs[ri * h..][..h], &mut cs[ri * h..][..h]);
            let (ht, ct) = hc[(ri * l + t) * 2 * h..][..2 * h].split_at_mut(h);
            for j in 0..h {
                cr[j] = f[j] * cr[j] + i[j] * g[j];
                ct[j] = cr[j];
                ht[j] = o[j] * tanh(cr[j]);
            }
            hr.copy_from_slice(ht);
        }
    }
}

/// Backward pass of [`lstm`] for output gradient `g` [B, L, 2H] (of `[h_t, c_t]`): returns
/// (∂gx [B, L, 4H], ∂w_hh [4H, H], ∂h0 [B, H], ∂c0 [B, H]).
pub fn lstm_grad(
    w_hh: &[f32],
    (h0, c0): (&[f32], &[f32]),
    (hc, gates): (&[f32], &[f32]),
    g: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dh0, mut dc0) = (vec![0f32; b * l * 4 * h], vec![0f32; b * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; 4 * h * h], dh0, dc0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * 4 * h)
        .zip(dh0.par_chunks_mut(r * h).zip(dc0.par_chunks_mut(r * h)))
        .zip(hprev.par_chunks_mut(r * l * h))
        .enumerate()
        .for_each(|(gi, ((dgx, (dh0, dc0)), hprev))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            let part = |v, w| rows(v, b0, nr, w);
            let gd = Dims { b: nr, l, h };
            let saved = (part(c0, h), part(hc, l * 2 * h), part(gates, l * 4 * h));
            lstm_group_grad(w_hh, saved, part(g, l * 2 * h), dgx, dh0, dc0, gd);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, hc, 2 * h, b0 + ri, l, h, hp);
            }
        });
    let dw = weight_grad(&dgx, &hprev, 4 * h, h);
    (dgx, dw, dh0, dc0)
}

simd_dispatch! {
    /// A group of sequences of [`lstm_grad`], backwards in time: `saved` = (c0 [R, H],
    /// hc [R, L, 2H], gates [R, L, 4H]); writes ∂gx [R, L, 4H], ∂h0 and ∂c0 [R, H].
    #[allow(clippy::type_complexity)]
    fn lstm_group_grad => lstm_group_grad_body(
        w_hh: &[f32], saved: (&[f32], &[f32], &[f32]), g: &[f32],
        dgx: &mut [f32], dh_next: &mut [f32], dc_next: &mut [f32], d: Dims,
    )
}

#[allow(clippy::type_complexity)]
#[inline(always)]
fn lstm_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    (c0, hc, gates): (&[f32], &[f32], &[f32]),
    g: &[f32],
    dgx: &mut [f32],
    dh_next: &mut [f32],
    dc_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut da = vec![0f32; nr * 4 * h];
    dh_next.fill(0.0);
    dc_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dar) in da.chunks_exact_mut(4 * h).enumerate() {
            let row = (ri * l + t) * 4 * h;
            let a = &gates[row..][..4 * h];
            let (i, f, gg, o) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..]);
            let c = &hc[(ri * l + t) * 2 * h + h..][..h];
            let c_prev = if t > 0 { &hc[(ri * l + t - 1) * 2 * h + h..][..h] } else { &c0[ri * h..][..h] };
            let (gh, gc) = g[(ri * l + t) * 2 * h..][..2 * h].split_at(h);
            let (dhr, dcr) = (&dh_next[ri * h..][..h], &mut dc_next[ri * h..][..h]);
            let (da_i, rest) = dar.split_at_mut(h);
            let (da_f, rest) = rest.split_at_mut(h);
            let (da_g, da_o) = rest.split_at_mut(h);
            for j in 0..h {
                let tc = tanh(c[j]);
                let dh = gh[j] + dhr[j];
                let dc = gc[j] + dcr[j] + dh * o[j] * (1.0 - tc * tc);
                da_i[j] = dc * gg[j] * i[j] * (1.0 - i[j]);
                da_f[j] = dc * c_prev[j] * f[j] * (1.0 - f[j]);
                da_g[j] = dc * i[j] * (1.0 - gg[j] * gg[j]);
                da_o[j] = dh * tc * o[j] * (1.0 - o[j]);
                dcr[j] = dc * f[j];
            }
            dgx[row..][..4 * h].copy_from_slice(dar);
        }
        dh_next.fill(0.0);
        rows_mat_acc::<FMA>(dh_next, &da, w_hh, h);
    }
}
