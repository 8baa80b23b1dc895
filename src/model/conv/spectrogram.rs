//! A fixed STFT-magnitude front end (aframe's frequency-domain detectors see time-frequency
//! images of the whitened strain). It runs inside the model, after the data's online
//! augmentation, in the order aframe applies them; as tensor ops (frames × a DFT matrix) it runs
//! on any device and has no parameters.

use burn::tensor::{Device, Tensor, TensorData};

/// Log-magnitude spectrogram of every channel: Hann frames of `n_fft` every `hop` samples.
#[derive(Debug, Clone, Copy)]
pub struct Spectrogram {
    /// Frame length (FFT size).
    pub n_fft: usize,
    /// Samples between frames.
    pub hop: usize,
    /// `ln(|X| + 1e-6)` instead of `|X|`.
    pub log: bool,
}

impl Spectrogram {
    /// Frequency bins per frame.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Frames of a series of `l` samples (0 when shorter than one frame).
    pub fn frames(&self, l: usize) -> usize {
        if l < self.n_fft { 0 } else { (l - self.n_fft) / self.hop + 1 }
    }

    /// The Hann-windowed real DFT as two [n_fft, F] matrices (cosine, sine).
    fn dft(&self, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let (n, f) = (self.n_fft, self.bins());
        let mut re = Vec::with_capacity(n * f);
        let mut im = Vec::with_capacity(n * f);
        for t in 0..n {
            let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * t as f64 / n as f64).cos();
            for k in 0..f {
                let a = 2.0 * std::f64::consts::PI * (t * k % n) as f64 / n as f64;
                re.push((w * a.cos()) as f32);
                im.push((-w * a.sin()) as f32);
            }
        }
        let m = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [n, f]), device);
        (m(re), m(im))
    }

    /// Args: `x` [B, C, L]. Returns [B, C, F, T] (F = n_fft/2 + 1 bins, T frames).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<4> {
        let [b, c, l] = x.dims();
        let t = self.frames(l);
        let frames: Tensor<4> = x.unfold(2, self.n_fft, self.hop); // [B, C, T, n_fft]
        let flat = frames.reshape([b * c * t, self.n_fft]);
        let (cos, sin) = self.dft(&flat.device());
        let (re, im) = (flat.clone().matmul(cos), flat.matmul(sin)); // [B·C·T, F]
        let mag = (re.square() + im.square()).sqrt();
        let mag = if self.log { (mag + 1e-6).log() } else { mag };
        mag.reshape([b, c, t, self.bins()]).swap_dims(2, 3) // [B, C, F, T]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use realfft::RealFftPlanner;

    #[test]
    fn matches_a_hann_windowed_fft_per_frame() {
        let (n_fft, hop, l) = (16, 4, 40);
        let x: Vec<f32> = (0..2 * l).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let s = Spectrogram { n_fft, hop, log: false };
        let device = Device::default();
        let got = s.forward(Tensor::<3>::from_data(TensorData::new(x.clone(), [1, 2, l]), &device)); // [1, 2, F, T]
        let [_, _, f, t] = got.dims();
        assert_eq!((f, t), (s.bins(), s.frames(l)));
        let got: Vec<f32> = got.try_into_vec_as::<f32>().unwrap();
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n_fft);
        for c in 0..2 {
            for j in 0..t {
                let mut frame: Vec<f64> = (0..n_fft)
                    .map(|i| {
                        let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos();
                        w * x[c * l + j * hop + i] as f64
                    })
                    .collect();
                let mut spec = fft.make_output_vec();
                fft.process(&mut frame, &mut spec).unwrap();
                for k in 0..f {
                    let want = spec[k].norm();
                    let have = got[((c * f) + k) * t + j] as f64;
                    assert!((have - want).abs() < 1e-4 * (1.0 + want), "c {c} bin {k} frame {j}: {have} vs {want}");
                }
            }
        }
    }
}
