//! `data=gw_strain`: detection windows built from raw two-detector strain as aframe builds its
//! training batches (see the module docs of each step):
//! 1. background: every window and detector draws its own start (non-coincident noise);
//! 2. PSD: median fast Welch over the first `psd_length` seconds of the window;
//! 3. injection (probability `waveform_prob`): a TaylorF2 signal with a random sky position,
//!    projected onto the detectors, rescaled to a network SNR from `ρ^index` on
//!    [`snr_min`, `snr_max`] against that PSD, its coalescence uniform in
//!    [`left_pad`, `kernel_length − right_pad`] of the kernel;
//! 4. whitening with `fduration` truncation and `highpass`, edges cropped.
//!
//! The strain is split in time into disjoint train/val/test stretches. Windows are drawn once
//! at load (seeded, in parallel); swaps, mutes, flips and reversals stay online
//! ([`super::GwAugment`]).

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::psd::{Average, welch};
use super::waveform::{SourcePrior, sky, time_domain};
use super::whiten::whiten;
use super::{GwAugment, project, snr};
use crate::data::npy_format::read_npy;
use crate::data::{DataError, DataModule, SeqData, Targets};

/// Options of `gw_strain` (aframe's BBH defaults where they fit a CPU).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GwStrainConfig {
    /// Folder holding one `<IFO>.npy` [T] strain file per detector (default `$DATA_PATH/gw_strain`).
    pub path: Option<PathBuf>,
    /// Detectors, in channel order; each needs built-in geometry (H1, L1).
    pub ifos: Vec<String>,
    /// Sample rate of the strain files, Hz.
    pub sample_rate: f64,
    /// Seconds of whitened data per window (the model's input length).
    pub kernel_length: f64,
    /// Seconds of whitening filter; half of it is cropped on each side.
    pub fduration: f64,
    /// Seconds of background before the kernel used for the PSD.
    pub psd_length: f64,
    /// Welch segment length in seconds (null: kernel_length + fduration).
    pub fftlength: Option<f64>,
    /// Highpass of whitening and SNR, Hz (null: none).
    pub highpass: Option<f64>,
    /// Earliest coalescence in the kernel, seconds from its start.
    pub left_pad: f64,
    /// Latest coalescence in the kernel, seconds before its end.
    pub right_pad: f64,
    /// Fraction of windows that carry an injection (label 1).
    pub waveform_prob: f64,
    /// Lowest target network SNR.
    pub snr_min: f64,
    /// Highest target network SNR.
    pub snr_max: f64,
    /// Power-law index of the SNR distribution (aframe: −3).
    pub snr_index: f64,
    /// Source parameters of the injections.
    pub source: SourcePrior,
    /// Fractions of the strain's duration for train, val, test (in time order).
    pub split: [f64; 3],
    /// Windows per split.
    pub n_train: usize,
    /// Validation windows.
    pub n_val: usize,
    /// Test windows.
    pub n_test: usize,
    /// Seed of the window draws.
    pub seed: u64,
    /// Online augmentation of training batches.
    pub augment: GwAugment,
}

impl Default for GwStrainConfig {
    fn default() -> Self {
        Self {
            path: None,
            ifos: vec!["H1".into(), "L1".into()],
            sample_rate: 2048.0,
            kernel_length: 1.0,
            fduration: 1.0,
            psd_length: 8.0,
            fftlength: None,
            highpass: Some(32.0),
            left_pad: 0.25,
            right_pad: 0.05,
            waveform_prob: 0.5,
            snr_min: 4.0,
            snr_max: 100.0,
            snr_index: -3.0,
            source: SourcePrior::default(),
            split: [0.8, 0.1, 0.1],
            n_train: 1000,
            n_val: 200,
            n_test: 200,
            seed: 0,
            augment: GwAugment::default(),
        }
    }
}

/// Sizes in samples derived from the options.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    fs: f64,
    /// Kernel K, filter F, PSD part P, Welch segment.
    k: usize,
    f: usize,
    p: usize,
    nperseg: usize,
    /// Coalescence range in the kernel, samples.
    lp: usize,
    rp: usize,
}

