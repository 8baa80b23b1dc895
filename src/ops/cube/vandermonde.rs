//! The Vandermonde kernel and its gradient as CubeCL kernels.
//!
//! Forward: one unit per output `(c, h, l)` sums over the modes `n`. Backward: one unit per
//! mode `(h, n)` sums over the channels and the positions `l` (the same `exp(dtA·l)` serves the
//! gradients of `W` and of `dtA`), so no unit writes where another does and no atomics are
//! needed.

use burn::backend::Shape;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use super::{UNITS, contiguous, empty, groups};

/// `out[c,h,l] = 2·Σ_n (W_re·Re z − W_im·Im z)` with `z = exp(dtA[h,n]·l)`.
#[cube(launch)]
fn vandermonde_kernel(
    w_re: &Tensor<f32>,    // [C, H, N2]
    w_im: &Tensor<f32>,    // [C, H, N2]
    dta_re: &Tensor<f32>,  // [H, N2]
    dta_im: &Tensor<f32>,  // [H, N2]
    out: &mut Tensor<f32>, // [C, H, L]
    h: usize,
    n2: usize,
    l: usize,
    total: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= total {
        terminate!();
    }
    let li = pos % l;
    let hi = (pos / l) % h;
    let ci = pos / (l * h);
    let t = f32::cast_from(li as u32);
    let mut acc = 0.0f32;
    for n in 0..n2 {
        let m = hi * n2 + n;
        let mag = (dta_re[m] * t).exp();
        let ang = dta_im[m] * t;
        let wi = (ci * h + hi) * n2 + n;
        acc += mag * (w_re[wi] * ang.cos() - w_im[wi] * ang.sin());
    }
    out[pos] = 2.0f32 * acc;
}

/// Per mode `(h, n)`: `∂W[c] = 2·Σ_l g[c,l]·(Re z, −Im z)` and
/// `∂dtA = 2·Σ_{c,l} g[c,l]·l·(Re(W z), −Im(W z))`.
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn vandermonde_grad_kernel(
    w_re: &Tensor<f32>,         // [C, H, N2]
    w_im: &Tensor<f32>,         // [C, H, N2]
    dta_re: &Tensor<f32>,       // [H, N2]
    dta_im: &Tensor<f32>,       // [H, N2]
    grad: &Tensor<f32>,         // [C, H, L]
    g_w_re: &mut Tensor<f32>,   // [C, H, N2]
    g_w_im: &mut Tensor<f32>,   // [C, H, N2]
    g_dta_re: &mut Tensor<f32>, // [H, N2]
    g_dta_im: &mut Tensor<f32>, // [H, N2]
    c: usize,
    h: usize,
    n2: usize,
    l: usize,
) {
    let m = ABSOLUTE_POS;
    if m >= h * n2 {
        terminate!();
    }
    let hi = m / n2;
    let (ar, ai) = (dta_re[m], dta_im[m]);
    let mut acc_re = 0.0f32;
    let mut acc_im = 0.0f32;
    for ci in 0..c {
        let wi = ci * h * n2 + m;
        let (wr, wim) = (w_re[wi], w_im[wi]);
        let gi = (ci * h + hi) * l;
        let mut sw_re = 0.0f32;
        let mut sw_im = 0.0f32;
        for li in 0..l {
            let t = f32::cast_from(li as u32);
            let mag = (ar * t).exp();
            let zr = mag * (ai * t).cos();
            let zi = mag * (ai * t).sin();
            let g = grad[gi + li];
            sw_re += g * zr;
            sw_im += g * zi;
            acc_re += g * t * (wr * zr - wim * zi);
            acc_im += g * t * (wr * zi + wim * zr);
        }
        g_w_re[wi] = 2.0f32 * sw_re;
        g_w_im[wi] = -2.0f32 * sw_im;
    }
    g_dta_re[m] = 2.0f32 * acc_re;
    g_dta_im[m] = -2.0f32 * acc_im;
}

/// See [`crate::ops::vandermonde::VandermondeOps::vandermonde`].
pub fn vandermonde(w_re: CubeTensor, w_im: CubeTensor, dta_re: CubeTensor, dta_im: CubeTensor, l: usize) -> CubeTensor {
    let [c, h, n2] = w_re.meta.shape().dims::<3>();
    let out = empty(&dta_re, Shape::new([c, h, l]));
    let total = c * h * l;
    if total == 0 {
        return out;
    }
    let client = out.client.clone();
    vandermonde_kernel::launch(
        &client,
        groups(total),
        CubeDim::new_1d(UNITS),
        contiguous(w_re).into_tensor_arg(),
        contiguous(w_im).into_tensor_arg(),
        contiguous(dta_re).into_tensor_arg(),
        contiguous(dta_im).into_tensor_arg(),
        out.clone().into_tensor_arg(),
        h,
        n2,
        l,
        total,
    );
    out
}

/// See [`crate::ops::vandermonde::VandermondeOps::vandermonde_grad`].
pub fn vandermonde_grad(
    w_re: CubeTensor,
    w_im: CubeTensor,
    dta_re: CubeTensor,
    dta_im: CubeTensor,
    grad: CubeTensor,
) -> (CubeTensor, CubeTensor, CubeTensor, CubeTensor) {
    let [c, h, n2] = w_re.meta.shape().dims::<3>();
    let l = grad.meta.shape()[2];
    let (gw_re, gw_im) = (empty(&w_re, Shape::new([c, h, n2])), empty(&w_re, Shape::new([c, h, n2])));
    let (ga_re, ga_im) = (empty(&w_re, Shape::new([h, n2])), empty(&w_re, Shape::new([h, n2])));
    if h * n2 > 0 {
        let client = grad.client.clone();
        vandermonde_grad_kernel::launch(
            &client,
            groups(h * n2),
            CubeDim::new_1d(UNITS),
            contiguous(w_re).into_tensor_arg(),
            contiguous(w_im).into_tensor_arg(),
            contiguous(dta_re).into_tensor_arg(),
            contiguous(dta_im).into_tensor_arg(),
            contiguous(grad).into_tensor_arg(),
            gw_re.clone().into_tensor_arg(),
            gw_im.clone().into_tensor_arg(),
            ga_re.clone().into_tensor_arg(),
            ga_im.clone().into_tensor_arg(),
            c,
            h,
            n2,
            l,
        );
    }
    (gw_re, gw_im, ga_re, ga_im)
}
