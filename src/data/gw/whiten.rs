//! aframe's whitening (ml4gw's `Whiten`): the inverse amplitude spectrum is truncated in time to
//! `fduration` seconds so the whitening filter has finite support, then applied in frequency;
//! the corrupted `fduration/2` seconds at each edge are cropped.

use num_complex::Complex64;
use realfft::RealFftPlanner;

/// Linear resampling of `p` [n] to `size` points with half-pixel centres (torch's
/// `F.interpolate(mode="linear", align_corners=False)`), as ml4gw resizes a coarse PSD.
pub fn interp_linear(p: &[f64], size: usize) -> Vec<f64> {
    let n = p.len();
    (0..size)
        .map(|i| {
            let src = ((i as f64 + 0.5) * n as f64 / size as f64 - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(n - 1);
            let i1 = (i0 + 1).min(n - 1);
            let lam = src - i0 as f64;
            p[i0] * (1.0 - lam) + p[i1] * lam
        })
        .collect()
}

/// The PSD [F] whose inverse square root has a time-domain response of `2·pad` samples:
/// zero below `highpass` Hz and at Nyquist, inverse FFT, keep `pad` samples at each end under
/// Hann halves, FFT back (ml4gw's `truncate_inverse_power_spectrum`).
pub fn truncate_psd(psd: &[f64], fs: f64, pad: usize, highpass: Option<f64>) -> Vec<f64> {
    let n_f = psd.len();
    let n = 2 * (n_f - 1);
    let mut inv: Vec<Complex64> = psd.iter().map(|s| Complex64::new(s.powf(-0.5), 0.0)).collect();
    if let Some(hp) = highpass {
        let cut = ((hp / (fs / n as f64)) as usize).min(n_f);
        inv[..cut].iter_mut().for_each(|v| *v = Complex64::default());
    }
    if n_f % 2 == 1 {
        inv[n_f - 1] = Complex64::default();
    }
    let mut planner = RealFftPlanner::<f64>::new();
    let mut q = vec![0.0; n];
    // Unnormalised inverse: numpy's `irfft(·)·N`. DC and Nyquist are real here, so the
    // transform's check of their imaginary parts cannot fail.
    let _ = planner.plan_fft_inverse(n).process(&mut inv, &mut q);
    let w = super::psd::hann(2 * pad);
    for k in 0..pad.min(n / 2) {
        q[k] *= w[pad + k];
        q[n - pad + k] *= w[k];
    }
    q[pad..n - pad].iter_mut().for_each(|v| *v = 0.0);
    let mut spec = vec![Complex64::default(); n_f];
    let _ = planner.plan_fft_forward(n).process(&mut q, &mut spec);
    spec.iter().map(|c| 1.0 / (c.norm_sqr() / (n * n) as f64) / 2.0).collect()
}

/// Whitens one detector's series `x` [T] with `psd` (any length: it is linearly resampled to
/// T/2 + 1 bins first), truncating the filter to `fduration` s and removing `highpass`.
///
/// Returns [T − fduration·fs] when `crop`, else [T]. Whitened Gaussian noise has unit variance.
pub fn whiten(x: &[f64], psd: &[f64], fs: f64, fduration: f64, highpass: Option<f64>, crop: bool) -> Vec<f64> {
    let n = x.len();
    let pad = (fduration * fs / 2.0) as usize;
    let n_f = n / 2 + 1;
    let psd = if psd.len() == n_f { psd.to_vec() } else { interp_linear(psd, n_f) };
    let psd = truncate_psd(&psd, fs, pad, highpass);
    let mean = x.iter().sum::<f64>() / n as f64;
    let mut centred: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let mut planner = RealFftPlanner::<f64>::new();
    let mut spec = vec![Complex64::default(); n_f];
    let _ = planner.plan_fft_forward(n).process(&mut centred, &mut spec);
    for (c, s) in spec.iter_mut().zip(&psd) {
        *c *= s.powf(-0.5) / n as f64;
    }
    // numpy's irfft ignores the imaginary parts of DC and Nyquist; so do we.
    spec[0].im = 0.0;
    if n.is_multiple_of(2) {
        spec[n_f - 1].im = 0.0;
    }
    let mut y = vec![0.0; n];
    let _ = planner.plan_fft_inverse(n).process(&mut spec, &mut y);
    let scale = 1.0 / fs.sqrt();
    y.iter_mut().for_each(|v| *v *= scale);
    if crop { y[pad..n - pad].to_vec() } else { y }
}
