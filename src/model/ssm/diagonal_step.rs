//! Step mode of diagonal SSMs on the host: `x ← dA·x + dB·u`, `y = 2·Re Σ_n C·x` per token,
//! O(H·N) and no allocation, which is what autoregressive inference on a CPU wants.
//!
//! A token is bound by the bytes it streams from L2, so the stepped variable is `x/dB` when
//! dB has no zero: `x/dB ← dA·(x/dB) + u` and `y = 2·Re Σ_n (C·dB)·(x/dB)` need no dB at all
//! (C·dB is also what conv mode's Vandermonde kernel reads). dA and the stepped variable are
//! f64, since their error compounds over dA's powers; C (or C·dB) and dB are f32, since they
//! enter each token once (about 1e-7 relative).

use num_complex::Complex64 as C64;

use super::diagonal::Disc;
use super::recurrence::{DiagonalState, Lanes, StepState, aligned, run_steps};
use crate::ops::simd::{mul_add64, simd_dispatch};

/// A discretized diagonal system `x_t = dA·x_{t-1} + dB·u_t`, `y_t = 2·Re Σ_n C·x_t`.
#[derive(Debug, Clone)]
pub struct DiagonalRecurrence {
    h: usize,
    n2: usize,
    channels: usize,
    /// dA, [H, N2].
    da: (Lanes<f64>, Lanes<f64>),
    /// What a token reads besides dA: `Folded` (C·dB), or dB and C.
    read: Read,
}

