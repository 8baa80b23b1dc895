//! The diagonal-SSM convolution kernel as a Vandermonde product: the fused kernel on the CPU, a
//! CubeCL kernel on wgpu, tensor ops elsewhere.

use burn::tensor::{Int, Tensor};

/// `K[c,h,l] = 2·Re Σ_n W[c,h,n]·exp(dtA[h,n]·l)` for `l < L`.
///
/// `W` already folds in the discretized input matrix (for ZOH: `C·(exp(dtA)-1)/A·B`); the
/// factor 2 adds the conjugate half of the state that is not stored.
///
/// Args: `w_re`, `w_im` [C, H, N2]; `dta_re`, `dta_im` [H, N2]. Returns [C, H, L].
pub fn vandermonde(w_re: Tensor<3>, w_im: Tensor<3>, dta_re: Tensor<2>, dta_im: Tensor<2>, l: usize) -> Tensor<3> {
    let device = dta_re.device();
    if crate::ops::supported(&device) || crate::ops::cube_kernels(&device) {
        crate::ops::vandermonde(w_re, w_im, dta_re, dta_im, l)
    } else {
        vandermonde_tensor_ops(w_re, w_im, dta_re, dta_im, l)
    }
}

/// [`vandermonde`] from generic tensor ops (any backend; materializes [H, N2, L]).
pub fn vandermonde_tensor_ops(
    w_re: Tensor<3>,
    w_im: Tensor<3>,
    dta_re: Tensor<2>,
    dta_im: Tensor<2>,
    l: usize,
) -> Tensor<3> {
    let device = dta_re.device();
    let pos = Tensor::<1, Int>::arange(0..l as i64, &device).float().reshape([1, 1, l]); // [1, 1, L]
    let mag = (dta_re.unsqueeze_dim::<3>(2) * pos.clone()).exp(); // [H, N2, L]
    let ang = dta_im.unsqueeze_dim::<3>(2) * pos; // [H, N2, L]
    let z_re = mag.clone() * ang.clone().cos();
    let z_im = mag * ang.sin();
    // Batched over h: [H, C, N2] @ [H, N2, L] -> [H, C, L]
    let k = w_re.swap_dims(0, 1).matmul(z_re) - w_im.swap_dims(0, 1).matmul(z_im);
    k.swap_dims(0, 1) * 2.0
}
