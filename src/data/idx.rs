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

/// The largest IDX body read (1 GiB; MNIST's training images are 47 MB).
pub const MAX_IDX_BYTES: u64 = 1 << 30;

/// Reads an IDX file of `expected_rank` dimensions (raw, or gzip with any number of members),
/// checking magic, sizes and length.
pub fn read(path: &Path, expected_rank: usize) -> Result<Idx, DataError> {
    let raw = super::read_bytes(path, "an MNIST IDX file")?;
    from_bytes(&raw, expected_rank).map_err(|msg| DataError::Corrupt { path: path.to_path_buf(), msg })
}

/// Decodes the bytes of an IDX file, raw or gzip (with any number of members).
pub fn from_bytes(raw: &[u8], expected_rank: usize) -> Result<Idx, String> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        // `gzip a b > c` and parallel compressors write several members: read them all.
        decode(flate2::read::MultiGzDecoder::new(raw), expected_rank, MAX_IDX_BYTES).map_err(|e| match e {
            Fault::Format(m) => m,
            Fault::Stream(e) => format!("gzip stream is damaged or truncated ({e})"),
        })
    } else {
        parse(raw, expected_rank)
    }
}

/// Why decoding stopped.
pub enum Fault {
    /// The IDX content is wrong.
    Format(String),
    /// The underlying stream failed (a damaged gzip member).
    Stream(std::io::Error),
}

/// Parses IDX bytes (unsigned-byte type only).
pub fn parse(bytes: &[u8], expected_rank: usize) -> Result<Idx, String> {
    decode(bytes, expected_rank, MAX_IDX_BYTES).map_err(|e| match e {
        Fault::Format(m) => m,
        Fault::Stream(e) => e.to_string(),
    })
}

/// The name of dimension `i` of a rank-`rank` IDX array, for messages.
fn dim_name(rank: usize, i: usize) -> String {
    let what = match (rank, i) {
        (1, 0) => "items",
        (3, 0) => "images",
        (3, 1) => "rows",
        (3, 2) => "columns",
        _ => return format!("dimension {i}"),
    };
    format!("dimension {i} ({what})")
}

/// Reads an IDX array from a stream: the header first, so the body's size is known (checked
/// for overflow and against `cap`) before anything is allocated for it.
pub fn decode(mut r: impl Read, expected_rank: usize, cap: u64) -> Result<Idx, Fault> {
    let fmt = |m: String| Fault::Format(m);
    let mut head = [0u8; 4];
    let got = read_up_to(&mut r, &mut head).map_err(Fault::Stream)?;
    if got < 4 {
        return Err(fmt(format!("only {got} bytes; an IDX header has at least 4")));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(fmt(format!("bad magic {:02x} {:02x}; IDX files start with 00 00", head[0], head[1])));
    }
    if head[2] != 0x08 {
        return Err(fmt(format!("element type 0x{:02x}; expected 0x08 (unsigned byte)", head[2])));
    }
    let rank = head[3] as usize;
    if rank != expected_rank {
        return Err(fmt(format!("{rank} dimensions; expected {expected_rank}")));
    }
    let mut dims_raw = vec![0u8; 4 * rank];
    let got = read_up_to(&mut r, &mut dims_raw).map_err(Fault::Stream)?;
    if got < dims_raw.len() {
        return Err(fmt(format!("truncated header: {} bytes, need {}", 4 + got, 4 + 4 * rank)));
    }
    let dims: Vec<usize> =
        dims_raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    if let Some(i) = dims.iter().position(|&d| d == 0) {
        return Err(fmt(format!("header field {} is 0", dim_name(rank, i))));
    }
    let shape = dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("×");
    let n = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n <= cap)
        .ok_or_else(|| fmt(format!("header sizes {shape} exceed the {cap}-byte limit of an IDX body")))?;
    let mut body = Vec::new();
    r.take(n + 1).read_to_end(&mut body).map_err(Fault::Stream)?;
    if body.len() as u64 != n {
        return Err(fmt(format!(
            "header promises {shape} = {n} bytes of data, file has {}{}",
            if (body.len() as u64) < n { body.len().to_string() } else { "more".into() },
            if (body.len() as u64) < n { " (truncated)" } else { " (trailing bytes)" }
        )));
    }
    Ok(Idx { dims, data: body })
}

/// Fills as much of `buf` as the stream has; the count read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
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
