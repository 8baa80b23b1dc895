//! LRA Pathfinder / Path-X: grayscale images read pixel by pixel (L = side²) from the official
//! layout `<path>/<difficulty>/imgs/<n>/sample_<i>.png` with labels in `<difficulty>/metadata/<n>.npy`
//! (despite the suffix, text lines `imgs/<n> sample_<i>.png <…> <label> …`). Split 80/10/10 by a
//! seeded shuffle, as the S4 repo does. [`generate`] writes new data sets in the same layout.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::pathfinder_gen::{PathfinderParams, generate_sample};
use super::{DataError, DataModule, SeqData, Targets, data_dir, split_indices};

/// Options of `pathfinder`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathfinderConfig {
    /// Root holding `<difficulty>/` (default `$DATA_PATH/pathfinder/pathfinder<resolution>`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Image side: 32, 64, 128 (Path-X) or 256.
    #[serde(default = "resolution")]
    pub resolution: usize,
    /// Difficulty folder (`curv_baseline`, `curv_contour_length_9`, `curv_contour_length_14`).
    #[serde(default = "difficulty")]
    pub difficulty: String,
    /// Fractions of all images used for validation and test.
    #[serde(default = "tenth")]
    pub val_split: f64,
    /// See `val_split`.
    #[serde(default = "tenth")]
    pub test_split: f64,
    /// Seed of the split.
    #[serde(default = "seed")]
    pub split_seed: u64,
    /// Skip unreadable images and metadata lines (and report how many) instead of failing.
    #[serde(default)]
    pub skip_corrupt: bool,
    /// Read at most this many images (null = all); for quick runs.
    #[serde(default)]
    pub limit: Option<usize>,
}

fn resolution() -> usize {
    32
}
fn difficulty() -> String {
    "curv_contour_length_14".into()
}
fn tenth() -> f64 {
    0.1
}
fn seed() -> u64 {
    42
}

