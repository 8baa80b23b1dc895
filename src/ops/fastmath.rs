//! Branch-free f32 approximations of the transcendental functions of the fused kernels: loops
//! over them vectorize (libm's `expf`, `erff` and `log1pf` are calls), and they are accurate to
//! a few f32 ulps.

/// `softplus(x) = log(1 + eˣ)` as `max(x, 0) + log1p(e^{-|x|})` (no overflow; equal to
/// `torch.nn.functional.softplus`, which is linear above 20, to f32 precision).
#[inline(always)]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + log1p_unit(exp_approx(-x.abs()))
}

/// `1/(1 + e^{-x})`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

/// `log(1 + t)` for `t` in [0, 1], branch-free: `2·atanh(s)` with `s = t/(2 + t) ≤ 1/3`, whose
/// odd series is below f32 resolution after the `s¹⁵` term.
#[inline(always)]
fn log1p_unit(t: f32) -> f32 {
    let s = t / (2.0 + t);
    let s2 = s * s;
    let mut p = 1.0 / 15.0;
    for k in [13.0f32, 11.0, 9.0, 7.0, 5.0, 3.0, 1.0] {
        p = p * s2 + 1.0 / k;
    }
    2.0 * s * p
}

/// `eˣ` to about 1.5e-7 relative, branch-free so loops over it vectorize (Cephes' `expf`
/// polynomial; rounding and the power of two by float bit tricks that need no SSE4.1).
/// Arguments below -87 give about 1e-38 instead of a denormal or 0.
#[inline(always)]
pub fn exp_approx(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + MAGIC;
    let k = t - MAGIC;
    let ki = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - k * 0.693_359_4 - k * -2.121_944_4e-4; // x - k·ln 2 in two parts
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((ki + 127) << 23) as u32)
}

/// `erf(x)` to about 2e-7 absolute (Abramowitz & Stegun 7.1.26 with [`exp_approx`]).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    erf_with(x, exp_approx(-x * x))
}

/// [`erf`] given `e = exp(-x²)` (the GELU gradient needs it too).
#[inline(always)]
fn erf_with(x: f32, e: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    (1.0 - poly * e).copysign(x)
}

/// The exact-form GELU `z·Φ(z)` (`torch.nn.GELU()`, not the tanh approximation).
#[inline(always)]
pub fn gelu(z: f32) -> f32 {
    0.5 * z * (1.0 + erf(z * std::f32::consts::FRAC_1_SQRT_2))
}

/// The derivative of [`gelu`]: `Φ(z) + z·φ(z)`.
#[inline(always)]
pub fn gelu_grad(z: f32) -> f32 {
    let e = exp_approx(-0.5 * z * z); // exp(-(z/√2)²), shared by Φ and φ
    let cdf = 0.5 * (1.0 + erf_with(z * std::f32::consts::FRAC_1_SQRT_2, e));
    cdf + z * e * 0.398_942_3
}

/// `Σ a·b` with eight partial sums (vectorizes; f32 addition is not reassociated otherwise).
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s = acc.iter().sum::<f32>();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_approx_is_close_to_exp() {
        for i in -8700..8800 {
            let x = i as f32 * 0.01;
            let (a, b) = (exp_approx(x) as f64, (x as f64).exp());
            assert!((a - b).abs() <= 3e-7 * b, "exp({x}): {a} vs {b}");
        }
        assert!(exp_approx(-1e4) < 1e-37 && exp_approx(-1e4) >= 0.0);
    }

    #[test]
    fn erf_and_gelu_are_close_to_f64() {
        let erf64 = |x: f64| libm::erf(x);
        for i in -1000..1000 {
            let x = i as f32 * 0.01;
            assert!((erf(x) as f64 - erf64(x as f64)).abs() <= 3e-7, "erf({x})");
            let z = x as f64;
            let (cdf, pdf) =
                (0.5 * (1.0 + erf64(z / 2f64.sqrt())), (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt());
            assert!((gelu(x) as f64 - z * cdf).abs() <= 4e-7 * (1.0 + z.abs()), "gelu({x})");
            assert!((gelu_grad(x) as f64 - (cdf + z * pdf)).abs() <= 6e-7 * (1.0 + z.abs()), "gelu_grad({x})");
        }
    }

    #[test]
    fn softplus_and_sigmoid_are_close_to_f64() {
        for i in -4000..4000 {
            let x = i as f32 * 0.01;
            let xf = x as f64;
            let sp = if xf > 20.0 { xf } else { xf.exp().ln_1p() };
            assert!((softplus(x) as f64 - sp).abs() <= 4e-7 * sp.max(1e-30), "softplus({x})");
            let sg = 1.0 / (1.0 + (-xf).exp());
            assert!((sigmoid(x) as f64 - sg).abs() <= 4e-7 * sg.max(1e-30), "sigmoid({x})");
        }
    }
}
