//! TaylorF2: the stationary-phase frequency-domain inspiral of a compact binary with aligned
//! spins, 3.5PN in phase (spin-orbit and spin-spin terms of LALSimulation's PN coefficients)
//! and the Newtonian amplitude, as ml4gw's `TaylorF2` that aframe injects.
//!
//! Host-side f64 throughout: the phase reaches 10³–10⁴ rad, far beyond f32's resolution.

use num_complex::Complex64;
use std::f64::consts::PI;

/// Solar mass in seconds (G·M☉/c³).
pub const MTSUN_SI: f64 = 4.925_490_947_641_267e-6;
/// One megaparsec in light-seconds.
pub const MPC_SEC: f64 = 3.085_677_581_491_367e22 / 299_792_458.0;
/// The Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Source parameters of one binary (detector frame).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Binary {
    /// Chirp mass, solar masses.
    pub chirp_mass: f64,
    /// Mass ratio m2/m1 ≤ 1.
    pub mass_ratio: f64,
    /// Aligned spin of the heavier body.
    pub chi1: f64,
    /// Aligned spin of the lighter body.
    pub chi2: f64,
    /// Luminosity distance, Mpc.
    pub distance: f64,
    /// Phase at coalescence, rad.
    pub phic: f64,
    /// Inclination, rad.
    pub inclination: f64,
}

impl Binary {
    /// Component masses (m1, m2) in solar masses from the chirp mass and q = m2/m1.
    pub fn masses(&self) -> (f64, f64) {
        let q = self.mass_ratio;
        let total = self.chirp_mass * (1.0 + q).powf(1.2) / q.powf(0.6);
        let m1 = total / (1.0 + q);
        (m1, m1 * q)
    }
}

/// Coefficients of the phase series `Ψ(v) = N/v⁵ · (Σ_k a_k v^k + (l5 v⁵ + l6 v⁶) ln v)`.
struct Phase {
    n: f64,
    a: [f64; 8],
    l5: f64,
    l6: f64,
}

/// Spin-orbit term of the 2.5PN coefficient for a body of mass fraction x and spin chi.
fn so_25(x: f64, chi: f64) -> f64 {
    -x * (1391.5 / 8.4 - 10.0 / 3.0 * x * (1.0 - x) + x * (1276.0 / 8.1 + 170.0 / 9.0 * x * (1.0 - x))) * chi
}

impl Phase {
    fn new(m1: f64, m2: f64, chi1: f64, chi2: f64) -> Self {
        let m = m1 + m2;
        let eta = m1 * m2 / (m * m);
        let bodies = [(m1 / m, chi1), (m2 / m, chi2)];
        let sum = |f: &dyn Fn(f64, f64) -> f64| bodies.iter().map(|&(x, c)| f(x, c)).sum::<f64>();
        let cross = eta * chi1 * chi2;
        let a2 = 5.0 * (74.3 / 8.4 + 11.0 * eta) / 9.0;
        let a3 = -16.0 * PI + sum(&|x, c| x * (25.0 + 38.0 / 3.0 * x) * c);
        // Spin-spin at 2PN: the S1·S2 terms (247 − 721)/48 and the S² terms (−720 + 1 + 240 − 7)/96.
        let a4 = 5.0 * (3058.673 / 7.056 + 5429.0 / 7.0 * eta + 617.0 * eta * eta) / 72.0
            + (247.0 - 721.0) / 4.8 * cross
            + sum(&|x, c| (-720.0 + 1.0 + 240.0 - 7.0) / 9.6 * x * x * c * c);
        let tail5 = (772.9 / 8.4 - 13.0 * eta) * PI;
        let l5 = 5.0 / 3.0 * tail5 + 3.0 * sum(&so_25);
        let a5 = 5.0 / 9.0 * tail5 + sum(&so_25);
        let l6 = -684.8 / 2.1;
        let a6 = 11583.231236531 / 4.694215680 - 640.0 / 3.0 * PI * PI - 684.8 / 2.1 * EULER_GAMMA
            + eta * (-15737.765635 / 3.048192 + 225.5 / 1.2 * PI * PI)
            + eta * eta * 76.055 / 1.728
            - eta * eta * eta * 127.825 / 1.296
            + l6 * 4f64.ln()
            + sum(&|x, c| PI * x * (1490.0 / 3.0 + 260.0 * x) * c)
            + (326.75 / 1.12 + 557.5 / 1.8 * eta) * cross
            + sum(&|x, c| {
                let so = 4703.5 / 8.4 + 2935.0 / 6.0 * x - 120.0 * x * x;
                let ss = -4108.25 / 6.72 - 108.5 / 1.2 * x + 125.5 / 3.6 * x * x;
                (so + ss) * x * x * c * c
            });
        let a7 = PI * (770.96675 / 2.54016 + 378.515 / 1.512 * eta - 740.45 / 7.56 * eta * eta)
            + sum(&|x, c| {
                let inner = -7189.233785 / 1.524096 + eta * 458.555 / 3.024 - eta * eta * 534.5 / 7.2;
                x * (-17097.8035 / 4.8384 + eta * 28764.25 / 6.72 + eta * eta * 47.35 / 1.44 + x * inner) * c
            });
        Self { n: 3.0 / (128.0 * eta), a: [1.0, 0.0, a2, a3, a4, a5, a6, a7], l5, l6 }
    }

    /// Ψ at dimensionless frequency `mf` = M·f (M in seconds).
    fn at(&self, mf: f64) -> f64 {
        let v = (PI * mf).cbrt();
        let series: f64 = self.a.iter().rev().fold(0.0, |acc, a| acc * v + a);
        let v5 = v.powi(5);
        self.n / v5 * (series + (self.l5 * v5 + self.l6 * v5 * v) * v.ln())
    }
}

/// Polarisations `(h×, h+)` at frequencies `f` (Hz) with reference frequency `f_ref`, in units
/// of `unit` seconds (e.g. 1e-23). `h+ = h̃·(1 + cos²ι)/2`, `h× = −i·h̃·cos ι`.
pub fn polarisations(b: &Binary, f: &[f64], f_ref: f64, unit: f64) -> (Vec<Complex64>, Vec<Complex64>) {
    let (m1, m2) = b.masses();
    let (m1s, m2s) = (m1 * MTSUN_SI, m2 * MTSUN_SI);
    let ms = m1s + m2s;
    let eta = m1s * m2s / (ms * ms);
    let phase = Phase::new(m1, m2, b.chi1, b.chi2);
    let psi_ref = phase.at(ms * f_ref);
    let amp0 = -4.0 * m1s * m2s * (PI / 12.0).sqrt() / (b.distance * MPC_SEC) / unit;
    let ci = b.inclination.cos();
    let (plus, cross) = (0.5 * (1.0 + ci * ci), ci);
    f.iter()
        .map(|&fk| {
            let v = (PI * ms * fk).cbrt();
            // √(−dE/F)·v with dE = −ηv and the Newtonian flux F = 32η²v¹⁰/5.
            let amp = amp0 * (eta * v / (32.0 * eta * eta / 5.0 * v.powi(10))).sqrt() * v;
            let psi = phase.at(ms * fk) - 2.0 * b.phic - psi_ref;
            let h = Complex64::from_polar(amp, -(psi - PI / 4.0));
            (Complex64::new(0.0, -1.0) * h * cross, h * plus)
        })
        .unzip()
}
