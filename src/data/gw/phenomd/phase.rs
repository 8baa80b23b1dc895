//! IMRPhenomD's phase in three regions of Mf: the TaylorF2 inspiral (without its 3PN spin-spin
//! term, absent when PhenomD was calibrated) with calibrated higher terms σ1..σ4 up to
//! Mf = 0.018, an intermediate ansatz (β) up to half the ringdown frequency, and the
//! merger-ringdown ansatz (α) beyond. Each later region is shifted by a constant and a linear
//! term so that phase and slope are continuous at the joins.

use super::Intrinsic;
use super::fits::{ALPHA1, ALPHA2, ALPHA3, ALPHA4, ALPHA5, BETA1, BETA2, BETA3, SIGMA1, SIGMA2, SIGMA3, SIGMA4};
use crate::data::gw::taylorf2;

/// Where the inspiral hands over to the intermediate region.
const MF_JOIN_INS: f64 = 0.018;

/// The phase of one binary, ready to evaluate at any Mf.
pub(super) struct Phase {
    inspiral: Inspiral,
    intermediate: Intermediate,
    ringdown: Ringdown,
    /// Where the ringdown takes over: half the ringdown frequency.
    mf_join_rd: f64,
    /// Constant and linear shifts (c0, c1) of the intermediate and ringdown regions.
    shift_int: (f64, f64),
    shift_rd: (f64, f64),
}

impl Phase {
    /// The three regions of binary `p`, joined with a continuous slope (C¹).
    pub(super) fn new(p: &Intrinsic) -> Self {
        let (inspiral, intermediate, ringdown) = (Inspiral::new(p), Intermediate::new(p), Ringdown::new(p));
        let f1 = MF_JOIN_INS;
        let ((ins, d_ins), (int, d_int)) = (inspiral.at(f1), intermediate.at(f1));
        let c1_int = d_ins - d_int;
        let c0_int = ins - int - c1_int * f1;
        let f2 = 0.5 * p.f_rd;
        let ((int, d_int), (rd, d_rd)) = (intermediate.at(f2), ringdown.at(f2));
        let c1_rd = c1_int + d_int - d_rd;
        let c0_rd = int + c0_int + c1_int * f2 - rd - c1_rd * f2;
        Self { inspiral, intermediate, ringdown, mf_join_rd: f2, shift_int: (c0_int, c1_int), shift_rd: (c0_rd, c1_rd) }
    }

    /// The phase at `mf`, rad.
    pub(super) fn at(&self, mf: f64) -> f64 {
        if mf <= MF_JOIN_INS {
            self.inspiral.at(mf).0
        } else if mf <= self.mf_join_rd {
            self.intermediate.at(mf).0 + self.shift_int.0 + mf * self.shift_int.1
        } else {
            self.ringdown.at(mf).0 + self.shift_rd.0 + mf * self.shift_rd.1
        }
    }

    /// The time shift (in units of the total mass) of the waveform: the unshifted ringdown
    /// phase's slope at the amplitude peak `mf_peak`.
    pub(super) fn t0(&self, mf_peak: f64) -> f64 {
        self.ringdown.at(mf_peak).1
    }
}

/// TaylorF2 plus the calibrated terms `(σ1 Mf + ¾σ2 Mf^(4/3) + ⅗σ3 Mf^(5/3) + ½σ4 Mf²)/η`.
struct Inspiral {
    taylorf2: taylorf2::Phase,
    /// σ1..σ4 divided by η.
    sigma: [f64; 4],
}

impl Inspiral {
    fn new(p: &Intrinsic) -> Self {
        let s = |fit: &super::fits::Fit| fit.at(p.eta, p.eta2, p.xi) / p.eta;
        Self {
            taylorf2: taylorf2::Phase::without_ss_3pn(p.m1, p.m2, p.chi1, p.chi2),
            sigma: [s(&SIGMA1), s(&SIGMA2), s(&SIGMA3), s(&SIGMA4)],
        }
    }

    /// Value and slope d/d(Mf) at `mf`.
    fn at(&self, mf: f64) -> (f64, f64) {
        let [s1, s2, s3, s4] = self.sigma;
        let t = mf.cbrt();
        let value = self.taylorf2.at(mf) + s1 * mf + 0.75 * s2 * mf * t + 0.6 * s3 * mf * t * t + 0.5 * s4 * mf * mf;
        let slope = self.taylorf2.derivative(mf) + s1 + s2 * t + s3 * t * t + s4 * mf;
        (value, slope)
    }
}

/// `(β1 Mf + β2 ln Mf − β3 Mf⁻³/3)/η`.
struct Intermediate {
    eta: f64,
    beta: [f64; 3],
}

impl Intermediate {
    fn new(p: &Intrinsic) -> Self {
        let b = |fit: &super::fits::Fit| fit.at(p.eta, p.eta2, p.xi);
        Self { eta: p.eta, beta: [b(&BETA1), b(&BETA2), b(&BETA3)] }
    }

    /// Value and slope d/d(Mf) at `mf`.
    fn at(&self, mf: f64) -> (f64, f64) {
        let [b1, b2, b3] = self.beta;
        let value = b1 * mf + b2 * mf.ln() - b3 / (3.0 * mf.powi(3));
        let slope = b3 / mf.powi(4) + b2 / mf + b1;
        (value / self.eta, slope / self.eta)
    }
}

/// `(α1 Mf − α2/Mf + 4/3 α3 Mf^(3/4) + α4 atan((Mf − α5 f_RD)/f_damp))/η`.
struct Ringdown {
    eta: f64,
    f_rd: f64,
    f_dm: f64,
    alpha: [f64; 5],
}

impl Ringdown {
    fn new(p: &Intrinsic) -> Self {
        let a = |fit: &super::fits::Fit| fit.at(p.eta, p.eta2, p.xi);
        Self {
            eta: p.eta,
            f_rd: p.f_rd,
            f_dm: p.f_dm,
            alpha: [a(&ALPHA1), a(&ALPHA2), a(&ALPHA3), a(&ALPHA4), a(&ALPHA5)],
        }
    }

    /// Value and slope d/d(Mf) at `mf`.
    fn at(&self, mf: f64) -> (f64, f64) {
        let [a1, a2, a3, a4, a5] = self.alpha;
        let x = mf - a5 * self.f_rd;
        let value = a1 * mf - a2 / mf + 4.0 / 3.0 * a3 * mf.powf(0.75) + a4 * (x / self.f_dm).atan();
        let slope = a4 * self.f_dm / (x * x + self.f_dm * self.f_dm) + a3 * mf.powf(-0.25) + a2 / (mf * mf) + a1;
        (value / self.eta, slope / self.eta)
    }
}
