//! The LipschitzRNN recurrence (Erichson et al. 2021) as a fused CPU op with a hand-written
//! backward pass (backpropagation through time over the stored activations), a burn backend
//! extension for `flex` and `Autodiff<flex>`:
//!
//! `h_t = h_{t-1} + ε·α·h_{t-1}·A + ε·tanh(h_{t-1}·W + x_t)` (`h` a row vector).
//!
//! Why: as tensor ops the recurrence is two matmuls and five small ops per time step. `A` and
//! `W` are built from the parameters `B`, `C` by tensor ops outside, so autodiff carries their
//! gradients on. Other backends use the per-step tensor formulation in
//! `model::rnn::lipschitz`, which computes the same function.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::rnn::kernels::{self, Dims, Lip};
use super::{dims, flex, host, register_grads};

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// The LipschitzRNN recurrence over a whole sequence.
#[backend_extension(Flex, Autodiff)]
pub trait LipschitzOps: Backend {
    /// From `h0` [B, H]: `x` [B, L, H], `a`, `w` [H, H] → `h_t` [B, L, H].
    fn lipschitz_scan(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        w: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        eps: f32,
        alpha: f32,
    ) -> FloatTensor<Self>;

    /// `lipschitz_scan` that also returns the activations `tanh(h_{t-1}·W + x_t)` [B, L, H].
    fn lipschitz_scan_saving(
        x: FloatTensor<Self>,
        a: FloatTensor<Self>,
        w: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        eps: f32,
        alpha: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `lipschitz_scan` (∂x, ∂a, ∂w, ∂h0) for output gradient `grad` [B, L, H].
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn lipschitz_scan_grad(
        a: FloatTensor<Self>,
        w: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        out: FloatTensor<Self>,
        act: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f32,
        alpha: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `[B, L, H]` of `x`: the kernels' sizes.
fn scan_dims(x: &FlexTensor) -> Dims {
    let [b, l, h] = dims(x)[..] else { panic!("lipschitz_rnn: x must be [B, L, H]") };
    Dims { b, l, h }
}

impl LipschitzOps for Flex {
    fn lipschitz_scan(x: FlexTensor, a: FlexTensor, w: FlexTensor, h0: FlexTensor, eps: f32, alpha: f32) -> FlexTensor {
        Self::lipschitz_scan_saving(x, a, w, h0, eps, alpha).0
    }

    fn lipschitz_scan_saving(
        x: FlexTensor,
        a: FlexTensor,
        w: FlexTensor,
        h0: FlexTensor,
        eps: f32,
        alpha: f32,
    ) -> (FlexTensor, FlexTensor) {
        let d = scan_dims(&x);
        let (out, act) = kernels::lipschitz(&host(&x), &host(&a), &host(&w), &host(&h0), Lip { eps, alpha }, d);
        (flex(out, &[d.b, d.l, d.h]), flex(act, &[d.b, d.l, d.h]))
    }

    fn lipschitz_scan_grad(
        a: FlexTensor,
        w: FlexTensor,
        h0: FlexTensor,
        out: FlexTensor,
        act: FlexTensor,
        grad: FlexTensor,
        eps: f32,
        alpha: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let d = scan_dims(&out);
        let (dx, da, dw, dh0) = kernels::lipschitz_grad(
            &host(&a),
            &host(&w),
            &host(&h0),
            (&host(&out), &host(&act)),
            &host(&grad),
            Lip { eps, alpha },
            d,
        );
        let (b, l, h) = (d.b, d.l, d.h);
        (flex(dx, &[b, l, h]), flex(da, &[h, h]), flex(dw, &[h, h]), flex(dh0, &[b, h]))
    }
}

impl<B: Backend + LipschitzOps, C: CheckpointStrategy> LipschitzOps for Autodiff<B, C> {
    fn lipschitz_scan(
        x: AdTensor<B, C>,
        a: AdTensor<B, C>,
        w: AdTensor<B, C>,
        h0: AdTensor<B, C>,
        eps: f32,
        alpha: f32,
    ) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Scan(Lip);
        impl<B: Backend + LipschitzOps> Backward<B, 4> for Scan {
            type State = [B::FloatTensorPrimitive; 5];
            fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [a, w, h0, out, act] = ops.state;
                let (dx, da, dw, dh0) = B::lipschitz_scan_grad(a, w, h0, out, act, g, self.0.eps, self.0.alpha);
                register_grads::<B, _, _>(ops.parents, [dx, da, dw, dh0], grads, |n| n.id);
            }
        }
        let guards = [x.node(), a.node(), w.node(), h0.node()];
        let [x, a, w, h0] = [x, a, w, h0].map(|t| t.into_primitive());
        let (out, act) = B::lipschitz_scan_saving(x, a.clone(), w.clone(), h0.clone(), eps, alpha);
        match Scan(Lip { eps, alpha }).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([a, w, h0, out.clone(), act], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn lipschitz_scan_saving(
        x: AdTensor<B, C>,
        a: AdTensor<B, C>,
        w: AdTensor<B, C>,
        h0: AdTensor<B, C>,
        eps: f32,
        alpha: f32,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        let (out, act) = B::lipschitz_scan_saving(
            x.into_primitive(),
            a.into_primitive(),
            w.into_primitive(),
            h0.into_primitive(),
            eps,
            alpha,
        );
        (Self::from_inner(out), Self::from_inner(act))
    }

    fn lipschitz_scan_grad(
        _a: AdTensor<B, C>,
        _w: AdTensor<B, C>,
        _h0: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _act: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _eps: f32,
        _alpha: f32,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the LipschitzRNN recurrence")
    }
}

/// Fused LipschitzRNN recurrence (see [`LipschitzOps::lipschitz_scan`]). Returns [B, L, H].
pub fn lipschitz_scan(x: Tensor<3>, a: Tensor<2>, w: Tensor<2>, h0: Tensor<2>, eps: f32, alpha: f32) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as LipschitzOps>::lipschitz_scan(
        x.into_dispatch(),
        a.into_dispatch(),
        w.into_dispatch(),
        h0.into_dispatch(),
        eps,
        alpha,
    ))
}
