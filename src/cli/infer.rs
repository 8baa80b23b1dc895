//! `wavessm infer`: a trained detector over a long multi-detector strain series, as aframe
//! deploys it: whitened chunk by chunk, one window every `--stride`, the detection statistic
//! (the class-1 log-odds) written as a time series; `--timeslide` slides the other detectors
//! against the first to build a background distribution.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;

use super::ConfigArgs;
use crate::data::DataSpec;
use crate::data::gw::stream::{StrainSource, StreamConfig, for_each_chunk};
use crate::experiment::ExperimentConfig;
use crate::model::Model;

/// Options of `infer`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// Checkpoint of a detector (binary classification of [L, C] windows).
    #[arg(long, value_name = "FILE")]
    pub ckpt: PathBuf,
    /// Strain: a `.npy` [C, T], or a folder with `<IFO>.npy` [T] per detector.
    #[arg(long, value_name = "PATH")]
    pub input: PathBuf,
    /// Sample rate of the input, Hz (default: the checkpoint's `data.sample_rate`, else 2048).
    #[arg(long)]
    pub sample_rate: Option<f64>,
    /// Seconds between windows (`0.125s` or `0.125`).
    #[arg(long, default_value = "0.125s", value_parser = seconds)]
    pub stride: f64,
    /// Seconds of strain before each chunk used for its PSD (aframe's inference uses 64).
    #[arg(long, default_value = "64s", value_parser = seconds)]
    pub psd_length: f64,
    /// Whitening filter length, s (default: the checkpoint's `data.fduration`, else 1).
    #[arg(long, value_parser = seconds)]
    pub fduration: Option<f64>,
    /// Highpass, Hz (default: the checkpoint's `data.highpass`, else 32; 0 for none).
    #[arg(long)]
    pub highpass: Option<f64>,
    /// Slide detectors after the first by this many seconds (circularly) for background.
    #[arg(long, value_parser = seconds)]
    pub timeslide: Option<f64>,
    /// Number of slides: DT, 2·DT, … (with `--timeslide`).
    #[arg(long, default_value_t = 1)]
    pub slides: usize,
    /// Windows per chunk: bounds memory.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Output: `.csv` (time,shift,stat) or `.npy` [n, 3] float64.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Overrides applied to the checkpoint's config.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Parses `1s`, `0.125s` or `0.125` as seconds.
fn seconds(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s.trim().trim_end_matches('s').parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(format!("`{s}` must be a finite number of seconds ≥ 0")) }
}

/// A numeric option of the checkpoint's data section, if it has it.
fn data_opt(cfg: &ExperimentConfig, key: &str) -> Option<f64> {
    cfg.data.options.get(key).and_then(serde_yaml::Value::as_f64)
}

/// The stream geometry from the options and the checkpoint, checked.
fn geometry(a: &InferArgs, cfg: &ExperimentConfig, window: usize) -> Result<StreamConfig> {
    let fs = a.sample_rate.or_else(|| data_opt(cfg, "sample_rate")).unwrap_or(2048.0);
    if !(fs.is_finite() && (1.0..=1e6).contains(&fs)) {
        bail!("--sample-rate must be in [1, 1e6] Hz, got {fs}");
    }
    let fduration = a.fduration.or_else(|| data_opt(cfg, "fduration")).unwrap_or(1.0);
    if fduration * fs < 2.0 {
        bail!("--fduration {fduration} s must span at least 2 samples at {fs} Hz (the whitening filter's two halves)");
    }
    let highpass = match a.highpass.or_else(|| data_opt(cfg, "highpass")).unwrap_or(32.0) {
        0.0 => None,
        h if h.is_finite() && h > 0.0 && h < fs / 2.0 => Some(h),
        h => bail!("--highpass must be in (0, {}) Hz or 0, got {h}", fs / 2.0),
    };
    let n = |s: f64| (s * fs).round() as usize;
    let (stride, psd_length) = (n(a.stride), n(a.psd_length));
    if stride == 0 {
        bail!("--stride {} s is below one sample at {fs} Hz", a.stride);
    }
    if !(1..=65536).contains(&a.batch) {
        bail!("--batch must be in 1..=65536, got {}", a.batch);
    }
    if fduration > 3600.0 || a.psd_length > 86400.0 {
        bail!("--fduration must be at most 3600 s and --psd-length at most 86400 s");
    }
    let nperseg = window + n(fduration);
    if psd_length < nperseg {
        bail!(
            "--psd-length {} s is shorter than one Welch segment (window + fduration = {} s)",
            a.psd_length,
            nperseg as f64 / fs
        );
    }
    Ok(StreamConfig { fs, window, stride, fduration, psd_length, nperseg, highpass, chunk: a.batch })
}

