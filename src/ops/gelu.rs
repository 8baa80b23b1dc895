//! The exact (erf) GELU with its exact gradient on every device.
//!
//! Why: burn's `gelu` computes the erf form forward, but its backward is the backend's
//! `gelu_backward`, and only `flex` overrides the default one, which is the derivative of the
//! tanh approximation (off by up to ~1e-3 relative). On every other backend (wgpu, cuda) the
//! gradients through a GELU then miss the PyTorch references. Built from `erf`, whose autodiff
//! backward is exact, the same function has the exact gradient everywhere.

use std::f64::consts::FRAC_1_SQRT_2;

use burn::tensor::Tensor;

/// `x·Φ(x) = x·½·(1 + erf(x/√2))`, elementwise. Args: `x` any shape. Returns its shape.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if super::supported(&x.device()) {
        // flex's fused GELU has the exact backward.
        return burn::tensor::activation::gelu(x);
    }
    x.clone() * ((x * FRAC_1_SQRT_2).erf() + 1.0) * 0.5
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor};

    use super::gelu;

    /// The tensor-op form equals flex's fused GELU in value and gradient.
    #[test]
    fn the_erf_form_matches_the_fused_gelu_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let v: Vec<f32> = (0..41).map(|i| (i as f32 - 20.0) * 0.25).collect();
        let run = |generic: bool| {
            let x = Tensor::<1>::from_floats(v.as_slice(), &device).require_grad();
            let y = if generic { crate::ops::with_generic_ops(|| gelu(x.clone())) } else { gelu(x.clone()) };
            let grads = (y.clone() * y.clone()).sum().backward();
            let gx = x.grad(&grads).expect("grad");
            (y.inner().try_into_vec_as::<f32>().unwrap(), gx.try_into_vec_as::<f32>().unwrap())
        };
        let ((y0, g0), (y1, g1)) = (run(false), run(true));
        for i in 0..v.len() {
            assert!((y0[i] - y1[i]).abs() <= 1e-6 * (1.0 + y0[i].abs()), "value at {}: {} vs {}", v[i], y0[i], y1[i]);
            assert!((g0[i] - g1[i]).abs() <= 1e-5 * (1.0 + g0[i].abs()), "grad at {}: {} vs {}", v[i], g0[i], g1[i]);
        }
    }
}
