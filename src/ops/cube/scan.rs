//! The selective scan and its backward pass as CubeCL kernels.
//!
//! One unit per `(batch, channel)` runs the recurrence over time for all `N` states (they share
//! `Δ`, `u` and the output sum). The forward pass keeps the running state in the `last` output
//! and saves the states before each chunk of [`Dims::chunk`] steps, as the CPU kernel does. The
//! backward pass walks the chunks backwards: it recomputes a chunk's states from its boundary
//! state into a scratch buffer [B, E, T, N], then runs the adjoint scan back through the chunk
//! with the adjoint kept in the `∂h0` output. `B` and `C` are shared by all channels, and `A` by
//! the batch: their gradients are written per unit ([B, L, E, N] and [B, E, N]) and summed by
//! burn's reductions afterwards, so no unit writes where another does.

use burn::backend::Shape;
use burn::backend::ops::FloatTensorOps;
use burn_cubecl::CubeBackend;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{UNITS, contiguous, empty, groups};
use crate::ops::scan::ScanGrads;
use crate::ops::scan::kernel::Dims;

/// `log(1 + eˣ)` without overflow.
#[cube]
fn softplus(x: f32) -> f32 {
    let pos = if x > 0.0f32 { x } else { 0.0f32 };
    pos + (-x.abs()).exp().log1p()
}

/// `1/(1 + e^{-x})`.
#[cube]
fn sigmoid(x: f32) -> f32 {
    1.0f32 / (1.0f32 + (-x).exp())
}

/// `Δ` and `dΔ/d(delta)` from the raw step `raw = delta + bias`.
#[cube]
fn step_size(raw: f32, #[comptime] soft: bool) -> (f32, f32) {
    if soft { (softplus(raw), sigmoid(raw)) } else { (raw, 1.0f32) }
}

/// Forward scan of unit `(b, e)`; `z` is read only when `gated`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn scan_forward_kernel(
    u: &Tensor<f32>,        // [B, L, E]
    delta: &Tensor<f32>,    // [B, L, E]
    a: &Tensor<f32>,        // [E, N]
    bm: &Tensor<f32>,       // [B, L, N]
    cm: &Tensor<f32>,       // [B, L, N]
    d: &Tensor<f32>,        // [E]
    z: &Tensor<f32>,        // [B, L, E]
    bias: &Tensor<f32>,     // [E]
    h0: &Tensor<f32>,       // [B, E, N]
    out: &mut Tensor<f32>,  // [B, L, E]
    last: &mut Tensor<f32>, // [B, E, N]
    ckpt: &mut Tensor<f32>, // [B, E, K, N]
    nb: usize,
    l: usize,
    e: usize,
    n: usize,
    chunk: usize,
    k: usize,
    #[comptime] soft: bool,
    #[comptime] gated: bool,
) {
    let unit = ABSOLUTE_POS;
    if unit >= nb * e {
        terminate!();
    }
    let bi = unit / e;
    let ei = unit % e;
    let s = unit * n;
    for ni in 0..n {
        last[s + ni] = h0[s + ni];
    }
    for t in 0..l {
        if t % chunk == 0 {
            let c0 = (unit * k + t / chunk) * n;
            for ni in 0..n {
                ckpt[c0 + ni] = last[s + ni];
            }
        }
        let idx = (bi * l + t) * e + ei;
        let (dl, _dsp) = step_size(delta[idx] + bias[ei], soft);
        let uu = u[idx];
        let du = dl * uu;
        let bc = (bi * l + t) * n;
        let mut y = 0.0f32;
        for ni in 0..n {
            let x = (dl * a[ei * n + ni]).exp() * last[s + ni] + du * bm[bc + ni];
            last[s + ni] = x;
            y += x * cm[bc + ni];
        }
        y += d[ei] * uu;
        if gated {
            let zz = z[idx];
            y *= zz * sigmoid(zz);
        }
        out[idx] = y;
    }
    if l == 0 {
        for ni in 0..n {
            ckpt[unit * k * n + ni] = h0[s + ni];
        }
    }
}

/// The states `x_{t0..t0+len}` of unit `(b, e)` = `unit` into its scratch rows at `xs0`, from
/// the boundary state at `c0` of `ckpt`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn recompute_chunk(
    u: &Tensor<f32>,
    delta: &Tensor<f32>,
    a: &Tensor<f32>,
    bm: &Tensor<f32>,
    bias: &Tensor<f32>,
    ckpt: &Tensor<f32>,
    xs: &mut Tensor<f32>,
    unit: usize,
    t0: usize,
    len: usize,
    l: usize,
    e: usize,
    n: usize,
    c0: usize,
    xs0: usize,
    #[comptime] soft: bool,
) {
    let bi = unit / e;
    let ei = unit % e;
    for tau in 0..len {
        let t = t0 + tau;
        let idx = (bi * l + t) * e + ei;
        let (dl, _dsp) = step_size(delta[idx] + bias[ei], soft);
        let du = dl * u[idx];
        let bc = (bi * l + t) * n;
        for ni in 0..n {
            let prev = if tau == 0 { ckpt[c0 + ni] } else { xs[xs0 + (tau - 1) * n + ni] };
            xs[xs0 + tau * n + ni] = (dl * a[ei * n + ni]).exp() * prev + du * bm[bc + ni];
        }
    }
}

