//! Streaming inference input (aframe's `BatchWhitener`): a long multi-detector series read
//! lazily from disk, whitened chunk by chunk with a PSD from the `psd_length` seconds before each
//! chunk, and cut into windows every `stride` samples. Memory is one chunk, never the series.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::psd::{Average, welch};
use super::whiten::whiten;
use crate::data::DataError;
use crate::data::npy_format::{NpyHeader, open_npy, read_payload};

/// One detector's series: a file, its header, and where the series starts in the payload.
#[derive(Debug)]
struct Series {
    path: PathBuf,
    header: NpyHeader,
    file: File,
    first: usize,
}

/// Multi-detector strain on disk: one `.npy` [C, T], or a folder with `<IFO>.npy` [T] per detector.
#[derive(Debug)]
pub struct StrainSource {
    series: Vec<Series>,
    len: usize,
}

impl StrainSource {
    /// Opens `input` (a `.npy` [C, T] file, or a folder holding `<ifo>.npy` for each of `ifos`).
    pub fn open(input: &Path, ifos: &[String]) -> Result<Self, DataError> {
        let mut series = Vec::new();
        if input.is_dir() {
            for ifo in ifos {
                let path = input.join(format!("{ifo}.npy"));
                let (header, file) = open_npy(&path)?;
                if header.shape.len() != 1 {
                    let msg = format!("header field `shape`: {:?}; expected [T]", header.shape);
                    return Err(DataError::Corrupt { path, msg });
                }
                series.push(Series { path, header, file, first: 0 });
            }
        } else {
            let (header, _) = open_npy(input)?;
            let &[c, t] = header.shape.as_slice() else {
                let msg = format!("header field `shape`: {:?}; expected [C, T] (one row per detector)", header.shape);
                return Err(DataError::Corrupt { path: input.to_path_buf(), msg });
            };
            if c != ifos.len() {
                let msg = format!("header field `shape`: {c} detectors, the model takes {} ({ifos:?})", ifos.len());
                return Err(DataError::Corrupt { path: input.to_path_buf(), msg });
            }
            for ch in 0..c {
                let (header, file) = open_npy(input)?;
                series.push(Series { path: input.to_path_buf(), header, file, first: ch * t });
            }
        }
        let lens: Vec<usize> = series.iter().map(|s| *s.header.shape.last().unwrap_or(&0)).collect();
        if let Some(i) = lens.iter().position(|&l| l != lens[0]) {
            let msg = format!("{} samples, but {} has {}", lens[i], series[0].path.display(), lens[0]);
            return Err(DataError::Corrupt { path: series[i].path.clone(), msg });
        }
        Ok(Self { len: lens.first().copied().unwrap_or(0), series })
    }

    /// Number of detectors.
    pub fn channels(&self) -> usize {
        self.series.len()
    }

    /// Samples per detector.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the series is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples `start..start + count` of detector `c`, read from `(t + shift) mod T`
    /// (a circular time slide); NaN or infinity is an error naming the file and index.
    pub fn read(&mut self, c: usize, start: usize, count: usize, shift: usize) -> Result<Vec<f64>, DataError> {
        let t = self.len;
        let s = &mut self.series[c];
        let mut out = Vec::with_capacity(count);
        let mut at = (start + shift) % t;
        while out.len() < count {
            let n = (count - out.len()).min(t - at);
            let a = read_payload(&s.path, &s.header, &mut s.file, s.first + at, n)?;
            out.extend(a.to_f64_at(s.first + at)?);
            at = (at + n) % t;
        }
        Ok(out)
    }
}

/// Window geometry of a stream, in samples except where named.
#[derive(Debug, Clone, Copy)]
pub struct StreamConfig {
    /// Sample rate, Hz.
    pub fs: f64,
    /// Whitened samples per window (the model's input length).
    pub window: usize,
    /// Samples between window starts.
    pub stride: usize,
    /// Whitening filter length, seconds (half is cropped on each side of a chunk).
    pub fduration: f64,
    /// Samples of background before each chunk for its PSD.
    pub psd_length: usize,
    /// Welch segment length.
    pub nperseg: usize,
    /// Highpass, Hz.
    pub highpass: Option<f64>,
    /// Windows per chunk (bounds memory).
    pub chunk: usize,
}

/// Whitened windows [n, W, C] and the time (s) at the end of each window.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Windows, row-major [n, W, C].
    pub x: Vec<f32>,
    /// Number of windows.
    pub n: usize,
    /// End time of each window, seconds from the series' start.
    pub times: Vec<f64>,
}

impl StreamConfig {
    /// Whitening filter padding on each side, samples.
    fn pad(&self) -> usize {
        (self.fduration * self.fs / 2.0) as usize
    }

    /// Windows a series of `t` samples yields (0 when it is too short).
    pub fn windows(&self, t: usize) -> usize {
        let need = self.psd_length + 2 * self.pad() + self.window;
        if t < need { 0 } else { (t - need) / self.stride + 1 }
    }
}

/// Calls `f` with each chunk of whitened windows of `src`, detectors ≥ 1 slid by `shift`.
pub fn for_each_chunk<E: From<DataError>>(
    src: &mut StrainSource,
    cfg: &StreamConfig,
    shift: usize,
    mut f: impl FnMut(Chunk) -> Result<(), E>,
) -> Result<(), E> {
    let total = cfg.windows(src.len());
    let pad = cfg.pad();
    let c = src.channels();
    let mut i0 = 0;
    while i0 < total {
        let n = cfg.chunk.min(total - i0);
        let r0 = cfg.psd_length + i0 * cfg.stride;
        let span = (n - 1) * cfg.stride + cfg.window + 2 * pad;
        let mut x = vec![0f32; n * cfg.window * c];
        for ch in 0..c {
            let slide = if ch == 0 { 0 } else { shift };
            let bg = src.read(ch, r0 - cfg.psd_length, cfg.psd_length, slide)?;
            let psd = welch(&bg, cfg.fs, cfg.nperseg, cfg.nperseg / 2, Average::Median, true).ok_or_else(|| {
                DataError::Invalid(format!("psd_length {} samples is shorter than one Welch segment", cfg.psd_length))
            })?;
            let raw = src.read(ch, r0, span, slide)?;
            let white = whiten(&raw, &psd, cfg.fs, cfg.fduration, cfg.highpass, true);
            for w in 0..n {
                for t in 0..cfg.window {
                    x[(w * cfg.window + t) * c + ch] = white[w * cfg.stride + t] as f32;
                }
            }
        }
        let times = (0..n).map(|w| (r0 + pad + w * cfg.stride + cfg.window) as f64 / cfg.fs).collect();
        f(Chunk { x, n, times })?;
        i0 += n;
    }
    Ok(())
}
