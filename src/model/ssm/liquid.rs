//! Liquid-S4 (Hasani et al. 2022): the S4 convolution plus input-correlation terms built from
//! products of inputs, weighted by powers of the SSM's own `B` (golden README §5.7).
//!
//! Both kernels follow the reference (raminmh/liquid-s4) exactly, including what looks
//! accidental: the product sequences are reversed in time (the terms are anti-causal), `polyb`
//! uses `conj(C)` and exponents `2^{p-1}-1`, and `kb` multiplies a length-`L+1` DFT of the
//! kernel with length-`2L` spectra of the inputs. Unlike the reference, whose liquid terms read
//! frozen copies of `B`, `C`, `w`, `dt` taken at construction, ours read the trained parameters.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use burn::signal::{irfft, rfft};
use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::complex::{self, Complex};

/// The liquid correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiquidKernel {
    /// Polynomials in `B` added pointwise (PB kernel).
    Polyb,
    /// `K̄·B` terms added in the frequency domain (KB kernel).
    Kb,
}

/// A Liquid-S4 correction of a given degree.
#[derive(Debug, Clone, Copy)]
pub struct Liquid {
    /// Which correction.
    pub kernel: LiquidKernel,
    /// Highest product degree (≥ 2).
    pub degree: usize,
    /// Products over all index combinations of the last steps (true) or of neighbours (false).
    pub allcombs: bool,
}

impl Liquid {
    /// The per-`h` scalars of the correction: `σ = 2·Re Σ_n dB` and `G = 2·Re Σ_n conj(C)·dB`,
    /// with `dB = dt·B/(1 - dt·w/2)` (the bilinear input vector of the diagonal part).
    ///
    /// Args: `dt` [H]; `w`, `b` [H, N2]; `c` [H, N2] (one channel). Returns (σ [H], G [H]).
    pub fn coefficients(dt: Tensor<1>, w: Complex<2>, b: Complex<2>, c: Complex<2>) -> (Tensor<1>, Tensor<1>) {
        let [h, _] = w.0.dims();
        let dt2 = dt.reshape([h, 1]);
        let den = (-(w.0 * dt2.clone()) * 0.5 + 1.0, -(w.1 * dt2.clone()) * 0.5);
        let db = complex::div((b.0 * dt2.clone(), b.1 * dt2), den);
        let sigma = db.0.clone().sum_dim(1).reshape([h]) * 2.0;
        let g = complex::mul(complex::conj(c), db).0.sum_dim(1).reshape([h]) * 2.0;
        (sigma, g)
    }

    /// The correction to add to the SSM output of one channel.
    ///
    /// Args: `u` [B, H, L]; `k` [H, L] the channel's SSM kernel; `sigma`, `g` [H] from
    /// [`Liquid::coefficients`]. Returns [B, H, L].
    pub fn correction(&self, u: Tensor<3>, k: Tensor<2>, sigma: Tensor<1>, g: Tensor<1>) -> Tensor<3> {
        let [_, h, l] = u.dims();
        let device = u.device();
        let v = products(u, self.degree, self.allcombs); // ṽ_p for p = 2..=degree
        let col = |t: Tensor<1>| t.reshape([1, h, 1]);
        match self.kernel {
            LiquidKernel::Polyb => {
                // Degree p weighs ṽ_p by G·σ^{e_p}, e_2 = 1, e_{p+1} = 2·e_p + 1.
                let mut pw = sigma.clone();
                let mut out: Option<Tensor<3>> = None;
                for vp in v {
                    let term = vp * col(g.clone() * pw.clone());
                    pw = pw.square() * sigma.clone();
                    out = Some(out.map_or(term.clone(), |o| o + term));
                }
                out.expect("degree ≥ 2")
            }
            LiquidKernel::Kb => {
                // Degree p weighs ṽ_p by σ^{p-1}; one two-sided convolution for all degrees.
                let mut pw = sigma.clone();
                let mut sum: Option<Tensor<3>> = None;
                for vp in v {
                    let term = vp * col(pw.clone());
                    pw = pw * sigma.clone();
                    sum = Some(sum.map_or(term.clone(), |s| s + term));
                }
                let taps = k.matmul(kb_transfer(l, &device)); // [H, 2L-1]
                two_sided_conv(sum.expect("degree ≥ 2"), taps)
            }
        }
    }
}

