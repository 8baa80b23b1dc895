//! Causal convolution by real FFT on the host, with its gradient: one rayon task per block of
//! `TILE` channels.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

use crate::ops::pool::{TaskPool, zeros};
use crate::ops::transpose::{Shared, TILE, transpose_into};

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
    fn forward(&mut self, p: &Plans, x: &[f32]) {
        self.load(x);
        p.0.process_with_scratch(&mut self.time, &mut self.freq, &mut self.work).expect("sizes match the plan");
    }

    /// FFT of `x` zero-padded to n into `out` (a kernel spectrum: no copy out of `self.freq`).
    fn forward_into(&mut self, p: &Plans, x: &[f32], out: &mut [Complex<f32>]) {
        self.load(x);
        p.0.process_with_scratch(&mut self.time, out, &mut self.work).expect("sizes match the plan");
    }

    /// `x` then zeros into the time buffer, which the real FFT also uses as scratch.
    fn load(&mut self, x: &[f32]) {
        let (head, tail) = self.time.split_at_mut(x.len());
        head.copy_from_slice(x);
        tail.fill(0.0);
    }

    /// Inverse FFT of `spec` (scaled by 1/n) into `self.time`.
    fn inverse(&mut self, p: &Plans, spec: impl Iterator<Item = Complex<f32>>) {
        let n = self.time.len();
        for (f, s) in self.freq.iter_mut().zip(spec) {
            *f = s / n as f32;
        }
        self.finish_inverse(p);
    }

    /// Inverse FFT of `self.freq·m` into `self.time`, first copying `self.freq` into `keep`
    /// as interleaved (re, im) when there is one: the product is taken in place, in the same
    /// pass, so no second spectrum-sized buffer is live (8 MB each at L = 2^20).
    fn inverse_times(&mut self, p: &Plans, m: &[Complex<f32>], keep: Option<&mut [f32]>) {
        let scale = 1.0 / self.time.len() as f32;
        match keep {
            Some(keep) => {
                for ((f, m), k) in self.freq.iter_mut().zip(m).zip(keep.chunks_exact_mut(2)) {
                    (k[0], k[1]) = (f.re, f.im);
                    *f = *f * *m * scale;
                }
            }
            None => self.freq.iter_mut().zip(m).for_each(|(f, m)| *f = *f * *m * scale),
        }
        self.finish_inverse(p);
    }

    /// Backward pass: `acc += self.freq·conj(û)` (`û` interleaved) and the inverse FFT of
    /// `self.freq·conj(m)` into `self.time`, in one pass over the spectra.
    fn correlate(&mut self, p: &Plans, m: &[Complex<f32>], u_hat: &[f32], acc: &mut [Complex<f32>]) {
        let scale = 1.0 / self.time.len() as f32;
        for (((f, m), u), a) in self.freq.iter_mut().zip(m).zip(u_hat.chunks_exact(2)).zip(acc) {
            *a += *f * Complex::new(u[0], -u[1]);
            *f = *f * m.conj() * scale;
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
        Self { rows: zeros(len), out: zeros(len), sc, kh: vec![Complex::default(); f], acc }
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
    let mut z = zeros(b * l * h);
    // Inference keeps no spectra: at B=64, H=64, L=784 they are 25 MB a layer.
    let mut spec = zeros(if save { h * b * f * 2 } else { 0 });
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
                sc.forward_into(&p, &k[hi * l..][..l], kh);
                for bi in 0..b {
                    let row = &rows[(c * b + bi) * l..][..l];
                    sc.forward(&p, row);
                    let keep = if save { Some(&mut s[(c * b + bi) * f * 2..][..f * 2]) } else { None };
                    sc.inverse_times(&p, kh, keep);
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
        (true, true) => (crate::ops::gelu::gelu_host(&z), spec, z),
        (true, false) => (crate::ops::gelu::gelu_host(&z), spec, Vec::new()),
        (false, _) => (z, spec, Vec::new()),
    }
}

/// Gradients of [`causal_conv`] given `g = ∂loss/∂y` [B,L,H] and the saved `z` (empty: no
/// activation): (∂u [B,L,H], ∂k [H,L], ∂d [H]). `u` itself is not needed: ∂k comes from its
/// spectra, and ∂d = ∂k[·, 0], since the skip `d·u` is a kernel tap at lag 0.
#[allow(clippy::too_many_arguments)]
pub fn causal_conv_grad(
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
        gz = crate::ops::gelu::gelu_grad_host(z, g);
        &gz
    };
    let n = fft_len(l);
    let f = n / 2 + 1;
    let p = plans(n);
    let mut gu = zeros(b * l * h);
    let mut gk = zeros(h * l);
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
                sc.forward_into(&p, &k[hi * l..][..l], kh);
                acc.fill(Complex::default());
                for bi in 0..b {
                    // The adjoint of a causal convolution is a correlation: multiply by conj spectra.
                    let grow = &grows[(c * b + bi) * l..][..l];
                    sc.forward(&p, grow);
                    sc.correlate(&p, kh, &spec[(hi * b + bi) * f * 2..][..f * 2], acc);
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
    let gd = (0..h).map(|hi| if l == 0 { 0.0 } else { gk[hi * l] }).collect();
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
