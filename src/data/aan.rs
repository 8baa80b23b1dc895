//! LRA Retrieval (ACL Anthology Network): does one paper cite the other? Reads
//! `new_aan_pairs.{train,eval,test}.tsv` (no header; `label id1 id2 text1 text2`), each document
//! byte level up to `max_len` tokens. A sample holds both documents as two token channels
//! `[L, 2]`, with two lengths (document 1, document 2) per sample.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::text_folder::BYTE_VOCAB;
use super::{DataError, DataModule, SeqData, Targets, data_dir, read_text};

/// Options of `aan`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AanConfig {
    /// Folder with the three TSV files (default `$DATA_PATH/aan`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Byte tokens per document.
    #[serde(default = "max_len")]
    pub max_len: usize,
}

fn max_len() -> usize {
    4000
}

fn read_split(path: &Path, l: usize) -> Result<SeqData, DataError> {
    parse_pairs(&read_text(path, "LRA AAN pairs TSV file")?, path, l)
}

/// Parses the text of an LRA AAN pairs file (`path` names it in errors), each document cut or
/// padded to `l` bytes.
pub fn parse_pairs(text: &str, path: &Path, l: usize) -> Result<SeqData, DataError> {
    let rows = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let values = rows.checked_mul(l as u64).and_then(|v| v.checked_mul(2));
    super::check_fits(path, &format!("{rows} document pairs padded to {l} bytes"), values)?;
    let (mut inputs, mut labels, mut lengths) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |msg: String| DataError::Corrupt { path: path.to_path_buf(), msg: format!("line {}: {msg}", i + 1) };
        let cols: Vec<&str> = line.splitn(5, '\t').collect();
        if cols.len() != 5 {
            return Err(bad(format!("{} tab-separated columns; expected label, id1, id2, text1, text2", cols.len())));
        }
        let label = match cols[0].trim().parse::<f64>() {
            Ok(v) if v == 0.0 || v == 1.0 => v as u32,
            _ => return Err(bad(format!("label `{}` is not 0 or 1", cols[0]))),
        };
        let start = inputs.len();
        inputs.resize(start + 2 * l, 0.0);
        for (d, doc) in [cols[3], cols[4]].iter().enumerate() {
            let bytes = doc.as_bytes();
            let n = bytes.len().min(l);
            for (t, b) in bytes[..n].iter().enumerate() {
                inputs[start + 2 * t + d] = *b as f32 + 1.0;
            }
            lengths.push(n.max(1));
        }
        labels.push(label);
    }
    if labels.is_empty() {
        return Err(DataError::Corrupt { path: path.to_path_buf(), msg: "no pairs".into() });
    }
    Ok(SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 2,
        targets: Targets::Classes { labels, n_classes: 2 },
        lengths: Some(lengths),
        vocab: Some(BYTE_VOCAB),
    })
}

/// Loads the three splits.
pub fn load(cfg: &AanConfig) -> Result<DataModule, DataError> {
    if cfg.max_len == 0 {
        return Err(DataError::Invalid("`data.max_len` must be at least 1".into()));
    }
    let dir = data_dir(&cfg.path, "aan");
    let split = |name: &str| read_split(&dir.join(format!("new_aan_pairs.{name}.tsv")), cfg.max_len);
    Ok(DataModule { train: split("train")?, val: split("eval")?, test: split("test")? })
}
