//! The IDX format of MNIST (LeCun et al.): big-endian header, then unsigned bytes; raw or gzip.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DataError;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<u8>,
}

/// Finds `<stem>.gz` or `<stem>` (also the `stem` with `-idx` written `.idx`) in `dir`.
pub fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    let alt = stem.replacen("-idx", ".idx", 1);
    for name in [format!("{stem}.gz"), stem.to_string(), format!("{alt}.gz"), alt.clone()] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::Missing {
        path: dir.join(format!("{stem}.gz")),
        what: format!("MNIST IDX file `{stem}` or `{stem}.gz`"),
    })
}

/// Reads an IDX file of `expected_rank` dimensions, checking magic, sizes and length.
pub fn read(path: &Path, expected_rank: usize) -> Result<Idx, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    let corrupt = |msg: String| DataError::Corrupt { path: path.to_path_buf(), msg };
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| corrupt(format!("gzip stream is damaged or truncated ({e})")))?;
        out
    } else {
        raw
    };
    parse(&bytes, expected_rank).map_err(corrupt)
}

/// Parses IDX bytes (unsigned-byte type only).
pub fn parse(bytes: &[u8], expected_rank: usize) -> Result<Idx, String> {
    if bytes.len() < 4 {
        return Err(format!("only {} bytes; an IDX header has at least 4", bytes.len()));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!("bad magic {:02x} {:02x}; IDX files start with 00 00", bytes[0], bytes[1]));
    }
    if bytes[2] != 0x08 {
        return Err(format!("element type 0x{:02x}; expected 0x08 (unsigned byte)", bytes[2]));
    }
    let rank = bytes[3] as usize;
    if rank != expected_rank {
        return Err(format!("{rank} dimensions; expected {expected_rank}"));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!("truncated header: {} bytes, need {header}", bytes.len()));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize)
        .collect();
    let n: usize = dims.iter().product();
    let body = &bytes[header..];
    if body.len() != n {
        return Err(format!(
            "header promises {} = {n} bytes of data, file has {}{}",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×"),
            body.len(),
            if body.len() < n { " (truncated)" } else { " (trailing bytes)" }
        ));
    }
    Ok(Idx { dims, data: body.to_vec() })
}

/// Encodes an IDX file (for tests and tools).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&(*d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}
