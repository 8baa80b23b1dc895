//! Step mode of S4's DPLR system in O(N) per feature and token: the bilinear step
//! `x' = (I - dt/2·A)⁻¹((I + dt/2·A)x + dt·B̂u)` with `A = diag(ŵ) - P̂P̂ᴴ`, the inverse applied
//! by the Sherman–Morrison (rank-1 Woodbury) identity instead of a dense `dA` (s4.py's
//! `_step_state_linear`). A dense step is O(N²) per feature and token.
//!
//! Everything acts on the stored half `x` of the conj-symmetric state `x̂ = [x, conj x]`: for
//! such vectors `P̂ᴴx̂ = 2·Re Σ conj(p)·x` is real, so the half stays closed under the step.

use num_complex::Complex64 as C64;

use super::recurrence::DiagonalState;

/// Precomputed per-mode values of one feature's step (all [N2]).
#[derive(Debug, Clone)]
struct Modes {
    /// `dt/2·w`.
    hw: Vec<C64>,
    /// `dt/2·p`.
    hp: Vec<C64>,
    /// `conj p`.
    cp: Vec<C64>,
    /// `dt·b`.
    db: Vec<C64>,
    /// `1/δ` with `δ = 1 - dt/2·w` (the diagonal of `I - dt/2·A`).
    inv: Vec<C64>,
    /// `conj(p)/δ`.
    cpd: Vec<C64>,
    /// `p/δ·g` with `g = (dt/2)/(1 + dt/2·P̂ᴴδ̂⁻¹P̂)`: the rank-1 correction of the inverse.
    pdg: Vec<C64>,
}

/// Step mode of S4: per feature `h`, the bilinear DPLR system on the stored half of the state.
#[derive(Debug, Clone)]
pub struct DplrRecurrence {
    h: usize,
    n2: usize,
    channels: usize,
    /// Per h.
    modes: Vec<Modes>,
    /// Effective C, [C, H, N2].
    c: Vec<C64>,
}

impl DplrRecurrence {
    /// Args: `dt` [H]; `w`, `p`, `b` [H·N2]; `c` (effective) [C·H·N2].
    pub fn new(dt: &[f64], w: &[C64], p: &[C64], b: &[C64], c: &[C64]) -> Self {
        let h = dt.len();
        let n2 = w.len() / h.max(1);
        let modes = dt
            .iter()
            .enumerate()
            .map(|(hi, &dt)| {
                let r = hi * n2..(hi + 1) * n2;
                let (w, p, b) = (&w[r.clone()], &p[r.clone()], &b[r]);
                let inv: Vec<C64> = w.iter().map(|w| 1.0 / (1.0 - dt / 2.0 * w)).collect();
                // P̂ᴴδ̂⁻¹P̂ over both halves: 2·Re Σ |p|²/δ.
                let pdp: f64 = 2.0 * p.iter().zip(&inv).map(|(p, i)| p.norm_sqr() * i.re).sum::<f64>();
                let g = dt / 2.0 / (1.0 + dt / 2.0 * pdp);
                Modes {
                    hw: w.iter().map(|w| dt / 2.0 * w).collect(),
                    hp: p.iter().map(|p| dt / 2.0 * p).collect(),
                    cp: p.iter().map(|p| p.conj()).collect(),
                    db: b.iter().map(|b| dt * b).collect(),
                    cpd: p.iter().zip(&inv).map(|(p, i)| p.conj() * i).collect(),
                    pdg: p.iter().zip(&inv).map(|(p, i)| p * i * g).collect(),
                    inv,
                }
            })
            .collect();
        Self { h, n2, channels: c.len() / (h * n2).max(1), modes, c: c.to_vec() }
    }

    /// The zero state.
    pub fn zero_state(&self) -> DiagonalState {
        DiagonalState { re: vec![0.0; self.h * self.n2], im: vec![0.0; self.h * self.n2] }
    }

    /// Model width H.
    pub fn width(&self) -> usize {
        self.h
    }

    /// Stored complex modes per feature, N2.
    pub fn modes(&self) -> usize {
        self.n2
    }

    /// Output channels C.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// One step. Args: `u` [H]. Writes `y` [C, H] (`y = 2·Re Σ_n C·x`).
    pub fn step(&self, state: &mut DiagonalState, u: &[f64], y: &mut [f64]) {
        self.step_parts((&mut state.re, &mut state.im), u, y)
    }

    /// [`Self::step`] on a state given as (re, im), [H·N2] each.
    pub(crate) fn step_parts(&self, (re, im): (&mut [f64], &mut [f64]), u: &[f64], y: &mut [f64]) {
        let (n2, h) = (self.n2, self.h);
        let mut v = vec![C64::new(0.0, 0.0); n2];
        for (hi, m) in self.modes.iter().enumerate() {
            let (re, im) = (&mut re[hi * n2..][..n2], &mut im[hi * n2..][..n2]);
            let x = |k: usize| C64::new(re[k], im[k]);
            // (I + dt/2·A)x + dt·B·u, with P̂ᴴx̂ = 2·Re Σ conj(p)·x.
            let s1: f64 = 2.0 * (0..n2).map(|k| (m.cp[k] * x(k)).re).sum::<f64>();
            for (k, vk) in v.iter_mut().enumerate() {
                *vk = x(k) + m.hw[k] * x(k) - m.hp[k] * s1 + m.db[k] * u[hi];
            }
            // (I - dt/2·A)⁻¹v = v/δ - p/δ·g·(P̂ᴴδ̂⁻¹v̂).
            let s2: f64 = 2.0 * v.iter().zip(&m.cpd).map(|(v, c)| (c * v).re).sum::<f64>();
            for k in 0..n2 {
                let nx = v[k] * m.inv[k] - m.pdg[k] * s2;
                re[k] = nx.re;
                im[k] = nx.im;
            }
            for ci in 0..self.channels {
                let cs = &self.c[(ci * h + hi) * n2..][..n2];
                y[ci * h + hi] =
                    2.0 * cs.iter().zip(re.iter().zip(im.iter())).map(|(c, (r, i))| c.re * r - c.im * i).sum::<f64>();
            }
        }
    }
}