/// The reversed product sequences `ṽ_p[l] = v_p[L-1-l]` for `p = 2..=degree` (README §5.7).
///
/// Args: `u` [B, H, L]. Returns one [B, H, L] per degree.
pub fn products(u: Tensor<3>, degree: usize, allcombs: bool) -> Vec<Tensor<3>> {
    let [b, h, l] = u.dims();
    let device = u.device();
    let mut out = Vec::with_capacity(degree.saturating_sub(1));
    let mut prev = u.clone();
    for p in 2..=degree {
        let v = if allcombs {
            let combs = last_combinations(l, p);
            let mut v: Option<Tensor<3>> = None;
            for j in 0..p {
                let idx: Vec<i64> = combs.iter().map(|c| c[j] as i64).collect();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [combs.len()]), &device);
                let f = u.clone().select(2, idx);
                v = Some(v.map_or(f.clone(), |v| v * f));
            }
            let v = v.expect("p ≥ 2");
            if combs.len() < l { Tensor::cat(vec![v, Tensor::zeros([b, h, l - combs.len()], &device)], 2) } else { v }
        } else {
            // v_{p}[l] = v_{p-1}[l]·v_{p-1}[l-1], zero before the start.
            let shifted = Tensor::cat(vec![Tensor::zeros([b, h, 1], &device), prev.clone().narrow(2, 0, l - 1)], 2);
            prev.clone() * shifted
        };
        prev = v.clone();
        out.push(v.flip([2]));
    }
    out
}

/// The last `L` of the `p`-combinations (lexicographic) of `{L-m, …, L-1}`, `m` the smallest
/// integer in `[2, L)` with `binom(m, p) ≥ L` (1 if none), as the reference selects them.
fn last_combinations(l: usize, p: usize) -> Vec<Vec<usize>> {
    let binom = |n: usize, k: usize| -> u128 {
        (0..k).fold(1u128, |acc, i| acc.saturating_mul((n - i) as u128) / (i as u128 + 1))
    };
    let m = (2..l).find(|&m| m >= p && binom(m, p) >= l as u128).unwrap_or(1);
    let mut all = Vec::new();
    let mut c: Vec<usize> = (0..p).collect();
    if m >= p {
        loop {
            all.push(c.iter().map(|i| l - m + i).collect::<Vec<_>>());
            // Next combination in lexicographic order.
            let Some(i) = (0..p).rev().find(|&i| c[i] < m - p + i) else { break };
            c[i] += 1;
            for j in i + 1..p {
                c[j] = c[j - 1] + 1;
            }
        }
    }
    let skip = all.len().saturating_sub(l);
    all.split_off(skip)
}

/// `T [L, 2L-1]` mapping a kernel `k [L]` to the taps `g[d]`, `d = -(L-1)..L-1`, of the KB
/// correction: `y = irfft_{2L}(DFT_{L+1}(k)·rfft_{2L}(v))` equals `y[t] = Σ_s v[s]·g[t-s]`.
///
/// `g[d] = Σ_j k[j]·(1/2L)·Σ_{m=0..L} c_m·cos(m·θ)`, `θ = 2π(d/2L - j/(L+1))`, `c_0 = c_L = 1`,
/// else 2 (the inverse real FFT drops the imaginary parts of bins 0 and L); the sum over `m` has
/// the closed form `cos(Lθ) + sin((L-½)θ)/sin(θ/2)` (value `2L` where `sin(θ/2) = 0`).
fn kb_transfer(l: usize, device: &burn::tensor::Device) -> Tensor<2> {
    // O(L²) trigonometry per length: built once per process and length, not per forward.
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Vec<f32>>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().expect("kb transfer cache");
    let t = cache.entry(l).or_insert_with(|| {
        let n = 2.0 * l as f64;
        let lf = l as f64;
        let mut t = Vec::with_capacity(l * (2 * l - 1));
        for j in 0..l {
            for di in 0..2 * l - 1 {
                let d = di as f64 - (lf - 1.0);
                let theta = 2.0 * std::f64::consts::PI * (d / n - j as f64 / (lf + 1.0));
                let half = (theta / 2.0).sin();
                let s = if half.abs() < 1e-12 {
                    (lf * theta).cos() + (2.0 * lf - 1.0) * ((lf - 0.5) * theta).cos() / (theta / 2.0).cos()
                } else {
                    (lf * theta).cos() + ((lf - 0.5) * theta).sin() / half
                };
                t.push((s / n) as f32);
            }
        }
        Arc::new(t)
    });
    let t = Arc::clone(t);
    drop(cache);
    Tensor::from_data(TensorData::new(t.to_vec(), [l, 2 * l - 1]), device)
}

/// `y[b,h,t] = Σ_s v[b,h,s]·g[h, t-s+L-1]` for `t < L` (a two-sided convolution) by FFT.
///
/// Args: `v` [B, H, L], `g` [H, 2L-1]. Returns [B, H, L].
fn two_sided_conv(v: Tensor<3>, g: Tensor<2>) -> Tensor<3> {
    let [_, _, l] = v.dims();
    let n = (3 * l).next_power_of_two();
    let (vr, vi) = rfft(v, 2, Some(n));
    let (gr, gi) = rfft(g, 1, Some(n));
    let (gr, gi) = (gr.unsqueeze_dim::<3>(0), gi.unsqueeze_dim::<3>(0));
    let yr = vr.clone() * gr.clone() - vi.clone() * gi.clone();
    let yi = vr * gi + vi * gr;
    irfft(yr, yi, 2, Some(n)).narrow(2, l - 1, l)
}
