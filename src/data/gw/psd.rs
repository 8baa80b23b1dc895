//! Welch power spectral density as aframe estimates it (ml4gw's `spectral_density`): periodic
//! Hann segments, one-sided density, mean or bias-corrected median over segments.
//!
//! Host-side f64: PSDs feed whitening and SNRs, which the references compute in float64.

use realfft::RealFftPlanner;

/// How segment periodograms are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// Arithmetic mean.
    Mean,
    /// Median divided by [`median_bias`] (robust to glitches; aframe's choice).
    Median,
}

/// Periodic Hann window of `n` samples (`scipy.signal.get_window("hann", n)`).
pub fn hann(n: usize) -> Vec<f64> {
    (0..n).map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n as f64).cos()).collect()
}

/// Bias of the median of `s` χ²₂ periodograms: `1 + Σ_{j=1}^{⌊(s−1)/2⌋} (1/(2j+1) − 1/(2j))`.
pub fn median_bias(s: usize) -> f64 {
    1.0 + (1..=(s.saturating_sub(1)) / 2).map(|j| 1.0 / (2 * j + 1) as f64 - 1.0 / (2 * j) as f64).sum::<f64>()
}

/// Welch PSD of one series `x` [T] sampled at `fs`, with segments of `nperseg` every `nstride`
/// samples. `fast` removes the whole series' mean once (ml4gw's `fast_spectral_density`, used by
/// aframe whenever a highpass is set) instead of each segment's own mean.
///
/// Returns [nperseg/2 + 1] in units of x²/Hz; `None` when `x` is shorter than one segment.
pub fn welch(x: &[f64], fs: f64, nperseg: usize, nstride: usize, average: Average, fast: bool) -> Option<Vec<f64>> {
    if nperseg == 0 || nstride == 0 || x.len() < nperseg {
        return None;
    }
    let n_seg = (x.len() - nperseg) / nstride + 1;
    let w = hann(nperseg);
    let scale = 1.0 / (fs * w.iter().map(|v| v * v).sum::<f64>());
    let whole_mean = x.iter().sum::<f64>() / x.len() as f64;
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(nperseg);
    let n_f = nperseg / 2 + 1;
    let mut spectrum = fft.make_output_vec();
    let mut seg = vec![0.0; nperseg];
    // [S, F] periodograms, one row per segment.
    let mut p = vec![0.0; n_seg * n_f];
    for s in 0..n_seg {
        let raw = &x[s * nstride..s * nstride + nperseg];
        let mean = if fast { whole_mean } else { raw.iter().sum::<f64>() / nperseg as f64 };
        for ((o, v), wk) in seg.iter_mut().zip(raw).zip(&w) {
            *o = (v - mean) * wk;
        }
        fft.process(&mut seg, &mut spectrum).ok()?;
        for (k, c) in spectrum.iter().enumerate() {
            // One-sided: every bin but DC (and Nyquist for even lengths) counts twice.
            let two_sided = k == 0 || (nperseg.is_multiple_of(2) && k == n_f - 1);
            p[s * n_f + k] = c.norm_sqr() * scale * if two_sided { 1.0 } else { 2.0 };
        }
    }
    Some(
        (0..n_f)
            .map(|k| {
                let mut col: Vec<f64> = (0..n_seg).map(|s| p[s * n_f + k]).collect();
                match average {
                    Average::Mean => col.iter().sum::<f64>() / n_seg as f64,
                    Average::Median => median(&mut col) / median_bias(n_seg),
                }
            })
            .collect(),
    )
}

/// Median of `v` (the mean of the middle two for an even count), reordering it.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_bias_matches_its_series() {
        assert_eq!(median_bias(1), 1.0);
        assert_eq!(median_bias(2), 1.0);
        assert!((median_bias(3) - (1.0 + 1.0 / 3.0 - 0.5)).abs() < 1e-15);
    }

    #[test]
    fn white_noise_has_a_flat_density_of_its_variance() {
        // Unit-variance white noise at fs has one-sided density 2/fs.
        let mut state = 1u64;
        let x: Vec<f64> = (0..1 << 16)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 12f64.sqrt()
            })
            .collect();
        let p = welch(&x, 64.0, 256, 128, Average::Mean, false).unwrap();
        let mid: f64 = p[10..100].iter().sum::<f64>() / 90.0;
        assert!((mid - 2.0 / 64.0).abs() < 0.05 * 2.0 / 64.0, "{mid}");
        assert!(welch(&x[..100], 64.0, 256, 128, Average::Mean, false).is_none());
    }
}
