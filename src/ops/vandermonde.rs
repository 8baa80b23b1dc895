//! The diagonal-SSM Vandermonde kernel as a backend extension with a hand-written backward: a
//! fused host kernel on `flex`, a CubeCL kernel on the wgpu backend (see [`super::cube`]).

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

/// The Vandermonde kernel and its gradient.
#[backend_extension(Flex, Autodiff, Cube: cfg(feature = "wgpu"), Fusion: cfg(feature = "wgpu"))]
pub trait VandermondeOps: Backend {
    /// `K[c,h,l] = 2·Re Σ_n W[c,h,n]·exp(dtA[h,n]·l)`; `w_*` [C,H,N2], `dta_*` [H,N2] → [C,H,L].
    #[fusion(meta = super::cube::vandermonde_meta)]
    fn vandermonde(
        w_re: FloatTensor<Self>,
        w_im: FloatTensor<Self>,
        dta_re: FloatTensor<Self>,
        dta_im: FloatTensor<Self>,
        l: usize,
    ) -> FloatTensor<Self>;

    /// Gradients of `vandermonde` (∂W re, ∂W im, ∂dtA re, ∂dtA im) for output gradient `grad`
    /// [C,H,L].
    #[allow(clippy::type_complexity)]
    #[fusion(meta = super::cube::vandermonde_grad_meta)]
    fn vandermonde_grad(
        w_re: FloatTensor<Self>,
        w_im: FloatTensor<Self>,
        dta_re: FloatTensor<Self>,
        dta_im: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

impl VandermondeOps for Flex {
    fn vandermonde(w_re: FlexTensor, w_im: FlexTensor, dta_re: FlexTensor, dta_im: FlexTensor, l: usize) -> FlexTensor {
        let [c, h, n2] = dims(&w_re)[..] else { panic!("vandermonde: W must be [C, H, N2]") };
        let k = host::vandermonde((&host(&w_re), &host(&w_im)), (&host(&dta_re), &host(&dta_im)), c, h, n2, l);
        flex(k, &[c, h, l])
    }

    fn vandermonde_grad(
        w_re: FlexTensor,
        w_im: FlexTensor,
        dta_re: FlexTensor,
        dta_im: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let [c, h, n2] = dims(&w_re)[..] else { panic!("vandermonde: W must be [C, H, N2]") };
        let l = dims(&grad)[2];
        let (a, b, cc, d) = host::vandermonde_grad(
            (&host(&w_re), &host(&w_im)),
            (&host(&dta_re), &host(&dta_im)),
            &host(&grad),
            c,
            h,
            n2,
            l,
        );
        (flex(a, &[c, h, n2]), flex(b, &[c, h, n2]), flex(cc, &[h, n2]), flex(d, &[h, n2]))
    }
}

impl<B: Backend + VandermondeOps, C: CheckpointStrategy> VandermondeOps for Autodiff<B, C> {
    fn vandermonde(
        w_re: AdTensor<B, C>,
        w_im: AdTensor<B, C>,
        dta_re: AdTensor<B, C>,
        dta_im: AdTensor<B, C>,
        l: usize,
    ) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Vandermonde;
        impl<B: Backend + VandermondeOps> Backward<B, 4> for Vandermonde {
            type State = [B::FloatTensorPrimitive; 4];
            fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [a, b, c, d] = ops.state;
                let (ga, gb, gc, gd) = B::vandermonde_grad(a, b, c, d, g);
                register_grads::<B, _, _>(ops.parents, [ga, gb, gc, gd], grads, |n| n.id);
            }
        }
        let guards = [w_re.node(), w_im.node(), dta_re.node(), dta_im.node()];
        let prims = [w_re.into_primitive(), w_im.into_primitive(), dta_re.into_primitive(), dta_im.into_primitive()];
        let k = B::vandermonde(prims[0].clone(), prims[1].clone(), prims[2].clone(), prims[3].clone(), l);
        match Vandermonde.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(prims, k),
            OpsKind::UnTracked(prep) => prep.finish(k),
        }
    }

    fn vandermonde_grad(
        _w_re: AdTensor<B, C>,
        _w_im: AdTensor<B, C>,
        _dta_re: AdTensor<B, C>,
        _dta_im: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the Vandermonde kernel")
    }
}

/// The Vandermonde kernel through the backend extension: the fused host kernel on `flex`, the
/// CubeCL kernel on wgpu (see [`VandermondeOps::vandermonde`]).
pub fn vandermonde(w_re: Tensor<3>, w_im: Tensor<3>, dta_re: Tensor<2>, dta_im: Tensor<2>, l: usize) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as VandermondeOps>::vandermonde(
        w_re.into_dispatch(),
        w_im.into_dispatch(),
        dta_re.into_dispatch(),
        dta_im.into_dispatch(),
        l,
    ))
}
