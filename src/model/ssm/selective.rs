//! Mamba's selective scan (S6): fused on the CPU, a CubeCL kernel on wgpu, tensor ops elsewhere.
//!
//! With `Δ = softplus(delta + delta_bias)` and `x_{-1} = h0`, per channel `e` and state `n`:
//! `x_t = exp(Δ_t·A)⊙x_{t-1} + Δ_t·u_t·B_t` (ZOH for `A`, Euler for `B`) and
//! `out_t = (Σ_n x_t·C_t + D·u_t)·silu(z_t)`; `B_t`, `C_t` depend on the input and are shared
//! by all channels.

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, silu};

pub use crate::ops::scan::ScanArgs;

/// The scan: the fused kernel on the CPU, the CubeCL kernel on wgpu,
/// [`selective_scan_tensor_ops`] elsewhere.
///
/// Returns `out` [B, L, E] and the last state [B, E, N].
pub fn selective_scan(s: ScanArgs) -> (Tensor<3>, Tensor<3>) {
    let device = s.u.device();
    if crate::ops::supported(&device) || crate::ops::cube_kernels(&device) {
        crate::ops::scan::selective_scan(s)
    } else {
        selective_scan_tensor_ops(s)
    }
}

/// `log(1 + eˣ)` without overflow: `relu(x) + log1p(e^{-|x|})`.
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}

/// The same scan with generic tensor ops, one time step at a time (what other devices run;
/// its autodiff graph keeps every state).
///
/// Returns `out` [B, L, E] and the last state [B, E, N].
pub fn selective_scan_tensor_ops(s: ScanArgs) -> (Tensor<3>, Tensor<3>) {
    let [b, l, e] = s.u.dims();
    let n = s.a.dims()[1];
    let device = s.u.device();
    let mut dl = s.delta;
    if let Some(bias) = s.delta_bias {
        dl = dl + bias.reshape([1, 1, e]);
    }
    if s.delta_softplus {
        dl = softplus(dl);
    }
    let a = s.a.reshape([1, e, n]);
    let mut x = s.h0.unwrap_or_else(|| Tensor::zeros([b, e, n], &device)); // [B, E, N]
    let mut ys = Vec::with_capacity(l);
    for t in 0..l {
        let dlt = dl.clone().narrow(1, t, 1).reshape([b, e, 1]);
        let ut = s.u.clone().narrow(1, t, 1).reshape([b, e, 1]);
        let bt = s.b.clone().narrow(1, t, 1); // [B, 1, N]
        let ct = s.c.clone().narrow(1, t, 1); // [B, 1, N]
        x = (dlt.clone() * a.clone()).exp() * x + dlt * ut * bt;
        ys.push((x.clone() * ct).sum_dim(2).reshape([b, 1, e]));
    }
    let mut y = if l == 0 { Tensor::zeros([b, 0, e], &device) } else { Tensor::cat(ys, 1) }; // [B, L, E]
    if let Some(d) = s.d {
        y = y + s.u * d.reshape([1, 1, e]);
    }
    if let Some(z) = s.z {
        y = y * silu(z);
    }
    (y, x)
}
