//! Recurrent (step) mode of diagonal SSMs on the host (state and dA in f64), and the
//! recurrence enum every layer steps with.
//!
//! A diagonal token costs O(H·N) and no allocation, which is what autoregressive inference on
//! a CPU wants (S4's DPLR step, by the Woodbury identity, is O(H·N) too); conv mode and step mode compute the same
//! map (tests check it to 1e-4 relative).

use super::diagonal::Disc;
use super::dplr::DplrRecurrence;
use crate::ops::simd::{mul_add64, simd_dispatch};

/// A discretized diagonal system `x_t = dA·x_{t-1} + dB·u_t`, `y_t = 2·Re Σ_n C·x_t`.
#[derive(Debug, Clone)]
pub struct DiagonalRecurrence {
    h: usize,
    n2: usize,
    channels: usize,
    da: (Vec<f64>, Vec<f64>),
    // dB and C in f32: they enter each token once (no powers), so f32 costs ~1e-7 relative, and
    // a token streams a quarter fewer bytes. dA and the state stay f64: their error compounds.
    db: (Vec<f32>, Vec<f32>),
    c: (Vec<f32>, Vec<f32>),
}

/// The complex state of one sequence, [H, N2] as (re, im).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagonalState {
    /// Real parts, [H·N2].
    pub re: Vec<f64>,
    /// Imaginary parts, [H·N2].
    pub im: Vec<f64>,
}

impl DiagonalRecurrence {
    /// Discretizes with `disc`: ZOH `dA = exp(dtA)`, `dB = (exp(dtA) - 1)/A·B`; bilinear
    /// `dA = (1 + dtA/2)/(1 - dtA/2)`, `dB = dt·B/(1 - dtA/2)`. `None` for `dss`, whose factor depends on
    /// the kernel length (see [`super::diagonal::DiagonalSystem::recurrence`]).
    ///
    /// Args: `dt` [H]; `a`, `b` [H, N2]; `c` [C, H, N2] (C channels), each as (re, im).
    pub fn new(
        disc: Disc,
        h: usize,
        n2: usize,
        dt: &[f64],
        a: (&[f64], &[f64]),
        b: (&[f64], &[f64]),
        c: (&[f64], &[f64]),
    ) -> Option<Self> {
        let m = h * n2;
        let (mut da_re, mut da_im, mut db_re, mut db_im) = (vec![0.0; m], vec![0.0; m], vec![0.0; m], vec![0.0; m]);
        let div = |(nr, ni): (f64, f64), (dr, di): (f64, f64)| {
            let den = dr * dr + di * di;
            ((nr * dr + ni * di) / den, (ni * dr - nr * di) / den)
        };
        for i in 0..m {
            let d = dt[i / n2];
            let (xr, xi) = (d * a.0[i], d * a.1[i]); // dtA
            let ((zr, zi), (qr, qi)) = match disc {
                Disc::Zoh => {
                    let e = xr.exp();
                    let z = (e * xi.cos(), e * xi.sin());
                    (z, div((z.0 - 1.0, z.1), (a.0[i], a.1[i])))
                }
                Disc::Bilinear => {
                    let den = (1.0 - xr / 2.0, -xi / 2.0);
                    (div((1.0 + xr / 2.0, xi / 2.0), den), div((d, 0.0), den))
                }
                Disc::Dss => return None,
            };
            da_re[i] = zr;
            da_im[i] = zi;
            db_re[i] = qr * b.0[i] - qi * b.1[i];
            db_im[i] = qr * b.1[i] + qi * b.0[i];
        }
        Some(Self::from_discrete(h, n2, (da_re, da_im), (db_re, db_im), (c.0.to_vec(), c.1.to_vec())))
    }

    /// A system already discretized (any diagonal kernel `K[l] = 2·Re Σ_n C·dB·dA^l`, e.g. DSS).
    ///
    /// Args: `da`, `db` [H, N2]; `c` [C, H, N2], each as (re, im).
    pub fn from_discrete(
        h: usize,
        n2: usize,
        da: (Vec<f64>, Vec<f64>),
        db: (Vec<f64>, Vec<f64>),
        c: (Vec<f64>, Vec<f64>),
    ) -> Self {
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let (db, c) = ((f32s(db.0), f32s(db.1)), (f32s(c.0), f32s(c.1)));
        Self { h, n2, channels: c.0.len() / (h * n2).max(1), da, db, c }
    }

    /// Model width H.
    pub fn width(&self) -> usize {
        self.h
    }

    /// Output channels C.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Stored complex modes per feature, N2.
    pub fn modes(&self) -> usize {
        self.n2
    }

    /// The zero state.
    pub fn zero_state(&self) -> DiagonalState {
        DiagonalState { re: vec![0.0; self.h * self.n2], im: vec![0.0; self.h * self.n2] }
    }

    /// One step. Args: `u` [H]. Writes `y` [C, H].
    pub fn step(&self, state: &mut DiagonalState, u: &[f64], y: &mut [f64]) {
        diagonal_step(self, state, u, y)
    }

    /// Runs a whole sequence from `state`. Args: `u` [H, L]. Returns `y` [C, H, L].
    pub fn run(&self, state: &mut DiagonalState, u: &[f64], l: usize) -> Vec<f64> {
        run_steps(self.h, self.channels, u, l, |ut, yt| self.step(state, ut, yt))
    }
}

