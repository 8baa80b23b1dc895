//! Injection waveforms: a prior over binaries and sky positions, and TaylorF2 turned into a
//! time series with the coalescence at a chosen sample.

use std::f64::consts::PI;

use num_complex::Complex64;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

use super::project::Sky;
use super::taylorf2::{Binary, MTSUN_SI, polarisations};
use crate::data::DataError;

/// Seconds kept after the coalescence in the generated series, so the abrupt end at ISCO does
/// not wrap onto the inspiral.
const TAIL_S: f64 = 0.5;

/// Source prior of injections (detector frame; the distance is irrelevant once the signal is
/// rescaled to a target SNR).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcePrior {
    /// Component masses uniform on [lo, hi] solar masses, sorted so m1 ≥ m2.
    pub masses: [f64; 2],
    /// Aligned spins `a·cos(tilt)` with `a` uniform on [0, spin_max] and an isotropic tilt.
    pub spin_max: f64,
    /// Lowest frequency of the signal, Hz.
    pub f_min: f64,
    /// Reference frequency of the phase, Hz.
    pub f_ref: f64,
}

impl Default for SourcePrior {
    fn default() -> Self {
        Self { masses: [10.0, 80.0], spin_max: 0.95, f_min: 20.0, f_ref: 20.0 }
    }
}

impl SourcePrior {
    /// Checks the ranges, naming `data.source.<key>`.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |key: &str, msg: String| Err(DataError::Invalid(format!("`data.source.{key}` {msg}")));
        let [lo, hi] = self.masses;
        if !(lo.is_finite() && hi.is_finite() && lo >= 1.0 && lo <= hi && hi <= 1000.0) {
            return bad("masses", format!("must be [lo, hi] with 1 ≤ lo ≤ hi ≤ 1000, got {:?}", self.masses));
        }
        if !(0.0..=0.99).contains(&self.spin_max) {
            return bad("spin_max", format!("must be in [0, 0.99], got {}", self.spin_max));
        }
        for (key, f) in [("f_min", self.f_min), ("f_ref", self.f_ref)] {
            if !(f.is_finite() && (1.0..=1000.0).contains(&f)) {
                return bad(key, format!("must be in [1, 1000] Hz, got {f}"));
            }
        }
        Ok(())
    }

    /// One binary from the prior.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Binary {
        let [lo, hi] = self.masses;
        let (a, b) = (rng.random_range(lo..=hi), rng.random_range(lo..=hi));
        let (m1, m2) = (a.max(b), a.min(b));
        let mut spin = || rng.random_range(0.0..=self.spin_max) * rng.random_range(-1.0..=1.0);
        let (chi1, chi2) = (spin(), spin());
        Binary {
            chirp_mass: (m1 * m2).powf(0.6) / (m1 + m2).powf(0.2),
            mass_ratio: m2 / m1,
            chi1,
            chi2,
            distance: 100.0,
            phic: rng.random_range(0.0..2.0 * PI),
            inclination: rng.random_range(-1.0f64..=1.0).acos(),
        }
    }
}

/// Samples `time_domain` generates for a binary of `chirp_mass` (M☉) from `f_min` at `fs`: the
/// Newtonian time to coalescence, padded, as a power of two of at least `len`.
pub fn series_len(chirp_mass: f64, f_min: f64, fs: f64, len: usize) -> f64 {
    let mc_s = chirp_mass * MTSUN_SI;
    let tau = 5.0 / 256.0 * mc_s.powf(-5.0 / 3.0) * (PI * f_min).powf(-8.0 / 3.0);
    ((1.1 * tau + 2.0 * TAIL_S) * fs).ceil().max(len as f64).log2().ceil().exp2()
}

/// aframe's sky sampler: dec with a cosine density, ψ ~ U(0, π), φ ~ U(−π, π).
pub fn sky(rng: &mut ChaCha8Rng) -> Sky {
    Sky { dec: rng.random_range(-1.0f64..=1.0).asin(), psi: rng.random_range(0.0..PI), phi: rng.random_range(-PI..PI) }
}

/// TaylorF2 polarisations `(h×, h+)` [len] sampled at `fs`, from the prior's `f_min` (with a
/// cosine taper below it) up to the ISCO frequency, with the coalescence at sample `at` and
/// zeros outside the generated stretch.
pub fn time_domain(b: &Binary, prior: &SourcePrior, fs: f64, len: usize, at: usize) -> (Vec<f64>, Vec<f64>) {
    let (f_min, f_ref) = (prior.f_min, prior.f_ref);
    let (m1, m2) = b.masses();
    let m_s = (m1 + m2) * MTSUN_SI;
    let f_isco = (1.0 / (6f64.powf(1.5) * PI * m_s)).min(fs / 2.0);
    // Newtonian time to coalescence from f_min, padded, decides the FFT length.
    let n = series_len(b.chirp_mass, f_min, fs, len) as usize;
    let df = fs / n as f64;
    let f: Vec<f64> = (0..=n / 2).map(|k| k as f64 * df).collect();
    let f_start = 0.9 * f_min;
    let (hc, hp) = polarisations(b, &f, f_ref, 1.0);
    let tail = (TAIL_S * fs).round();
    let series = |h: Vec<Complex64>| -> Vec<f64> {
        let mut spec: Vec<Complex64> = h
            .into_iter()
            .zip(&f)
            .map(|(v, &fk)| {
                if fk < f_start || fk > f_isco || fk == 0.0 {
                    return Complex64::default();
                }
                let taper = if fk < f_min { 0.5 - 0.5 * (PI * (fk - f_start) / (f_min - f_start)).cos() } else { 1.0 };
                // Coalescence from t = 0 to `tail` samples before the end (circularly).
                v * taper * Complex64::from_polar(1.0, 2.0 * PI * fk * tail / fs)
            })
            .collect();
        spec[n / 2] = Complex64::default();
        let mut x = vec![0.0; n];
        let _ = RealFftPlanner::<f64>::new().plan_fft_inverse(n).process(&mut spec, &mut x);
        x.iter_mut().for_each(|v| *v *= fs / n as f64);
        let start = n as i64 - tail as i64 - at as i64;
        (0..len as i64)
            .map(|t| x.get((start + t) as usize).copied().filter(|_| start + t >= 0).unwrap_or(0.0))
            .collect()
    };
    (series(hc), series(hp))
}
