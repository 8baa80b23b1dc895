//! Fused CPU kernels with hand-written backward passes, registered as a burn backend
//! extension for `flex` and `Autodiff<flex>`.
//!
//! Why: built from generic tensor ops, the S4D kernel materializes several `[H, N2, L]`
//! intermediates and the FFT convolution makes three strided transposes; fused on the host
//! the same math runs several times faster on a CPU (see `wavessm bench s4d`). Other backends
//! use the tensor-op formulation in `model::ssm`, which computes the same function, except
//! that wgpu runs the Vandermonde kernel and the selective scan as CubeCL kernels (`ops::cube`,
//! with the `wgpu` feature).

pub mod attention;
pub mod cauchy;
#[cfg(feature = "wgpu")]
pub mod cube;
pub mod dropout;
pub mod dwconv;
pub mod fastmath;
pub mod gelu;
pub mod host;
pub mod linear;
pub mod lipschitz;
pub(crate) mod matmul;
pub(crate) mod pool;
pub mod rnn;
pub mod scan;
pub(crate) mod simd;
pub(crate) mod transpose;
pub mod unicornn;
pub mod vandermonde;

pub use vandermonde::vandermonde;

pub use gelu::gelu;

use std::borrow::Cow;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// SSM kernels: Cauchy sums, FFT causal convolution with a D skip, GLU and LayerNorm (the
/// Vandermonde kernel is [`vandermonde::VandermondeOps`]).
#[backend_extension(Flex, Autodiff)]
pub trait SsmOps: Backend {
    /// S4's Cauchy sums over the conj-expanded modes at the nodes of an inverse real FFT of
    /// length `l` (see [`cauchy`]): `v_*` [M,H,N2], `d_*` [H,N2] → [2,M,H,l/2+1] (re, im).
    fn cauchy(
        v_re: FloatTensor<Self>,
        v_im: FloatTensor<Self>,
        d_re: FloatTensor<Self>,
        d_im: FloatTensor<Self>,
        l: usize,
    ) -> FloatTensor<Self>;

