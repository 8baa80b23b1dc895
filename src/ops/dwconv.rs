//! Mamba's short causal depthwise convolution followed by SiLU, fused on the CPU with a
//! hand-written backward pass (burn backend extension for `flex` and `Autodiff<flex>`).
//!
//! Why: as tensor ops the K-tap convolution is K slices, products and sums over `[B, L, E]`
//! plus their backward passes; fused it is one pass. Other backends use the tensor-op form in
//! `model::ssm::mamba`, which computes the same function.

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

use super::fastmath::sigmoid;
use super::host;

/// Depthwise causal convolution with SiLU.
#[backend_extension(Flex, Autodiff)]
pub trait DwConvOps: Backend {
    /// `y[b,t,e] = silu(bias[e] + Σ_j w[e,j]·x[b,t+j,e])`: `x` [B, K-1+L, E] (the K-1 inputs
    /// before the sequence first), `w` [E, K], `bias` [E] → [B, L, E].
    fn dwconv_silu(x: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Gradients of `dwconv_silu` (∂x, ∂w, ∂bias) for output gradient `grad` [B, L, E].
    fn dwconv_silu_grad(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

fn flex(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

/// (B, K-1+L, E, K) from `x` and `w`.
fn sizes(x: &FlexTensor, w: &FlexTensor) -> (usize, usize, usize, usize) {
    let (xs, ws) = (x.shape().to_vec(), w.shape().to_vec());
    let (&[b, s, e], &[_, k]) = (&xs[..], &ws[..]) else { panic!("dwconv: x [B, K-1+L, E], w [E, K]") };
    (b, s, e, k)
}

/// Pre-activations `bias + Σ_j w[:, j]·x[t+j]` of one batch element, [L, E]; `w` as [K, E].
fn pre(x: &[f32], w_ke: &[f32], bias: &[f32], l: usize, e: usize, k: usize) -> Vec<f32> {
    let mut c = vec![0f32; l * e];
    for (t, row) in c.chunks_mut(e).enumerate() {
        row.copy_from_slice(bias);
        for j in 0..k {
            let (xr, wr) = (&x[(t + j) * e..][..e], &w_ke[j * e..][..e]);
            row.iter_mut().zip(xr.iter().zip(wr)).for_each(|(c, (x, w))| *c += x * w);
        }
    }
    c
}

/// `w` [E, K] as [K, E], so the loops over channels run on contiguous rows.
fn taps_by_row(w: &[f32], e: usize, k: usize) -> Vec<f32> {
    (0..k * e).map(|i| w[(i % e) * k + i / e]).collect()
}

impl DwConvOps for Flex {
    fn dwconv_silu(x: FlexTensor, w: FlexTensor, bias: FlexTensor) -> FlexTensor {
        let (b, s, e, k) = sizes(&x, &w);
        let l = s + 1 - k;
        let (x, w, bias) = (host(&x), taps_by_row(&host(&w), e, k), host(&bias));
        let mut y = vec![0f32; b * l * e];
        y.par_chunks_mut(l * e).enumerate().for_each(|(bi, yb)| {
            let c = pre(&x[bi * s * e..][..s * e], &w, &bias, l, e, k);
            yb.iter_mut().zip(c).for_each(|(y, c)| *y = c * sigmoid(c));
        });
        flex(y, &[b, l, e])
    }

    fn dwconv_silu_grad(
        x: FlexTensor,
        w: FlexTensor,
        bias: FlexTensor,
        grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (b, s, e, k) = sizes(&x, &w);
        let l = s + 1 - k;
        let (x, w_ke, bias, g) = (host(&x), taps_by_row(&host(&w), e, k), host(&bias), host(&grad));
        let mut gx = vec![0f32; b * s * e];
        // Per batch element: ∂w as [K, E] and ∂bias [E], summed afterwards.
        let parts: Vec<(Vec<f32>, Vec<f32>)> = gx
            .par_chunks_mut(s * e)
            .enumerate()
            .map(|(bi, gxb)| {
                let xb = &x[bi * s * e..][..s * e];
                let mut gc = pre(xb, &w_ke, &bias, l, e, k);
                // silu'(c) = σ(c)·(1 + c·(1 - σ(c))).
                for (c, g) in gc.iter_mut().zip(&g[bi * l * e..][..l * e]) {
                    let sc = sigmoid(*c);
                    *c = g * sc * (1.0 + *c * (1.0 - sc));
                }
                let (mut gw, mut gb) = (vec![0f32; k * e], vec![0f32; e]);
                for (t, gct) in gc.chunks(e).enumerate() {
                    gb.iter_mut().zip(gct).for_each(|(a, g)| *a += g);
                    for j in 0..k {
                        let (xr, wr) = (&xb[(t + j) * e..][..e], &w_ke[j * e..][..e]);
                        let gwr = &mut gw[j * e..][..e];
                        gwr.iter_mut().zip(gct.iter().zip(xr)).for_each(|(a, (g, x))| *a += g * x);
                        let gxr = &mut gxb[(t + j) * e..][..e];
                        gxr.iter_mut().zip(gct.iter().zip(wr)).for_each(|(a, (g, w))| *a += g * w);
                    }
                }
                (gw, gb)
            })
            .collect();
        let (mut gw_ke, mut gb) = (vec![0f32; k * e], vec![0f32; e]);
        for (pw, pb) in parts {
            gw_ke.iter_mut().zip(pw).for_each(|(a, v)| *a += v);
            gb.iter_mut().zip(pb).for_each(|(a, v)| *a += v);
        }
        let gw: Vec<f32> = (0..e * k).map(|i| gw_ke[(i % k) * e + i / k]).collect(); // [E, K]
        (flex(gx, &[b, s, e]), flex(gw, &[e, k]), flex(gb, &[e]))
    }
}

impl<B: Backend + DwConvOps, C: CheckpointStrategy> DwConvOps for Autodiff<B, C> {
    fn dwconv_silu(x: FloatTensor<Self>, w: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DwConv;
        impl<B: Backend + DwConvOps> Backward<B, 3> for DwConv {
            type State = [B::FloatTensorPrimitive; 3];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [x, w, bias] = ops.state;
                let (gx, gw, gb) = B::dwconv_silu_grad(x, w, bias, g);
                for (node, grad) in ops.parents.into_iter().zip([gx, gw, gb]) {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }
        let guards = [x.node(), w.node(), bias.node()];
        let [x, w, bias] = [x, w, bias].map(|t| t.into_primitive());
        let y = B::dwconv_silu(x.clone(), w.clone(), bias.clone());
        match DwConv.prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([x, w, bias], y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    fn dwconv_silu_grad(
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _bias: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("second-order gradients of the depthwise convolution")
    }
}

/// Fused depthwise causal convolution with SiLU (see [`DwConvOps::dwconv_silu`]):
/// `x` [B, K-1+L, E], `w` [E, K], `bias` [E] → [B, L, E].
pub fn dwconv_silu(x: Tensor<3>, w: Tensor<2>, bias: Tensor<1>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as DwConvOps>::dwconv_silu(
        x.into_dispatch(),
        w.into_dispatch(),
        bias.into_dispatch(),
    ))
}
