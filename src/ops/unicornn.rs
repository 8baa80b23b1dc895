//! The UnICORNN recurrence (Rusch & Mishra 2021) as a fused CPU op with a hand-written
//! backward pass, a burn backend extension for `flex` and `Autodiff<flex>`.
//!
//! Per channel `h` of every sequence, with `k = dt·σ(c[h])`, `w = weight_hh[h]`:
//!
//! `hz_t = hz_{t-1} - k·(tanh(w·hy_{t-1} + u_t) + α·hy_{t-1})`, then `hy_t = hy_{t-1} + k·hz_t`
//!
//! (symplectic Euler: `hy` takes the new `hz`), with the correctly rounded `tanh`: the states
//! start at 0 and move by small steps, where the fast approximation of the other recurrences
//! (absolute error 1e-7) would be a large relative error. The reference's CUDA kernel rebuilds
//! the states backwards from the final one; here every state is kept, which costs [B, L, 2H]
//! and avoids the rounding of the inverted steps. Why fused: written as tensor ops the
//! recurrence is half a dozen small ops per time step. Other backends use the per-step tensor
//! formulation in `model::rnn::unicornn`, which computes the same function.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::rnn::kernels::Dims;
use super::{dims, flex, host, register_grads};

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// The constants of one recurrence: step size and restoring force.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coeffs {
    /// Step size `dt` (scaled per channel by `σ(c)`).
    pub dt: f32,
    /// Restoring force `α`.
    pub alpha: f32,
}

/// The UnICORNN recurrence over a whole sequence.
#[backend_extension(Flex, Autodiff)]
pub trait UnicornnOps: Backend {
    /// From `(hy0, hz0)` [B, H]: `u` [B, L, H] (the input map of every step), `w` [H]
    /// (`weight_hh`), `c` [H] → `[hy_t, hz_t]` [B, L, 2H].
    fn unicornn_scan(
        u: FloatTensor<Self>,
        w: FloatTensor<Self>,
        c: FloatTensor<Self>,
        hy0: FloatTensor<Self>,
        hz0: FloatTensor<Self>,
        dt: f32,
        alpha: f32,
    ) -> FloatTensor<Self>;

