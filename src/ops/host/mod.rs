//! The math of the fused kernels on plain slices (f64 accumulation where rounding compounds,
//! rayon over channels or row blocks).
//! Kept free of tensor types so tests can compare them with direct formulas.

use rayon::prelude::*;

use super::fastmath::sigmoid;
use super::pool::zeros;
use super::simd::simd_dispatch;

mod fftconv;
mod linear;
mod vandermonde;

pub use fftconv::{causal_conv, causal_conv_grad, fft_len};
pub use linear::{linear_glu, linear_glu_grad};
pub use vandermonde::{vandermonde, vandermonde_grad};

/// Elements per parallel task of the row-wise loops.
const TASK: usize = 1 << 14;

/// GLU over the last axis: `[a, b] -> a·σ(b)`. Args: `x` [R, 2H]. Returns [R, H].
pub fn glu(x: &[f32], h: usize) -> Vec<f32> {
    let mut y = zeros(x.len() / 2);
    let rows = (TASK / h.max(1)).max(1);
    y.par_chunks_mut(rows * h).zip(x.par_chunks(rows * 2 * h)).for_each(|(y, x)| glu_rows(x, y, h));
    y
}

simd_dispatch! {
    /// [`glu`] of whole rows.
    fn glu_rows => glu_rows_body(x: &[f32], y: &mut [f32], h: usize)
}

#[inline(always)]
fn glu_rows_body<const FMA: bool>(x: &[f32], y: &mut [f32], h: usize) {
    for (y, x) in y.chunks_exact_mut(h).zip(x.chunks_exact(2 * h)) {
        let (a, b) = x.split_at(h);
        for (y, (a, b)) in y.iter_mut().zip(a.iter().zip(b)) {
            *y = a * sigmoid(*b);
        }
    }
}

/// Gradient of [`glu`]: `∂a = g·σ(b)`, `∂b = g·a·σ(b)·(1-σ(b))`.
pub fn glu_grad(x: &[f32], g: &[f32], h: usize) -> Vec<f32> {
    let mut gx = zeros(x.len());
    let rows = (TASK / h.max(1)).max(1);
    let parts = gx.par_chunks_mut(rows * 2 * h).zip(x.par_chunks(rows * 2 * h)).zip(g.par_chunks(rows * h));
    parts.for_each(|((gx, x), g)| glu_grad_rows(x, g, gx, h));
    gx
}

simd_dispatch! {
    /// [`glu_grad`] of whole rows.
    fn glu_grad_rows => glu_grad_rows_body(x: &[f32], g: &[f32], gx: &mut [f32], h: usize)
}

#[inline(always)]
fn glu_grad_rows_body<const FMA: bool>(x: &[f32], g: &[f32], gx: &mut [f32], h: usize) {
    for ((gx, x), g) in gx.chunks_exact_mut(2 * h).zip(x.chunks_exact(2 * h)).zip(g.chunks_exact(h)) {
        let ((ga, gb), (a, b)) = (gx.split_at_mut(h), x.split_at(h));
        for j in 0..h {
            let s = sigmoid(b[j]);
            ga[j] = g[j] * s;
            gb[j] = g[j] * a[j] * s * (1.0 - s);
        }
    }
}

/// LayerNorm over the last axis: `y = γ·(x - μ)/σ + β`, `σ = sqrt(var + eps)`.
///
/// Args: `x` [R, H], `gamma`, `beta` [H]. Returns `y` [R, H] and `1/σ` per row [R] (saved for
/// the backward pass).
pub fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, h: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = x.len() / h;
    let mut y = zeros(x.len());
    let mut rstd = vec![0f32; rows];
    y.par_chunks_mut(h).zip(x.par_chunks(h)).zip(rstd.par_iter_mut()).for_each(|((y, x), r)| {
        let mean = x.iter().map(|v| *v as f64).sum::<f64>() / h as f64;
        let var = x.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / h as f64;
        let rs = 1.0 / (var + eps as f64).sqrt();
        *r = rs as f32;
        for j in 0..h {
            y[j] = ((x[j] as f64 - mean) * rs) as f32 * gamma[j] + beta[j];
        }
    });
    (y, rstd)
}

/// Gradients of [`layer_norm`]: (∂x [R, H], ∂γ [H], ∂β [H]).
pub fn layer_norm_grad(x: &[f32], gamma: &[f32], rstd: &[f32], g: &[f32], h: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    const ROWS_PER_TASK: usize = 256;
    let mut gx = zeros(x.len());
    let partial: Vec<(Vec<f64>, Vec<f64>)> = gx
        .par_chunks_mut(h * ROWS_PER_TASK)
        .zip(x.par_chunks(h * ROWS_PER_TASK))
        .zip(g.par_chunks(h * ROWS_PER_TASK))
        .zip(rstd.par_chunks(ROWS_PER_TASK))
        .map(|(((gx, x), g), rstd)| {
            let (mut gg, mut gb) = (vec![0f64; h], vec![0f64; h]);
            let mut xhat = vec![0f32; h];
            for (r, &rs) in rstd.iter().enumerate() {
                let (x, g, gx) = (&x[r * h..][..h], &g[r * h..][..h], &mut gx[r * h..][..h]);
                let mean = x.iter().map(|v| *v as f64).sum::<f64>() / h as f64;
                let (mut m1, mut m2) = (0f64, 0f64);
                for j in 0..h {
                    xhat[j] = ((x[j] as f64 - mean) * rs as f64) as f32;
                    let gxh = (g[j] * gamma[j]) as f64;
                    m1 += gxh;
                    m2 += gxh * xhat[j] as f64;
                    gg[j] += (g[j] * xhat[j]) as f64;
                    gb[j] += g[j] as f64;
                }
                let (m1, m2) = (m1 / h as f64, m2 / h as f64);
                for j in 0..h {
                    gx[j] = (rs as f64 * ((g[j] * gamma[j]) as f64 - m1 - xhat[j] as f64 * m2)) as f32;
                }
            }
            (gg, gb)
        })
        .collect();
    let (mut gg, mut gb) = (vec![0f64; h], vec![0f64; h]);
    for (pg, pb) in partial {
        for j in 0..h {
            gg[j] += pg[j];
            gb[j] += pb[j];
        }
    }
    (gx, gg.into_iter().map(|v| v as f32).collect(), gb.into_iter().map(|v| v as f32).collect())
}