/// The f32 coefficients a token reads, each [C, H, N2] or [H, N2] as (re, im).
#[derive(Debug, Clone)]
enum Read {
    /// C·dB; the stepped variable is x/dB, and `db` [H, N2] (f64) maps it back to x.
    Folded { w: Pair32, db: Vec<C64> },
    /// dB and C; the stepped variable is x (dB has a zero, so x/dB does not exist).
    Direct { db: Pair32, c: Pair32 },
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
        for i in 0..m {
            let d = dt[i / n2];
            let (ai, x) = (C64::new(a.0[i], a.1[i]), C64::new(d * a.0[i], d * a.1[i])); // A, dtA
            let (z, q) = match disc {
                Disc::Zoh => {
                    let z = C64::from_polar(x.re.exp(), x.im);
                    (z, (z - 1.0) / ai)
                }
                Disc::Bilinear => {
                    let den = C64::new(1.0 - x.re / 2.0, -x.im / 2.0);
                    (C64::new(1.0 + x.re / 2.0, x.im / 2.0) / den, C64::new(d, 0.0) / den)
                }
                Disc::Dss => return None,
            };
            let db = q * C64::new(b.0[i], b.1[i]);
            (da_re[i], da_im[i], db_re[i], db_im[i]) = (z.re, z.im, db.re, db.im);
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
        let m = h * n2;
        let channels = c.0.len() / m.max(1);
        let f32s = |v: &[f64]| aligned(&v.iter().map(|x| *x as f32).collect::<Vec<f32>>());
        let db64: Vec<C64> = db.0.iter().zip(&db.1).map(|(r, i)| C64::new(*r, *i)).collect();
        // C·dB, [C, H, N2]
        let (wr, wi): (Vec<f64>, Vec<f64>) = (0..channels * m)
            .map(|j| {
                let w = C64::new(c.0[j], c.1[j]) * db64[j % m];
                (w.re, w.im)
            })
            .unzip();
        // Folding needs 1/dB and a finite C·dB; a mode with dB = 0 keeps the state as it is.
        let invertible = db64.iter().all(|b| b.norm_sqr().is_normal());
        let finite = wr.iter().chain(&wi).all(|v| (*v as f32).is_finite());
        let read = if invertible && finite {
            Read::Folded { w: (f32s(&wr), f32s(&wi)), db: db64 }
        } else {
            Read::Direct { db: (f32s(&db.0), f32s(&db.1)), c: (f32s(&c.0), f32s(&c.1)) }
        };
        Self { h, n2, channels, da: (aligned(&da.0), aligned(&da.1)), read }
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
    pub fn zero_state(&self) -> StepState {
        let zeros = Lanes::from_iter(64, std::iter::repeat_n(0.0, self.h * self.n2));
        StepState { re: zeros.clone(), im: zeros }
    }

    /// The state `x` [H·N2] of a stepped one.
    pub fn export(&self, s: &StepState) -> DiagonalState {
        match &self.read {
            Read::Direct { .. } => s.plain(),
            Read::Folded { db, .. } => {
                let (re, im) =
                    (0..s.re.len()).map(|i| C64::new(s.re[i], s.im[i]) * db[i]).map(|x| (x.re, x.im)).unzip();
                DiagonalState { re, im }
            }
        }
    }

    /// The stepped form of a state `x` [H·N2].
    pub fn import(&self, x: &DiagonalState) -> StepState {
        match &self.read {
            Read::Direct { .. } => StepState::of(x),
            Read::Folded { db, .. } => {
                let (re, im): (Vec<f64>, Vec<f64>) =
                    (0..x.re.len()).map(|i| C64::new(x.re[i], x.im[i]) / db[i]).map(|v| (v.re, v.im)).unzip();
                StepState { re: aligned(&re), im: aligned(&im) }
            }
        }
    }

    /// One step. Args: `u` [H]. Writes `y` [C, H].
    pub fn step(&self, state: &mut StepState, u: &[f64], y: &mut [f64]) {
        diagonal_step(self, (&mut state.re, &mut state.im), u, y)
    }

    /// Runs a whole sequence from `state`. Args: `u` [H, L]. Returns `y` [C, H, L].
    pub fn run(&self, state: &mut StepState, u: &[f64], l: usize) -> Vec<f64> {
        run_steps(self.h, self.channels, u, l, |ut, yt| self.step(state, ut, yt))
    }
}

simd_dispatch! {
    /// One step of `rec`: `u` [H]; writes `y` [C, H].
    fn diagonal_step => diagonal_step_body(rec: &DiagonalRecurrence, x: (&mut [f64], &mut [f64]), u: &[f64], y: &mut [f64])
}

/// One feature at a time, so its N2 modes stay in registers from the update to every
/// channel's readout, and a token is one pass over the coefficients. The first channel's
/// readout is fused into the update (a separate pass over the fresh state cost 40% of a
/// token); further channels read the state back from L1.
#[inline(always)]
fn diagonal_step_body<const FMA: bool>(
    rec: &DiagonalRecurrence,
    x: (&mut [f64], &mut [f64]),
    u: &[f64],
    y: &mut [f64],
) {
    if rec.n2 == 0 || rec.channels == 0 {
        y.fill(0.0);
        return;
    }
    // The common state sizes get a copy in which N2 is a constant, so each feature's loop is
    // unrolled whole (a quarter of a token's time at N2 = 32).
    match (&rec.read, rec.n2) {
        (Read::Folded { w, .. }, 16) => features::<FMA, true, 16>(rec, None, w, x, u, y),
        (Read::Folded { w, .. }, 32) => features::<FMA, true, 32>(rec, None, w, x, u, y),
        (Read::Folded { w, .. }, 64) => features::<FMA, true, 64>(rec, None, w, x, u, y),
        (Read::Folded { w, .. }, _) => features::<FMA, true, 0>(rec, None, w, x, u, y),
        (Read::Direct { db, c }, _) => features::<FMA, false, 0>(rec, Some(db), c, x, u, y),
    }
}

/// Complex f32 coefficients as (re, im).
type Pair32 = (Lanes<f32>, Lanes<f32>);

/// [`diagonal_step_body`] over all features, with `N2 = rec.n2` when `N2` is 0. `FOLD`: the
/// input enters as `u` (and `db` is `None`), else as `dB·u`; `c` [C, H, N2] is what is read out.
#[inline(always)]
fn features<const FMA: bool, const FOLD: bool, const N2: usize>(
    rec: &DiagonalRecurrence,
    db: Option<&Pair32>,
    c: &Pair32,
    (xr, xi): (&mut [f64], &mut [f64]),
    u: &[f64],
    y: &mut [f64],
) {
    let (h, n2) = (rec.h, if N2 == 0 { rec.n2 } else { N2 });
    let m = h * n2;
    for hi in 0..h {
        let s = hi * n2..(hi + 1) * n2;
        let (xr, xi) = (&mut xr[s.clone()], &mut xi[s.clone()]);
        let b = db.map(|(br, bi)| (&br[s.clone()], &bi[s.clone()]));
        let coef = Coef { ar: &rec.da.0[s.clone()], ai: &rec.da.1[s.clone()], b };
        y[hi] = 2.0 * update_read::<FMA, FOLD>(coef, (&c.0[s.clone()], &c.1[s]), xr, xi, u[hi]);
        for ch in 1..rec.channels {
            let j = ch * m + hi * n2;
            y[ch * h + hi] = 2.0 * re_dot::<FMA>(&c.0[j..j + n2], &c.1[j..j + n2], xr, xi);
        }
    }
}

/// One feature's coefficients, [N2] each, as (re, im): dA in f64, dB in f32 unless folded.
struct Coef<'a> {
    ar: &'a [f64],
    ai: &'a [f64],
    b: Option<(&'a [f32], &'a [f32])>,
}