/// The detection statistic of each window: the class-1 log-odds (or the single logit).
fn statistic(model: &Model, x: Vec<f32>, n: usize, window: usize, c: usize, device: &burn::tensor::Device) -> Vec<f64> {
    let x = Tensor::<3>::from_data(TensorData::new(x, [n, window, c]), device);
    let out = model.forward(x, None); // [n, 1, K]
    let k = out.dims()[2];
    let v: Vec<f32> = out.reshape([n, k]).try_into_vec_as::<f32>().expect("f32 outputs");
    v.chunks(k).map(|r| if k >= 2 { (r[1] - r[0]) as f64 } else { r[0] as f64 }).collect()
}

/// Runs `wavessm infer`.
pub fn run(a: &InferArgs) -> Result<()> {
    let (cfg, setup, model) = super::commands::load_for_eval(&a.ckpt, &a.config, 1.0)?;
    if cfg.task.name != "classification" || setup.d_output > 2 {
        bail!(
            "{}: infer runs a binary detector; this checkpoint is task `{}` with {} outputs",
            a.ckpt.display(),
            cfg.task.name,
            setup.d_output
        );
    }
    let window = setup.data.train.seq_len;
    let ifos: Vec<String> = match DataSpec::from_named(&cfg.data, "data")?.to_named().options.get("ifos") {
        Some(v) => serde_yaml::from_value(v.clone())?,
        None => vec!["H1".into(), "L1".into()],
    };
    let mut src = StrainSource::open(&a.input, &ifos)?;
    if src.channels() != setup.data.train.channels {
        bail!("{}: {} detectors, the model takes {}", a.input.display(), src.channels(), setup.data.train.channels);
    }
    let g = geometry(a, &cfg, window)?;
    if g.windows(src.len()) == 0 {
        bail!(
            "{}: {} samples are shorter than psd_length + fduration + window = {:.3} s at {} Hz",
            a.input.display(),
            src.len(),
            (g.psd_length + g.window) as f64 / g.fs + g.fduration,
            g.fs
        );
    }
    let shifts: Vec<f64> = match a.timeslide {
        None => vec![0.0],
        Some(dt) if dt > 0.0 && (1..=10_000).contains(&a.slides) => (1..=a.slides).map(|k| k as f64 * dt).collect(),
        Some(_) => bail!("--timeslide must be > 0 s and --slides in 1..=10000"),
    };
    let t0 = std::time::Instant::now();
    let rows = scan(&model, &mut src, &g, &shifts, &setup.device)?;
    let secs = t0.elapsed().as_secs_f64();
    write(&a.out, &rows)?;
    summary(&rows, shifts.len(), src.len() as f64 / g.fs, secs, &a.out);
    Ok(())
}

/// `(time, shift, stat)` of every window of `src` for each time slide (seconds) in `shifts`.
pub(super) fn scan(
    model: &Model,
    src: &mut StrainSource,
    g: &StreamConfig,
    shifts: &[f64],
    device: &burn::tensor::Device,
) -> Result<Vec<[f64; 3]>> {
    let mut rows: Vec<[f64; 3]> = Vec::new();
    let c = src.channels();
    let len = src.len();
    for &shift in shifts {
        let slide = (shift * g.fs).round() as usize % len;
        for_each_chunk(src, g, slide, |chunk| -> Result<()> {
            let stat = statistic(model, chunk.x, chunk.n, g.window, c, device);
            rows.extend(chunk.times.iter().zip(stat).map(|(t, s)| [*t, shift, s]));
            Ok(())
        })?;
    }
    Ok(rows)
}

/// Writes the rows as CSV or `.npy`.
fn write(out: &Path, rows: &[[f64; 3]]) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("npy") => {
            let flat: Vec<f64> = rows.iter().flatten().copied().collect();
            crate::data::npy_format::write_npy_f64(out, &[rows.len(), 3], &flat)?;
        }
        Some("csv") => {
            let mut text = String::from("time,shift,stat\n");
            for r in rows {
                text.push_str(&format!("{:.6},{},{:.6}\n", r[0], r[1], r[2]));
            }
            crate::io::write_atomic(out, |f| std::io::Write::write_all(f, text.as_bytes()))?;
        }
        _ => bail!("--out {}: use a .csv or .npy file", out.display()),
    }
    Ok(())
}

/// Prints throughput and the statistic's distribution.
fn summary(rows: &[[f64; 3]], slides: usize, secs_strain: f64, secs: f64, out: &Path) {
    let mut s: Vec<f64> = rows.iter().map(|r| r[2]).collect();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    println!(
        "infer: {} windows over {slides} × {secs_strain:.1} s of strain in {secs:.2} s ({:.1} s of strain/s); \
         stat median {:.3}, p99 {:.3}, p99.9 {:.3}, max {:.3} -> {}",
        rows.len(),
        slides as f64 * secs_strain / secs,
        q(0.5),
        q(0.99),
        q(0.999),
        s[s.len() - 1],
        out.display()
    );
}
