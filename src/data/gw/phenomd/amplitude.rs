//! IMRPhenomD's amplitude relative to the Newtonian one, in three regions of Mf: the inspiral
//! (a PN series with calibrated higher terms) up to Mf = 0.014, a quartic in the intermediate
//! region up to the peak, and a damped Lorentzian over the merger and ringdown.

use std::f64::consts::PI;

use super::Intrinsic;
use super::fits::{AMP_INT_MID, GAMMA1, GAMMA2, GAMMA3, RHO1, RHO2, RHO3};

/// Where the inspiral hands over to the intermediate region.
const MF_JOIN_INS: f64 = 0.014;

/// The amplitude of one binary, ready to evaluate at any Mf.
pub(super) struct Amplitude {
    inspiral: Inspiral,
    ringdown: Ringdown,
    /// Newton coefficients of the intermediate quartic on the nodes `nodes`.
    quartic: [f64; 5],
    nodes: [f64; 4],
    /// The amplitude peak, where the ringdown takes over.
    pub(super) mf_peak: f64,
}

impl Amplitude {
    /// The three regions of binary `p`, joined continuously and smoothly (C¹).
    pub(super) fn new(p: &Intrinsic) -> Self {
        let inspiral = Inspiral::new(p);
        let ringdown = Ringdown::new(p);
        let mf_peak = ringdown.peak();
        // The intermediate quartic matches the inspiral's value and slope at f1, the
        // ringdown's at f3, and a calibrated value midway.
        let f1 = MF_JOIN_INS;
        let f2 = f1 + 0.5 * (mf_peak - f1);
        let (v1, d1) = inspiral.at(f1);
        let (v3, d3) = ringdown.at(mf_peak);
        let v2 = AMP_INT_MID.at(p.eta, p.eta2, p.xi);
        let quartic = hermite((f1, v1, d1), (f2, v2), (mf_peak, v3, d3));
        Self { inspiral, ringdown, quartic, nodes: [f1, f1, f2, mf_peak], mf_peak }
    }

    /// The amplitude at `mf`, relative to the Newtonian amplitude.
    pub(super) fn at(&self, mf: f64) -> f64 {
        if mf <= MF_JOIN_INS {
            self.inspiral.at(mf).0
        } else if mf <= self.mf_peak {
            // Newton form c0 + (x − z0)(c1 + (x − z1)(c2 + (x − z2)(c3 + (x − z3) c4))).
            let top = self.quartic[4];
            self.quartic[..4].iter().zip(&self.nodes).rev().fold(top, |acc, (c, z)| c + (mf - z) * acc)
        } else {
            self.ringdown.at(mf).0
        }
    }
}

/// The Newton-form coefficients of the quartic with value and slope `(v1, d1)` at `f1`, value
/// `v2` at `f2` and value and slope `(v3, d3)` at `f3`: the divided differences on the nodes
/// f1, f1, f2, f3, f3, a repeated node standing for a slope (Hermite interpolation). It is the
/// quartic LALSuite solves for in closed form.
fn hermite((f1, v1, d1): (f64, f64, f64), (f2, v2): (f64, f64), (f3, v3, d3): (f64, f64, f64)) -> [f64; 5] {
    let first = [d1, (v2 - v1) / (f2 - f1), (v3 - v2) / (f3 - f2), d3];
    let second =
        [(first[1] - first[0]) / (f2 - f1), (first[2] - first[1]) / (f3 - f1), (first[3] - first[2]) / (f3 - f2)];
    let third = [(second[1] - second[0]) / (f3 - f1), (second[2] - second[1]) / (f3 - f1)];
    [v1, d1, second[0], third[0], (third[1] - third[0]) / (f3 - f1)]
}

/// The inspiral amplitude: 1 + the PN series in (Mf)^(1/3) with calibrated terms ρ1..ρ3.
struct Inspiral {
    /// Coefficients of Mf^(k/3) for k = 2..=9 (k = 0 is the leading 1).
    c: [f64; 8],
}

