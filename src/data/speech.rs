//! Speech Commands (Warden 2018, v0.02 layout): `<word>/<speaker>_nohash_<k>.wav` at 16 kHz,
//! split by `validation_list.txt` and `testing_list.txt`; raw waveforms of up to `seq_len`
//! samples (shorter clips are zero-padded and keep their length).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
}

fn one() -> usize {
    1
}

fn seq_len() -> usize {
    16_000
}

/// Reads one 16 kHz mono 16-bit clip as samples in [-1, 1).
pub fn read_wav(path: &Path) -> Result<Vec<f32>, DataError> {
    let bad = |msg: String| DataError::Corrupt { path: path.to_path_buf(), msg };
    let mut r = hound::WavReader::open(path).map_err(|e| bad(format!("not a readable WAV file ({e})")))?;
    let spec = r.spec();
    if spec.channels != 1
        || spec.sample_rate != 16_000
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(bad(format!(
            "{} channel(s), {} Hz, {}-bit {:?}; expected mono 16 kHz 16-bit PCM",
            spec.channels, spec.sample_rate, spec.bits_per_sample, spec.sample_format
        )));
    }
    r.samples::<i16>()
        .map(|s| s.map(|v| v as f32 / 32768.0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("damaged sample data ({e})")))
}

fn list(root: &Path, name: &str) -> Result<HashSet<String>, DataError> {
    let path = root.join(name);
    let text = read_text(&path, "the Speech Commands split list")?;
    Ok(text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

/// Loads the three splits.
pub fn load(cfg: &SpeechConfig) -> Result<DataModule, DataError> {
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
                .filter(|n| !n.starts_with('_') && !n.starts_with('.'))
                .collect();
            w.sort();
            w
        }
    };
    if cfg.resolution == 0 {
        return Err(DataError::Invalid("`data.resolution` must be at least 1".into()));
    }
    let r = cfg.resolution;
    let l = cfg.seq_len.div_ceil(r);
    let mut splits: [(Vec<f32>, Vec<u32>, Vec<usize>); 3] = Default::default();
    let (mut skipped, mut first_skip) = (0usize, None);
    for (class, word) in words.iter().enumerate() {
        let dir = root.join(word);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|_| DataError::Missing { path: dir.clone(), what: format!("the folder of class `{word}`") })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")))
            .collect();
        files.sort();
        for f in files {
            let rel = format!("{word}/{}", f.file_name().expect("file").to_string_lossy());
            let samples = match read_wav(&f) {
                Ok(s) => s.into_iter().step_by(r).collect::<Vec<_>>(),
                Err(e) if cfg.skip_corrupt => {
                    skipped += 1;
                    first_skip.get_or_insert(e.to_string());
                    continue;
                }
                Err(e) => return Err(e),
            };
            let split = if test_list.contains(&rel) {
                2
            } else if val_list.contains(&rel) {
                1
            } else {
                0
            };
            let (x, y, lens) = &mut splits[split];
            let n = samples.len().min(l);
            let start = x.len();
            x.resize(start + l, 0.0);
            x[start..start + n].copy_from_slice(&samples[..n]);
            y.push(class as u32);
            lens.push(n.max(1));
        }
    }
    if skipped > 0 {
        eprintln!("data: skipped {skipped} corrupt WAV file(s); first: {}", first_skip.unwrap_or_default());
    }
    let [train, val, test] = splits.map(|(x, y, lens)| SeqData {
        inputs: x.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Classes { labels: y, n_classes: words.len() },
        lengths: lens.iter().any(|&n| n != l).then_some(lens),
        vocab: None,
    });
    for (name, s) in [("train", &train), ("validation", &val), ("test", &test)] {
        if s.is_empty() {
            return Err(DataError::Corrupt { path: root.clone(), msg: format!("the {name} split has no clips") });
        }
    }
    Ok(DataModule { train, val, test })
}
