//! MFCC features as torchaudio's `transforms.MFCC` computes them, with the settings of the S4
//! repo's Speech Commands datamodule (`MFCC(log_mels=True, n_mfcc=20, melkwargs=dict(n_fft=200,
//! n_mels=64))` at 16 kHz): centered STFT with reflect padding and a periodic Hann window,
//! power 2, HTK mel filterbank without area normalization over [0, sr/2], `log(mel + 1e-6)`,
//! orthonormal DCT-II. A one-second clip gives 161 frames × 20 coefficients.
//! Computed in f64 and rounded to f32 at the end.

use std::f64::consts::PI;
use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// MFCC settings (torchaudio's names).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MfccConfig {
    /// Sampling rate in Hz.
    pub sample_rate: f64,
    /// FFT size and window length.
    pub n_fft: usize,
    /// Samples between frames.
    pub hop_length: usize,
    /// Mel bands.
    pub n_mels: usize,
    /// Coefficients kept.
    pub n_mfcc: usize,
    /// Lowest filterbank frequency.
    pub f_min: f64,
    /// Highest filterbank frequency.
    pub f_max: f64,
}

impl Default for MfccConfig {
    /// The S4 repo's Speech Commands settings (torchaudio defaults: hop = n_fft / 2, f_max = sr / 2).
    fn default() -> Self {
        Self { sample_rate: 16_000.0, n_fft: 200, hop_length: 100, n_mels: 64, n_mfcc: 20, f_min: 0.0, f_max: 8_000.0 }
    }
}

/// torchaudio's `log_offset` for `log_mels=True`.
const LOG_OFFSET: f64 = 1e-6;

/// HTK mel scale.
pub fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// Triangular filters `[n_freqs, n_mels]` (torchaudio `melscale_fbanks`, `norm=None`, htk).
pub fn mel_filterbank(n_freqs: usize, f_min: f64, f_max: f64, n_mels: usize, sample_rate: f64) -> Vec<f64> {
    let nyquist = (sample_rate / 2.0).floor();
    let freqs: Vec<f64> = (0..n_freqs).map(|i| nyquist * i as f64 / (n_freqs - 1).max(1) as f64).collect();
    let (m_min, m_max) = (hz_to_mel(f_min), hz_to_mel(f_max));
    let pts: Vec<f64> =
        (0..n_mels + 2).map(|i| mel_to_hz(m_min + (m_max - m_min) * i as f64 / (n_mels + 1) as f64)).collect();
    let mut fb = vec![0.0; n_freqs * n_mels];
    for (i, &f) in freqs.iter().enumerate() {
        for m in 0..n_mels {
            let down = (f - pts[m]) / (pts[m + 1] - pts[m]);
            let up = (pts[m + 2] - f) / (pts[m + 2] - pts[m + 1]);
            fb[i * n_mels + m] = down.min(up).max(0.0);
        }
    }
    fb
}

/// Orthonormal DCT-II matrix `[n_mels, n_mfcc]` (torchaudio `create_dct(norm="ortho")`).
pub fn dct_ortho(n_mfcc: usize, n_mels: usize) -> Vec<f64> {
    let mut d = vec![0.0; n_mels * n_mfcc];
    for n in 0..n_mels {
        for k in 0..n_mfcc {
            let scale = if k == 0 { (1.0 / n_mels as f64).sqrt() } else { (2.0 / n_mels as f64).sqrt() };
            d[n * n_mfcc + k] = scale * (PI / n_mels as f64 * (n as f64 + 0.5) * k as f64).cos();
        }
    }
    d
}

/// An MFCC extractor with its window, filterbank, DCT and FFT plan built once.
#[derive(Clone)]
pub struct Mfcc {
    cfg: MfccConfig,
    window: Vec<f64>,
    fbank: Vec<f64>,
    dct: Vec<f64>,
    fft: Arc<dyn RealToComplex<f64>>,
}

impl Mfcc {
    /// Builds the extractor.
    pub fn new(cfg: MfccConfig) -> Self {
        let n = cfg.n_fft;
        // Periodic Hann, as torch.hann_window's default.
        let window = (0..n).map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / n as f64).cos()).collect();
        let fbank = mel_filterbank(n / 2 + 1, cfg.f_min, cfg.f_max, cfg.n_mels, cfg.sample_rate);
        let dct = dct_ortho(cfg.n_mfcc, cfg.n_mels);
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
        Self { cfg, window, fbank, dct, fft }
    }

    /// The settings.
    pub fn config(&self) -> &MfccConfig {
        &self.cfg
    }

    /// Frames of a clip of `n` samples (centered STFT): `1 + n / hop` for an even `n_fft`.
    pub fn frames(&self, n: usize) -> usize {
        let pad = self.cfg.n_fft / 2;
        1 + (n + 2 * pad - self.cfg.n_fft) / self.cfg.hop_length
    }

    /// Mel power spectrogram `[frames, n_mels]` (before the log).
    pub fn mel_power(&self, x: &[f32]) -> Vec<f64> {
        let (n_fft, hop, n_mels) = (self.cfg.n_fft, self.cfg.hop_length, self.cfg.n_mels);
        let n_freqs = n_fft / 2 + 1;
        let pad = (n_fft / 2) as isize;
        let frames = self.frames(x.len());
        let mut time = self.fft.make_input_vec();
        let mut spec = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut out = vec![0.0; frames * n_mels];
        for t in 0..frames {
            for (j, slot) in time.iter_mut().enumerate() {
                let i = reflect(t as isize * hop as isize + j as isize - pad, x.len());
                *slot = x[i] as f64 * self.window[j];
            }
            self.fft.process_with_scratch(&mut time, &mut spec, &mut scratch).expect("buffers sized by the plan");
            let row = &mut out[t * n_mels..(t + 1) * n_mels];
            for (f, c) in spec.iter().enumerate().take(n_freqs) {
                let p = c.norm_sqr();
                if p == 0.0 {
                    continue;
                }
                for (m, r) in row.iter_mut().enumerate() {
                    *r += p * self.fbank[f * n_mels + m];
                }
            }
        }
        out
    }

    /// Orthonormal DCT-II of one row of log-mel energies onto `out` (`n_mfcc` values).
    pub fn dct(&self, log_mel: &[f64], out: &mut [f32]) {
        let k = self.cfg.n_mfcc;
        for (c, o) in out.iter_mut().enumerate().take(k) {
            *o = log_mel.iter().enumerate().map(|(n, v)| v * self.dct[n * k + c]).sum::<f64>() as f32;
        }
    }

    /// MFCC of a clip, row-major `[frames, n_mfcc]` (time steps × features).
    pub fn compute(&self, x: &[f32]) -> Vec<f32> {
        let (n_mels, k) = (self.cfg.n_mels, self.cfg.n_mfcc);
        let mut mel = self.mel_power(x);
        mel.iter_mut().for_each(|v| *v = (*v + LOG_OFFSET).ln());
        let frames = mel.len() / n_mels;
        let mut out = vec![0f32; frames * k];
        for t in 0..frames {
            self.dct(&mel[t * n_mels..(t + 1) * n_mels], &mut out[t * k..(t + 1) * k]);
        }
        out
    }
}

/// Index of `i` in a signal of length `n` mirrored at both ends without repeating the edge
/// (torch's `reflect` padding), also for pads longer than the signal.
fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_matches_torch_padding() {
        // torch.nn.functional.pad([0,1,2,3], (3,3), mode="reflect") = [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }
}
