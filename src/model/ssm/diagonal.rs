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
        Disc::Dss => {
            // Growing modes (Re A > 0) are normalized from the end: s = -1 and a shift by L-1.
            let pos = a.0.clone().greater_elem(0.0).float(); // [H, N2]
            let s = pos.clone() * -2.0 + 1.0;
            let sdta = (dta.0.clone() * s.clone(), dta.1.clone() * s);
            let num = complex::add_scalar(complex::exp(sdta.clone()), -1.0);
            let den = complex::add_scalar(complex::exp(complex::scale(sdta, l as f64)), -1.0);
            let x = complex::mul(den, a);
            let x2 = x.0.clone().square() + x.1.clone().square() + 1e-7;
            let r = (x.0 / x2.clone(), -x.1 / x2);
            let shift = complex::exp((
                dta.0.clone() * pos.clone() * -((l - 1) as f64),
                dta.1.clone() * pos * -((l - 1) as f64),
            ));
            // No factor 2 in DSS: halve to cancel the Vandermonde's.
            (complex::scale(complex::mul(complex::mul(num, r), shift), 0.5), dta)
        }
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
