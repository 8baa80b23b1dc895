//! Complex arithmetic on (real, imaginary) tensor pairs (burn has no complex dtype).

use burn::tensor::Tensor;

/// A complex tensor as its real and imaginary parts.
pub type Complex<const D: usize> = (Tensor<D>, Tensor<D>);

/// `a·b` (with broadcasting).
pub fn mul<const D: usize>(a: Complex<D>, b: Complex<D>) -> Complex<D> {
    let ((ar, ai), (br, bi)) = (a, b);
    (ar.clone() * br.clone() - ai.clone() * bi.clone(), ar * bi + ai * br)
}

/// `a/b`, as `a·conj(b)/|b|²`.
pub fn div<const D: usize>(a: Complex<D>, b: Complex<D>) -> Complex<D> {
    let den = b.0.clone().square() + b.1.clone().square();
    let (nr, ni) = mul(a, conj(b));
    (nr / den.clone(), ni / den)
}

/// `conj(a)`.
pub fn conj<const D: usize>(a: Complex<D>) -> Complex<D> {
    (a.0, -a.1)
}

/// `exp(a)`.
pub fn exp<const D: usize>(a: Complex<D>) -> Complex<D> {
    let m = a.0.exp();
    (m.clone() * a.1.clone().cos(), m * a.1.sin())
}

/// Principal `log(a)`.
pub fn log<const D: usize>(a: Complex<D>) -> Complex<D> {
    let r2 = a.0.clone().square() + a.1.clone().square();
    (r2.log() * 0.5, a.1.atan2(a.0))
}

/// `a + s` for a real scalar `s`.
pub fn add_scalar<const D: usize>(a: Complex<D>, s: f64) -> Complex<D> {
    (a.0 + s, a.1)
}

/// `s·a` for a real scalar `s`.
pub fn scale<const D: usize>(a: Complex<D>, s: f64) -> Complex<D> {
    (a.0 * s, a.1 * s)
}
