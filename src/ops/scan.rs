//! Mamba's selective scan as a fused CPU op with a hand-written backward pass, registered as a
//! burn backend extension for `flex` and `Autodiff<flex>` (and, with the `wgpu` feature, for
//! the wgpu backend as CubeCL kernels: see `ops::cube`).
//!
//! Why: written with tensor ops the scan keeps every state `[B, L, E, N]` for the backward
//! pass and runs one small op per time step. Fused, the forward pass keeps only the states at
//! chunk boundaries, and the backward pass recomputes each chunk before running the adjoint
//! scan backwards in time (see [`kernel`]). Other backends use the tensor-op formulation in
//! `model::ssm::selective`, which computes the same function.

pub mod kernel;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

use self::kernel::{Dims, Inputs};
use super::host;

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// The gradients of [`ScanOps::selective_scan`]'s inputs, in argument order (∂u, ∂delta, ∂A,
/// ∂B, ∂C, ∂D, ∂z, ∂delta_bias, ∂h0).
pub type ScanGrads<T> = (T, T, T, T, T, T, T, T, T);

/// The selective scan (Mamba's S6).
#[backend_extension(Flex, Autodiff, Cube: cfg(feature = "wgpu"), Fusion: cfg(feature = "wgpu"))]
pub trait ScanOps: Backend {
    /// With `Δ = softplus(delta + delta_bias)` (`softplus` false: no softplus) and `x_{-1} = h0`:
    /// `x_t = exp(Δ_t·A)⊙x_{t-1} + Δ_t·u_t·B_t`, `out_t = (Σ_n x_t·C_t + D·u_t)·silu(z_t)`.
    ///
    /// Args: `u`, `delta`, `z` [B, L, E] (`z` empty: no gate), `a` [E, N], `b`, `c` [B, L, N],
    /// `d`, `delta_bias` [E], `h0` [B, E, N]. Returns `out` [B, L, E] and the last state
    /// [B, E, N] (which carries no gradient).
    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = crate::ops::cube::scan_meta)]
    fn selective_scan(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        z: FloatTensor<Self>,
        delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        softplus: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `selective_scan` that also returns the states at the chunk boundaries [B, E, K, N] that
    /// its backward pass restarts from.
    #[allow(clippy::too_many_arguments)]
    #[fusion(meta = crate::ops::cube::scan_saving_meta)]
    fn selective_scan_saving(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        z: FloatTensor<Self>,
        delta_bias: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        softplus: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients of `selective_scan`'s `out` for output gradient `grad` [B, L, E], from the
    /// boundary states `ckpt` of `selective_scan_saving`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    #[fusion(meta = crate::ops::cube::scan_grad_meta)]
    fn selective_scan_grad(
        u: FloatTensor<Self>,
        delta: FloatTensor<Self>,
        a: FloatTensor<Self>,
        b: FloatTensor<Self>,
        c: FloatTensor<Self>,
        d: FloatTensor<Self>,
        z: FloatTensor<Self>,
        delta_bias: FloatTensor<Self>,
        ckpt: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        softplus: bool,
    ) -> (
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
        FloatTensor<Self>,
    );
}

fn flex(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

/// Sizes from `u` [B, L, E] and `a` [E, N].
fn dims(u: &FlexTensor, a: &FlexTensor) -> Dims {
    let (us, as_) = (u.shape().to_vec(), a.shape().to_vec());
    let (&[b, l, e], &[_, n]) = (&us[..], &as_[..]) else { panic!("selective_scan: u [B, L, E], A [E, N]") };
    Dims { b, l, e, n }
}

impl ScanOps for Flex {
    fn selective_scan(
        u: FlexTensor,
        delta: FlexTensor,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
        z: FlexTensor,
        delta_bias: FlexTensor,
        h0: FlexTensor,
        softplus: bool,
    ) -> (FlexTensor, FlexTensor) {
        let (out, last, _) = Self::selective_scan_saving(u, delta, a, b, c, d, z, delta_bias, h0, softplus);
        (out, last)
    }

    fn selective_scan_saving(
        u: FlexTensor,
        delta: FlexTensor,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
        z: FlexTensor,
        delta_bias: FlexTensor,
        h0: FlexTensor,
        softplus: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let dm = dims(&u, &a);
        let (u, delta, a, bm, cm) = (host(&u), host(&delta), host(&a), host(&b), host(&c));
        let (d, z, bias, h0) = (host(&d), host(&z), host(&delta_bias), host(&h0));
        let inp = Inputs { u: &u, delta: &delta, a: &a, bm: &bm, cm: &cm, d: &d, z: &z, bias: &bias, softplus };
        let (out, last, ckpt) = kernel::forward(&inp, &h0, dm);
        (flex(out, &[dm.b, dm.l, dm.e]), flex(last, &[dm.b, dm.e, dm.n]), flex(ckpt, &[dm.b, dm.e, dm.chunks(), dm.n]))
    }

    fn selective_scan_grad(
        u: FlexTensor,
        delta: FlexTensor,
        a: FlexTensor,
        b: FlexTensor,
        c: FlexTensor,
        d: FlexTensor,
        z: FlexTensor,
        delta_bias: FlexTensor,
        ckpt: FlexTensor,
        grad: FlexTensor,
        softplus: bool,
    ) -> ScanGrads<FlexTensor> {
        let dm = dims(&u, &a);
        let z_shape = z.shape().to_vec();
        let (u, delta, a, bm, cm) = (host(&u), host(&delta), host(&a), host(&b), host(&c));
        let (d, z, bias, ckpt, g) = (host(&d), host(&z), host(&delta_bias), host(&ckpt), host(&grad));
        let inp = Inputs { u: &u, delta: &delta, a: &a, bm: &bm, cm: &cm, d: &d, z: &z, bias: &bias, softplus };
        let gr = kernel::backward(&inp, &ckpt, &g, dm);
        let (ble, bln) = ([dm.b, dm.l, dm.e], [dm.b, dm.l, dm.n]);
        (
            flex(gr.u, &ble),
            flex(gr.delta, &ble),
            flex(gr.a, &[dm.e, dm.n]),
            flex(gr.bm, &bln),
            flex(gr.cm, &bln),
            flex(gr.d, &[dm.e]),
            flex(gr.z, &z_shape),
            flex(gr.bias, &[dm.e]),
            flex(gr.h0, &[dm.b, dm.e, dm.n]),
        )
    }
}

impl<B: Backend + ScanOps, C: CheckpointStrategy> ScanOps for Autodiff<B, C> {
    fn selective_scan(
        u: AdTensor<B, C>,
        delta: AdTensor<B, C>,
        a: AdTensor<B, C>,
        b: AdTensor<B, C>,
        c: AdTensor<B, C>,
        d: AdTensor<B, C>,
        z: AdTensor<B, C>,
        delta_bias: AdTensor<B, C>,
        h0: AdTensor<B, C>,
        softplus: bool,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        #[derive(Debug)]
        struct Scan(bool);
        impl<B: Backend + ScanOps> Backward<B, 9> for Scan {
            type State = [B::FloatTensorPrimitive; 9];
            fn backward(self, ops: Ops<Self::State, 9>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [u, delta, a, b, c, d, z, bias, ckpt] = ops.state;
                let (gu, gdl, ga, gb, gc, gd, gz, gbias, gh0) =
                    B::selective_scan_grad(u, delta, a, b, c, d, z, bias, ckpt, g, self.0);
                let parts = [gu, gdl, ga, gb, gc, gd, gz, gbias, gh0];
                for (node, grad) in ops.parents.into_iter().zip(parts) {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }
        let guards =
            [u.node(), delta.node(), a.node(), b.node(), c.node(), d.node(), z.node(), delta_bias.node(), h0.node()];
        let p = [u, delta, a, b, c, d, z, delta_bias, h0].map(|t| t.into_primitive());
        let [u, delta, a, b, c, d, z, bias, h0] = p;
        let (out, last, ckpt) = B::selective_scan_saving(
            u.clone(),
            delta.clone(),
            a.clone(),
            b.clone(),
            c.clone(),
            d.clone(),
            z.clone(),
            bias.clone(),
            h0,
            softplus,
        );
        let out = match Scan(softplus).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([u, delta, a, b, c, d, z, bias, ckpt], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        (out, Self::from_inner(last))
    }

    fn selective_scan_saving(
        u: AdTensor<B, C>,
        delta: AdTensor<B, C>,
        a: AdTensor<B, C>,
        b: AdTensor<B, C>,
        c: AdTensor<B, C>,
        d: AdTensor<B, C>,
        z: AdTensor<B, C>,
        delta_bias: AdTensor<B, C>,
        h0: AdTensor<B, C>,
        softplus: bool,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        let [u, delta, a, b, c, d, z, bias, h0] = [u, delta, a, b, c, d, z, delta_bias, h0].map(|t| t.into_primitive());
        let (out, last, ckpt) = B::selective_scan_saving(u, delta, a, b, c, d, z, bias, h0, softplus);
        (Self::from_inner(out), Self::from_inner(last), Self::from_inner(ckpt))
    }

    fn selective_scan_grad(
        _u: AdTensor<B, C>,
        _delta: AdTensor<B, C>,
        _a: AdTensor<B, C>,
        _b: AdTensor<B, C>,
        _c: AdTensor<B, C>,
        _d: AdTensor<B, C>,
        _z: AdTensor<B, C>,
        _delta_bias: AdTensor<B, C>,
        _ckpt: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _softplus: bool,
    ) -> ScanGrads<AdTensor<B, C>> {
        unimplemented!("second-order gradients of the selective scan")
    }
}

/// Inputs of [`selective_scan`] as tensors on one device (see [`ScanOps::selective_scan`]).
#[derive(Debug, Clone)]
pub struct ScanArgs {
    /// `u` [B, L, E].
    pub u: Tensor<3>,
    /// Raw step sizes [B, L, E].
    pub delta: Tensor<3>,
    /// `A` [E, N].
    pub a: Tensor<2>,
    /// Input-dependent `B` [B, L, N] (shared by all channels).
    pub b: Tensor<3>,
    /// Input-dependent `C` [B, L, N].
    pub c: Tensor<3>,
    /// Skip [E] (None: 0).
    pub d: Option<Tensor<1>>,
    /// Gate [B, L, E] (None: no gate).
    pub z: Option<Tensor<3>>,
    /// Added to `delta` before the softplus, [E] (None: 0).
    pub delta_bias: Option<Tensor<1>>,
    /// Whether `Δ = softplus(delta + delta_bias)`.
    pub delta_softplus: bool,
    /// Initial state [B, E, N] (None: 0).
    pub h0: Option<Tensor<3>>,
}

/// Fused selective scan (see [`ScanOps::selective_scan`]). Returns `out` [B, L, E] and the
/// last state [B, E, N] (no gradient flows back through the last state).
pub fn selective_scan(s: ScanArgs) -> (Tensor<3>, Tensor<3>) {
    let [bs, _, e] = s.u.dims();
    let n = s.a.dims()[1];
    let device = s.u.device();
    let d = s.d.unwrap_or_else(|| Tensor::zeros([e], &device));
    let z = s.z.unwrap_or_else(|| Tensor::<3>::zeros([0, 0, 0], &device));
    let bias = s.delta_bias.unwrap_or_else(|| Tensor::zeros([e], &device));
    let h0 = s.h0.unwrap_or_else(|| Tensor::zeros([bs, e, n], &device));
    let (out, last) = <Dispatch as ScanOps>::selective_scan(
        s.u.into_dispatch(),
        s.delta.into_dispatch(),
        s.a.into_dispatch(),
        s.b.into_dispatch(),
        s.c.into_dispatch(),
        d.into_dispatch(),
        z.into_dispatch(),
        bias.into_dispatch(),
        h0.into_dispatch(),
        s.delta_softplus,
    );
    (Tensor::from_dispatch(out), Tensor::from_dispatch(last))
}
