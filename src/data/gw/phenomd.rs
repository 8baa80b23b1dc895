//! IMRPhenomD: the phenomenological inspiral–merger–ringdown frequency-domain waveform of a binary
//! with aligned spins (Husa et al. and Khan et al. 2016), as ml4gw's `IMRPhenomD` computes it
//! for aframe's injections: LALSuite's calibrated fits ([`fits`]), the remnant's ringdown from
//! its QNM tables ([`qnm`]), a piecewise amplitude ([`amplitude`]) and phase ([`phase`]), the
//! Newtonian TaylorF2 amplitude as the overall scale, and a linear phase term that puts the
//! amplitude peak at t = 0.
//!
//! Host-side f64 throughout, like TaylorF2: the phase reaches 10³–10⁴ rad.

mod amplitude;
mod fits;
mod phase;
mod qnm;

use num_complex::Complex64;

use super::taylorf2::{Binary, MTSUN_SI, newtonian_amplitude};
use crate::data::DataError;

/// The quantities of one binary that every region of the model shares (masses in units of the
/// total mass, frequencies as Mf).
#[derive(Debug, Clone, Copy)]
struct Intrinsic {
    /// Component masses, solar masses.
    m1: f64,
    m2: f64,
    /// Symmetric mass ratio η and η².
    eta: f64,
    eta2: f64,
    /// √(1 − 4η) = (m1 − m2)/M.
    seta: f64,
    /// Aligned spins.
    chi1: f64,
    chi2: f64,
    /// The fits' spin variable: χ_PN − 1.
    xi: f64,
    /// Ringdown and damping frequency of the remnant.
    f_rd: f64,
    f_dm: f64,
}

impl Intrinsic {
    /// Errors when the remnant's spin falls outside the QNM tables (extremal spins).
    fn new(b: &Binary) -> Result<Self, DataError> {
        let (m1, m2) = b.masses();
        let eta = (b.chirp_mass / b.total_mass()).powf(5.0 / 3.0);
        let eta2 = eta * eta;
        let seta = (1.0 - 4.0 * eta).max(0.0).sqrt();
        let (chi1, chi2) = (b.chi1, b.chi2);
        // The effective spin of the 1.5PN spin-orbit phase, normalised as in the PhenomD paper.
        let chi_pn = 0.5 * ((chi1 + chi2) * (1.0 - eta * 76.0 / 113.0) + seta * (chi1 - chi2));
        let (f_rd, f_dm) = qnm::ringdown(eta, eta2, chi1, chi2).map_err(|a| {
            invalid("chi1", format!("and `chi2` ({chi1}, {chi2}) give a remnant spin {a} outside the QNM tables"))
        })?;
        Ok(Self { m1, m2, eta, eta2, seta, chi1, chi2, xi: chi_pn - 1.0, f_rd, f_dm })
    }
}

fn invalid(key: &str, msg: String) -> DataError {
    DataError::Invalid(format!("IMRPhenomD: `{key}` {msg}"))
}

/// Checks the source parameters, the frequencies and the units, naming the parameter at fault.
pub fn check(b: &Binary, f: &[f64], f_ref: f64, unit: f64) -> Result<(), DataError> {
    let positive = [("chirp_mass", b.chirp_mass), ("distance", b.distance), ("f_ref", f_ref), ("unit", unit)];
    for (key, v) in positive {
        if !(v.is_finite() && v > 0.0) {
            return Err(invalid(key, format!("must be finite and > 0, got {v}")));
        }
    }
    if !(b.mass_ratio > 0.0 && b.mass_ratio <= 1.0) {
        return Err(invalid("mass_ratio", format!("m2/m1 must be in (0, 1], got {}", b.mass_ratio)));
    }
    for (key, v) in [("chi1", b.chi1), ("chi2", b.chi2)] {
        if !(v > -1.0 && v < 1.0) {
            return Err(invalid(key, format!("must be in (-1, 1), got {v}")));
        }
    }
    for (key, v) in [("phic", b.phic), ("inclination", b.inclination)] {
        if !v.is_finite() {
            return Err(invalid(key, format!("must be finite, got {v}")));
        }
    }
    if let Some((i, v)) = f.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
        return Err(invalid("f", format!("must be finite and > 0 Hz, got {v} at index {i}")));
    }
    Ok(())
}

/// Polarisations `(h×, h+)` at frequencies `f` (Hz, each > 0) with the phase referenced to
/// `f_ref`, in units of `unit` seconds (e.g. 1e-23). `h+ = h̃·(1 + cos²ι)/2`, `h× = −i·h̃·cos ι`.
///
/// Errors (naming the parameter) on non-finite values, masses or distance ≤ 0, `mass_ratio`
/// outside (0, 1], spins outside (−1, 1) and frequencies ≤ 0.
pub fn polarisations(
    b: &Binary,
    f: &[f64],
    f_ref: f64,
    unit: f64,
) -> Result<(Vec<Complex64>, Vec<Complex64>), DataError> {
    check(b, f, f_ref, unit)?;
    let p = Intrinsic::new(b)?;
    let m_s = b.total_mass() * MTSUN_SI;
    let (m1s, m2s) = (p.m1 * MTSUN_SI, p.m2 * MTSUN_SI);
    let amp = amplitude::Amplitude::new(&p);
    let phase = phase::Phase::new(&p);
    // The linear term moves the time of the amplitude peak to t = 0.
    let t0 = phase.t0(amp.mf_peak);
    let mf_ref = m_s * f_ref;
    let psi_ref = phase.at(mf_ref);
    let ci = b.inclination.cos();
    let (plus, cross) = (0.5 * (1.0 + ci * ci), ci);
    Ok(f.iter()
        .map(|&fk| {
            let mf = m_s * fk;
            let psi = phase.at(mf) - 2.0 * b.phic - psi_ref - (mf - mf_ref) * t0;
            // The Newtonian amplitude is negative: −A₀·A(f) is the positive magnitude.
            let a = -newtonian_amplitude(m1s, m2s, p.eta, b.distance, mf) / unit * amp.at(mf);
            let h = Complex64::from_polar(a, -psi);
            (Complex64::new(0.0, -1.0) * h * cross, h * plus)
        })
        .unzip())
}