impl Inspiral {
    fn new(p: &Intrinsic) -> Self {
        let (eta, eta2, seta, chi1, chi2) = (p.eta, p.eta2, p.seta, p.chi1, p.chi2);
        let (chi12, chi22, s1) = (chi1 * chi1, chi2 * chi2, 1.0 + seta);
        let c2 = ((-969.0 + 1804.0 * eta) * PI.powf(2.0 / 3.0)) / 672.0;
        let c3 = ((chi1 * (81.0 * s1 - 44.0 * eta) + chi2 * (81.0 - 81.0 * seta - 44.0 * eta)) * PI) / 48.0;
        let c4 = ((-27312085.0 - 10287648.0 * chi22 - 10287648.0 * chi12 * s1
            + 10287648.0 * chi22 * seta
            + 24.0 * (-1975055.0 + 857304.0 * chi12 - 994896.0 * chi1 * chi2 + 857304.0 * chi22) * eta
            + 35371056.0 * eta2)
            * PI.powf(4.0 / 3.0))
            / 8.128512e6;
        let c5 = (PI.powf(5.0 / 3.0)
            * (chi2 * (-285197.0 * (-1.0 + seta) + 4.0 * (-91902.0 + 1579.0 * seta) * eta - 35632.0 * eta2)
                + chi1 * (285197.0 * s1 - 4.0 * (91902.0 + 1579.0 * seta) * eta - 35632.0 * eta2)
                + 42840.0 * (-1.0 + 4.0 * eta) * PI))
            / 32256.0;
        let c6 = -(PI
            * PI
            * (-336.0
                * (-3248849057.0 + 2943675504.0 * chi12 - 3339284256.0 * chi1 * chi2 + 2943675504.0 * chi22)
                * eta2
                - 324322727232.0 * eta2 * eta
                - 7.0
                    * (-177520268561.0 + 107414046432.0 * chi22 + 107414046432.0 * chi12 * s1
                        - 107414046432.0 * chi22 * seta
                        + 11087290368.0 * (chi1 + chi2 + chi1 * seta - chi2 * seta) * PI)
                + 12.0
                    * eta
                    * (-545384828789.0 - 176491177632.0 * chi1 * chi2
                        + 202603761360.0 * chi22
                        + 77616.0 * chi12 * (2610335.0 + 995766.0 * seta)
                        - 77287373856.0 * chi22 * seta
                        + 5841690624.0 * (chi1 + chi2) * PI
                        + 21384760320.0 * PI * PI)))
            / 6.0085960704e10;
        let rho = |fit: &super::fits::Fit| fit.at(eta, eta2, p.xi);
        Self { c: [c2, c3, c4, c5, c6, rho(&RHO1), rho(&RHO2), rho(&RHO3)] }
    }

    /// Value and slope d/d(Mf) at `mf`.
    fn at(&self, mf: f64) -> (f64, f64) {
        let t = mf.cbrt();
        let (mut value, mut slope) = (1.0, 0.0);
        for (i, c) in self.c.iter().enumerate() {
            let k = (i + 2) as f64;
            value += c * t.powi(i as i32 + 2);
            slope += k / 3.0 * c * t.powi(i as i32 - 1);
        }
        (value, slope)
    }
}

/// The merger-ringdown amplitude: a Lorentzian at the ringdown frequency, damped exponentially.
struct Ringdown {
    f_rd: f64,
    f_dm: f64,
    gamma: [f64; 3],
}

impl Ringdown {
    fn new(p: &Intrinsic) -> Self {
        let g = |fit: &super::fits::Fit| fit.at(p.eta, p.eta2, p.xi);
        Self { f_rd: p.f_rd, f_dm: p.f_dm, gamma: [g(&GAMMA1), g(&GAMMA2), g(&GAMMA3)] }
    }

    /// The Mf of the amplitude peak (the maximum of f^(7/6)·A, where the ansatz is
    /// stationary; for γ2 > 1 the square root is taken as 0, as LALSuite does).
    fn peak(&self) -> f64 {
        let [_, g2, g3] = self.gamma;
        (self.f_rd + self.f_dm * (-1.0 + (1.0 - g2 * g2).max(0.0).sqrt()) * g3 / g2).abs()
    }

    /// Value and slope d/d(Mf) at `mf`.
    fn at(&self, mf: f64) -> (f64, f64) {
        let [g1, g2, g3] = self.gamma;
        let w = self.f_dm * g3;
        let df = mf - self.f_rd;
        let lorentz = df * df + w * w;
        let damped = (df * g2 / w).exp() * lorentz;
        let value = g1 * g3 * self.f_dm / damped;
        let slope = (df * -2.0 * self.f_dm * g1 * g3 / lorentz - g2 * g1) / damped;
        (value, slope)
    }
}