    /// Gradients of `cauchy` (∂v re, ∂v im, ∂d re, ∂d im) for output gradient `grad`.
    #[allow(clippy::type_complexity)]
    fn cauchy_grad(
        v_re: FloatTensor<Self>,
        v_im: FloatTensor<Self>,
        d_re: FloatTensor<Self>,
        d_im: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        l: usize,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `act(k * u + d·u)` (causal convolution, skip, optional exact GELU):
    /// `u` [B,L,H], `k` [H,L], `d` [H] → [B,L,H].
    fn causal_conv(u: FloatTensor<Self>, k: FloatTensor<Self>, d: FloatTensor<Self>, gelu: bool) -> FloatTensor<Self>;

    /// `causal_conv` that also returns what its backward pass needs: the spectra of `u` and the
    /// pre-activation (an empty tensor without activation).
    fn causal_conv_saving(
        u: FloatTensor<Self>,
        k: FloatTensor<Self>,
        d: FloatTensor<Self>,
        gelu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `causal_conv` (∂u, ∂k, ∂d) for output gradient `grad`. It needs no `u`:
    /// its spectra give ∂k, and ∂d = ∂k[·, 0] (the skip acts as a kernel tap at lag 0).
    fn causal_conv_grad(
        k: FloatTensor<Self>,
        d: FloatTensor<Self>,
        spec: FloatTensor<Self>,
        pre: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// GLU over the last axis, `[a, b] ↦ a·σ(b)`: [.., 2H] → [.., H].
    fn glu_last(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradient of `glu_last` with respect to its input.
    fn glu_last_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// LayerNorm over the last axis with scale `gamma` and shift `beta` [H]; also returns the
    /// per-row reciprocal standard deviation for the backward pass.
    fn layer_norm_saving(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        eps: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `layer_norm_saving` (∂x, ∂γ, ∂β).
    fn layer_norm_grad(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        rstd: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A flex tensor's values as contiguous f32: borrowed when already contiguous.
fn host(t: &FlexTensor) -> Cow<'_, [f32]> {
    assert_eq!(t.dtype(), DType::F32, "wavessm's fused kernels run in f32");
    match t.as_slice::<f32>() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec()),
    }
}

fn flex(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

fn dims(t: &FlexTensor) -> Vec<usize> {
    t.shape().to_vec()
}

impl SsmOps for Flex {
    fn cauchy(v_re: FlexTensor, v_im: FlexTensor, d_re: FlexTensor, d_im: FlexTensor, l: usize) -> FlexTensor {
        let [m, h, n2] = dims(&v_re)[..] else { panic!("cauchy: v must be [M, H, N2]") };
        let r = cauchy::cauchy((&host(&v_re), &host(&v_im)), (&host(&d_re), &host(&d_im)), m, h, n2, l);
        flex(r, &[2, m, h, l / 2 + 1])
    }

    fn cauchy_grad(
        v_re: FlexTensor,
        v_im: FlexTensor,
        d_re: FlexTensor,
        d_im: FlexTensor,
        grad: FlexTensor,
        l: usize,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let [m, h, n2] = dims(&v_re)[..] else { panic!("cauchy: v must be [M, H, N2]") };
        let (a, b, c, d) =
            cauchy::cauchy_grad((&host(&v_re), &host(&v_im)), (&host(&d_re), &host(&d_im)), &host(&grad), m, h, n2, l);
        (flex(a, &[m, h, n2]), flex(b, &[m, h, n2]), flex(c, &[h, n2]), flex(d, &[h, n2]))
    }

    fn causal_conv(u: FlexTensor, k: FlexTensor, d: FlexTensor, gelu: bool) -> FlexTensor {
        let [b, l, h] = dims(&u)[..] else { panic!("causal_conv: u must be [B, L, H]") };
        let (y, _, _) = host::causal_conv(&host(&u), &host(&k), &host(&d), gelu, false, b, l, h);
        flex(y, &[b, l, h])
    }

    fn causal_conv_saving(
        u: FlexTensor,
        k: FlexTensor,
        d: FlexTensor,
        gelu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [b, l, h] = dims(&u)[..] else { panic!("causal_conv: u must be [B, L, H]") };
        let (y, spec, pre) = host::causal_conv(&host(&u), &host(&k), &host(&d), gelu, true, b, l, h);
        let f = host::fft_len(l) / 2 + 1;
        let pre_len = pre.len();
        (flex(y, &[b, l, h]), flex(spec, &[h, b, f, 2]), flex(pre, &[pre_len]))
    }

    fn causal_conv_grad(
        k: FlexTensor,
        d: FlexTensor,
        spec: FlexTensor,
        pre: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let [b, l, h] = dims(&grad)[..] else { panic!("causal_conv: the gradient must be [B, L, H]") };
        let (gu, gk, gd) =
            host::causal_conv_grad(&host(&k), &host(&d), &host(&spec), &host(&pre), &host(&grad), b, l, h);
        (flex(gu, &[b, l, h]), flex(gk, &[h, l]), flex(gd, &[h]))
    }

    fn glu_last(x: FlexTensor) -> FlexTensor {
        let mut shape = dims(&x);
        let h = shape.last().copied().unwrap_or(0) / 2;
        *shape.last_mut().expect("rank ≥ 1") = h;
        flex(host::glu(&host(&x), h), &shape)
    }

    fn glu_last_grad(x: FlexTensor, grad: FlexTensor) -> FlexTensor {
        let shape = dims(&x);
        let h = shape[shape.len() - 1] / 2;
        flex(host::glu_grad(&host(&x), &host(&grad), h), &shape)
    }

    fn layer_norm_saving(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, eps: f32) -> (FlexTensor, FlexTensor) {
        let shape = dims(&x);
        let h = shape[shape.len() - 1];
        let (y, rstd) = host::layer_norm(&host(&x), &host(&gamma), &host(&beta), eps, h);
        let rows = rstd.len();
        (flex(y, &shape), flex(rstd, &[rows]))
    }

    fn layer_norm_grad(
        x: FlexTensor,
        gamma: FlexTensor,
        rstd: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = dims(&x);
        let h = shape[shape.len() - 1];
        let (gx, gg, gb) = host::layer_norm_grad(&host(&x), &host(&gamma), &host(&rstd), &host(&grad), h);
        (flex(gx, &shape), flex(gg, &[h]), flex(gb, &[h]))
    }
}

/// Hands each parent that tracks gradients its part (`id` reads a parent's node id: burn does not
/// export the node type).
fn register_grads<B: Backend, P, const N: usize>(
    parents: [Option<P>; N],
    parts: [B::FloatTensorPrimitive; N],
    grads: &mut Gradients,
    id: impl Fn(&P) -> burn::backend::autodiff::NodeId,
) {
    for (node, grad) in parents.into_iter().zip(parts) {
        if let Some(node) = node {
            grads.register::<B>(id(&node), grad);
        }
    }
}

impl<B: Backend + SsmOps, C: CheckpointStrategy> SsmOps for Autodiff<B, C> {
    fn cauchy(
        v_re: AdTensor<B, C>,
        v_im: AdTensor<B, C>,
        d_re: AdTensor<B, C>,
        d_im: AdTensor<B, C>,
        l: usize,
    ) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Cauchy(usize);
        impl<B: Backend + SsmOps> Backward<B, 4> for Cauchy {
            type State = [B::FloatTensorPrimitive; 4];
            fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [a, b, c, d] = ops.state;
                let (ga, gb, gc, gd) = B::cauchy_grad(a, b, c, d, g, self.0);
                register_grads::<B, _, _>(ops.parents, [ga, gb, gc, gd], grads, |n| n.id);
            }
        }
        let guards = [v_re.node(), v_im.node(), d_re.node(), d_im.node()];
        let prims = [v_re.into_primitive(), v_im.into_primitive(), d_re.into_primitive(), d_im.into_primitive()];
        let r = B::cauchy(prims[0].clone(), prims[1].clone(), prims[2].clone(), prims[3].clone(), l);
        match Cauchy(l).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(prims, r),
            OpsKind::UnTracked(prep) => prep.finish(r),
        }
    }

    fn cauchy_grad(
        _v_re: AdTensor<B, C>,
        _v_im: AdTensor<B, C>,
        _d_re: AdTensor<B, C>,
        _d_im: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _l: usize,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the Cauchy kernel")
    }

    fn causal_conv(u: AdTensor<B, C>, k: AdTensor<B, C>, d: AdTensor<B, C>, gelu: bool) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct CausalConv;
        impl<B: Backend + SsmOps> Backward<B, 3> for CausalConv {
            type State = [B::FloatTensorPrimitive; 4];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [k, d, spec, pre] = ops.state;
                let (gu, gk, gd) = B::causal_conv_grad(k, d, spec, pre, g);
                register_grads::<B, _, _>(ops.parents, [gu, gk, gd], grads, |n| n.id);
            }
        }
        let guards = [u.node(), k.node(), d.node()];
        let (u, k, d) = (u.into_primitive(), k.into_primitive(), d.into_primitive());
        let (y, spec, pre) = B::causal_conv_saving(u.clone(), k.clone(), d.clone(), gelu);
        match CausalConv.prepare::<C>(guards).compute_bound().stateful() {
            // u is not kept: at B=1 it is a quarter of what the layer holds for its backward.
            OpsKind::Tracked(prep) => prep.finish([k, d, spec, pre], y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn causal_conv_saving(
        u: AdTensor<B, C>,
        k: AdTensor<B, C>,
        d: AdTensor<B, C>,
        gelu: bool,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        let (y, spec, pre) = B::causal_conv_saving(u.into_primitive(), k.into_primitive(), d.into_primitive(), gelu);
        (Self::from_inner(y), Self::from_inner(spec), Self::from_inner(pre))
    }

    fn glu_last(x: AdTensor<B, C>) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Glu;
        impl<B: Backend + SsmOps> Backward<B, 1> for Glu {
            type State = B::FloatTensorPrimitive;
            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                if let [Some(node)] = ops.parents {
                    grads.register::<B>(node.id, B::glu_last_grad(ops.state, g));
                }
            }
        }
        let guards = [x.node()];
        let x = x.into_primitive();
        let y = B::glu_last(x.clone());
        match Glu.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(x, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn glu_last_grad(_x: AdTensor<B, C>, _grad: AdTensor<B, C>) -> AdTensor<B, C> {
        unimplemented!("second-order gradients of GLU")
    }

    fn layer_norm_saving(
        x: AdTensor<B, C>,
        gamma: AdTensor<B, C>,
        beta: AdTensor<B, C>,
        eps: f32,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        #[derive(Debug)]
        struct LayerNorm;
        impl<B: Backend + SsmOps> Backward<B, 3> for LayerNorm {
            type State = [B::FloatTensorPrimitive; 3];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [x, gamma, rstd] = ops.state;
                let (gx, gg, gb) = B::layer_norm_grad(x, gamma, rstd, g);
                register_grads::<B, _, _>(ops.parents, [gx, gg, gb], grads, |n| n.id);
            }
        }
        let guards = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (x.into_primitive(), gamma.into_primitive(), beta.into_primitive());
        let (y, rstd) = B::layer_norm_saving(x.clone(), gamma.clone(), beta, eps);
        let y = match LayerNorm.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([x, gamma, rstd.clone()], y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        (y, Self::from_inner(rstd))
    }

    fn layer_norm_grad(
        _x: AdTensor<B, C>,
        _gamma: AdTensor<B, C>,
        _rstd: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of LayerNorm")
    }

    fn causal_conv_grad(
        _k: AdTensor<B, C>,
        _d: AdTensor<B, C>,
        _spec: AdTensor<B, C>,
        _pre: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the causal convolution")
    }
}

thread_local! {
    static GENERIC_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the fused kernels switched off on this thread, so the generic tensor-op
/// formulation runs instead (to compare the two, or to rule the kernels out when debugging).
pub fn with_generic_ops<R>(f: impl FnOnce() -> R) -> R {
    let before = GENERIC_ONLY.replace(true);
    let out = f();
    GENERIC_ONLY.set(before);
    out
}

/// Whether tensors on `device` use the fused kernels (the `flex` CPU backend).
pub fn supported(device: &Device) -> bool {
    !GENERIC_ONLY.get() && device.clone().inner() == Device::flex()
}

/// Whether tensors on `device` use the CubeCL kernels of [`cube`] (the wgpu backend, built
/// with the `wgpu` feature).
pub fn cube_kernels(device: &Device) -> bool {
    cfg!(feature = "wgpu") && !GENERIC_ONLY.get() && crate::train::device::backend_name(device) == "wgpu"
}

/// Fused Cauchy sums of the S4 DPLR kernel (see [`SsmOps::cauchy`]).
pub fn cauchy(v_re: Tensor<3>, v_im: Tensor<3>, d_re: Tensor<2>, d_im: Tensor<2>, l: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SsmOps>::cauchy(
        v_re.into_dispatch(),
        v_im.into_dispatch(),
        d_re.into_dispatch(),
        d_im.into_dispatch(),
        l,
    ))
}

/// Fused causal convolution with skip and optional GELU (see [`SsmOps::causal_conv`]).
pub fn causal_conv(u: Tensor<3>, k: Tensor<2>, d: Tensor<1>, gelu: bool) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as SsmOps>::causal_conv(
        u.into_dispatch(),
        k.into_dispatch(),
        d.into_dispatch(),
        gelu,
    ))
}

/// Fused LayerNorm over the last axis (see [`SsmOps::layer_norm_saving`]).
pub fn layer_norm<const D: usize>(x: Tensor<D>, gamma: Tensor<1>, beta: Tensor<1>, eps: f64) -> Tensor<D> {
    let (y, _) = <Dispatch as SsmOps>::layer_norm_saving(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        eps as f32,
    );
    Tensor::from_dispatch(y)
}

/// Fused GLU over the last axis (see [`SsmOps::glu_last`]).
pub fn glu_last<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as SsmOps>::glu_last(x.into_dispatch()))
}
