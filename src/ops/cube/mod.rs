//! CubeCL kernels for the wgpu backend (built with the `wgpu` feature): the Vandermonde kernel
//! and the selective scan, each with its backward pass, behind the same backend extensions as
//! the fused CPU kernels, so `Autodiff` runs their hand-written backward on both.
//!
//! Why: on a GPU the tensor-op Vandermonde materializes `[H, N2, L]` twice over, and the
//! tensor-op scan launches a handful of kernels per time step and keeps every state for its
//! autodiff graph. burn's wgpu tensors live in `Fusion<CubeBackend>`; the extensions register
//! these kernels as opaque fusion operations (shapes from the `*_meta` functions here).

pub mod scan;
pub mod vandermonde;

use burn::backend::Shape;
use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::FloatTensor;
use burn::tensor::DType;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::CubeCount;

use super::scan::kernel::Dims;
use super::scan::{ScanGrads, ScanOps};
use super::vandermonde::VandermondeOps;

/// Units per cube (workgroup) of the one-dimensional launches.
const UNITS: u32 = 64;

/// Cubes that cover `n` units, one unit per item.
fn groups(n: usize) -> CubeCount {
    CubeCount::Static(n.div_ceil(UNITS as usize) as u32, 1, 1)
}

/// An input as the kernels read it: row-major f32 (they index it flat, as `Tensor<f32>`).
fn contiguous(t: CubeTensor) -> CubeTensor {
    assert_eq!(t.dtype, DType::F32, "wavessm's CubeCL kernels run in f32");
    into_contiguous(t)
}

/// An uninitialized tensor of `shape` on `like`'s device and dtype.
fn empty(like: &CubeTensor, shape: Shape) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, like.dtype)
}

/// Output shape of [`VandermondeOps::vandermonde`] for fusion.
pub fn vandermonde_meta(w_re: &TensorSpec, _: &TensorSpec, _: &TensorSpec, _: &TensorSpec, l: &usize) -> TensorSpec {
    let [c, h, _] = w_re.shape.dims::<3>();
    TensorSpec::new(Shape::new([c, h, *l]), w_re.dtype)
}

/// Output shapes of [`VandermondeOps::vandermonde_grad`] for fusion.
pub fn vandermonde_grad_meta(
    w_re: &TensorSpec,
    w_im: &TensorSpec,
    dta_re: &TensorSpec,
    dta_im: &TensorSpec,
    _: &TensorSpec,
) -> (TensorSpec, TensorSpec, TensorSpec, TensorSpec) {
    (w_re.clone(), w_im.clone(), dta_re.clone(), dta_im.clone())
}

impl VandermondeOps for CubeBackend {
    fn vandermonde(
        w_re: FloatTensor<Self>,
        w_im: FloatTensor<Self>,
        dta_re: FloatTensor<Self>,
        dta_im: FloatTensor<Self>,
        l: usize,
    ) -> FloatTensor<Self> {
        vandermonde::vandermonde(w_re, w_im, dta_re, dta_im, l)
    }

    fn vandermonde_grad(
        w_re: FloatTensor<Self>,
        w_im: FloatTensor<Self>,
        dta_re: FloatTensor<Self>,
        dta_im: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        vandermonde::vandermonde_grad(w_re, w_im, dta_re, dta_im, grad)
    }
}

/// The shapes of the scan's `out` [B, L, E] and last state [B, E, N] from `u` and `a`.
fn scan_shapes(u: &TensorSpec, a: &TensorSpec) -> (Dims, TensorSpec, TensorSpec) {
    let [b, l, e] = u.shape.dims::<3>();
    let n = a.shape[1];
    let spec = |dims: &[usize]| TensorSpec::new(Shape::from(dims.to_vec()), u.dtype);
    (Dims { b, l, e, n }, spec(&[b, l, e]), spec(&[b, e, n]))
}

/// Output shapes of [`ScanOps::selective_scan`] for fusion.
#[allow(clippy::too_many_arguments)]
pub fn scan_meta(
    u: &TensorSpec,
    _: &TensorSpec,
    a: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &bool,
) -> (TensorSpec, TensorSpec) {
    let (_, out, last) = scan_shapes(u, a);
    (out, last)
}

/// Output shapes of [`ScanOps::selective_scan_saving`] for fusion.
#[allow(clippy::too_many_arguments)]
pub fn scan_saving_meta(
    u: &TensorSpec,
    _: &TensorSpec,
    a: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &bool,
) -> (TensorSpec, TensorSpec, TensorSpec) {
    let (dm, out, last) = scan_shapes(u, a);
    let ckpt = TensorSpec::new(Shape::new([dm.b, dm.e, dm.chunks(), dm.n]), u.dtype);
    (out, last, ckpt)
}

/// Output shapes of [`ScanOps::selective_scan_grad`] for fusion: each input's, and `h0`'s.
#[allow(clippy::too_many_arguments)]
pub fn scan_grad_meta(
    u: &TensorSpec,
    delta: &TensorSpec,
    a: &TensorSpec,
    b: &TensorSpec,
    c: &TensorSpec,
    d: &TensorSpec,
    z: &TensorSpec,
    bias: &TensorSpec,
    _: &TensorSpec,
    _: &TensorSpec,
    _: &bool,
) -> ScanGrads<TensorSpec> {
    let (_, _, h0) = scan_shapes(u, a);
    (u.clone(), delta.clone(), a.clone(), b.clone(), c.clone(), d.clone(), z.clone(), bias.clone(), h0)
}

impl ScanOps for CubeBackend {
    fn selective_scan(
        u: CubeTensor,
        delta: CubeTensor,
        a: CubeTensor,
        b: CubeTensor,
        c: CubeTensor,
        d: CubeTensor,
        z: CubeTensor,
        delta_bias: CubeTensor,
        h0: CubeTensor,
        softplus: bool,
    ) -> (CubeTensor, CubeTensor) {
        let (out, last, _) = scan::forward(u, delta, a, b, c, d, z, delta_bias, h0, softplus);
        (out, last)
    }

    fn selective_scan_saving(
        u: CubeTensor,
        delta: CubeTensor,
        a: CubeTensor,
        b: CubeTensor,
        c: CubeTensor,
        d: CubeTensor,
        z: CubeTensor,
        delta_bias: CubeTensor,
        h0: CubeTensor,
        softplus: bool,
    ) -> (CubeTensor, CubeTensor, CubeTensor) {
        scan::forward(u, delta, a, b, c, d, z, delta_bias, h0, softplus)
    }

    fn selective_scan_grad(
        u: CubeTensor,
        delta: CubeTensor,
        a: CubeTensor,
        b: CubeTensor,
        c: CubeTensor,
        d: CubeTensor,
        z: CubeTensor,
        delta_bias: CubeTensor,
        ckpt: CubeTensor,
        grad: CubeTensor,
        softplus: bool,
    ) -> ScanGrads<CubeTensor> {
        scan::backward(u, delta, a, b, c, d, z, delta_bias, ckpt, grad, softplus)
    }
}