    /// Gradients of `unicornn_scan` (∂u, ∂w, ∂c, ∂hy0, ∂hz0) for output gradient `grad`
    /// [B, L, 2H], given its output `out`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn unicornn_scan_grad(
        u: FloatTensor<Self>,
        w: FloatTensor<Self>,
        c: FloatTensor<Self>,
        hy0: FloatTensor<Self>,
        out: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        dt: f32,
        alpha: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `σ(c)·dt` per channel, the effective step.
fn steps(c: &[f32], dt: f32) -> Vec<f32> {
    c.iter().map(|c| dt / (1.0 + (-c).exp())).collect()
}

/// The forward recurrence on slices. Args: `u` [B, L, H], `w`, `c` [H], `hy0`, `hz0` [B, H].
/// Returns `[hy_t, hz_t]` [B, L, 2H].
pub fn scan(u: &[f32], w: &[f32], c: &[f32], hy0: &[f32], hz0: &[f32], k: Coeffs, d: Dims) -> Vec<f32> {
    let Dims { b, l, h } = d;
    let ks = steps(c, k.dt);
    let mut out = vec![0f32; b * l * 2 * h];
    if h == 0 || l == 0 {
        return out;
    }
    // One task per sequence; within it the H channels of a step are contiguous and vectorize.
    out.par_chunks_mut(l * 2 * h).zip(u.par_chunks(l * h)).enumerate().for_each(|(bi, (o, u))| {
        let mut hy = hy0[bi * h..][..h].to_vec();
        let mut hz = hz0[bi * h..][..h].to_vec();
        for (ot, ut) in o.chunks_exact_mut(2 * h).zip(u.chunks_exact(h)) {
            for j in 0..h {
                let act = (w[j] * hy[j] + ut[j]).tanh();
                hz[j] -= ks[j] * (act + k.alpha * hy[j]);
                hy[j] += ks[j] * hz[j];
            }
            ot[..h].copy_from_slice(&hy);
            ot[h..].copy_from_slice(&hz);
        }
    });
    out
}

/// Backpropagation through time over the stored states `out` [B, L, 2H] (the initial `hz` is
/// not needed: it enters linearly): (∂u [B, L, H], ∂w [H], ∂c [H], ∂hy0, ∂hz0 [B, H]) for
/// `g` = ∂loss/∂out [B, L, 2H].
#[allow(clippy::type_complexity, clippy::too_many_arguments)]
pub fn scan_grad(
    u: &[f32],
    w: &[f32],
    c: &[f32],
    hy0: &[f32],
    out: &[f32],
    g: &[f32],
    k: Coeffs,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let ks = steps(c, k.dt);
    let mut du = vec![0f32; b * l * h];
    let (mut dhy0, mut dhz0) = (vec![0f32; b * h], vec![0f32; b * h]);
    if h == 0 || l == 0 {
        return (du, vec![0f32; h], vec![0f32; h], dhy0, dhz0);
    }
    // Per sequence: the carried adjoints of (hy, hz) and partial sums of ∂w and ∂k.
    let partial: Vec<(Vec<f64>, Vec<f64>)> = du
        .par_chunks_mut(l * h)
        .zip(dhy0.par_chunks_mut(h))
        .zip(dhz0.par_chunks_mut(h))
        .enumerate()
        .map(|(bi, ((du, dhy), dhz))| {
            let (u, o, g) = (&u[bi * l * h..][..l * h], &out[bi * l * 2 * h..][..l * 2 * h], &g[bi * l * 2 * h..]);
            let (mut ay, mut az) = (vec![0f32; h], vec![0f32; h]);
            let (mut dw, mut dk) = (vec![0f64; h], vec![0f64; h]);
            for t in (0..l).rev() {
                // hz_{t-1} enters each step linearly: its adjoint is the step's `z`.
                let prev_y = if t == 0 { &hy0[bi * h..][..h] } else { &o[(t - 1) * 2 * h..][..h] };
                let hz_t = &o[t * 2 * h + h..][..h];
                let (gt, ut, dut) = (&g[t * 2 * h..][..2 * h], &u[t * h..][..h], &mut du[t * h..][..h]);
                for j in 0..h {
                    let y = ay[j] + gt[j]; // ∂/∂hy_t
                    let z = az[j] + gt[h + j] + ks[j] * y; // ∂/∂hz_t, through hy_t = hy_{t-1} + k·hz_t
                    let act = (w[j] * prev_y[j] + ut[j]).tanh();
                    let da = -z * ks[j] * (1.0 - act * act);
                    dk[j] += (y * hz_t[j] - z * (act + k.alpha * prev_y[j])) as f64;
                    dw[j] += (da * prev_y[j]) as f64;
                    dut[j] = da;
                    ay[j] = y + da * w[j] - z * ks[j] * k.alpha;
                    az[j] = z;
                }
            }
            dhy.copy_from_slice(&ay);
            dhz.copy_from_slice(&az);
            (dw, dk)
        })
        .collect();
    let (mut dw, mut dc) = (vec![0f64; h], vec![0f64; h]);
    for (pw, pk) in partial {
        for j in 0..h {
            dw[j] += pw[j];
            dc[j] += pk[j];
        }
    }
    // k = dt·σ(c): ∂k/∂c = k·(1 - σ(c)).
    let dc: Vec<f32> = dc
        .iter()
        .zip(c)
        .zip(&ks)
        .map(|((d, c), k)| (d * (*k as f64) * (1.0 - 1.0 / (1.0 + (-c).exp()) as f64)) as f32)
        .collect();
    (du, dw.into_iter().map(|v| v as f32).collect(), dc, dhy0, dhz0)
}

impl UnicornnOps for Flex {
    fn unicornn_scan(
        u: FlexTensor,
        w: FlexTensor,
        c: FlexTensor,
        hy0: FlexTensor,
        hz0: FlexTensor,
        dt: f32,
        alpha: f32,
    ) -> FlexTensor {
        let [b, l, h] = dims(&u)[..] else { panic!("unicornn: u must be [B, L, H]") };
        let k = Coeffs { dt, alpha };
        let d = Dims { b, l, h };
        flex(scan(&host(&u), &host(&w), &host(&c), &host(&hy0), &host(&hz0), k, d), &[b, l, 2 * h])
    }

