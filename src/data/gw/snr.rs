//! Matched-filter SNR of a known signal in Gaussian noise of a given PSD (ml4gw's
//! `compute_ifo_snr` / `compute_network_snr`), and rescaling signals to a target network SNR.

use realfft::RealFftPlanner;

use super::whiten::interp_linear;

/// Optimal SNR of `h` [T] in one detector: `ρ² = 4·(fs/T)·Σ_k mask_k·(|H_k|/fs)²/S_k` over
/// `highpass ≤ f < lowpass`. `psd` of another length is linearly resampled to T/2 + 1 bins.
pub fn ifo_snr(h: &[f64], psd: &[f64], fs: f64, highpass: Option<f64>, lowpass: Option<f64>) -> f64 {
    let t = h.len();
    let mut planner = RealFftPlanner::<f64>::new();
    let fft = planner.plan_fft_forward(t);
    let mut spec = fft.make_output_vec();
    let _ = fft.process(&mut h.to_vec(), &mut spec);
    let psd = if psd.len() == spec.len() { psd.to_vec() } else { interp_linear(psd, spec.len()) };
    let sum: f64 = spec
        .iter()
        .zip(&psd)
        .enumerate()
        .filter(|(k, _)| {
            let f = *k as f64 * fs / t as f64;
            highpass.is_none_or(|hp| f >= hp) && lowpass.is_none_or(|lp| f < lp)
        })
        .map(|(_, (c, s))| c.norm_sqr() / (fs * fs) / s)
        .sum();
    (4.0 * sum * fs / t as f64).sqrt()
}

/// Network SNR of per-detector responses `h` [I][T] with PSDs `psd` [I][F]: `√Σ ρ_ifo²`.
pub fn network_snr(h: &[Vec<f64>], psd: &[Vec<f64>], fs: f64, highpass: Option<f64>, lowpass: Option<f64>) -> f64 {
    h.iter().zip(psd).map(|(h, p)| ifo_snr(h, p, fs, highpass, lowpass).powi(2)).sum::<f64>().sqrt()
}

/// Scales every detector's response by `target / current` so the network SNR becomes `target`.
pub fn reweight(h: &mut [Vec<f64>], current: f64, target: f64) {
    let k = target / current;
    h.iter_mut().flatten().for_each(|v| *v *= k);
}
