//! `glu(act(x)·W + b)`, the S4 blocks' activation and output projection, as a backend extension with a
//! hand-written backward (see [`host::linear_glu`] for why it is fused).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;

use super::{dims, flex, host, register_grads};

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// Linear layer then GLU over the last axis.
#[backend_extension(Flex, Autodiff)]
pub trait LinearGluOps: Backend {
    /// `glu(act(x)·W + b)`: `x` [.., I], `w` [I, 2·O], `b` [2·O] → [.., O]; `act` is exact
    /// GELU with `gelu`, else identity.
    fn linear_glu(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self>;

    /// Gradients of `linear_glu` (∂x, ∂W, ∂b) for output gradient `grad`; the pre-activation
    /// is recomputed from the inputs.
    fn linear_glu_grad(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        gelu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl LinearGluOps for Flex {
    fn linear_glu(x: FlexTensor, w: FlexTensor, b: FlexTensor, gelu: bool) -> FlexTensor {
        let [i, o2] = dims(&w)[..] else { panic!("linear_glu: W must be [I, 2·O]") };
        assert_eq!(dims(&x).last(), Some(&i), "linear_glu: the last axis of x must be W's I");
        let y = host::linear_glu(&host(&x), &host(&w), &host(&b), i, o2, gelu);
        let mut shape = dims(&x);
        *shape.last_mut().expect("rank ≥ 1") = o2 / 2;
        flex(y, &shape)
    }

    fn linear_glu_grad(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        grad: FlexTensor,
        gelu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [i, o2] = dims(&w)[..] else { panic!("linear_glu: W must be [I, 2·O]") };
        assert_eq!(dims(&x).last(), Some(&i), "linear_glu: the last axis of x must be W's I");
        let [gx, gw, gb] = host::linear_glu_grad(&host(&x), &host(&w), &host(&b), &host(&grad), i, o2, gelu);
        (flex(gx, &dims(&x)), flex(gw, &[i, o2]), flex(gb, &[o2]))
    }
}

impl<B: Backend + LinearGluOps, C: CheckpointStrategy> LinearGluOps for Autodiff<B, C> {
    fn linear_glu(x: AdTensor<B, C>, w: AdTensor<B, C>, b: AdTensor<B, C>, gelu: bool) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct LinearGlu(bool);
        impl<B: Backend + LinearGluOps> Backward<B, 3> for LinearGlu {
            type State = [B::FloatTensorPrimitive; 3];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [x, w, b] = ops.state;
                let (gx, gw, gb) = B::linear_glu_grad(x, w, b, g, self.0);
                register_grads::<B, _, _>(ops.parents, [gx, gw, gb], grads, |n| n.id);
            }
        }
        let guards = [x.node(), w.node(), b.node()];
        let (x, w, b) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
        let y = B::linear_glu(x.clone(), w.clone(), b.clone(), gelu);
        match LinearGlu(gelu).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([x, w, b], y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn linear_glu_grad(
        _x: AdTensor<B, C>,
        _w: AdTensor<B, C>,
        _b: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _gelu: bool,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the fused Linear + GLU")
    }
}

/// `glu(act(x)·W + b)` over the last axis through the backend extension (see
/// [`LinearGluOps::linear_glu`]). Args: `x` [B, L, I], `w` [I, 2·O], `b` [2·O].
/// Returns [B, L, O].
pub fn linear_glu(x: Tensor<3>, w: Tensor<2>, b: Tensor<1>, gelu: bool) -> Tensor<3> {
    let (x, w, b) = (x.into_dispatch(), w.into_dispatch(), b.into_dispatch());
    Tensor::from_dispatch(<Dispatch as LinearGluOps>::linear_glu(x, w, b, gelu))
}
