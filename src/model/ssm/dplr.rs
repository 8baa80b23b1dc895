//! S4's diagonal-plus-low-rank (DPLR) kernel: `A = diag(ŵ) - P̂P̂ᴴ` discretized with the bilinear
//! transform, evaluated in the frequency domain with Cauchy sums and the Woodbury identity
//! (S4 paper, Algorithm 1; golden README §5.4), plus the dense host form of the same system
//! for `C̃ = (I - dA^L)ᵀC` and tests (step mode: [`super::dplr_step`]).

use burn::tensor::{Device, Tensor, TensorData};
use num_complex::Complex64 as C64;

use super::complex::{self, Complex};
pub use super::dplr_step::DplrRecurrence;

/// The truncated generating function of the DPLR kernel at the roots of unity of `l_fft`,
/// inverted to `K [C, H, l_fft]`.
///
/// `C̃` is the output matrix already multiplied by `(I - dA^{l_fft})ᵀ` (what S4 trains); rank 1.
///
/// Args: `dt` [H]; `w`, `p`, `b` [H, N2]; `c_tilde` [C, H, N2]. Returns [C, H, l_fft].
pub fn dplr_kernel(
    dt: Tensor<1>,
    w: Complex<2>,
    p: Complex<2>,
    b: Complex<2>,
    c_tilde: Complex<3>,
    l_fft: usize,
) -> Tensor<3> {
    let [c, h, _] = c_tilde.0.dims();
    let device = dt.device();
    let dt2 = dt.reshape([h, 1]);
    let d = (w.0 * dt2.clone(), w.1 * dt2.clone()); // dt·w, [H, N2]
    let q = complex::conj(p.clone());
    // Numerators dt·a·b for a ∈ {B, P} × b ∈ {C̃_0..C̃_{C-1}, Q}: [M = 2(C+1), H, N2].
    let rows = |a: &Complex<2>| -> Complex<3> {
        let a3 = (a.0.clone().unsqueeze_dim::<3>(0), a.1.clone().unsqueeze_dim::<3>(0));
        let q3 = (q.0.clone().unsqueeze_dim::<3>(0), q.1.clone().unsqueeze_dim::<3>(0));
        let bs = (Tensor::cat(vec![c_tilde.0.clone(), q3.0], 0), Tensor::cat(vec![c_tilde.1.clone(), q3.1], 0));
        complex::mul(a3, bs)
    };
    let (rb, rp) = (rows(&b), rows(&p));
    let dt3 = dt2.unsqueeze_dim::<3>(0);
    let v = (Tensor::cat(vec![rb.0, rp.0], 0) * dt3.clone(), Tensor::cat(vec![rb.1, rp.1], 0) * dt3);
    let r = cauchy(v, d, l_fft); // [2, M, H, K]
    let kk = l_fft / 2 + 1;
    let part = |ri: usize, m0: usize, len: usize| r.clone().narrow(0, ri, 1).narrow(1, m0, len).reshape([len, h, kk]);
    let pick = |m0: usize, len: usize| (part(0, m0, len), part(1, m0, len));
    let (r_bc, r_bq, r_pc, r_pq) = (pick(0, c), pick(c, 1), pick(c + 1, c), pick(2 * c + 1, 1));
    // Woodbury with t = (1+ω)/2 folded in: K̂ = r_BC - t·r_PC·r_BQ/(1 + t·r_PQ).
    let t = node_t(l_fft, &device);
    let tq = complex::mul(t.clone(), r_pq);
    let corr = complex::div(complex::mul(complex::mul(t, r_pc), r_bq), complex::add_scalar(tq, 1.0));
    let (kr, ki) = (r_bc.0 - corr.0, r_bc.1 - corr.1);
    burn::signal::irfft(kr, ki, 2, Some(l_fft))
}

/// `t_k = (1 + ω_k)/2` as [1, 1, K] (re, im).
fn node_t(l: usize, device: &Device) -> Complex<3> {
    let nodes = crate::ops::cauchy::nodes(l);
    let k = nodes.len();
    let re: Vec<f32> = nodes.iter().map(|(_, t)| t.re as f32).collect();
    let im: Vec<f32> = nodes.iter().map(|(_, t)| t.im as f32).collect();
    (
        Tensor::from_data(TensorData::new(re, [1, 1, k]), device),
        Tensor::from_data(TensorData::new(im, [1, 1, k]), device),
    )
}

