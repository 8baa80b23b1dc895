//! Projection of a source's two polarisations onto ground detectors (ml4gw's
//! `compute_antenna_responses` and `compute_observed_strain`): antenna patterns from the
//! detector tensor, and the arrival-time delay from the geocentre as a whole-sample shift.

/// Speed of light in m/s.
pub const SPEED_OF_LIGHT: f64 = 299_792_458.0;

/// A detector: its vertex in Earth-fixed coordinates (m) and its response tensor
/// `D = (x xᵀ − y yᵀ)/2` from the unit vectors of its arms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detector {
    /// Earth-fixed position of the vertex, metres.
    pub vertex: [f64; 3],
    /// Response tensor [3, 3].
    pub tensor: [[f64; 3]; 3],
}

impl Detector {
    /// The detector with `vertex` and arm unit vectors `x`, `y`.
    pub fn from_arms(vertex: [f64; 3], x: [f64; 3], y: [f64; 3]) -> Self {
        let mut tensor = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                tensor[i][j] = 0.5 * (x[i] * x[j] - y[i] * y[j]);
            }
        }
        Self { vertex, tensor }
    }

    /// A detector by its usual name (`H1`, `L1`), geometry as LALSuite's `LALDetectors.h`.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "H1" => Some(Self::from_arms(
                [-2.161_414_926_36e6, -3.834_695_178_89e6, 4.600_350_226_64e6],
                [-0.223_892_661_54, 0.799_830_627_46, 0.556_904_878_31],
                [-0.913_978_185_74, 0.026_094_039_89, -0.404_923_421_25],
            )),
            "L1" => Some(Self::from_arms(
                [-7.427_604_192_9e4, -5.496_283_719_71e6, 3.224_257_017_44e6],
                [-0.954_574_121_53, -0.141_580_773_40, -0.262_189_113_24],
                [0.297_741_568_94, -0.487_910_336_47, -0.820_544_612_86],
            )),
            _ => None,
        }
    }
}

/// A sky position and polarisation angle: declination, polarisation ψ, and φ (right ascension
/// minus Greenwich sidereal time), all in radians.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sky {
    /// Declination.
    pub dec: f64,
    /// Polarisation angle ψ.
    pub psi: f64,
    /// Longitude-like angle φ = ra − gmst.
    pub phi: f64,
}

/// Antenna responses `(F×, F+)` of `det` to a source at `sky`.
pub fn antenna_response(sky: Sky, det: &Detector) -> (f64, f64) {
    let theta = std::f64::consts::FRAC_PI_2 - sky.dec;
    let (st, ct) = theta.sin_cos();
    let (sp, cp) = sky.phi.sin_cos();
    let (ss, cs) = sky.psi.sin_cos();
    let u = [cp * ct, ct * sp, -st];
    let v = [-sp, cp, 0.0];
    let m: Vec<f64> = (0..3).map(|i| -u[i] * ss - v[i] * cs).collect();
    let n: Vec<f64> = (0..3).map(|i| -u[i] * cs + v[i] * ss).collect();
    let (mut cross, mut plus) = (0.0, 0.0);
    for j in 0..3 {
        for k in 0..3 {
            let d = det.tensor[j][k];
            plus += (m[j] * m[k] - n[j] * n[k]) * d;
            cross += (m[j] * n[k] + n[j] * m[k]) * d;
        }
    }
    (cross, plus)
}

/// Arrival delay at `det` relative to the geocentre, in samples at `fs` (fractional).
pub fn delay_samples(sky: Sky, det: &Detector, fs: f64) -> f64 {
    let theta = std::f64::consts::FRAC_PI_2 - sky.dec;
    let omega = [theta.sin() * sky.phi.cos(), theta.sin() * sky.phi.sin(), theta.cos()];
    -(0..3).map(|k| omega[k] * det.vertex[k]).sum::<f64>() * fs / SPEED_OF_LIGHT
}

/// The strain `det` records from polarisations `hc`, `hp` [T] at `sky`: `F×·hc + F+·hp`, rolled
/// circularly by the delay truncated toward zero (`out[t] = h[(t − shift) mod T]`).
pub fn observed_strain(hc: &[f64], hp: &[f64], sky: Sky, det: &Detector, fs: f64) -> Vec<f64> {
    let (fc, fp) = antenna_response(sky, det);
    let t = hc.len() as i64;
    let shift = delay_samples(sky, det, fs).trunc() as i64;
    (0..t)
        .map(|i| {
            let j = (i - shift).rem_euclid(t) as usize;
            fc * hc[j] + fp * hp[j]
        })
        .collect()
}
