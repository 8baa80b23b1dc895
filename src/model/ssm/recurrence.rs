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
/// channel's readout, and a token is one pass over the coefficients. The first channel's
/// readout is fused into the update (a separate pass over the fresh state cost 40% of a
/// token); further channels read the state back from L1.
#[inline(always)]
fn diagonal_step_body<const FMA: bool>(rec: &DiagonalRecurrence, state: &mut DiagonalState, u: &[f64], y: &mut [f64]) {
    if rec.n2 == 0 || rec.channels == 0 {
        y.fill(0.0);
        return;
    }
    // The common state sizes get a copy in which N2 is a constant, so each feature's loop is
    // unrolled whole (a quarter of a token's time at N2 = 32).
    match rec.n2 {
        16 => features::<FMA, 16>(rec, state, u, y),
        32 => features::<FMA, 32>(rec, state, u, y),
        64 => features::<FMA, 64>(rec, state, u, y),
        _ => features::<FMA, 0>(rec, state, u, y),
    }
}

/// [`diagonal_step_body`] over all features, with `N2 = rec.n2` when `N2` is 0.
#[inline(always)]
fn features<const FMA: bool, const N2: usize>(
    rec: &DiagonalRecurrence,
    state: &mut DiagonalState,
    u: &[f64],
    y: &mut [f64],
) {
    let (h, n2) = (rec.h, if N2 == 0 { rec.n2 } else { N2 });
    let m = h * n2;
    for hi in 0..h {
        let s = hi * n2..(hi + 1) * n2;
        let (xr, xi) = (&mut state.re[s.clone()], &mut state.im[s.clone()]);
        let coef = Coef {
            ar: &rec.da.0[s.clone()],
            ai: &rec.da.1[s.clone()],
            br: &rec.db.0[s.clone()],
            bi: &rec.db.1[s.clone()],
        };
        y[hi] = 2.0 * update_read::<FMA>(coef, (&rec.c.0[s.clone()], &rec.c.1[s]), xr, xi, u[hi]);
        for c in 1..rec.channels {
            let j = c * m + hi * n2;
            y[c * h + hi] = 2.0 * re_dot::<FMA>(&rec.c.0[j..j + n2], &rec.c.1[j..j + n2], xr, xi);
        }
    }
}

/// One feature's coefficients, [N2] each: dA in f64, dB in f32, as (re, im).
struct Coef<'a> {
    ar: &'a [f64],
    ai: &'a [f64],
    br: &'a [f32],
    bi: &'a [f32],
}

/// Sixteen lanes: two AVX-512 or four AVX2 registers of f64, so that the readout's sum
/// vectorizes (a single accumulator serializes on the add latency).
const LANES: usize = 16;

/// `x ← dA·x + dB·u` over one feature's modes, and `Re Σ c·x` of the new state.
#[inline(always)]
fn update_read<const FMA: bool>(k: Coef, (cr, ci): (&[f32], &[f32]), xr: &mut [f64], xi: &mut [f64], u: f64) -> f64 {
    let n2 = xr.len();
    let split = n2 / LANES * LANES;
    let mut acc = [0.0; LANES];
    for b in (0..split).step_by(LANES) {
        let r = b..b + LANES;
        // Fixed-size copies: the compiler keeps them in registers and needs no alias checks.
        let (ar, ai) = (lane(&k.ar[r.clone()]), lane(&k.ai[r.clone()]));
        let (br, bi) = (lane(&k.br[r.clone()]), lane(&k.bi[r.clone()]));
        let (cr, ci) = (lane(&cr[r.clone()]), lane(&ci[r.clone()]));
        let (mut nr, mut ni) = (lane(&xr[r.clone()]), lane(&xi[r.clone()]));
        for l in 0..LANES {
            (nr[l], ni[l]) = mode::<FMA>((ar[l], ai[l]), (br[l], bi[l]), (nr[l], ni[l]), u);
            acc[l] = mul_add64::<FMA>(cr[l] as f64, nr[l], mul_add64::<FMA>(-ci[l] as f64, ni[l], acc[l]));
        }
        xr[r.clone()].copy_from_slice(&nr);
        xi[r].copy_from_slice(&ni);
    }
    let mut sum = tree_sum(acc);
    for i in split..n2 {
        let (nr, ni) = mode::<FMA>((k.ar[i], k.ai[i]), (k.br[i], k.bi[i]), (xr[i], xi[i]), u);
        (xr[i], xi[i]) = (nr, ni);
        sum = mul_add64::<FMA>(cr[i] as f64, nr, mul_add64::<FMA>(-ci[i] as f64, ni, sum));
    }
    sum
}