/// The Cauchy sums of [`crate::ops::cauchy`]: fused on the CPU, tensor ops elsewhere.
///
/// Args: `v` [M, H, N2], `d` [H, N2]. Returns [2, M, H, l/2+1].
pub fn cauchy(v: Complex<3>, d: Complex<2>, l: usize) -> Tensor<4> {
    if crate::ops::supported(&d.0.device()) {
        crate::ops::cauchy(v.0, v.1, d.0, d.1, l)
    } else {
        cauchy_tensor_ops(v, d, l)
    }
}

/// [`cauchy`] from generic tensor ops (any backend; materializes [H, N2, K]).
pub fn cauchy_tensor_ops(v: Complex<3>, d: Complex<2>, l: usize) -> Tensor<4> {
    let device = d.0.device();
    let nodes = crate::ops::cauchy::nodes(l);
    let kk = nodes.len();
    let row = |f: &dyn Fn(&(C64, C64)) -> f64| -> Tensor<3> {
        let vals: Vec<f32> = nodes.iter().map(|x| f(x) as f32).collect();
        Tensor::from_data(TensorData::new(vals, [1, 1, kk]), &device)
    };
    let (a, t) = ((row(&|x| x.0.re), row(&|x| x.0.im)), (row(&|x| x.1.re), row(&|x| x.1.im)));
    let d3 = (d.0.unsqueeze_dim::<3>(2), d.1.unsqueeze_dim::<3>(2)); // [H, N2, 1]
    // s = 1/(a - t·d), s2 = 1/(a - t·conj d), each [H, N2, K].
    let inv = |dd: Complex<3>| {
        let td = complex::mul(t.clone(), dd);
        let den = (a.0.clone() - td.0, a.1.clone() - td.1);
        complex::div((Tensor::ones(den.0.dims(), &device), Tensor::zeros(den.0.dims(), &device)), den)
    };
    let (s, s2) = (inv(d3.clone()), inv(complex::conj(d3)));
    // Batched over h: [H, M, N2] @ [H, N2, K] → [H, M, K].
    let vh = (v.0.swap_dims(0, 1), v.1.swap_dims(0, 1));
    let mm = |x: &Complex<3>, y: &Complex<3>| -> Complex<3> {
        (
            x.0.clone().matmul(y.0.clone()) - x.1.clone().matmul(y.1.clone()),
            x.0.clone().matmul(y.1.clone()) + x.1.clone().matmul(y.0.clone()),
        )
    };
    let r1 = mm(&vh, &s);
    let r2 = mm(&complex::conj(vh), &s2);
    let (re, im) = ((r1.0 + r2.0).swap_dims(0, 1), (r1.1 + r2.1).swap_dims(0, 1)); // [M, H, K]
    Tensor::stack(vec![re, im], 0)
}

/// One SSM of the conj-expanded DPLR system (size `N = 2·N2`), bilinear-discretized, on the
/// host in f64: `dA = (I - dt/2·A)⁻¹(I + dt/2·A)`, `dB = (I - dt/2·A)⁻¹·dt·B̂`.
#[derive(Debug, Clone)]
pub struct DenseSsm {
    n: usize,
    /// Row-major [N, N].
    pub da: Vec<C64>,
    /// [N].
    pub db: Vec<C64>,
}

fn expand(v: &[C64]) -> Vec<C64> {
    v.iter().copied().chain(v.iter().map(|z| z.conj())).collect()
}

