//! Fused recurrences (LSTM, GRU, Elman RNN) with hand-written backward passes
//! (backpropagation through time over the stored gates), as a burn backend extension for
//! `flex` and `Autodiff<flex>`.
//!
//! Why: written as tensor ops, a recurrence costs a dozen small ops per time step, and
//! their dispatch dominates on a CPU. Here the input projection of all steps is one matmul
//! outside (ordinary tensor ops, so autodiff gives the `W_ih` and bias gradients); only the
//! `h·W_hhᵀ` recurrence runs inside, one sequence per thread. Other backends use the per-step
//! tensor formulation in `model::rnn`, which computes the same function.

pub mod kernels;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::{dims, flex, host, register_grads};
use kernels::Dims;

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// Recurrences over a whole sequence, given the input projections of every step.
#[backend_extension(Flex, Autodiff)]
pub trait RnnOps: Backend {
    /// LSTM (gates i, f, g, o) from `(h0, c0)` [B, H]: `gx` [B, L, 4H] (= `x·W_ihᵀ + b_ih +
    /// b_hh`), `w_hh` [4H, H] → `[h_t, c_t]` [B, L, 2H].
    fn lstm_scan(
        gx: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `lstm_scan` that also returns the activated gates [B, L, 4H] for the backward pass.
    fn lstm_scan_saving(
        gx: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `lstm_scan` (∂gx, ∂w_hh, ∂h0, ∂c0) for output gradient `grad` [B, L, 2H].
    #[allow(clippy::type_complexity)]
    fn lstm_scan_grad(
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        c0: FloatTensor<Self>,
        hc: FloatTensor<Self>,
        gates: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// GRU (gates r, z, n) from `h0` [B, H]: `gx` [B, L, 3H] (= `x·W_ihᵀ + b_ih`), `w_hh`
    /// [3H, H], `b_hh` [3H] → `h_t` [B, L, H].
    fn gru_scan(
        gx: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `gru_scan` that also returns the gates `[r, z, n, W_hn·h + b_hn]` [B, L, 4H].
    fn gru_scan_saving(
        gx: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `gru_scan` (∂gx, ∂w_hh, ∂b_hh, ∂h0) for output gradient `grad` [B, L, H].
    #[allow(clippy::type_complexity)]
    fn gru_scan_grad(
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        out: FloatTensor<Self>,
        gates: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Elman RNN `h_t = act(gx_t + W_hh·h_{t-1})` (tanh, or ReLU when `relu`) from `h0`
    /// [B, H]: `gx` [B, L, H], `w_hh` [H, H] → `h_t` [B, L, H].
    fn rnn_scan(gx: FloatTensor<Self>, w_hh: FloatTensor<Self>, h0: FloatTensor<Self>, relu: bool)
    -> FloatTensor<Self>;

    /// Gradients of `rnn_scan` (∂gx, ∂w_hh, ∂h0) for output gradient `grad` [B, L, H].
    fn rnn_scan_grad(
        w_hh: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        out: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `[B, L, G·H]` of `gx` with the width `h` of a state: the kernels' sizes.
fn scan_dims(gx: &FlexTensor, h0: &FlexTensor) -> Dims {
    let [b, l, _] = dims(gx)[..] else { panic!("recurrence: gx must be [B, L, G·H]") };
    Dims { b, l, h: dims(h0)[1] }
}

impl RnnOps for Flex {
    fn lstm_scan(gx: FlexTensor, w_hh: FlexTensor, h0: FlexTensor, c0: FlexTensor) -> FlexTensor {
        Self::lstm_scan_saving(gx, w_hh, h0, c0).0
    }

    fn lstm_scan_saving(gx: FlexTensor, w_hh: FlexTensor, h0: FlexTensor, c0: FlexTensor) -> (FlexTensor, FlexTensor) {
        let d = scan_dims(&gx, &h0);
        let (hc, gates) = kernels::lstm(&host(&gx), &host(&w_hh), &host(&h0), &host(&c0), d);
        (flex(hc, &[d.b, d.l, 2 * d.h]), flex(gates, &[d.b, d.l, 4 * d.h]))
    }

    fn lstm_scan_grad(
        w_hh: FlexTensor,
        h0: FlexTensor,
        c0: FlexTensor,
        hc: FlexTensor,
        gates: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let d = scan_dims(&hc, &h0);
        let (dgx, dw, dh0, dc0) =
            kernels::lstm_grad(&host(&w_hh), (&host(&h0), &host(&c0)), (&host(&hc), &host(&gates)), &host(&grad), d);
        let (b, l, h) = (d.b, d.l, d.h);
        (flex(dgx, &[b, l, 4 * h]), flex(dw, &[4 * h, h]), flex(dh0, &[b, h]), flex(dc0, &[b, h]))
    }

    fn gru_scan(gx: FlexTensor, w_hh: FlexTensor, b_hh: FlexTensor, h0: FlexTensor) -> FlexTensor {
        Self::gru_scan_saving(gx, w_hh, b_hh, h0).0
    }

    fn gru_scan_saving(gx: FlexTensor, w_hh: FlexTensor, b_hh: FlexTensor, h0: FlexTensor) -> (FlexTensor, FlexTensor) {
        let d = scan_dims(&gx, &h0);
        let (out, gates) = kernels::gru(&host(&gx), &host(&w_hh), &host(&b_hh), &host(&h0), d);
        (flex(out, &[d.b, d.l, d.h]), flex(gates, &[d.b, d.l, 4 * d.h]))
    }

    fn gru_scan_grad(
        w_hh: FlexTensor,
        h0: FlexTensor,
        out: FlexTensor,
        gates: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let d = scan_dims(&out, &h0);
        let (dgx, dw, db, dh0) =
            kernels::gru_grad(&host(&w_hh), &host(&h0), (&host(&out), &host(&gates)), &host(&grad), d);
        let (b, l, h) = (d.b, d.l, d.h);
        (flex(dgx, &[b, l, 3 * h]), flex(dw, &[3 * h, h]), flex(db, &[3 * h]), flex(dh0, &[b, h]))
    }

    fn rnn_scan(gx: FlexTensor, w_hh: FlexTensor, h0: FlexTensor, relu: bool) -> FlexTensor {
        let d = scan_dims(&gx, &h0);
        flex(kernels::rnn(&host(&gx), &host(&w_hh), &host(&h0), relu, d), &[d.b, d.l, d.h])
    }

    fn rnn_scan_grad(
        w_hh: FlexTensor,
        h0: FlexTensor,
        out: FlexTensor,
        grad: FlexTensor,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let d = scan_dims(&out, &h0);
        let (dgx, dw, dh0) = kernels::rnn_grad(&host(&w_hh), &host(&h0), &host(&out), &host(&grad), relu, d);
        (flex(dgx, &[d.b, d.l, d.h]), flex(dw, &[d.h, d.h]), flex(dh0, &[d.b, d.h]))
    }
}

impl<B: Backend + RnnOps, C: CheckpointStrategy> RnnOps for Autodiff<B, C> {
    fn lstm_scan(gx: AdTensor<B, C>, w_hh: AdTensor<B, C>, h0: AdTensor<B, C>, c0: AdTensor<B, C>) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Lstm;
        impl<B: Backend + RnnOps> Backward<B, 4> for Lstm {
            type State = [B::FloatTensorPrimitive; 5];
            fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [w, h0, c0, hc, gates] = ops.state;
                let (a, b, c, d) = B::lstm_scan_grad(w, h0, c0, hc, gates, g);
                register_grads::<B, _, _>(ops.parents, [a, b, c, d], grads, |n| n.id);
            }
        }
        let guards = [gx.node(), w_hh.node(), h0.node(), c0.node()];
        let (gx, w, h0, c0) = (gx.into_primitive(), w_hh.into_primitive(), h0.into_primitive(), c0.into_primitive());
        let (hc, gates) = B::lstm_scan_saving(gx, w.clone(), h0.clone(), c0.clone());
        match Lstm.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([w, h0, c0, hc.clone(), gates], hc),
            OpsKind::UnTracked(prep) => prep.finish(hc),
        }
    }

    fn lstm_scan_saving(
        gx: AdTensor<B, C>,
        w_hh: AdTensor<B, C>,
        h0: AdTensor<B, C>,
        c0: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        let (hc, gates) =
            B::lstm_scan_saving(gx.into_primitive(), w_hh.into_primitive(), h0.into_primitive(), c0.into_primitive());
        (Self::from_inner(hc), Self::from_inner(gates))
    }

    fn lstm_scan_grad(
        _w_hh: AdTensor<B, C>,
        _h0: AdTensor<B, C>,
        _c0: AdTensor<B, C>,
        _hc: AdTensor<B, C>,
        _gates: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the LSTM recurrence")
    }

    fn gru_scan(gx: AdTensor<B, C>, w_hh: AdTensor<B, C>, b_hh: AdTensor<B, C>, h0: AdTensor<B, C>) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Gru;
        impl<B: Backend + RnnOps> Backward<B, 4> for Gru {
            type State = [B::FloatTensorPrimitive; 4];
            fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [w, h0, out, gates] = ops.state;
                let (a, b, c, d) = B::gru_scan_grad(w, h0, out, gates, g);
                register_grads::<B, _, _>(ops.parents, [a, b, c, d], grads, |n| n.id);
            }
        }
        let guards = [gx.node(), w_hh.node(), b_hh.node(), h0.node()];
        let (gx, w, bh, h0) = (gx.into_primitive(), w_hh.into_primitive(), b_hh.into_primitive(), h0.into_primitive());
        let (out, gates) = B::gru_scan_saving(gx, w.clone(), bh, h0.clone());
        match Gru.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([w, h0, out.clone(), gates], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn gru_scan_saving(
        gx: AdTensor<B, C>,
        w_hh: AdTensor<B, C>,
        b_hh: AdTensor<B, C>,
        h0: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        let (out, gates) =
            B::gru_scan_saving(gx.into_primitive(), w_hh.into_primitive(), b_hh.into_primitive(), h0.into_primitive());
        (Self::from_inner(out), Self::from_inner(gates))
    }

    fn gru_scan_grad(
        _w_hh: AdTensor<B, C>,
        _h0: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _gates: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the GRU recurrence")
    }

    fn rnn_scan(gx: AdTensor<B, C>, w_hh: AdTensor<B, C>, h0: AdTensor<B, C>, relu: bool) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Rnn(bool);
        impl<B: Backend + RnnOps> Backward<B, 3> for Rnn {
            type State = [B::FloatTensorPrimitive; 3];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [w, h0, out] = ops.state;
                let (a, b, c) = B::rnn_scan_grad(w, h0, out, g, self.0);
                register_grads::<B, _, _>(ops.parents, [a, b, c], grads, |n| n.id);
            }
        }
        let guards = [gx.node(), w_hh.node(), h0.node()];
        let (gx, w, h0) = (gx.into_primitive(), w_hh.into_primitive(), h0.into_primitive());
        let out = B::rnn_scan(gx, w.clone(), h0.clone(), relu);
        match Rnn(relu).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([w, h0, out.clone()], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn rnn_scan_grad(
        _w_hh: AdTensor<B, C>,
        _h0: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _relu: bool,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the RNN recurrence")
    }
}

/// Fused LSTM recurrence (see [`RnnOps::lstm_scan`]). Returns `[h_t, c_t]` [B, L, 2H].
pub fn lstm_scan(gx: Tensor<3>, w_hh: Tensor<2>, h0: Tensor<2>, c0: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as RnnOps>::lstm_scan(
        gx.into_dispatch(),
        w_hh.into_dispatch(),
        h0.into_dispatch(),
        c0.into_dispatch(),
    ))
}

/// Fused GRU recurrence (see [`RnnOps::gru_scan`]). Returns [B, L, H].
pub fn gru_scan(gx: Tensor<3>, w_hh: Tensor<2>, b_hh: Tensor<1>, h0: Tensor<2>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as RnnOps>::gru_scan(
        gx.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        h0.into_dispatch(),
    ))
}

/// Fused Elman recurrence (see [`RnnOps::rnn_scan`]). Returns [B, L, H].
pub fn rnn_scan(gx: Tensor<3>, w_hh: Tensor<2>, h0: Tensor<2>, relu: bool) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as RnnOps>::rnn_scan(
        gx.into_dispatch(),
        w_hh.into_dispatch(),
        h0.into_dispatch(),
        relu,
    ))
}