impl GwStrainConfig {
    /// Checks every option, naming `data.<key>`.
    pub fn validate(&self) -> Result<(), DataError> {
        let bad = |key: &str, msg: String| Err(DataError::Invalid(format!("`data.{key}` {msg}")));
        let positive = |key: &str, v: f64, max: f64| {
            if v.is_finite() && v > 0.0 && v <= max {
                Ok(())
            } else {
                bad(key, format!("must be in (0, {max}], got {v}"))
            }
        };
        positive("sample_rate", self.sample_rate, 1e6)?;
        positive("kernel_length", self.kernel_length, 3600.0)?;
        positive("fduration", self.fduration, 3600.0)?;
        if self.fduration * self.sample_rate < 2.0 {
            return bad(
                "fduration",
                format!("must span at least 2 samples at {} Hz (the filter's two halves)", self.sample_rate),
            );
        }
        positive("psd_length", self.psd_length, 86400.0)?;
        if let Some(f) = self.fftlength {
            positive("fftlength", f, self.psd_length)?;
        }
        if let Some(h) = self.highpass {
            positive("highpass", h, self.sample_rate / 2.0)?;
        }
        if !(self.left_pad >= 0.0 && self.right_pad >= 0.0 && self.left_pad + self.right_pad < self.kernel_length) {
            return bad(
                "left_pad",
                format!("and `right_pad` must be ≥ 0 and leave room in the kernel of {} s", self.kernel_length),
            );
        }
        if !(0.0..=1.0).contains(&self.waveform_prob) {
            return bad("waveform_prob", format!("must be in [0, 1], got {}", self.waveform_prob));
        }
        // These bounds keep ρ^(index+1) finite on [snr_min, snr_max] for the inverse-CDF draw.
        if !(self.snr_min.is_finite() && (0.1..=1e4).contains(&self.snr_min)) {
            return bad("snr_min", format!("must be in [0.1, 10000], got {}", self.snr_min));
        }
        if !(self.snr_max.is_finite() && self.snr_max >= self.snr_min && self.snr_max <= 1e4) {
            return bad(
                "snr_max",
                format!("must be in [`data.snr_min` ({}), 10000], got {}", self.snr_min, self.snr_max),
            );
        }
        if !(self.snr_index.is_finite() && (-10.0..=10.0).contains(&self.snr_index)) {
            return bad("snr_index", format!("must be in [-10, 10], got {}", self.snr_index));
        }
        if self.split.iter().any(|s| !(0.0..=1.0).contains(s)) || self.split.iter().sum::<f64>() > 1.0 + 1e-9 {
            return bad(
                "split",
                format!("must be three fractions in [0, 1] summing to at most 1, got {:?}", self.split),
            );
        }
        for (key, n) in [("n_train", self.n_train), ("n_val", self.n_val), ("n_test", self.n_test)] {
            if !(1..=1_000_000).contains(&n) {
                return bad(key, format!("must be in 1..=1000000, got {n}"));
            }
        }
        if self.ifos.is_empty() {
            return bad("ifos", "must name at least one detector".into());
        }
        for i in &self.ifos {
            if project::Detector::named(i).is_none() {
                return bad("ifos", format!("has `{i}`, which has no built-in geometry (H1, L1)"));
            }
        }
        self.source.validate()?;
        if self.source.f_min >= self.sample_rate / 2.0 {
            let msg =
                format!("{} Hz must be below the Nyquist frequency {} Hz", self.source.f_min, self.sample_rate / 2.0);
            return Err(DataError::Invalid(format!("`data.source.f_min` {msg}")));
        }
        // The lightest binary from f_min is the longest series a window generates.
        let lo = self.source.masses[0];
        let longest = super::waveform::series_len(lo * 0.5f64.powf(0.2), self.source.f_min, self.sample_rate, 0);
        if longest > (1u64 << 25) as f64 {
            let msg = format!(
                "{} Hz with masses from {lo} M☉ makes waveforms of {longest:.0} samples (at most 2^25): raise f_min or the masses",
                self.source.f_min
            );
            return Err(DataError::Invalid(format!("`data.source.f_min` {msg}")));
        }
        // Windows are drawn into memory: refuse what cannot fit before allocating it.
        let g = self.geometry();
        let floats = (self.n_train + self.n_val + self.n_test) as f64 * g.k as f64 * self.ifos.len() as f64;
        if floats * 4.0 > crate::io::MAX_DATA_BYTES as f64 || g.k == 0 || g.nperseg == 0 {
            return bad(
                "n_train",
                format!(
                    "with n_val, n_test and kernel_length {} s at {} Hz needs {:.1} GiB of windows (at most {} GiB), \
                     or a kernel or Welch segment of no sample",
                    self.kernel_length,
                    self.sample_rate,
                    floats * 4.0 / (1u64 << 30) as f64,
                    crate::io::MAX_DATA_BYTES >> 30
                ),
            );
        }
        self.augment.validate()
    }