/// A layer's recurrence: diagonal (S4D, DSS, S4 `diag`) or dense bilinear on the stored half
/// (S4 `nplr`); both carry the stored half of the state, [H·N2].
#[derive(Debug, Clone)]
pub enum Recurrence {
    /// Elementwise diagonal recurrence.
    Diag(DiagonalRecurrence),
    /// DPLR recurrence.
    Dplr(DplrRecurrence),
}

impl Recurrence {
    /// The zero state, [H·N2].
    pub fn zero_state(&self) -> DiagonalState {
        match self {
            Recurrence::Diag(r) => r.zero_state(),
            Recurrence::Dplr(r) => r.zero_state(),
        }
    }

    /// `(H, N2, C)`: width, stored modes per feature, output channels.
    pub fn dims(&self) -> (usize, usize, usize) {
        match self {
            Recurrence::Diag(r) => (r.width(), r.modes(), r.channels()),
            Recurrence::Dplr(r) => (r.width(), r.modes(), r.channels()),
        }
    }

    /// One step. Args: `u` [H]. Writes `y` [C, H].
    pub fn step(&self, state: &mut DiagonalState, u: &[f64], y: &mut [f64]) {
        match self {
            Recurrence::Diag(r) => r.step(state, u, y),
            Recurrence::Dplr(r) => r.step(state, u, y),
        }
    }

    /// Runs a whole sequence from `state`. Args: `u` [H, L]. Returns `y` [C, H, L].
    pub fn run(&self, state: &mut DiagonalState, u: &[f64], l: usize) -> Vec<f64> {
        let (h, _, c) = self.dims();
        run_steps(h, c, u, l, |ut, yt| self.step(state, ut, yt))
    }
}

simd_dispatch! {
    /// One step of `rec`: `u` [H]; writes `y` [C, H].
    fn diagonal_step => diagonal_step_body(rec: &DiagonalRecurrence, state: &mut DiagonalState, u: &[f64], y: &mut [f64])
}

/// One feature at a time, so its N2 modes stay in registers from the update to every
/// channel's readout, and a token is one pass over the coefficients.
#[inline(always)]
fn diagonal_step_body<const FMA: bool>(rec: &DiagonalRecurrence, state: &mut DiagonalState, u: &[f64], y: &mut [f64]) {
    let (h, n2, m) = (rec.h, rec.n2, rec.h * rec.n2);
    if n2 == 0 {
        y.fill(0.0);
        return;
    }
    let rows = state.re.chunks_exact_mut(n2).zip(state.im.chunks_exact_mut(n2));
    let coef = rec.da.0.chunks_exact(n2).zip(rec.da.1.chunks_exact(n2));
    let input = rec.db.0.chunks_exact(n2).zip(rec.db.1.chunks_exact(n2));
    for (hi, (((xr, xi), (ar, ai)), (br, bi))) in rows.zip(coef).zip(input).enumerate() {
        let ut = u[hi];
        // x ← dA·x + dB·u, complex, [N2]
        for (((((xr, xi), ar), ai), br), bi) in xr.iter_mut().zip(xi.iter_mut()).zip(ar).zip(ai).zip(br).zip(bi) {
            let (pr, pi) = (*xr, *xi);
            *xr = mul_add64::<FMA>(*ar, pr, mul_add64::<FMA>(-*ai, pi, *br as f64 * ut));
            *xi = mul_add64::<FMA>(*ar, pi, mul_add64::<FMA>(*ai, pr, *bi as f64 * ut));
        }
        for c in 0..rec.channels {
            let j = c * m + hi * n2;
            y[c * h + hi] = 2.0 * re_dot::<FMA>(&rec.c.0[j..j + n2], &rec.c.1[j..j + n2], xr, xi);
        }
    }
}

/// `Re Σ c·x` over complex vectors given as (re, im) parts, in sixteen lanes (two AVX-512 or
/// four AVX2 registers of f64) so that it vectorizes (a single accumulator serializes on the
/// add latency).
#[inline(always)]
fn re_dot<const FMA: bool>(cr: &[f32], ci: &[f32], xr: &[f64], xi: &[f64]) -> f64 {
    const W: usize = 16;
    let mut acc = [0.0; W];
    let split = cr.len() / W * W;
    for (((cr, ci), xr), xi) in
        cr[..split].chunks_exact(W).zip(ci[..split].chunks_exact(W)).zip(xr.chunks_exact(W)).zip(xi.chunks_exact(W))
    {
        for k in 0..W {
            acc[k] = mul_add64::<FMA>(cr[k] as f64, xr[k], mul_add64::<FMA>(-ci[k] as f64, xi[k], acc[k]));
        }
    }
    let mut sum: f64 = acc.iter().sum();
    for k in split..cr.len() {
        sum = mul_add64::<FMA>(cr[k] as f64, xr[k], mul_add64::<FMA>(-ci[k] as f64, xi[k], sum));
    }
    sum
}

/// Feeds `u` [H, L] to `step` one time step at a time. Returns `y` [C, H, L].
fn run_steps(h: usize, c: usize, u: &[f64], l: usize, mut step: impl FnMut(&[f64], &mut [f64])) -> Vec<f64> {
    let mut y = vec![0.0; c * h * l];
    let (mut ut, mut yt) = (vec![0.0; h], vec![0.0; c * h]);
    for t in 0..l {
        for hi in 0..h {
            ut[hi] = u[hi * l + t];
        }
        step(&ut, &mut yt);
        for (j, v) in yt.iter().enumerate() {
            y[j * l + t] = *v;
        }
    }
    y
}
