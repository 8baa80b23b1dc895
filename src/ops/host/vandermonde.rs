//! The S4D Vandermonde kernel on the host: `K = 2·Re Σ_n W_n·z_n^l` and its gradient (f64
//! accumulation, one rayon task per channel).

use rayon::prelude::*;

use crate::ops::pool::zeros;
use crate::ops::transpose::{Dst, Shared};

/// `K[c,h,l] = 2·Re Σ_n W[c,h,n]·z[h,n]^l`, `z = exp(dtA)`.
///
/// Args: `w` [C,H,N2] and `dta` [H,N2] as (re, im). Returns [C,H,L].
pub fn vandermonde(w: (&[f32], &[f32]), dta: (&[f32], &[f32]), c: usize, h: usize, n2: usize, l: usize) -> Vec<f32> {
    let mut out = zeros(c * h * l);
    let dst = Shared::new(&mut out);
    // One task per h: all channels share the powers z^l. Tasks write their rows of `out` in
    // place (a per-task copy is an allocation in a worker, see `ops::pool`).
    (0..h).into_par_iter().for_each(|hi| {
        // SAFETY: task `hi` alone writes rows (ci, hi, ·).
        let mut at: Vec<_> = (0..c).map(|ci| unsafe { dst.at((ci * h + hi) * l) }).collect();
        let mut k: Vec<&mut [f32]> = at.iter_mut().map(|a| a.row(0, l)).collect();
        let (zr, zi) = exp_modes(dta, hi, n2);
        let (mut pr, mut pi) = (vec![1f64; n2], vec![0f64; n2]); // z^l
        for li in 0..l {
            for (ci, k) in k.iter_mut().enumerate() {
                let base = (ci * h + hi) * n2;
                let mut acc = 0f64;
                for n in 0..n2 {
                    acc += w.0[base + n] as f64 * pr[n] - w.1[base + n] as f64 * pi[n];
                }
                k[li] = (2.0 * acc) as f32;
            }
            advance(&mut pr, &mut pi, &zr, &zi);
        }
    });
    out
}

/// Gradients of [`vandermonde`] given `g = ∂loss/∂K` [C,H,L]:
/// returns (∂W re, ∂W im) [C,H,N2] and (∂dtA re, ∂dtA im) [H,N2].
#[allow(clippy::type_complexity)]
pub fn vandermonde_grad(
    w: (&[f32], &[f32]),
    dta: (&[f32], &[f32]),
    g: &[f32],
    c: usize,
    h: usize,
    n2: usize,
    l: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let parts: Vec<(Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>)> = (0..h)
        .into_par_iter()
        .map(|hi| {
            let (zr, zi) = exp_modes(dta, hi, n2);
            let (mut pr, mut pi) = (vec![1f64; n2], vec![0f64; n2]);
            // S0 = Σ_l g_l z^l, S1 = Σ_l g_l·l·z^l per (c, n).
            let (mut s0r, mut s0i, mut s1r, mut s1i) =
                (vec![0f64; c * n2], vec![0f64; c * n2], vec![0f64; c * n2], vec![0f64; c * n2]);
            for li in 0..l {
                for ci in 0..c {
                    let gl = g[(ci * h + hi) * l + li] as f64;
                    let glm = gl * li as f64;
                    let o = ci * n2;
                    for n in 0..n2 {
                        s0r[o + n] += gl * pr[n];
                        s0i[o + n] += gl * pi[n];
                        s1r[o + n] += glm * pr[n];
                        s1i[o + n] += glm * pi[n];
                    }
                }
                advance(&mut pr, &mut pi, &zr, &zi);
            }
            // K = 2 Re(W z^l): ∂W = 2·conj(S0) in (re, -im) form; ∂dtA = 2·conj(Σ_c W·S1).
            let (mut gwr, mut gwi) = (vec![0f32; c * n2], vec![0f32; c * n2]);
            let (mut gdr, mut gdi) = (vec![0f64; n2], vec![0f64; n2]);
            for ci in 0..c {
                let base = (ci * h + hi) * n2;
                for n in 0..n2 {
                    let o = ci * n2 + n;
                    gwr[o] = (2.0 * s0r[o]) as f32;
                    gwi[o] = (-2.0 * s0i[o]) as f32;
                    let (wr, wi) = (w.0[base + n] as f64, w.1[base + n] as f64);
                    gdr[n] += 2.0 * (wr * s1r[o] - wi * s1i[o]);
                    gdi[n] += -2.0 * (wr * s1i[o] + wi * s1r[o]);
                }
            }
            (gwr, gwi, gdr.iter().map(|v| *v as f32).collect(), gdi.iter().map(|v| *v as f32).collect())
        })
        .collect();
    let (mut gwr, mut gwi) = (vec![0f32; c * h * n2], vec![0f32; c * h * n2]);
    let (mut gdr, mut gdi) = (vec![0f32; h * n2], vec![0f32; h * n2]);
    for (hi, (pwr, pwi, pdr, pdi)) in parts.into_iter().enumerate() {
        for ci in 0..c {
            let dst = (ci * h + hi) * n2;
            gwr[dst..dst + n2].copy_from_slice(&pwr[ci * n2..][..n2]);
            gwi[dst..dst + n2].copy_from_slice(&pwi[ci * n2..][..n2]);
        }
        gdr[hi * n2..][..n2].copy_from_slice(&pdr);
        gdi[hi * n2..][..n2].copy_from_slice(&pdi);
    }
    (gwr, gwi, gdr, gdi)
}

fn exp_modes(dta: (&[f32], &[f32]), hi: usize, n2: usize) -> (Vec<f64>, Vec<f64>) {
    (0..n2)
        .map(|n| {
            let (a, b) = (dta.0[hi * n2 + n] as f64, dta.1[hi * n2 + n] as f64);
            let e = a.exp();
            (e * b.cos(), e * b.sin())
        })
        .unzip()
}

#[inline]
fn advance(pr: &mut [f64], pi: &mut [f64], zr: &[f64], zi: &[f64]) {
    for n in 0..pr.len() {
        let (r, i) = (pr[n], pi[n]);
        pr[n] = r * zr[n] - i * zi[n];
        pi[n] = r * zi[n] + i * zr[n];
    }
}
