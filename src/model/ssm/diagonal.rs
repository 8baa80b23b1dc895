//! Kernels of diagonal state spaces under each discretization, all reduced to one
//! Vandermonde form `K[c,h,l] = 2·Re Σ_n w[c,h,n]·z[h,n]^l` (conventions of
//! `shared/golden/README.md` §4: the `Im A ≤ 0` half is stored, `C` enters unconjugated).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::complex::{self, Complex};
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
    /// DSS-softmax normalization `1/Σ_{l<L} exp(dtA·l)` per mode; no recurrent form.
    Dss,
}

/// The Vandermonde form of a discretized diagonal system: coefficients and log of the decay.
pub struct VandermondeForm {
    /// `w` [C, H, N2].
    pub w: Complex<3>,
    /// `log z` [H, N2].
    pub log_z: Complex<2>,
}

/// Discretizes `(dt [H], A [H,N2], B [H,N2] or 1, C [C,H,N2])` for a kernel of length `l`.
pub fn discretize(
    disc: Disc,
    dt: Tensor<1>,
    a: Complex<2>,
    b: Option<Complex<2>>,
    c: Complex<3>,
    l: usize,
) -> VandermondeForm {
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
    let w = complex::mul(c, (db.0.reshape([1, h, n2]), db.1.reshape([1, h, n2])));
    VandermondeForm { w, log_z }
}

/// The kernel `K` [C, H, L] of a diagonal system.
pub fn kernel(disc: Disc, dt: Tensor<1>, a: Complex<2>, b: Option<Complex<2>>, c: Complex<3>, l: usize) -> Tensor<3> {
    let f = discretize(disc, dt, a, b, c, l);
    vandermonde(f.w.0, f.w.1, f.log_z.0, f.log_z.1, l)
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

/// DSS kernel `K` [C, H, L] (README §5.6): eigenvalues `Λ` [N] shared by all H, separate step
/// sizes for their real and imaginary parts `dt` [H, 2], output weights `W` [C, H, N]; the
/// positive-imaginary half is stored and the real part is taken without a factor 2.
pub fn dss_kernel(version: DssVersion, dt: Tensor<2>, lambda: Complex<1>, w: Complex<3>, l: usize) -> Tensor<3> {
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
    let coef = complex::mul(w, (factor.0.reshape([1, h, n]), factor.1.reshape([1, h, n])));
    vandermonde(coef.0, coef.1, dta.0, dta.1, l)
}