/// `LANES` values as an array.
#[inline(always)]
fn lane<T: Copy + Default>(v: &[T]) -> [T; LANES] {
    let mut out = [T::default(); LANES];
    out.copy_from_slice(v);
    out
}

/// One mode's update `dA·x + dB·u`, complex, as (re, im).
#[inline(always)]
fn mode<const FMA: bool>((ar, ai): (f64, f64), (br, bi): (f32, f32), (xr, xi): (f64, f64), u: f64) -> (f64, f64) {
    (
        mul_add64::<FMA>(ar, xr, mul_add64::<FMA>(-ai, xi, br as f64 * u)),
        mul_add64::<FMA>(ar, xi, mul_add64::<FMA>(ai, xr, bi as f64 * u)),
    )
}

/// The sum of the lanes by halves: four vector adds rather than a chain of sixteen scalar
/// ones, which would cost more than the feature's whole update at N2 = 32.
#[inline(always)]
fn tree_sum(mut acc: [f64; LANES]) -> f64 {
    let mut half = LANES / 2;
    while half > 0 {
        for k in 0..half {
            acc[k] += acc[k + half];
        }
        half /= 2;
    }
    acc[0]
}

/// `Re Σ c·x` over complex vectors given as (re, im) parts, in [`LANES`] lanes.
#[inline(always)]
fn re_dot<const FMA: bool>(cr: &[f32], ci: &[f32], xr: &[f64], xi: &[f64]) -> f64 {
    let mut acc = [0.0; LANES];
    let split = cr.len() / LANES * LANES;
    for (((cr, ci), xr), xi) in cr[..split]
        .chunks_exact(LANES)
        .zip(ci[..split].chunks_exact(LANES))
        .zip(xr.chunks_exact(LANES))
        .zip(xi.chunks_exact(LANES))
    {
        for k in 0..LANES {
            acc[k] = mul_add64::<FMA>(cr[k] as f64, xr[k], mul_add64::<FMA>(-ci[k] as f64, xi[k], acc[k]));
        }
    }
    let mut sum = tree_sum(acc);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic value in [-1, 1) that f32 holds exactly.
    fn val(i: usize, k: usize) -> f64 {
        let x = (i as u64 * 2654435761 + k as u64 * 40503).wrapping_mul(0x9E3779B97F4A7C15) >> 40;
        (x as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
    }

    /// Every specialized N2 and the general one, with one and several channels, against the
    /// recurrence written out with complex numbers.
    #[test]
    fn the_step_is_the_complex_recurrence_for_every_state_size() {
        for n2 in [1, 3, 16, 17, 32, 40, 64] {
            for ch in [1, 3] {
                let (h, m) = (5, 5 * n2);
                let (ar, ai): (Vec<f64>, Vec<f64>) = (0..m).map(|i| (0.9 * val(i, 1), 0.4 * val(i, 2))).unzip();
                let (br, bi): (Vec<f64>, Vec<f64>) = (0..m).map(|i| (val(i, 3), val(i, 4))).unzip();
                let (cr, ci): (Vec<f64>, Vec<f64>) = (0..ch * m).map(|i| (val(i, 5), val(i, 6))).unzip();
                let rec = DiagonalRecurrence::from_discrete(
                    h,
                    n2,
                    (ar.clone(), ai.clone()),
                    (br.clone(), bi.clone()),
                    (cr.clone(), ci.clone()),
                );
                let (mut state, mut y) = (rec.zero_state(), vec![0.0; ch * h]);
                let (mut xr, mut xi) = (vec![0.0; m], vec![0.0; m]);
                for t in 0..12 {
                    let u: Vec<f64> = (0..h).map(|k| val(t, k + 7)).collect();
                    rec.step(&mut state, &u, &mut y);
                    for i in 0..m {
                        let ut = u[i / n2];
                        (xr[i], xi[i]) =
                            (ar[i] * xr[i] - ai[i] * xi[i] + br[i] * ut, ar[i] * xi[i] + ai[i] * xr[i] + bi[i] * ut);
                    }
                    for c in 0..ch {
                        for hi in 0..h {
                            let want: f64 = (0..n2)
                                .map(|k| hi * n2 + k)
                                .map(|i| cr[c * m + i] * xr[i] - ci[c * m + i] * xi[i])
                                .sum();
                            let got = y[c * h + hi];
                            assert!((got - 2.0 * want).abs() < 1e-12, "n2 {n2} ch {ch} t {t}: {got} vs {}", 2.0 * want);
                        }
                    }
                }
                let worst = state.re.iter().zip(&xr).chain(state.im.iter().zip(&xi)).map(|(a, b)| (a - b).abs());
                assert!(worst.fold(0.0, f64::max) < 1e-12, "n2 {n2}: state");
            }
        }
    }
}
