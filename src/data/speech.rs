//! Speech Commands (Warden 2018, v0.02 layout): `<word>/<speaker>_nohash_<k>.wav` at 16 kHz,
//! split by `validation_list.txt` and `testing_list.txt`; raw waveforms of up to `seq_len`
//! samples (shorter clips are zero-padded and keep their length), or MFCC features
//! normalized with training statistics as in the S4 repo. Preparing streams clip by clip (i16
//! for raw audio), so the full 105k-clip set never has to fit in memory as f32.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::inputs::{Dtype, Encoding};
use super::mfcc::{Mfcc, MfccConfig};
use super::shard::{self, Provenance, ShardHeader, Tail};
use super::{DataError, DataModule, SeqData, Targets, data_dir, read_text};

/// The ten commands of SC10 (the S4 repo's default Speech Commands task).
pub const SC10: [&str; 10] = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"];

/// The 35 words of Speech Commands v0.02.
pub const SC35: [&str; 35] = [
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
    "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
    "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
];

/// Which words are classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WordSet {
    /// The ten commands; other words are left out.
    #[default]
    Sc10,
    /// All 35 words of v0.02.
    Sc35,
    /// Every word folder present.
    All,
}

/// What a clip becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Features {
    /// The waveform, one sample per step (16,000 steps × 1).
    #[default]
    Raw,
    /// 20 MFCCs per 100-sample hop (161 steps × 20), normalized per coefficient with the
    /// training split's mean and standard deviation.
    Mfcc,
}

/// Options of `speech_commands`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeechConfig {
    /// Dataset root (default `$DATA_PATH/speech_commands`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Class words.
    #[serde(default)]
    pub classes: WordSet,
    /// Samples per clip (16,000 = one second at 16 kHz).
    #[serde(default = "seq_len")]
    pub seq_len: usize,
    /// Skip unreadable or malformed WAV files (and report how many) instead of failing.
    #[serde(default)]
    pub skip_corrupt: bool,
    /// Keep every `resolution`-th sample (2: 8 kHz, as the S4 repo's zero-shot resampling
    /// experiment; evaluate a 16 kHz model on it with `--rate 2`).
    #[serde(default = "one")]
    pub resolution: usize,
    /// Raw waveforms or MFCC features.
    #[serde(default)]
    pub features: Features,
}

fn one() -> usize {
    1
}

fn seq_len() -> usize {
    16_000
}

/// Reads one 16 kHz mono 16-bit clip as samples in [-1, 1), at most `max_samples` of them
/// (the rest of a longer clip is not decoded).
pub fn read_wav(path: &Path, max_samples: usize) -> Result<Vec<f32>, DataError> {
    let (file, _) = crate::io::open_regular(path).map_err(|e| DataError::from_io(path, "a WAV clip", e))?;
    decode_wav(std::io::BufReader::new(file), max_samples)
        .map_err(|msg| DataError::Corrupt { path: path.to_path_buf(), msg })
}

/// Decodes a 16 kHz mono 16-bit PCM WAV stream: up to `max_samples` samples in [-1, 1).
/// Nothing is allocated from the header's sizes; a header that promises more than the stream
/// holds is an error.
pub fn decode_wav(reader: impl std::io::Read, max_samples: usize) -> Result<Vec<f32>, String> {
    let mut r = hound::WavReader::new(reader).map_err(|e| format!("not a readable WAV file ({e})"))?;
    let spec = r.spec();
    if spec.channels != 1
        || spec.sample_rate != 16_000
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(format!(
            "{} channel(s), {} Hz, {}-bit {:?}; expected mono 16 kHz 16-bit PCM",
            spec.channels, spec.sample_rate, spec.bits_per_sample, spec.sample_format
        ));
    }
    r.samples::<i16>()
        .take(max_samples)
        .map(|s| s.map(|v| v as f32 / 32768.0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("damaged sample data ({e})"))
}

/// One WAV file and where it goes.
struct Clip {
    path: PathBuf,
    class: u32,
    split: usize,
}

/// The files and split lists of a Speech Commands folder.
struct Layout {
    root: PathBuf,
    words: Vec<String>,
    clips: Vec<Clip>,
}

const SPLITS: [&str; 3] = ["train", "val", "test"];

