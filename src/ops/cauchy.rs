//! The Cauchy sums of S4's DPLR kernel on plain slices (f64 accumulation, rayon over `H`).
//!
//! For nodes `ω_k = exp(-2πik/L)`, `k = 0..L/2`, with `a_k = 1 - ω_k` and `t_k = (1 + ω_k)/2`:
//!
//! `r[m,h,k] = Σ_n v[m,h,n]/(a_k - t_k·d[h,n]) + conj(v[m,h,n])/(a_k - t_k·conj(d[h,n]))`
//!
//! i.e. the resolvent sums over the conj-expanded modes, already multiplied by `2/(1+ω_k)`'s
//! reciprocal `t_k` so that `ω = -1` (where the bilinear node `z = 2(1-ω)/(1+ω)` is infinite)
//! needs no special case. Work is O(M·H·N·L) and nothing of size `[H, N, L]` is materialized.

use num_complex::Complex64 as C64;
use rayon::prelude::*;

/// The nodes `(a_k, t_k)` for an inverse real FFT of length `l`: `k = 0..=l/2`.
pub fn nodes(l: usize) -> Vec<(C64, C64)> {
    (0..=l / 2)
        .map(|k| {
            let omega = C64::from_polar(1.0, -2.0 * std::f64::consts::PI * k as f64 / l as f64);
            (1.0 - omega, (1.0 + omega) / 2.0)
        })
        .collect()
}

fn c(re: &[f32], im: &[f32], i: usize) -> C64 {
    C64::new(re[i] as f64, im[i] as f64)
}

/// The sums `r` (see the module doc).
///
/// Args: `v` [M,H,N2] and `d` [H,N2] as (re, im). Returns [2,M,H,K] (re then im), `K = l/2+1`.
pub fn cauchy(v: (&[f32], &[f32]), d: (&[f32], &[f32]), m: usize, h: usize, n2: usize, l: usize) -> Vec<f32> {
    let nodes = nodes(l);
    let kk = nodes.len();
    let per_h: Vec<Vec<C64>> = (0..h)
        .into_par_iter()
        .map(|hi| {
            let dh: Vec<C64> = (0..n2).map(|n| c(d.0, d.1, hi * n2 + n)).collect();
            let vh: Vec<C64> = (0..m * n2).map(|i| c(v.0, v.1, (i / n2 * h + hi) * n2 + i % n2)).collect();
            let mut r = vec![C64::new(0.0, 0.0); m * kk]; // [M, K]
            for (k, &(a, t)) in nodes.iter().enumerate() {
                for (n, &dn) in dh.iter().enumerate() {
                    let s = 1.0 / (a - t * dn);
                    let s2 = 1.0 / (a - t * dn.conj());
                    for mi in 0..m {
                        let vn = vh[mi * n2 + n];
                        r[mi * kk + k] += vn * s + vn.conj() * s2;
                    }
                }
            }
            r
        })
        .collect();
    let mut out = vec![0f32; 2 * m * h * kk];
    for (hi, r) in per_h.iter().enumerate() {
        for mi in 0..m {
            for k in 0..kk {
                let z = r[mi * kk + k];
                out[(mi * h + hi) * kk + k] = z.re as f32;
                out[((m + mi) * h + hi) * kk + k] = z.im as f32;
            }
        }
    }
    out
}

/// Gradients of [`cauchy`] for `g = ∂loss/∂r` [2,M,H,K]: (∂v re, ∂v im) [M,H,N2] and
/// (∂d re, ∂d im) [H,N2], in the `∂/∂re + i·∂/∂im` convention:
/// `∂v = Σ_k conj(s)·G + s2·conj(G)`, `∂d = Σ_k conj(t·s²)·Σ_m conj(v)·G + t·s2²·Σ_m conj(v)·conj(G)`.
#[allow(clippy::type_complexity)]
pub fn cauchy_grad(
    v: (&[f32], &[f32]),
    d: (&[f32], &[f32]),
    g: &[f32],
    m: usize,
    h: usize,
    n2: usize,
    l: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let nodes = nodes(l);
    let kk = nodes.len();
    let per_h: Vec<(Vec<C64>, Vec<C64>)> = (0..h)
        .into_par_iter()
        .map(|hi| {
            let dh: Vec<C64> = (0..n2).map(|n| c(d.0, d.1, hi * n2 + n)).collect();
            let vh: Vec<C64> = (0..m * n2).map(|i| c(v.0, v.1, (i / n2 * h + hi) * n2 + i % n2)).collect();
            let (mut gv, mut gd) = (vec![C64::new(0.0, 0.0); m * n2], vec![C64::new(0.0, 0.0); n2]);
            let mut gk = vec![C64::new(0.0, 0.0); m];
            for (k, &(a, t)) in nodes.iter().enumerate() {
                for (mi, x) in gk.iter_mut().enumerate() {
                    *x = C64::new(g[(mi * h + hi) * kk + k] as f64, g[((m + mi) * h + hi) * kk + k] as f64);
                }
                for (n, &dn) in dh.iter().enumerate() {
                    let s = 1.0 / (a - t * dn);
                    let s2 = 1.0 / (a - t * dn.conj());
                    let (mut sa, mut sb) = (C64::new(0.0, 0.0), C64::new(0.0, 0.0));
                    for (mi, &gm) in gk.iter().enumerate() {
                        let vn = vh[mi * n2 + n];
                        gv[mi * n2 + n] += s.conj() * gm + s2 * gm.conj();
                        sa += vn.conj() * gm;
                        sb += vn.conj() * gm.conj();
                    }
                    gd[n] += (t * s * s).conj() * sa + t * s2 * s2 * sb;
                }
            }
            (gv, gd)
        })
        .collect();
    let (mut gvr, mut gvi) = (vec![0f32; m * h * n2], vec![0f32; m * h * n2]);
    let (mut gdr, mut gdi) = (vec![0f32; h * n2], vec![0f32; h * n2]);
    for (hi, (gv, gd)) in per_h.iter().enumerate() {
        for mi in 0..m {
            for n in 0..n2 {
                let z = gv[mi * n2 + n];
                gvr[(mi * h + hi) * n2 + n] = z.re as f32;
                gvi[(mi * h + hi) * n2 + n] = z.im as f32;
            }
        }
        for n in 0..n2 {
            gdr[hi * n2 + n] = gd[n].re as f32;
            gdi[hi * n2 + n] = gd[n].im as f32;
        }
    }
    (gvr, gvi, gdr, gdi)
}