/// Sixteen lanes: two AVX-512 or four AVX2 registers of f64, so that the readout's sum
/// vectorizes (a single accumulator serializes on the add latency).
const LANES: usize = 16;

/// `x ← dA·x + dB·u` (`dA·x + u` when folded) over one feature's modes, and `Re Σ c·x` of
/// the new `x`.
#[inline(always)]
fn update_read<const FMA: bool, const FOLD: bool>(
    k: Coef,
    (cr, ci): (&[f32], &[f32]),
    xr: &mut [f64],
    xi: &mut [f64],
    u: f64,
) -> f64 {
    let n2 = xr.len();
    let split = n2 / LANES * LANES;
    let (br, bi) = k.b.unwrap_or((&[], &[]));
    let mut acc = [0.0; LANES];
    for s in (0..split).step_by(LANES) {
        let r = s..s + LANES;
        // Fixed-size copies: the compiler keeps them in registers and needs no alias checks.
        let (ar, ai) = (lane(&k.ar[r.clone()]), lane(&k.ai[r.clone()]));
        let b = if FOLD { ([0.0; LANES], [0.0; LANES]) } else { (lane(&br[r.clone()]), lane(&bi[r.clone()])) };
        let (cr, ci) = (lane(&cr[r.clone()]), lane(&ci[r.clone()]));
        let (mut nr, mut ni) = (lane(&xr[r.clone()]), lane(&xi[r.clone()]));
        for l in 0..LANES {
            (nr[l], ni[l]) = mode::<FMA, FOLD>((ar[l], ai[l]), (b.0[l], b.1[l]), (nr[l], ni[l]), u);
            acc[l] = mul_add64::<FMA>(cr[l] as f64, nr[l], mul_add64::<FMA>(-ci[l] as f64, ni[l], acc[l]));
        }
        xr[r.clone()].copy_from_slice(&nr);
        xi[r].copy_from_slice(&ni);
    }
    let mut sum = tree_sum(acc);
    for i in split..n2 {
        let b = if FOLD { (0.0, 0.0) } else { (br[i], bi[i]) };
        let (nr, ni) = mode::<FMA, FOLD>((k.ar[i], k.ai[i]), b, (xr[i], xi[i]), u);
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

/// One mode's update, complex, as (re, im): `dA·x + u` when folded (`b` unused), else
/// `dA·x + b·u`.
#[inline(always)]
fn mode<const FMA: bool, const FOLD: bool>(
    (ar, ai): (f64, f64),
    (br, bi): (f32, f32),
    (xr, xi): (f64, f64),
    u: f64,
) -> (f64, f64) {
    if FOLD {
        (mul_add64::<FMA>(ar, xr, mul_add64::<FMA>(-ai, xi, u)), mul_add64::<FMA>(ar, xi, ai * xr))
    } else {
        (
            mul_add64::<FMA>(ar, xr, mul_add64::<FMA>(-ai, xi, br as f64 * u)),
            mul_add64::<FMA>(ar, xi, mul_add64::<FMA>(ai, xr, bi as f64 * u)),
        )
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic value in [-1, 1) that f32 holds exactly.
    fn val(i: usize, k: usize) -> f64 {
        let x = (i as u64 * 2654435761 + k as u64 * 40503).wrapping_mul(0x9E3779B97F4A7C15) >> 40;
        (x as f64 / (1u64 << 24) as f64) * 2.0 - 1.0
    }

    /// Every specialized N2 and the general one, folded (dB without zeros) and direct (one dB
    /// is 0), with one and several channels, against the recurrence written out with complex
    /// numbers; the exported state is the state, and importing it back changes nothing.
    #[test]
    fn the_step_is_the_complex_recurrence_for_every_state_size() {
        for n2 in [1, 3, 16, 17, 32, 40, 64] {
            for (ch, zero_db) in [(1, false), (3, false), (1, true), (2, true)] {
                let (h, m) = (5, 5 * n2);
                let (ar, ai): (Vec<f64>, Vec<f64>) = (0..m).map(|i| (0.9 * val(i, 1), 0.4 * val(i, 2))).unzip();
                let (mut br, bi): (Vec<f64>, Vec<f64>) = (0..m).map(|i| (val(i, 3), val(i, 4))).unzip();
                let bi = if zero_db { vec![0.0; m] } else { bi };
                if zero_db {
                    br[m / 2] = 0.0;
                }
                let (cr, ci): (Vec<f64>, Vec<f64>) = (0..ch * m).map(|i| (val(i, 5), val(i, 6))).unzip();
                let rec = DiagonalRecurrence::from_discrete(
                    h,
                    n2,
                    (ar.clone(), ai.clone()),
                    (br.clone(), bi.clone()),
                    (cr.clone(), ci.clone()),
                );
                assert_eq!(matches!(rec.read, Read::Folded { .. }), !zero_db);
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
                            let (mut want, mut size) = (0.0, 0.0);
                            for i in hi * n2..(hi + 1) * n2 {
                                let (c, x) = ((cr[c * m + i], ci[c * m + i]), (xr[i], xi[i]));
                                want += 2.0 * (c.0 * x.0 - c.1 * x.1);
                                size += 2.0 * c.0.hypot(c.1) * x.0.hypot(x.1);
                            }
                            // Folded, C·dB is rounded to f32 once: about 1e-7 of its terms.
                            let got = y[c * h + hi];
                            assert!((got - want).abs() <= 3e-7 * size, "n2 {n2} ch {ch} t {t}: {got} vs {want}");
                        }
                    }
                }
                let x = rec.export(&state);
                let worst = x.re.iter().zip(&xr).chain(x.im.iter().zip(&xi)).map(|(a, b)| (a - b).abs());
                assert!(worst.fold(0.0, f64::max) < 1e-12, "n2 {n2}: state");
                let back = rec.export(&rec.import(&x));
                let worst = back.re.iter().zip(&x.re).chain(back.im.iter().zip(&x.im)).map(|(a, b)| (a - b).abs());
                assert!(worst.fold(0.0, f64::max) < 1e-12, "n2 {n2}: import then export");
            }
        }
    }
}
