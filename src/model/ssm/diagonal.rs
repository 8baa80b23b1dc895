//! Kernels of diagonal state spaces under each discretization, all reduced to one
//! Vandermonde form `K[c,h,l] = 2·Re Σ_n w[c,h,n]·z[h,n]^l` (conventions of
//! `shared/golden/README.md` §4: the `Im A ≤ 0` half is stored, `C` enters unconjugated).

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, sigmoid, softplus};
use serde::{Deserialize, Serialize};

use super::complex::{self, Complex};
use super::recurrence::DiagonalRecurrence;
use super::vandermonde::vandermonde;

/// How the continuous system is discretized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Disc {
    /// Zero-order hold: `dA = exp(dtA)`, `dB = (exp(dtA) - 1)/A·B` (S4D's default).
    #[default]
    Zoh,
    /// Bilinear (Tustin): `dA = (1 + dtA/2)/(1 - dtA/2)`, `dB = dt·B/(1 - dtA/2)`.
    Bilinear,
    /// DSS-softmax normalization `1/Σ_{l<L} exp(dtA·l)` per mode; its recurrent form
    /// reproduces the kernel of one length `L` only.
    Dss,
}

/// A discretized diagonal system in tensors: `x_t = dA·x_{t-1} + dB·u_t`,
/// `y_t = 2·Re Σ_n C·x_t`; its kernel is the Vandermonde form `K[l] = 2·Re Σ_n C·dB·dA^l`.
///
/// `dA` is kept as its logarithm so that powers are `exp(l·log dA)`, as the kernel evaluates them.
#[derive(Debug, Clone)]
pub struct DiagonalSystem {
    /// `log dA` [H, N2].
    pub log_z: Complex<2>,
    /// `dB` [H, N2].
    pub db: Complex<2>,
    /// `C` [C, H, N2].
    pub c: Complex<3>,
}

impl DiagonalSystem {
    /// The Vandermonde coefficients `C·dB`, [C, H, N2].
    pub fn coefficients(&self) -> Complex<3> {
        let [h, n2] = self.db.0.dims();
        let db = (self.db.0.clone().reshape([1, h, n2]), self.db.1.clone().reshape([1, h, n2]));
        complex::mul(self.c.clone(), db)
    }

    /// The convolution kernel `K` [C, H, L].
    pub fn kernel(&self, l: usize) -> Tensor<3> {
        let w = self.coefficients();
        vandermonde(w.0, w.1, self.log_z.0.clone(), self.log_z.1.clone(), l)
    }

    /// The same system on the host in f64, for step mode. `dA = exp(log dA)` is taken in f64
    /// from the f32 logarithm the kernel uses, so both modes decay by the same numbers.
    pub fn recurrence(&self) -> DiagonalRecurrence {
        let host2 = |t: Tensor<2>| t.try_into_vec_as::<f64>().expect("f64 data");
        let host3 = |t: Tensor<3>| t.try_into_vec_as::<f64>().expect("f64 data");
        let [h, n2] = self.db.0.dims();
        let (lr, li) = (host2(self.log_z.0.clone()), host2(self.log_z.1.clone()));
        let da_re = lr.iter().zip(&li).map(|(r, i)| r.exp() * i.cos()).collect::<Vec<_>>();
        let da_im = lr.iter().zip(&li).map(|(r, i)| r.exp() * i.sin()).collect::<Vec<_>>();
        let db = (host2(self.db.0.clone()), host2(self.db.1.clone()));
        let c = (host3(self.c.0.clone()), host3(self.c.1.clone()));
        DiagonalRecurrence::from_discrete(h, n2, (da_re, da_im), db, c)
    }
}

/// Discretizes `(dt [H], A [H,N2], B [H,N2] or 1, C [C,H,N2])` for a kernel of length `l`
/// (only `dss` depends on `l`: its normalization sums over the `l` steps).
pub fn discretize(
    disc: Disc,
    dt: Tensor<1>,
    a: Complex<2>,
    b: Option<Complex<2>>,
    c: Complex<3>,
    l: usize,
) -> DiagonalSystem {
    let [h, n2] = a.0.dims();
    let dt = dt.reshape([h, 1]);
    let dta = (a.0.clone() * dt.clone(), a.1.clone() * dt.clone());
    let (factor, log_z) = match disc {
        Disc::Zoh => (complex::div(complex::add_scalar(complex::exp(dta.clone()), -1.0), a), dta),
        Disc::Bilinear => {
            let den = complex::add_scalar(complex::scale(dta.clone(), -0.5), 1.0); // 1 - dtA/2
            let num = complex::add_scalar(complex::scale(dta, 0.5), 1.0); // 1 + dtA/2
            let log_z = complex::log(complex::div(num, den.clone()));
            let dt_c = (dt.expand([h, n2]), Tensor::zeros([h, n2], &a.0.device()));
            (complex::div(dt_c, den), log_z)
        }
        Disc::Dss => (softmax_factor(dta.clone(), a, l), dta),
    };
    let db = match b {
        Some(b) => complex::mul(b, factor),
        None => factor,
    };
    DiagonalSystem { log_z, db, c }
}

/// The kernel `K` [C, H, L] of a diagonal system.
pub fn kernel(disc: Disc, dt: Tensor<1>, a: Complex<2>, b: Option<Complex<2>>, c: Complex<3>, l: usize) -> Tensor<3> {
    discretize(disc, dt, a, b, c, l).kernel(l)
}