/// Decodes an 8-bit grayscale PNG of `side`×`side` pixels into [0, 1] values.
pub fn read_png(path: &Path, side: usize) -> Result<Vec<f32>, DataError> {
    let bad = |msg: String| DataError::Corrupt { path: path.to_path_buf(), msg };
    let (file, _) = crate::io::open_regular(path).map_err(|e| DataError::from_io(path, "a Pathfinder image", e))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(|e| bad(format!("not a readable PNG ({e})")))?;
    // The size from the header is checked before a buffer of that size is allocated.
    let (w, h) = (reader.info().width, reader.info().height);
    if w as usize != side || h as usize != side {
        return Err(bad(format!("header fields width×height are {w}×{h} pixels, expected {side}×{side}")));
    }
    let size = reader.output_buffer_size().ok_or_else(|| bad("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(format!("damaged PNG data ({e})")))?;
    if info.width as usize != side || info.height as usize != side {
        return Err(bad(format!("{}×{} pixels, expected {side}×{side}", info.width, info.height)));
    }
    let channels = info.color_type.samples();
    // Grayscale images use the first sample; color ones are averaged like a luminance.
    Ok(buf[..info.line_size * side]
        .chunks(info.line_size)
        .flat_map(|row| {
            row[..side * channels].chunks(channels).map(|px| {
                if channels >= 3 {
                    (px[0] as f32 + px[1] as f32 + px[2] as f32) / (3.0 * 255.0)
                } else {
                    px[0] as f32 / 255.0
                }
            })
        })
        .collect())
}

/// Loads every image listed in the metadata files and splits them.
pub fn load(cfg: &PathfinderConfig) -> Result<DataModule, DataError> {
    super::check_fraction("data.val_split", cfg.val_split)?;
    super::check_fraction("data.test_split", cfg.test_split)?;
    if !(1..=1 << 12).contains(&cfg.resolution) {
        return Err(DataError::Invalid(format!("`data.resolution` must be in 1..=4096, got {}", cfg.resolution)));
    }
    let root = match &cfg.path {
        Some(p) => p.clone(),
        None => data_dir(&None, "pathfinder").join(format!("pathfinder{}", cfg.resolution)),
    }
    .join(&cfg.difficulty);
    let meta_dir = root.join("metadata");
    let mut metas: Vec<PathBuf> = std::fs::read_dir(&meta_dir)
        .map_err(|_| DataError::Missing { path: meta_dir.clone(), what: "the Pathfinder metadata folder".into() })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    // Numeric order of `<n>.npy`, then by name.
    metas.sort_by_key(|p| (p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok()), p.clone()));
    let side = cfg.resolution;
    let (mut inputs, mut labels, mut skipped, mut first_skip) = (Vec::new(), Vec::new(), 0usize, None::<String>);
    'files: for meta in &metas {
        let text = super::read_text(meta, "a Pathfinder metadata file")?;
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            if cfg.limit.is_some_and(|n| labels.len() >= n) {
                break 'files;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let parsed = match (fields.len() >= 4, fields.get(3).and_then(|v| v.parse::<u32>().ok())) {
                (true, Some(label)) if label <= 1 => {
                    let img = root.join(fields[0]).join(fields[1]);
                    read_png(&img, side).map(|px| (px, label))
                }
                _ => Err(DataError::Corrupt {
                    path: meta.clone(),
                    msg: format!("line {}: expected `imgs/<n> sample_<i>.png <…> <label 0|1> …`, got `{line}`", i + 1),
                }),
            };
            match parsed {
                Ok((px, label)) => {
                    inputs.extend(px);
                    labels.push(label);
                }
                Err(e) if cfg.skip_corrupt => {
                    skipped += 1;
                    first_skip.get_or_insert(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
    }
    if skipped > 0 {
        eprintln!("data: skipped {skipped} corrupt Pathfinder sample(s); first: {}", first_skip.unwrap_or_default());
    }
    if labels.is_empty() {
        return Err(DataError::Corrupt { path: meta_dir, msg: "no samples listed".into() });
    }
    let all = SeqData::dense(inputs, side * side, 1, Targets::Classes { labels, n_classes: 2 });
    let (rest, test) = split_indices(all.len(), cfg.test_split, cfg.split_seed);
    let rest = all.subset(&rest);
    let frac = cfg.val_split / (1.0 - cfg.test_split).max(1e-9);
    let (tr, va) = split_indices(rest.len(), frac.min(0.999), cfg.split_seed.wrapping_add(1));
    Ok(DataModule { train: rest.subset(&tr), val: rest.subset(&va), test: all.subset(&test) })
}

/// Settings of `wavessm data generate pathfinder`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Image side: 32, 64, 128 or 256.
    pub resolution: usize,
    /// Number of images.
    pub n: usize,
    /// Paddles per target contour (14: LRA's `curv_contour_length_14`).
    pub contour_length: usize,
    /// Images per `imgs/<n>/` folder and metadata file.
    pub per_folder: usize,
    /// Random seed (image `i` depends only on the seed and `i`).
    pub seed: u64,
}

fn write_png(path: &Path, side: usize, pixels: &[u8]) -> Result<(), DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut enc = png::Encoder::new(BufWriter::new(file), side as u32, side as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| io(std::io::Error::other(e)))?;
    writer.write_image_data(pixels).map_err(|e| io(std::io::Error::other(e)))?;
    writer.finish().map_err(|e| io(std::io::Error::other(e)))
}

/// Generates `n` images into `<out>/<difficulty>/imgs/<b>/sample_<i>.png` with one metadata
/// file `<difficulty>/metadata/<b>.npy` per folder, lines as the official script writes them
/// (`imgs/<b> sample_<i>.png <i> <label> <continuity> <contour length> <distractor length>
/// <paddle length> <thickness> <margin> 1`). Returns the difficulty folder and how many
/// images are positive.
pub fn generate(opts: &GenerateOptions, out: &Path) -> Result<(PathBuf, usize), DataError> {
    let p = PathfinderParams::lra(opts.resolution, opts.contour_length)?;
    if opts.n == 0 || opts.per_folder == 0 {
        return Err(DataError::Invalid("need at least one image and one image per folder".into()));
    }
    let root = out.join(p.difficulty());
    let meta_dir = root.join("metadata");
    let mut positives = 0;
    for (b, start) in (0..opts.n).step_by(opts.per_folder).enumerate() {
        let count = opts.per_folder.min(opts.n - start);
        let dir = root.join("imgs").join(b.to_string());
        for d in [&dir, &meta_dir] {
            std::fs::create_dir_all(d).map_err(|source| DataError::Io { path: d.clone(), source })?;
        }
        // Images are independent given (seed, index), so the order of work does not matter.
        let rows = (0..count)
            .into_par_iter()
            .map(|i| {
                let s = generate_sample(&p, opts.seed, (start + i) as u64)?;
                write_png(&dir.join(format!("sample_{i}.png")), p.side, &s.pixels)?;
                Ok((s.label, s.margin))
            })
            .collect::<Result<Vec<_>, DataError>>()?;
        let mut text = String::new();
        for (i, (label, margin)) in rows.iter().enumerate() {
            positives += *label as usize;
            text.push_str(&format!(
                "imgs/{b} sample_{i}.png {i} {label} {:?} {} {} {} {:?} {margin} 1\n",
                p.continuity, p.contour_length, p.distractor_length, p.paddle_length, p.thickness
            ));
        }
        let path = meta_dir.join(format!("{b}.npy"));
        crate::io::write_atomic(&path, |f| f.write_all(text.as_bytes()))
            .map_err(|e| DataError::Io { path: path.clone(), source: std::io::Error::other(e) })?;
    }
    Ok((root, positives))
}