impl DenseSsm {
    /// Args: `w`, `p`, `b` [N2] of one `h`.
    ///
    /// `I - dt/2·A = δ + dt/2·P̂P̂ᴴ` with `δ = diag(1 - dt/2·ŵ)` is inverted in closed form by
    /// Sherman–Morrison, `δ⁻¹ - g·(δ⁻¹P̂)(P̂ᴴδ⁻¹)` with `g = (dt/2)/(1 + dt/2·P̂ᴴδ⁻¹P̂)`: O(N²)
    /// instead of an O(N³) solve.
    pub fn bilinear(dt: f64, w: &[C64], p: &[C64], b: &[C64]) -> Self {
        let (w, p, b) = (expand(w), expand(p), expand(b));
        let n = w.len();
        let h = dt / 2.0;
        let pd: Vec<C64> = p.iter().zip(&w).map(|(p, w)| p / (1.0 - h * w)).collect(); // δ⁻¹P̂
        let g = h / (1.0 + h * p.iter().zip(&pd).map(|(p, d)| p.conj() * d).sum::<C64>());
        // (I - dt/2·A)⁻¹ at (r, c).
        let inv = |r: usize, c: usize| {
            let diag = if r == c { 1.0 / (1.0 - h * w[r]) } else { C64::new(0.0, 0.0) };
            diag - g * pd[r] * p[c].conj() / (1.0 - h * w[c])
        };
        let inv: Vec<C64> = (0..n * n).map(|i| inv(i / n, i % n)).collect(); // [N, N]
        // (I - dt/2·A)⁻¹P̂
        let ip: Vec<C64> = (0..n).map(|r| (0..n).map(|c| inv[r * n + c] * p[c]).sum()).collect();
        // dA = (I - dt/2·A)⁻¹(diag(1 + dt/2·ŵ) - dt/2·P̂P̂ᴴ)
        let da = (0..n * n).map(|i| inv[i] * (1.0 + h * w[i % n]) - h * ip[i / n] * p[i % n].conj()).collect();
        let db = (0..n).map(|r| (0..n).map(|c| inv[r * n + c] * dt * b[c]).sum()).collect();
        Self { n, da, db }
    }

    /// The stored-half map `x ↦ (dA·x̂)[..N2]` as a real [N, N] matrix on `[Re x; Im x]`: `dA`
    /// keeps conj-symmetric vectors conj-symmetric, so its top rows `[A11 A12]` act on the half
    /// as `A11·x + A12·conj x`, a real-linear map whose products cost a quarter of the complex
    /// [N, N] ones.
    fn real_form(&self) -> Vec<f64> {
        let (n, h) = (self.n, self.n / 2);
        let mut r = vec![0.0; n * n];
        for i in 0..h {
            for j in 0..h {
                let (a, c) = (self.da[i * n + j], self.da[i * n + h + j]);
                r[i * n + j] = a.re + c.re;
                r[i * n + h + j] = c.im - a.im;
                r[(h + i) * n + j] = a.im + c.im;
                r[(h + i) * n + h + j] = a.re - c.re;
            }
        }
        r
    }

