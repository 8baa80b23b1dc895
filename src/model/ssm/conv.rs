//! Causal convolution of a sequence with a long kernel.

use burn::nn::Linear;
use burn::signal::{irfft, rfft};
use burn::tensor::Tensor;

/// Causal convolution with skip on the backbone's layout, then the activation:
/// `y = act(k * u + D·u)` with `act` = exact GELU or identity.
///
/// Args: `u` [B, L, H], `k` [H, L], `d` [H]. Returns [B, L, H].
pub fn causal_conv(u: Tensor<3>, k: Tensor<2>, d: Tensor<1>, gelu: bool) -> Tensor<3> {
    if crate::ops::supported(&u.device()) {
        return crate::ops::causal_conv(u, k, d, gelu);
    }
    let h = d.dims()[0];
    let u = u.swap_dims(1, 2); // [B, H, L]
    let y = (fft_conv(u.clone(), k) + u * d.reshape([1, h, 1])).swap_dims(1, 2);
    if gelu { crate::ops::gelu(y) } else { y }
}

/// GLU over the last axis, fused on the CPU.
pub fn glu_last(x: Tensor<3>) -> Tensor<3> {
    if crate::ops::supported(&x.device()) { crate::ops::glu_last(x) } else { burn::tensor::activation::glu(x, 2) }
}

/// `glu(linear(act(x)))` over the last axis, fused on the CPU: the S4 blocks' output
/// projection, with the activation (exact GELU with `gelu`) folded in.
///
/// Args: `x` [B, L, H]; `linear` H → 2·O. Returns [B, L, O].
pub fn linear_glu(x: Tensor<3>, linear: &Linear, gelu: bool) -> Tensor<3> {
    let [i, o2] = linear.weight.dims();
    match &linear.bias {
        Some(b) if crate::ops::supported(&x.device()) && i > 0 && o2 > 0 => {
            crate::ops::linear::linear_glu(x, linear.weight.val(), b.val(), gelu)
        }
        _ => glu_last(linear.forward(if gelu { crate::ops::gelu(x) } else { x })),
    }
}

/// Causal convolution `y[b,h,l] = Σ_{j≤l} k[h,j]·u[b,h,l-j]` by FFT.
///
/// The FFT length is `2L` rounded up to a power of two (burn's FFT needs one); zero padding to
/// any length ≥ `2L-1` gives exactly the linear convolution, so the result does not depend on it.
///
/// Args: `u` [B, H, L], `k` [H, L]. Returns [B, H, L].
pub fn fft_conv(u: Tensor<3>, k: Tensor<2>) -> Tensor<3> {
    let [_, _, l] = u.dims();
    let n = (2 * l).next_power_of_two();
    let (ur, ui) = rfft(u, 2, Some(n)); // [B, H, n/2+1]
    let (kr, ki) = rfft(k, 1, Some(n)); // [H, n/2+1]
    let (kr, ki) = (kr.unsqueeze_dim::<3>(0), ki.unsqueeze_dim::<3>(0));
    let yr = ur.clone() * kr.clone() - ui.clone() * ki.clone();
    let yi = ur * ki + ui * kr;
    irfft(yr, yi, 2, Some(n)).narrow(2, 0, l)
}

/// The same convolution computed directly in O(L²), in f64 on the host (a test oracle).
///
/// Args: `u` [B][H][L] flattened, `k` [H][L] flattened. Returns [B][H][L] flattened.
pub fn direct_conv(u: &[f64], k: &[f64], b: usize, h: usize, l: usize) -> Vec<f64> {
    let mut y = vec![0.0; b * h * l];
    for bi in 0..b {
        for hi in 0..h {
            let (us, ks) = (&u[(bi * h + hi) * l..][..l], &k[hi * l..][..l]);
            let ys = &mut y[(bi * h + hi) * l..][..l];
            for (t, yt) in ys.iter_mut().enumerate() {
                *yt = (0..=t).map(|j| ks[j] * us[t - j]).sum();
            }
        }
    }
    y
}