fn list(root: &Path, name: &str) -> Result<HashSet<String>, DataError> {
    let path = root.join(name);
    let text = read_text(&path, "the Speech Commands split list")?;
    Ok(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

fn layout(cfg: &SpeechConfig) -> Result<Layout, DataError> {
    if cfg.resolution == 0 {
        return Err(DataError::Invalid("`data.resolution` must be at least 1".into()));
    }
    if cfg.seq_len == 0 {
        return Err(DataError::Invalid("`data.seq_len` must be at least 1".into()));
    }
    if cfg.features == Features::Mfcc {
        if cfg.resolution != 1 {
            return Err(DataError::Invalid(
                "`data.resolution` subsamples raw waveforms; MFCC features are computed at 16 kHz".into(),
            ));
        }
        let n_fft = MfccConfig::default().n_fft;
        if cfg.seq_len < n_fft {
            return Err(DataError::Invalid(format!("MFCC features need `data.seq_len` ≥ {n_fft} samples")));
        }
    }
    let root = data_dir(&cfg.path, "speech_commands");
    let (val_list, test_list) = (list(&root, "validation_list.txt")?, list(&root, "testing_list.txt")?);
    let words: Vec<String> = match cfg.classes {
        WordSet::Sc10 => SC10.iter().map(|s| s.to_string()).collect(),
        WordSet::Sc35 => SC35.iter().map(|s| s.to_string()).collect(),
        WordSet::All => {
            let mut w: Vec<String> = std::fs::read_dir(&root)
                .map_err(|source| DataError::Io { path: root.clone(), source })?
                .flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('_') && !n.starts_with('.') && n != "prepared")
                .collect();
            w.sort();
            w
        }
    };
    let mut clips = Vec::new();
    for (class, word) in words.iter().enumerate() {
        let dir = root.join(word);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|_| DataError::Missing { path: dir.clone(), what: format!("the folder of class `{word}`") })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
            .collect();
        files.sort();
        for path in files {
            let rel = format!("{word}/{}", path.file_name().expect("file").to_string_lossy());
            let split = if test_list.contains(&rel) {
                2
            } else if val_list.contains(&rel) {
                1
            } else {
                0
            };
            clips.push(Clip { path, class: class as u32, split });
        }
    }
    for (split, name) in SPLITS.iter().enumerate() {
        if !clips.iter().any(|c| c.split == split) {
            return Err(DataError::Corrupt { path: root.clone(), msg: format!("the {name} split has no clips") });
        }
    }
    Ok(Layout { root, words, clips })
}

/// Turns clips into rows `[L, D]` as training sees them.
struct Featurizer {
    cfg: SpeechConfig,
    mfcc: Option<Mfcc>,
    /// Per-coefficient training mean and standard deviation (MFCC only).
    norm: Option<(Vec<f64>, Vec<f64>)>,
}

impl Featurizer {
    fn new(cfg: &SpeechConfig) -> Self {
        let mfcc = (cfg.features == Features::Mfcc).then(|| Mfcc::new(MfccConfig::default()));
        Self { cfg: cfg.clone(), mfcc, norm: None }
    }

    /// Steps L and features D of a row.
    fn shape(&self) -> (usize, usize) {
        match &self.mfcc {
            None => (self.cfg.seq_len.div_ceil(self.cfg.resolution), 1),
            Some(m) => (m.frames(self.cfg.seq_len), m.config().n_mfcc),
        }
    }

    /// One clip's row and its valid steps.
    fn row(&self, path: &Path) -> Result<(Vec<f32>, usize), DataError> {
        let (l, d) = self.shape();
        let wanted = match self.mfcc {
            None => l.saturating_mul(self.cfg.resolution),
            Some(_) => self.cfg.seq_len,
        };
        let samples = read_wav(path, wanted)?;
        let Some(m) = &self.mfcc else {
            let kept: Vec<f32> = samples.into_iter().step_by(self.cfg.resolution).take(l).collect();
            let n = kept.len();
            let mut row = kept;
            row.resize(l, 0.0);
            return Ok((row, n.max(1)));
        };
        // As the S4 repo: zero-pad (or cut) to the clip length, then MFCC over all of it.
        let mut x = samples;
        x.resize(self.cfg.seq_len, 0.0);
        let mut row = m.compute(&x);
        if let Some((mean, std)) = &self.norm {
            for (i, v) in row.iter_mut().enumerate() {
                *v = ((*v as f64 - mean[i % d]) / (std[i % d] + 1e-5)) as f32;
            }
        }
        Ok((row, l))
    }