    fn unicornn_scan_grad(
        u: FlexTensor,
        w: FlexTensor,
        c: FlexTensor,
        hy0: FlexTensor,
        out: FlexTensor,
        grad: FlexTensor,
        dt: f32,
        alpha: f32,
    ) -> (FlexTensor, FlexTensor, FlexTensor, FlexTensor, FlexTensor) {
        let [b, l, h] = dims(&u)[..] else { panic!("unicornn: u must be [B, L, H]") };
        let k = Coeffs { dt, alpha };
        let (du, dw, dc, dhy, dhz) =
            scan_grad(&host(&u), &host(&w), &host(&c), &host(&hy0), &host(&out), &host(&grad), k, Dims { b, l, h });
        (flex(du, &[b, l, h]), flex(dw, &[h]), flex(dc, &[h]), flex(dhy, &[b, h]), flex(dhz, &[b, h]))
    }
}

impl<B: Backend + UnicornnOps, C: CheckpointStrategy> UnicornnOps for Autodiff<B, C> {
    fn unicornn_scan(
        u: AdTensor<B, C>,
        w: AdTensor<B, C>,
        c: AdTensor<B, C>,
        hy0: AdTensor<B, C>,
        hz0: AdTensor<B, C>,
        dt: f32,
        alpha: f32,
    ) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Scan(Coeffs);
        impl<B: Backend + UnicornnOps> Backward<B, 5> for Scan {
            type State = [B::FloatTensorPrimitive; 5];
            fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [u, w, c, hy0, out] = ops.state;
                let (a, b, cc, d, e) = B::unicornn_scan_grad(u, w, c, hy0, out, g, self.0.dt, self.0.alpha);
                register_grads::<B, _, _>(ops.parents, [a, b, cc, d, e], grads, |n| n.id);
            }
        }
        let guards = [u.node(), w.node(), c.node(), hy0.node(), hz0.node()];
        let prims = [u, w, c, hy0, hz0].map(|t| t.into_primitive());
        let [u, w, c, hy0, hz0] = prims;
        let out = B::unicornn_scan(u.clone(), w.clone(), c.clone(), hy0.clone(), hz0, dt, alpha);
        match Scan(Coeffs { dt, alpha }).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([u, w, c, hy0, out.clone()], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn unicornn_scan_grad(
        _u: AdTensor<B, C>,
        _w: AdTensor<B, C>,
        _c: AdTensor<B, C>,
        _hy0: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _dt: f32,
        _alpha: f32,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the UnICORNN recurrence")
    }
}

/// Fused UnICORNN recurrence (see [`UnicornnOps::unicornn_scan`]). Returns `[hy_t, hz_t]`
/// [B, L, 2H].
pub fn unicornn_scan(u: Tensor<3>, w: Tensor<1>, c: Tensor<1>, hy0: Tensor<2>, hz0: Tensor<2>, k: Coeffs) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as UnicornnOps>::unicornn_scan(
        u.into_dispatch(),
        w.into_dispatch(),
        c.into_dispatch(),
        hy0.into_dispatch(),
        hz0.into_dispatch(),
        k.dt,
        k.alpha,
    ))
}
