//! The math of the fused kernels on plain slices (f64 accumulation, rayon over channels).
//! Kept free of tensor types so tests can compare them with direct formulas.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;

use super::fastmath::sigmoid;
use super::pool::TaskPool;
use super::simd::simd_dispatch;
use super::transpose::{Dst, Shared, TILE, transpose_into};
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// `K[c,h,l] = 2·Re Σ_n W[c,h,n]·z[h,n]^l`, `z = exp(dtA)`.
///
/// Args: `w` [C,H,N2] and `dta` [H,N2] as (re, im). Returns [C,H,L].
pub fn vandermonde(w: (&[f32], &[f32]), dta: (&[f32], &[f32]), c: usize, h: usize, n2: usize, l: usize) -> Vec<f32> {
    let mut out = vec![0f32; c * h * l];
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

type Plans = (Arc<dyn RealToComplex<f32>>, Arc<dyn ComplexToReal<f32>>);

/// Cached forward/inverse real FFT plans of length `n`.
fn plans(n: usize) -> Plans {
    static CACHE: OnceLock<Mutex<HashMap<usize, Plans>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().expect("fft plan cache");
    cache
        .entry(n)
        .or_insert_with(|| {
            let mut p = RealFftPlanner::<f32>::new();
            (p.plan_fft_forward(n), p.plan_fft_inverse(n))
        })
        .clone()
}

/// FFT length for a causal convolution of length `l`: the smallest even n ≥ 2l-1 whose prime
/// factors are 2, 3, 5, 7 (any n ≥ 2l-1 gives the exact linear convolution; these are fast).
pub fn fft_len(l: usize) -> usize {
    let smooth = |mut n: usize| {
        for p in [2, 3, 5, 7] {
            while n.is_multiple_of(p) {
                n /= p;
            }
        }
        n == 1
    };
    let mut n = (2 * l).saturating_sub(1).max(2);
    while !n.is_multiple_of(2) || !smooth(n) {
        n += 1;
    }
    n
}

/// Per-thread buffers of one FFT size.
struct Scratch {
    time: Vec<f32>,
    freq: Vec<Complex<f32>>,
    work: Vec<Complex<f32>>,
}

impl Scratch {
    fn new(p: &Plans) -> Self {
        let n = p.0.len();
        let work = p.0.get_scratch_len().max(p.1.get_scratch_len());
        Self { time: vec![0.0; n], freq: vec![Complex::default(); n / 2 + 1], work: vec![Complex::default(); work] }
    }

    /// FFT of `x` zero-padded to n into `self.freq`.
    fn forward(&mut self, p: &Plans, x: impl Iterator<Item = f32>) {
        self.time.fill(0.0);
        for (t, v) in self.time.iter_mut().zip(x) {
            *t = v;
        }
        p.0.process_with_scratch(&mut self.time, &mut self.freq, &mut self.work).expect("sizes match the plan");
    }

    /// Inverse FFT of `spec` (scaled by 1/n) into `self.time`.
    fn inverse(&mut self, p: &Plans, spec: impl Iterator<Item = Complex<f32>>) {
        let n = self.time.len();
        for (f, s) in self.freq.iter_mut().zip(spec) {
            *f = s / n as f32;
        }
        self.finish_inverse(p);
    }

    /// Inverse FFT of `self.freq·m` (`conj m` with `conj`), into `self.time`: the product is
    /// taken in place, so no second spectrum-sized buffer is live (8 MB each at L = 2^20).
    fn inverse_times(&mut self, p: &Plans, m: &[Complex<f32>], conj: bool) {
        let scale = 1.0 / self.time.len() as f32;
        for (f, m) in self.freq.iter_mut().zip(m) {
            *f = *f * if conj { m.conj() } else { *m } * scale;
        }
        self.finish_inverse(p);
    }

    /// The inverse transform of `self.freq`, already scaled.
    fn finish_inverse(&mut self, p: &Plans) {
        let n = self.time.len();
        // Bins 0 and n/2 of a real signal's spectrum are real; drop rounding residue.
        self.freq[0].im = 0.0;
        self.freq[n / 2].im = 0.0;
        p.1.process_with_scratch(&mut self.freq, &mut self.time, &mut self.work).expect("sizes match the plan");
    }
}

/// What one conv task works in: its channels' rows [nh, B, L] and their outputs, FFT buffers,
/// one kernel spectrum and (backward) the ∂k spectrum it sums over the batch.
struct ConvTask {
    rows: Vec<f32>,
    out: Vec<f32>,
    sc: Scratch,
    kh: Vec<Complex<f32>>,
    acc: Vec<Complex<f32>>,
}

impl ConvTask {
    /// Buffers for rows of `len` elements; `grad` adds the ∂k spectrum.
    fn new(p: &Plans, len: usize, grad: bool) -> Self {
        let sc = Scratch::new(p);
        let f = sc.freq.len();
        let acc = vec![Complex::default(); if grad { f } else { 0 }];
        Self { rows: vec![0.0; len], out: vec![0.0; len], sc, kh: vec![Complex::default(); f], acc }
    }
}

/// `y = act(z)`, `z[b,l,h] = Σ_{j≤l} k[h,j]·u[b,l-j,h] + d[h]·u[b,l,h]`, plus, with `save`,
/// what the backward pass needs: the spectra of `u` and (for GELU) `z`.
///
/// Args: `u` [B,L,H], `k` [H,L], `d` [H]. Returns `y` [B,L,H], `û` [H,B,F] (F = n/2+1) as
/// interleaved (re, im), and `z` [B,L,H] (both empty without `save`; `z` without activation).
#[allow(clippy::too_many_arguments)]
pub fn causal_conv(
    u: &[f32],
    k: &[f32],
    d: &[f32],
    gelu_act: bool,
    save: bool,
    b: usize,
    l: usize,
    h: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let n = fft_len(l);
    let f = n / 2 + 1;
    let p = plans(n);
    let mut z = vec![0f32; b * l * h];
    // Inference keeps no spectra: at B=64, H=64, L=784 they are 25 MB a layer.
    let mut spec = vec![0f32; if save { h * b * f * 2 } else { 0 }];
    let blocks = h.div_ceil(TILE);
    let parts: Vec<&mut [f32]> = if save {
        spec.chunks_mut(TILE * b * f * 2).collect()
    } else {
        (0..blocks).map(|_| <&mut [f32]>::default()).collect()
    };
    let out = Shared::new(&mut z);
    let pool = TaskPool::new(blocks, || ConvTask::new(&p, TILE.min(h) * b * l, false));
    // One task per block of TILE channels: it gathers its channels of every sequence into
    // [TILE, B, L] rows and scatters its output back, so no [H,B,L] copy of the whole input or
    // output is made; one channel's kernel spectrum is live at a time (a TILE of them is
    // 128 MB at L = 2^20).
    parts.into_par_iter().enumerate().for_each(|(blk, s)| {
        pool.with(|t| {
            let (h0, nh) = (blk * TILE, TILE.min(h - blk * TILE));
            let ConvTask { rows, out: ys, sc, kh, .. } = t;
            let rows = gather(u, b, l, h, h0, nh, rows);
            let ys = &mut ys[..nh * b * l]; // [nh, B, L]
            for c in 0..nh {
                let hi = h0 + c;
                sc.forward(&p, k[hi * l..][..l].iter().copied());
                kh.copy_from_slice(&sc.freq);
                for bi in 0..b {
                    let row = &rows[(c * b + bi) * l..][..l];
                    sc.forward(&p, row.iter().copied());
                    if save {
                        let at = (c * b + bi) * f * 2;
                        for (j, v) in sc.freq.iter().enumerate() {
                            s[at + 2 * j] = v.re;
                            s[at + 2 * j + 1] = v.im;
                        }
                    }
                    sc.inverse_times(&p, kh, false);
                    for (t, yt) in ys[(c * b + bi) * l..][..l].iter_mut().enumerate() {
                        *yt = sc.time[t] + d[hi] * row[t];
                    }
                }
            }
            // SAFETY: this task writes only channels h0..h0+nh, which no other task writes.
            unsafe { scatter(ys, out, b, l, h, h0, nh) };
        })
    });
    match (gelu_act, save) {
        (true, true) => (super::gelu::gelu_host(&z), spec, z),
        (true, false) => (super::gelu::gelu_host(&z), spec, Vec::new()),
        (false, _) => (z, spec, Vec::new()),
    }
}

/// Gradients of [`causal_conv`] given `g = ∂loss/∂y` [B,L,H] and the saved `z` (empty: no
/// activation): (∂u [B,L,H], ∂k [H,L], ∂d [H]).
#[allow(clippy::too_many_arguments)]
pub fn causal_conv_grad(
    u: &[f32],
    k: &[f32],
    d: &[f32],
    spec: &[f32],
    z: &[f32],
    g: &[f32],
    b: usize,
    l: usize,
    h: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let gz: Vec<f32>;
    let g = if z.is_empty() {
        g
    } else {
        gz = super::gelu::gelu_grad_host(z, g);
        &gz
    };
    let n = fft_len(l);
    let f = n / 2 + 1;
    let p = plans(n);
    let mut gu = vec![0f32; b * l * h];
    let mut gk = vec![0f32; h * l];
    let out = Shared::new(&mut gu);
    let pool = TaskPool::new(h.div_ceil(TILE), || ConvTask::new(&p, TILE.min(h) * b * l, true));
    // Tasks as in the forward pass, so ∂k sums over the batch inside one task.
    gk.par_chunks_mut(TILE * l).enumerate().for_each(|(blk, gkb)| {
        pool.with(|t| {
            let (h0, nh) = (blk * TILE, TILE.min(h - blk * TILE));
            let ConvTask { rows: grows, out: gus, sc, kh, acc } = t;
            let grows = gather(g, b, l, h, h0, nh, grows);
            let gus = &mut gus[..nh * b * l]; // [nh, B, L]
            for c in 0..nh {
                let hi = h0 + c;
                sc.forward(&p, k[hi * l..][..l].iter().copied());
                kh.copy_from_slice(&sc.freq);
                acc.fill(Complex::default());
                for bi in 0..b {
                    // The adjoint of a causal convolution is a correlation: multiply by conj spectra.
                    let grow = &grows[(c * b + bi) * l..][..l];
                    sc.forward(&p, grow.iter().copied());
                    let s = &spec[(hi * b + bi) * f * 2..][..f * 2];
                    for (j, a) in acc.iter_mut().enumerate() {
                        *a += sc.freq[j] * Complex::new(s[2 * j], -s[2 * j + 1]);
                    }
                    sc.inverse_times(&p, kh, true);
                    for (t, v) in gus[(c * b + bi) * l..][..l].iter_mut().enumerate() {
                        *v = sc.time[t] + d[hi] * grow[t];
                    }
                }
                sc.inverse(&p, acc.iter().copied());
                gkb[c * l..][..l].copy_from_slice(&sc.time[..l]);
            }
            // SAFETY: this task writes only channels h0..h0+nh, which no other task writes.
            unsafe { scatter(gus, out, b, l, h, h0, nh) };
        })
    });
    // ∂d[h] = Σ_{b,l} g·u, in the [B·L, H] layout as it is (no transpose of u).
    let row = h.max(1);
    let chunk = (TASK / row).max(1) * row;
    let gd = g
        .par_chunks(chunk)
        .zip(u.par_chunks(chunk))
        .map(|(g, u)| {
            let mut s = vec![0f64; h];
            for (gr, ur) in g.chunks_exact(row).zip(u.chunks_exact(row)) {
                for ((s, g), u) in s.iter_mut().zip(gr).zip(ur) {
                    *s += *g as f64 * *u as f64;
                }
            }
            s
        })
        .reduce(|| vec![0f64; h], |a, b| a.iter().zip(&b).map(|(a, b)| a + b).collect());
    let gd = gd.iter().map(|v| *v as f32).collect();
    (gu, gk, gd)
}

/// Channels `h0..h0 + nh` of `x` [B,L,H] as rows [nh, B, L], written over the front of `rows`.
fn gather<'a>(x: &[f32], b: usize, l: usize, h: usize, h0: usize, nh: usize, rows: &'a mut [f32]) -> &'a [f32] {
    let rows = &mut rows[..nh * b * l];
    for bi in 0..b {
        // Source rows are steps (h apart), columns the channels; destination rows are channels
        // (b·l apart).
        transpose_into(&x[bi * l * h + h0..], h, &mut rows[bi * l..], b * l, l, nh);
    }
    rows
}

/// Writes `rows` [nh, B, L] into channels `h0..h0 + nh` of `out` [B,L,H].
///
/// # Safety
/// No other task may touch those channels of `out` meanwhile.
unsafe fn scatter(rows: &[f32], out: Shared, b: usize, l: usize, h: usize, h0: usize, nh: usize) {
    for bi in 0..b {
        // SAFETY: the caller's.
        let mut dst = unsafe { out.at(bi * l * h + h0) };
        transpose_into(&rows[bi * l..], b * l, &mut dst, h, nh, l);
    }
}

/// Elements per parallel task of the row-wise loops.
const TASK: usize = 1 << 14;

/// GLU over the last axis: `[a, b] -> a·σ(b)`. Args: `x` [R, 2H]. Returns [R, H].
pub fn glu(x: &[f32], h: usize) -> Vec<f32> {
    let mut y = vec![0f32; x.len() / 2];
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
    let mut gx = vec![0f32; x.len()];
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
    let mut y = vec![0f32; x.len()];
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
    let mut gx = vec![0f32; x.len()];
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