/// The DSS-softmax factor per mode, `num·r·shift/2` (README §5.3): `1/Σ_{l<L} exp(dtA·l)` as
/// `(exp(s·dtA) - 1)/((exp(s·dtA·L) - 1)·A)` with an ε-regularized reciprocal; growing modes
/// (`Re A > 0`) are normalized from the end (`s = -1`, shifted by `L-1`). Halved because DSS has
/// no factor 2 and the Vandermonde form does.
///
/// Args: `dta`, `a` [H, N]. Returns [H, N].
fn softmax_factor(dta: Complex<2>, a: Complex<2>, l: usize) -> Complex<2> {
    let pos = a.0.clone().greater_elem(0.0).float(); // [H, N]
    let s = pos.clone() * -2.0 + 1.0;
    let sdta = (dta.0.clone() * s.clone(), dta.1.clone() * s);
    let num = complex::add_scalar(complex::exp(sdta.clone()), -1.0);
    let den = complex::add_scalar(complex::exp(complex::scale(sdta, l as f64)), -1.0);
    let x = complex::mul(den, a);
    let x2 = x.0.clone().square() + x.1.clone().square() + 1e-7;
    let r = (x.0 / x2.clone(), -x.1 / x2);
    let back = -((l - 1) as f64);
    let shift = complex::exp((dta.0 * pos.clone() * back, dta.1 * pos * back));
    complex::scale(complex::mul(complex::mul(num, r), shift), 0.5)
}

/// The two DSS kernels of Gupta et al. (2022).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DssVersion {
    /// DSS-exp: `K = Re Σ W·(e^{dtΛ}-1)/Λ·e^{dtΛ·l}`, `Re Λ < 0`.
    #[default]
    Exp,
    /// DSS-softmax: each mode normalized by `Σ_{l<L} e^{dtΛ·l}`; `Re Λ` of either sign.
    Softmax,
}

/// DSS as a diagonal system (README §5.6): eigenvalues `Λ` [N] shared by all H, separate step
/// sizes for their real and imaginary parts `dt` [H, 2], output weights `W` [C, H, N]; the
/// positive-imaginary half is stored and the real part is taken without a factor 2.
///
/// `dA = exp(dtΛ)`, `C = W` and `dB` the version's factor, halved against the system's factor 2.
/// For `softmax` the factor normalizes over `l` steps, so the system reproduces the kernel of
/// that length only.
pub fn dss_system(version: DssVersion, dt: Tensor<2>, lambda: Complex<1>, w: Complex<3>, l: usize) -> DiagonalSystem {
    let [h, _] = dt.dims();
    let n = lambda.0.dims()[0];
    let lam = (lambda.0.reshape([1, n]).expand([h, n]), lambda.1.reshape([1, n]).expand([h, n]));
    let dta = (dt.clone().narrow(1, 0, 1) * lam.0.clone(), dt.narrow(1, 1, 1) * lam.1.clone()); // [H, N]
    let factor = match version {
        DssVersion::Exp => {
            // (e^{dtΛ} - 1)·conj(Λ)/max(|Λ|², ε), halved against the Vandermonde's factor 2.
            let mag = (lam.0.clone().square() + lam.1.clone().square()).clamp_min(1e-7);
            let inv = (lam.0 / mag.clone(), -lam.1 / mag);
            complex::scale(complex::mul(complex::add_scalar(complex::exp(dta.clone()), -1.0), inv), 0.5)
        }
        DssVersion::Softmax => softmax_factor(dta.clone(), lam, l),
    };
    DiagonalSystem { log_z: dta, db: factor, c: w }
}

/// DSS kernel `K` [C, H, L] (see [`dss_system`]).
pub fn dss_kernel(version: DssVersion, dt: Tensor<2>, lambda: Complex<1>, w: Complex<3>, l: usize) -> Tensor<3> {
    dss_system(version, dt, lambda, w, l).kernel(l)
}

/// Positive parameterization of `-Re A` (s4.py's `real_transform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RealTransform {
    /// `exp(a)`.
    #[default]
    Exp,
    /// `relu(a) + 1e-4`.
    Relu,
    /// `sigmoid(a)`.
    Sigmoid,
    /// `softplus(a)`.
    Softplus,
    /// `a` (may turn positive while training).
    None,
}

impl RealTransform {
    /// The stored value for a positive `x` (clamped at 1e-4 first, as s4.py).
    pub fn inverse(self, x: f64) -> f64 {
        let x = x.max(1e-4);
        match self {
            RealTransform::Exp => x.ln(),
            RealTransform::Relu | RealTransform::None => x,
            RealTransform::Sigmoid => (x / (1.0 - x)).ln(),
            RealTransform::Softplus => x.exp_m1().ln(),
        }
    }

    /// The positive value of a stored parameter.
    pub fn apply(self, a: Tensor<2>) -> Tensor<2> {
        match self {
            RealTransform::Exp => a.exp(),
            RealTransform::Relu => relu(a) + 1e-4,
            RealTransform::Sigmoid => sigmoid(a),
            RealTransform::Softplus => softplus(a, 1.0),
            RealTransform::None => a,
        }
    }
}