/// Backward scan of unit `(b, e)` (see the module docs); `z` and `gz` are used only when
/// `gated`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn scan_backward_kernel(
    u: &Tensor<f32>,          // [B, L, E]
    delta: &Tensor<f32>,      // [B, L, E]
    a: &Tensor<f32>,          // [E, N]
    bm: &Tensor<f32>,         // [B, L, N]
    cm: &Tensor<f32>,         // [B, L, N]
    d: &Tensor<f32>,          // [E]
    z: &Tensor<f32>,          // [B, L, E]
    bias: &Tensor<f32>,       // [E]
    ckpt: &Tensor<f32>,       // [B, E, K, N]
    grad: &Tensor<f32>,       // [B, L, E]
    xs: &mut Tensor<f32>,     // [B, E, T, N] scratch
    gu: &mut Tensor<f32>,     // [B, L, E]
    gdelta: &mut Tensor<f32>, // [B, L, E]
    gz: &mut Tensor<f32>,     // [B, L, E]
    lam: &mut Tensor<f32>,    // [B, E, N]: the adjoint, ∂h0 at the end
    pa: &mut Tensor<f32>,     // [B, E, N]
    pb: &mut Tensor<f32>,     // [B, L, E, N]
    pc: &mut Tensor<f32>,     // [B, L, E, N]
    pd: &mut Tensor<f32>,     // [B, E]
    pbias: &mut Tensor<f32>,  // [B, E]
    nb: usize,
    l: usize,
    e: usize,
    n: usize,
    chunk: usize,
    k: usize,
    #[comptime] soft: bool,
    #[comptime] gated: bool,
) {
    let unit = ABSOLUTE_POS;
    if unit >= nb * e {
        terminate!();
    }
    let bi = unit / e;
    let ei = unit % e;
    let s = unit * n;
    let xs0 = unit * chunk * n;
    for ni in 0..n {
        lam[s + ni] = 0.0f32;
        pa[s + ni] = 0.0f32;
    }
    let mut acc_d = 0.0f32;
    let mut acc_bias = 0.0f32;
    for kk in 0..k {
        let kc = k - 1 - kk;
        let t0 = kc * chunk;
        let len = if t0 + chunk < l { chunk } else { l - t0 };
        let c0 = (unit * k + kc) * n;
        recompute_chunk(u, delta, a, bm, bias, ckpt, xs, unit, t0, len, l, e, n, c0, xs0, soft);
        // The adjoint scan back through the chunk.
        for rev in 0..len {
            let tau = len - 1 - rev;
            let t = t0 + tau;
            let idx = (bi * l + t) * e + ei;
            let (dl, dsp) = step_size(delta[idx] + bias[ei], soft);
            let uu = u[idx];
            let g = grad[idx];
            let bc = (bi * l + t) * n;
            let mut gy = g;
            if gated {
                let mut y = d[ei] * uu;
                for ni in 0..n {
                    y += xs[xs0 + tau * n + ni] * cm[bc + ni];
                }
                let zz = z[idx];
                let sg = sigmoid(zz);
                gz[idx] = g * y * sg * (1.0f32 + zz * (1.0f32 - sg));
                gy = g * zz * sg;
            }
            acc_d += gy * uu;
            let mut gdl = 0.0f32;
            let mut gu_acc = gy * d[ei];
            let p0 = ((bi * l + t) * e + ei) * n;
            for ni in 0..n {
                let av = a[ei * n + ni];
                let bv = bm[bc + ni];
                let x = xs[xs0 + tau * n + ni];
                let prev = if tau == 0 { ckpt[c0 + ni] } else { xs[xs0 + (tau - 1) * n + ni] };
                let lt = lam[s + ni] + gy * cm[bc + ni];
                let da = (dl * av).exp();
                pc[p0 + ni] = gy * x;
                pb[p0 + ni] = lt * dl * uu;
                gdl += lt * (av * da * prev + uu * bv);
                pa[s + ni] += lt * dl * da * prev;
                gu_acc += lt * dl * bv;
                lam[s + ni] = lt * da;
            }
            gu[idx] = gu_acc;
            gdelta[idx] = gdl * dsp;
            acc_bias += gdl * dsp;
        }
    }
    pd[unit] = acc_d;
    pbias[unit] = acc_bias;
}

/// Sizes from `u` [B, L, E] and `a` [E, N].
fn dims(u: &CubeTensor, a: &CubeTensor) -> Dims {
    let [b, l, e] = u.meta.shape().dims::<3>();
    let n = a.meta.shape()[1];
    Dims { b, l, e, n }
}

/// Whether the gate `z` is given (an empty `z` means none).
fn gated(z: &CubeTensor) -> bool {
    z.meta.shape().num_elements() > 0
}