    fn geometry(&self) -> Geometry {
        let fs = self.sample_rate;
        let n = |s: f64| (s * fs) as usize;
        let nperseg = n(self.fftlength.unwrap_or(self.kernel_length + self.fduration));
        Geometry {
            fs,
            k: n(self.kernel_length),
            f: n(self.fduration),
            p: n(self.psd_length),
            nperseg,
            lp: n(self.left_pad),
            rp: n(self.right_pad),
        }
    }

    /// One target SNR from `ρ^index` on [snr_min, snr_max] by inverse CDF.
    fn sample_snr(&self, rng: &mut ChaCha8Rng) -> f64 {
        let (lo, hi, a) = (self.snr_min, self.snr_max, self.snr_index);
        let u: f64 = rng.random();
        if (a + 1.0).abs() < 1e-12 {
            return lo * (hi / lo).powf(u);
        }
        let (l, h) = (lo.powf(a + 1.0), hi.powf(a + 1.0));
        (l + u * (h - l)).powf(1.0 / (a + 1.0))
    }
}

/// Loads the strain files and draws the three splits.
pub fn load(cfg: &GwStrainConfig) -> Result<DataModule, DataError> {
    cfg.validate()?;
    let dir = crate::data::data_dir(&cfg.path, "gw_strain");
    let g = cfg.geometry();
    let window = g.p + g.k + g.f;
    let mut strain = Vec::new();
    for ifo in &cfg.ifos {
        let path = dir.join(format!("{ifo}.npy"));
        let size =
            crate::io::check_whole_file(&path).map_err(|e| DataError::from_io(&path, "a strain `.npy` [T]", e))?;
        if size > crate::io::MAX_DATA_BYTES {
            let msg =
                format!("larger than {} GiB: split the strain into shorter files", crate::io::MAX_DATA_BYTES >> 30);
            return Err(DataError::Corrupt { path, msg });
        }
        let a = read_npy(&path)?;
        if a.shape.len() != 1 {
            return Err(DataError::Corrupt { path, msg: format!("header field `shape`: {:?}; expected [T]", a.shape) });
        }
        strain.push((path, a.to_f64()?));
    }
    let t = strain.iter().map(|(_, s)| s.len()).min().unwrap_or(0);
    let mut bounds = vec![0usize];
    for s in cfg.split {
        bounds.push(bounds.last().unwrap() + (s * t as f64) as usize);
    }
    for (i, name) in ["train", "val", "test"].iter().enumerate() {
        let len = bounds[i + 1] - bounds[i];
        if len < window {
            let (path, s) = &strain[0];
            return Err(DataError::Corrupt {
                path: path.clone(),
                msg: format!(
                    "{} samples: the {name} split's {len} samples are shorter than psd_length + kernel_length + \
                     fduration = {window} samples at {} Hz",
                    s.len(),
                    g.fs
                ),
            });
        }
    }
    let series: Vec<&[f64]> = strain.iter().map(|(_, s)| s.as_slice()).collect();
    let dets: Vec<project::Detector> = cfg.ifos.iter().filter_map(|i| project::Detector::named(i)).collect();
    let mut splits = Vec::new();
    for (i, n) in [cfg.n_train, cfg.n_val, cfg.n_test].into_iter().enumerate() {
        let range = (bounds[i], bounds[i + 1]);
        splits.push(draw_split(cfg, g, &series, &dets, range, n, i as u64));
    }
    let test = splits.pop().expect("three splits");
    let val = splits.pop().expect("three splits");
    Ok(DataModule { train: splits.pop().expect("three splits"), val, test })
}

