//! The exact (erf) GELU with its exact gradient on every device.
//!
//! Why: burn's `gelu` computes the erf form forward, but its backward is the backend's
//! `gelu_backward`, and only `flex` overrides the default one, which is the derivative of the
//! tanh approximation (off by up to ~1e-3 relative). On every other backend (wgpu, cuda) the
//! gradients through a GELU then miss the PyTorch references. Built from `erf`, whose autodiff
//! backward is exact, the same function has the exact gradient everywhere. On the CPU it is a
//! fused op ([`GeluOps`]): flex's GELU calls libm's `erff` per element, which took a tenth of a
//! transformer layer's training step.

use std::f64::consts::FRAC_1_SQRT_2;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

use super::fastmath;
use super::simd::simd_dispatch;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `x·Φ(x) = x·½·(1 + erf(x/√2))`, elementwise. Args: `x` any shape. Returns its shape.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if super::supported(&x.device()) {
        let shape = x.shape();
        return Tensor::<1>::from_dispatch(<Dispatch as GeluOps>::gelu_exact(x.into_dispatch())).reshape(shape);
    }
    x.clone() * ((x * FRAC_1_SQRT_2).erf() + 1.0) * 0.5
}

/// The exact GELU as one pass over the elements.
#[backend_extension(Flex, Autodiff)]
pub trait GeluOps: Backend {
    /// `x·Φ(x)` of every element of `x` (any shape), flattened: returns [numel].
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `grad·(Φ(x) + x·φ(x))`, flattened: returns [numel].
    fn gelu_exact_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

simd_dispatch! {
    /// `out = gelu(x)`.
    fn gelu_slice => gelu_slice_body(x: &[f32], out: &mut [f32])
}

#[inline(always)]
fn gelu_slice_body<const FMA: bool>(x: &[f32], out: &mut [f32]) {
    // Plain loops: an iterator adaptor's `for_each` may stay un-inlined, outside the AVX copy.
    for (o, &z) in out.iter_mut().zip(x) {
        *o = fastmath::gelu(z);
    }
}

simd_dispatch! {
    /// `out = g·gelu'(x)`.
    fn gelu_grad_slice => gelu_grad_slice_body(x: &[f32], g: &[f32], out: &mut [f32])
}

#[inline(always)]
fn gelu_grad_slice_body<const FMA: bool>(x: &[f32], g: &[f32], out: &mut [f32]) {
    for (o, (&z, &g)) in out.iter_mut().zip(x.iter().zip(g)) {
        *o = g * fastmath::gelu_grad(z);
    }
}

/// `out = gelu(x)` on the calling thread (for kernels that apply it block by block).
pub(crate) fn gelu_into(x: &[f32], out: &mut [f32]) {
    gelu_slice(x, out)
}

/// `out = g·gelu'(x)` on the calling thread.
pub(crate) fn gelu_grad_into(x: &[f32], g: &[f32], out: &mut [f32]) {
    gelu_grad_slice(x, g, out)
}

/// `gelu(x)` elementwise, in parallel.
pub fn gelu_host(x: &[f32]) -> Vec<f32> {
    let mut out = super::pool::zeros(x.len());
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, x)| gelu_slice(x, o));
    out
}

/// `g·gelu'(x)` elementwise, in parallel.
pub fn gelu_grad_host(x: &[f32], g: &[f32]) -> Vec<f32> {
    let mut out = super::pool::zeros(x.len());
    let parts = out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)));
    parts.for_each(|(o, (x, g))| gelu_grad_slice(x, g, o));
    out
}

impl GeluOps for Flex {
    fn gelu_exact(x: FlexTensor) -> FlexTensor {
        let out = gelu_host(&super::host(&x));
        let n = out.len();
        FlexTensor::from_data(TensorData::new(out, [n]))
    }

    fn gelu_exact_grad(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let out = gelu_grad_host(&super::host(&x), &super::host(&grad));
        let n = out.len();
        FlexTensor::from_data(TensorData::new(out, [n]))
    }
}

impl<B: Backend + GeluOps, C: CheckpointStrategy> GeluOps for Autodiff<B, C> {
    fn gelu_exact(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Gelu;
        impl<B: Backend + GeluOps> Backward<B, 1> for Gelu {
            type State = B::FloatTensorPrimitive;
            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let shape = ops.state.shape();
                let dx = B::gelu_exact_grad(ops.state, g);
                if let Some(node) = ops.parents.into_iter().next().flatten() {
                    grads.register::<B>(node.id, B::float_reshape(dx, shape));
                }
            }
        }
        let guard = [x.node()];
        let x = x.into_primitive();
        let y = B::gelu_exact(x.clone());
        match Gelu.prepare::<C>(guard).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn gelu_exact_grad(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("second-order gradients of the fused GELU")
    }
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
