//! Streaming inference input (aframe's `BatchWhitener`): a long multi-detector series read
//! lazily from disk, whitened chunk by chunk with a PSD from the `psd_length` seconds before each
//! chunk, and cut into windows every `stride` samples. Memory is one chunk, never the series.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::psd::{Average, welch};
use super::whiten::whiten;
use crate::data::DataError;
use crate::data::npy_format::{NpyHeader, open_npy, read_payload};

/// Where one detector's series lives.
#[derive(Debug)]
enum Store {
    /// A `.npy` payload; the series starts at element `first`.
    Npy { header: NpyHeader, file: File, first: usize },
    /// An HDF5 dataset.
    #[cfg(feature = "hdf5")]
    H5(super::hdf5::H5Series),
}

/// One detector's series: its file and where it is stored.
#[derive(Debug)]
struct Series {
    path: PathBuf,
    store: Store,
    len: usize,
    /// Sample rate the file records, Hz (HDF5 only).
    sample_rate: Option<f64>,
}

/// Whether `path` names an HDF5 file by its extension.
fn is_hdf5(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("hdf5" | "h5" | "hdf"))
}

impl Series {
    /// Detector `ifo`'s series in `path` (`.npy` [T], or HDF5 with the feature).
    fn open(path: &Path, ifo: &str) -> Result<Self, DataError> {
        if is_hdf5(path) {
            return Self::open_hdf5(path, ifo);
        }
        let (header, file) = open_npy(path)?;
        let &[len] = header.shape.as_slice() else {
            let msg = format!("header field `shape`: {:?}; expected [T]", header.shape);
            return Err(DataError::Corrupt { path: path.to_path_buf(), msg });
        };
        Ok(Self { path: path.to_path_buf(), store: Store::Npy { header, file, first: 0 }, len, sample_rate: None })
    }

    #[cfg(feature = "hdf5")]
    fn open_hdf5(path: &Path, ifo: &str) -> Result<Self, DataError> {
        let h = super::hdf5::H5Series::open(path, ifo)?;
        Ok(Self { path: path.to_path_buf(), len: h.len(), sample_rate: h.sample_rate, store: Store::H5(h) })
    }

    #[cfg(not(feature = "hdf5"))]
    fn open_hdf5(path: &Path, _ifo: &str) -> Result<Self, DataError> {
        let msg = "an HDF5 file, but this wavessm was built without the `hdf5` feature: rebuild with \
                   `cargo build --release --features hdf5` (needs Debian's libhdf5-dev) or convert it to `.npy`";
        Err(DataError::Corrupt { path: path.to_path_buf(), msg: msg.into() })
    }

    /// Samples `at..at + n`, finite.
    fn read(&mut self, at: usize, n: usize) -> Result<Vec<f64>, DataError> {
        match &mut self.store {
            Store::Npy { header, file, first } => {
                read_payload(&self.path, header, file, *first + at, n)?.to_f64_at(*first + at)
            }
            #[cfg(feature = "hdf5")]
            Store::H5(h) => h.read(at, n),
        }
    }
}

/// Multi-detector strain on disk: one `.npy` [C, T] or HDF5 file holding every detector, or a
/// folder with one `<IFO>.npy` / `<IFO>.hdf5` (`.h5`, `.hdf`) [T] per detector.
#[derive(Debug)]
pub struct StrainSource {
    series: Vec<Series>,
    len: usize,
}

/// The file of detector `ifo` in folder `dir`: `<ifo>.npy`, else an HDF5 one.
fn detector_file(dir: &Path, ifo: &str) -> PathBuf {
    let npy = dir.join(format!("{ifo}.npy"));
    if npy.exists() {
        return npy;
    }
    ["hdf5", "h5", "hdf"].iter().map(|ext| dir.join(format!("{ifo}.{ext}"))).find(|p| p.exists()).unwrap_or(npy)
}

impl StrainSource {
    /// Opens `input` for detectors `ifos`. Detectors of unequal length are refused (infer's
    /// windows are coincident); sample rates recorded in the files must agree.
    pub fn open(input: &Path, ifos: &[String]) -> Result<Self, DataError> {
        let src = Self::open_unequal(input, ifos)?;
        let s0 = &src.series[0];
        if let Some(s) = src.series.iter().find(|s| s.len != s0.len) {
            let msg = format!("{} samples, but {} has {}", s.len, s0.path.display(), s0.len);
            return Err(DataError::Corrupt { path: s.path.clone(), msg });
        }
        Ok(src)
    }

    /// As [`Self::open`], but detectors may differ in length (training draws each detector's
    /// background at its own times); `len` is the shortest.
    pub fn open_unequal(input: &Path, ifos: &[String]) -> Result<Self, DataError> {
        let mut series = Vec::new();
        if input.is_dir() {
            for ifo in ifos {
                series.push(Series::open(&detector_file(input, ifo), ifo)?);
            }
        } else if is_hdf5(input) {
            for ifo in ifos {
                series.push(Series::open(input, ifo)?);
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
                let store = Store::Npy { header, file, first: ch * t };
                series.push(Series { path: input.to_path_buf(), store, len: t, sample_rate: None });
            }
        }
        if series.is_empty() {
            return Err(DataError::Invalid("no detectors to read".into()));
        }
        let rated: Vec<&Series> = series.iter().filter(|s| s.sample_rate.is_some()).collect();
        if let Some(s) = rated.iter().find(|s| s.sample_rate != rated[0].sample_rate) {
            let msg = format!(
                "sample rate {} Hz, but {} records {} Hz: the detectors must share one rate",
                s.sample_rate.unwrap_or_default(),
                rated[0].path.display(),
                rated[0].sample_rate.unwrap_or_default()
            );
            return Err(DataError::Corrupt { path: s.path.clone(), msg });
        }
        Ok(Self { len: series.iter().map(|s| s.len).min().unwrap_or(0), series })
    }

    /// The sample rate the files record (HDF5), and the file that records it.
    pub fn sample_rate(&self) -> Option<(f64, &Path)> {
        self.series.iter().find_map(|s| s.sample_rate.map(|fs| (fs, s.path.as_path())))
    }

    /// The file detector `c` is read from.
    pub fn path(&self, c: usize) -> &Path {
        &self.series[c].path
    }

    /// Number of detectors.
    pub fn channels(&self) -> usize {
        self.series.len()
    }

    /// Samples per detector (the shortest).
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
        if t == 0 {
            return Err(DataError::Corrupt { path: self.series[c].path.clone(), msg: "no samples".into() });
        }
        let s = &mut self.series[c];
        let mut out = Vec::with_capacity(count);
        let mut at = (start + shift) % t;
        while out.len() < count {
            let n = (count - out.len()).min(t - at);
            out.extend(s.read(at, n)?);
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