    /// `R^l` of the real form `R` ([`DenseSsm::real_form`]) by repeated squaring, [N, N].
    fn real_power(&self, mut l: usize) -> Vec<f64> {
        let n = self.n;
        let (mut out, mut base): (Option<Vec<f64>>, _) = (None, self.real_form());
        while l > 0 {
            if l & 1 == 1 {
                out = Some(out.map_or_else(|| base.clone(), |o| matmul(&o, &base, n)));
            }
            l >>= 1;
            if l > 0 {
                base = matmul(&base, &base, n);
            }
        }
        out.unwrap_or_else(|| (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect())
    }

    /// `C̃ = first half of (I - dA^l)ᵀ Ĉ` for one channel's `C` [N2]. In the real form the output
    /// `Re Cᵀx` is the row `r = [Re C, -Im C]` on `[Re x; Im x]`, and `r̃ = (I - R^l)ᵀ r`.
    pub fn c_tilde(&self, c: &[C64], l: usize) -> Vec<C64> {
        let (n, h, pl) = (self.n, self.n / 2, self.real_power(l));
        let r: Vec<f64> = c.iter().map(|c| c.re).chain(c.iter().map(|c| -c.im)).collect();
        let rt: Vec<f64> = (0..n).map(|m| r[m] - (0..n).map(|k| pl[k * n + m] * r[k]).sum::<f64>()).collect();
        (0..h).map(|m| C64::new(rt[m], -rt[h + m])).collect()
    }

    /// The inverse of [`DenseSsm::c_tilde`]: the effective `C` [N2] from `C̃` [N2], solving
    /// `(I - R^l)ᵀ r = r̃` in the real form.
    pub fn c_effective(&self, c_tilde: &[C64], l: usize) -> Vec<C64> {
        let (n, h, pl) = (self.n, self.n / 2, self.real_power(l));
        let rt: Vec<C64> =
            c_tilde.iter().map(|c| C64::new(c.re, 0.0)).chain(c_tilde.iter().map(|c| C64::new(-c.im, 0.0))).collect();
        let lhs: Vec<C64> =
            (0..n * n).map(|i| C64::new(if i / n == i % n { 1.0 } else { 0.0 } - pl[i % n * n + i / n], 0.0)).collect();
        let r = solve(lhs, rt, n, 1);
        (0..h).map(|m| C64::new(r[m].re, -r[h + m].re)).collect()
    }
}

/// Maps each channel's output vector through its `h`'s dense system (rayon over `H`), e.g.
/// [`DenseSsm::c_tilde`] or [`DenseSsm::c_effective`].
///
/// Args: `dt` [H]; `w`, `p`, `b` [H·N2]; `c` [C·H·N2]. Returns [C·H·N2].
pub fn map_outputs(
    dt: &[f64],
    w: &[C64],
    p: &[C64],
    b: &[C64],
    c: &[C64],
    f: impl Fn(&DenseSsm, &[C64]) -> Vec<C64> + Sync,
) -> Vec<C64> {
    use rayon::prelude::*;
    let (h, n2) = (dt.len(), w.len() / dt.len());
    let channels = c.len() / (h * n2);
    let rows: Vec<Vec<C64>> = (0..h)
        .into_par_iter()
        .map(|hi| {
            let r = hi * n2..(hi + 1) * n2;
            let sys = DenseSsm::bilinear(dt[hi], &w[r.clone()], &p[r.clone()], &b[r]);
            (0..channels).flat_map(|ci| f(&sys, &c[(ci * h + hi) * n2..][..n2])).collect()
        })
        .collect();
    let mut out = vec![C64::new(0.0, 0.0); c.len()];
    for (hi, row) in rows.iter().enumerate() {
        for ci in 0..channels {
            out[(ci * h + hi) * n2..][..n2].copy_from_slice(&row[ci * n2..][..n2]);
        }
    }
    out
}

/// `a·b` of row-major [n, n] matrices (gemm: the powers of `dA` behind the effective `C` are
/// most of the cost of setting up step mode).
fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    let s = n as isize;
    // SAFETY: the three buffers are row-major [n, n] (column stride 1, row stride n).
    unsafe {
        gemm::gemm(
            n,
            n,
            n,
            out.as_mut_ptr(),
            1,
            s,
            false,
            a.as_ptr(),
            1,
            s,
            b.as_ptr(),
            1,
            s,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    out
}

/// Solves `A·X = B` by Gaussian elimination with partial pivoting; `a` [n, n], `b` [n, m].
fn solve(mut a: Vec<C64>, mut b: Vec<C64>, n: usize, m: usize) -> Vec<C64> {
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| a[x * n + col].norm().total_cmp(&a[y * n + col].norm())).unwrap_or(col);
        if piv != col {
            for k in 0..n {
                a.swap(col * n + k, piv * n + k);
            }
            for k in 0..m {
                b.swap(col * m + k, piv * m + k);
            }
        }
        let d = a[col * n + col];
        for r in col + 1..n {
            let f = a[r * n + col] / d;
            if f == C64::new(0.0, 0.0) {
                continue;
            }
            for k in col..n {
                let v = a[col * n + k];
                a[r * n + k] -= f * v;
            }
            for k in 0..m {
                let v = b[col * m + k];
                b[r * m + k] -= f * v;
            }
        }
    }
    for col in (0..n).rev() {
        let d = a[col * n + col];
        for k in 0..m {
            let mut s = b[col * m + k];
            for j in col + 1..n {
                s -= a[col * n + j] * b[j * m + k];
            }
            b[col * m + k] = s / d;
        }
    }
    b
}