/// `n` whitened windows [n, K, C] with labels, from samples `range` of every detector.
fn draw_split(
    cfg: &GwStrainConfig,
    g: Geometry,
    strain: &[&[f64]],
    dets: &[project::Detector],
    range: (usize, usize),
    n: usize,
    split: u64,
) -> SeqData {
    let c = strain.len();
    let rows: Vec<(Vec<f32>, u32)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (split << 40) ^ (i as u64).wrapping_mul(0x9E37_79B9));
            one_window(cfg, g, strain, dets, range, &mut rng)
        })
        .collect();
    let mut inputs = Vec::with_capacity(n * g.k * c);
    let mut labels = Vec::with_capacity(n);
    for (x, y) in rows {
        inputs.extend(x);
        labels.push(y);
    }
    SeqData::dense(inputs, g.k, c, Targets::Classes { labels, n_classes: 2 })
}

/// One window: background per detector, PSD, maybe an injection, whitening. Returns [K, C].
fn one_window(
    cfg: &GwStrainConfig,
    g: Geometry,
    strain: &[&[f64]],
    dets: &[project::Detector],
    (lo, hi): (usize, usize),
    rng: &mut ChaCha8Rng,
) -> (Vec<f32>, u32) {
    let w = g.k + g.f;
    let mut psds = Vec::new();
    let mut data = Vec::new();
    for s in strain {
        // Each detector its own start: training noise is never coincident.
        let start = rng.random_range(lo..=hi - (g.p + w));
        let seg = &s[start..start + g.p + w];
        let psd = welch(&seg[..g.p], g.fs, g.nperseg, g.nperseg / 2, Average::Median, true)
            .expect("psd_length holds one segment: checked by validate");
        psds.push(psd);
        data.push(seg[g.p..].to_vec());
    }
    let mut inject = rng.random::<f64>() < cfg.waveform_prob;
    if inject {
        let at = g.f / 2 + g.lp + rng.random_range(0..=g.k - g.lp - g.rp);
        let (hc, hp) = time_domain(&cfg.source.sample(rng), &cfg.source, g.fs, w, at);
        let sky = sky(rng);
        let mut h: Vec<Vec<f64>> = dets.iter().map(|d| project::observed_strain(&hc, &hp, sky, d, g.fs)).collect();
        let rho = snr::network_snr(&h, &psds, g.fs, cfg.highpass, None);
        // A signal with no power in band (ISCO below f_min for heavy binaries) stays noise.
        inject = rho > 0.0 && rho.is_finite();
        if inject {
            snr::reweight(&mut h, rho, cfg.sample_snr(rng));
            for (d, hi) in data.iter_mut().zip(&h) {
                d.iter_mut().zip(hi).for_each(|(v, s)| *v += s);
            }
        }
    }
    let white: Vec<Vec<f64>> =
        data.iter().zip(&psds).map(|(d, p)| whiten(d, p, g.fs, cfg.fduration, cfg.highpass, true)).collect();
    let c = white.len();
    let mut out = vec![0f32; g.k * c];
    for (ch, wv) in white.iter().enumerate() {
        for (t, v) in wv.iter().take(g.k).enumerate() {
            out[t * c + ch] = *v as f32;
        }
    }
    (out, inject as u32)
}