/// See [`crate::ops::scan::ScanOps::selective_scan_saving`]: `out`, `last`, `ckpt`.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    u: CubeTensor,
    delta: CubeTensor,
    a: CubeTensor,
    b: CubeTensor,
    c: CubeTensor,
    d: CubeTensor,
    z: CubeTensor,
    bias: CubeTensor,
    h0: CubeTensor,
    soft: bool,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    let dm = dims(&u, &a);
    let out = empty(&u, Shape::new([dm.b, dm.l, dm.e]));
    let last = empty(&u, Shape::new([dm.b, dm.e, dm.n]));
    let ckpt = empty(&u, Shape::new([dm.b, dm.e, dm.chunks(), dm.n]));
    if dm.b * dm.e == 0 {
        return (out, last, ckpt);
    }
    let gate = gated(&z);
    let z = if gate { contiguous(z) } else { u.clone() };
    let client = u.client.clone();
    scan_forward_kernel::launch(
        &client,
        groups(dm.b * dm.e),
        CubeDim::new_1d(UNITS),
        contiguous(u).into_tensor_arg(),
        contiguous(delta).into_tensor_arg(),
        contiguous(a).into_tensor_arg(),
        contiguous(b).into_tensor_arg(),
        contiguous(c).into_tensor_arg(),
        contiguous(d).into_tensor_arg(),
        z.into_tensor_arg(),
        contiguous(bias).into_tensor_arg(),
        contiguous(h0).into_tensor_arg(),
        out.clone().into_tensor_arg(),
        last.clone().into_tensor_arg(),
        ckpt.clone().into_tensor_arg(),
        dm.b,
        dm.l,
        dm.e,
        dm.n,
        dm.chunk(),
        dm.chunks(),
        soft,
        gate,
    );
    (out, last, ckpt)
}

/// `t` [.., X, ..] summed over axis `dim` and reshaped to `shape`.
fn sum_to(t: CubeTensor, dim: usize, shape: Shape) -> CubeTensor {
    CubeBackend::float_reshape(CubeBackend::float_sum_dim(t, dim), shape)
}

/// See [`crate::ops::scan::ScanOps::selective_scan_grad`].
#[allow(clippy::too_many_arguments)]
pub fn backward(
    u: CubeTensor,
    delta: CubeTensor,
    a: CubeTensor,
    b: CubeTensor,
    c: CubeTensor,
    d: CubeTensor,
    z: CubeTensor,
    bias: CubeTensor,
    ckpt: CubeTensor,
    grad: CubeTensor,
    soft: bool,
) -> ScanGrads<CubeTensor> {
    let dm = dims(&u, &a);
    let Dims { b: nb, l, e, n } = dm;
    let gate = gated(&z);
    let z_shape = z.meta.shape().clone();
    let ble = Shape::new([nb, l, e]);
    let (gu, gdelta) = (empty(&u, ble.clone()), empty(&u, ble.clone()));
    // Without a gate the kernel writes no ∂z; it still needs a buffer to bind.
    let gz = if gate { empty(&u, ble) } else { empty(&u, Shape::new([1])) };
    let (lam, pa) = (empty(&u, Shape::new([nb, e, n])), empty(&u, Shape::new([nb, e, n])));
    let (pb, pc) = (empty(&u, Shape::new([nb, l, e, n])), empty(&u, Shape::new([nb, l, e, n])));
    let (pd, pbias) = (empty(&u, Shape::new([nb, e])), empty(&u, Shape::new([nb, e])));
    if nb * e > 0 {
        let xs = empty(&u, Shape::new([nb, e, dm.chunk(), n]));
        let z = if gate { contiguous(z) } else { u.clone() };
        let client = u.client.clone();
        scan_backward_kernel::launch(
            &client,
            groups(nb * e),
            CubeDim::new_1d(UNITS),
            contiguous(u).into_tensor_arg(),
            contiguous(delta).into_tensor_arg(),
            contiguous(a).into_tensor_arg(),
            contiguous(b).into_tensor_arg(),
            contiguous(c).into_tensor_arg(),
            contiguous(d).into_tensor_arg(),
            z.into_tensor_arg(),
            contiguous(bias).into_tensor_arg(),
            contiguous(ckpt).into_tensor_arg(),
            contiguous(grad).into_tensor_arg(),
            xs.into_tensor_arg(),
            gu.clone().into_tensor_arg(),
            gdelta.clone().into_tensor_arg(),
            gz.clone().into_tensor_arg(),
            lam.clone().into_tensor_arg(),
            pa.clone().into_tensor_arg(),
            pb.clone().into_tensor_arg(),
            pc.clone().into_tensor_arg(),
            pd.clone().into_tensor_arg(),
            pbias.clone().into_tensor_arg(),
            dm.b,
            dm.l,
            dm.e,
            dm.n,
            dm.chunk(),
            dm.chunks(),
            soft,
            gate,
        );
    }
    let gz = if gate { gz } else { empty(&gu, z_shape) };
    (
        gu,
        gdelta,
        sum_to(pa, 0, Shape::new([e, n])),
        sum_to(pb, 2, Shape::new([nb, l, n])),
        sum_to(pc, 2, Shape::new([nb, l, n])),
        sum_to(pd, 0, Shape::new([e])),
        gz,
        sum_to(pbias, 0, Shape::new([e])),
        lam,
    )
}