    /// Rows of `clips` in order (decoded in parallel), skipping unreadable ones when allowed.
    fn each_row(
        &self,
        clips: &[&Clip],
        skipped: &mut (usize, Option<String>),
        mut emit: impl FnMut(&Clip, &[f32], usize) -> Result<(), DataError>,
    ) -> Result<(), DataError> {
        for chunk in clips.chunks(64) {
            let rows: Vec<_> = chunk.par_iter().map(|c| self.row(&c.path)).collect();
            for (clip, r) in chunk.iter().zip(rows) {
                match r {
                    Ok((row, n)) => emit(clip, &row, n)?,
                    Err(e) if self.cfg.skip_corrupt => {
                        skipped.0 += 1;
                        skipped.1.get_or_insert(e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Sets MFCC normalization from the training clips (torch's unbiased std, like the S4 repo).
    fn fit_norm(&mut self, train: &[&Clip]) -> Result<(), DataError> {
        if self.mfcc.is_none() {
            return Ok(());
        }
        let d = self.shape().1;
        let (mut sum, mut sq, mut count) = (vec![0f64; d], vec![0f64; d], 0usize);
        self.each_row(train, &mut (0, None), |_, row, _| {
            for (i, &v) in row.iter().enumerate() {
                sum[i % d] += v as f64;
                sq[i % d] += v as f64 * v as f64;
            }
            count += row.len() / d;
            Ok(())
        })?;
        let n = count.max(2) as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let std = sq.iter().zip(&mean).map(|(q, m)| ((q - n * m * m) / (n - 1.0)).max(0.0).sqrt()).collect();
        self.norm = Some((mean, std));
        Ok(())
    }
}

fn report_skipped(skipped: &(usize, Option<String>)) {
    if skipped.0 > 0 {
        eprintln!("data: skipped {} corrupt WAV file(s); first: {}", skipped.0, skipped.1.clone().unwrap_or_default());
    }
}

fn split_clips(clips: &[Clip], split: usize) -> Vec<&Clip> {
    clips.iter().filter(|c| c.split == split).collect()
}

/// Loads the three splits.
pub fn load(cfg: &SpeechConfig) -> Result<DataModule, DataError> {
    let lay = layout(cfg)?;
    let mut feat = Featurizer::new(cfg);
    feat.fit_norm(&split_clips(&lay.clips, 0))?;
    let (l, d) = feat.shape();
    let values = (lay.clips.len() as u64).checked_mul(l as u64).and_then(|v| v.checked_mul(d as u64));
    super::check_fits(&lay.root, &format!("{} clips of {l}×{d} values", lay.clips.len()), values)?;
    let mut skipped = (0, None);
    let mut splits = Vec::new();
    for (split, name) in SPLITS.iter().enumerate() {
        let (mut x, mut y, mut lens) = (Vec::new(), Vec::new(), Vec::new());
        feat.each_row(&split_clips(&lay.clips, split), &mut skipped, |clip, row, n| {
            x.extend_from_slice(row);
            y.push(clip.class);
            lens.push(n);
            Ok(())
        })?;
        if y.is_empty() {
            return Err(DataError::Corrupt { path: lay.root.clone(), msg: format!("the {name} split has no clips") });
        }
        splits.push(SeqData {
            inputs: x.into(),
            seq_len: l,
            channels: d,
            targets: Targets::Classes { labels: y, n_classes: lay.words.len() },
            lengths: lens.iter().any(|&n| n != l).then_some(lens),
            vocab: None,
        });
    }
    report_skipped(&skipped);
    let [train, val, test]: [SeqData; 3] = splits.try_into().expect("three splits");
    Ok(DataModule { train, val, test })
}

/// Writes the three splits as shards into `folder`, a clip at a time: raw audio as i16 (the
/// WAV samples themselves), MFCC features as f32. Returns the headers in split order.
pub fn prepare(cfg: &SpeechConfig, folder: &Path, provenance: &Provenance) -> Result<Vec<ShardHeader>, DataError> {
    let lay = layout(cfg)?;
    let mut feat = Featurizer::new(cfg);
    feat.fit_norm(&split_clips(&lay.clips, 0))?;
    let (l, d) = feat.shape();
    let encoding = match cfg.features {
        Features::Raw => Encoding { dtype: Dtype::I16, divisor: 32768.0 },
        Features::Mfcc => Encoding::F32,
    };
    let mut skipped = (0, None);
    let mut headers = Vec::new();
    for (split, name) in SPLITS.iter().enumerate() {
        let path = shard::split_path(folder, name);
        let h = shard::write(&path, provenance, name, encoding, |sink| {
            let (mut y, mut lens) = (Vec::new(), Vec::new());
            feat.each_row(&split_clips(&lay.clips, split), &mut skipped, |clip, row, n| {
                sink.push(row);
                y.push(clip.class);
                lens.push(n);
                Ok(())
            })?;
            if y.is_empty() {
                return Err(DataError::Corrupt {
                    path: lay.root.clone(),
                    msg: format!("the {name} split has no clips"),
                });
            }
            Ok(Tail {
                seq_len: l,
                channels: d,
                vocab: None,
                targets: Targets::Classes { labels: y, n_classes: lay.words.len() },
                lengths: lens.iter().any(|&n| n != l).then_some(lens),
            })
        })?;
        headers.push(h);
    }
    report_skipped(&skipped);
    Ok(headers)
}
