//! A checked reader of NumPy's `.npy` format (versions 1.0–3.0): the magic, the header dict
//! (`descr`, `fortran_order`, `shape`) and a payload whose size is checked against the shape
//! before anything is allocated. Every fault names the file and the header field.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DataError;

/// Element types `.npy` files may hold here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyType {
    /// IEEE float of 4 or 8 bytes.
    Float(usize),
    /// Signed integer of 1, 2, 4 or 8 bytes.
    Int(usize),
    /// Unsigned integer of 1, 2, 4 or 8 bytes.
    Uint(usize),
    /// NumPy's bool (one byte).
    Bool,
}

impl NpyType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            NpyType::Float(n) | NpyType::Int(n) | NpyType::Uint(n) => n,
            NpyType::Bool => 1,
        }
    }

    /// Whether the values are integers (class labels may come from them directly).
    pub fn is_integer(self) -> bool {
        !matches!(self, NpyType::Float(_))
    }
}

/// One array read from a `.npy` file: its shape and its raw little-endian payload.
#[derive(Debug, Clone)]
pub struct NpyArray {
    /// The file it came from (for errors about its values).
    pub path: PathBuf,
    /// Element type.
    pub dtype: NpyType,
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// `product(shape) * dtype.size()` bytes, little-endian.
    bytes: Vec<u8>,
}

/// The largest header NumPy writes is far below this; a bigger one is a corrupt length field.
const MAX_HEADER: usize = 1 << 20;

fn corrupt(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), msg: msg.into() }
}

/// Parses `descr` (`'<f4'`, `'|u1'`, `'>i8'`, …) into a type and whether it is big-endian.
fn parse_descr(path: &Path, d: &str) -> Result<(NpyType, bool), DataError> {
    let bad = || {
        corrupt(
            path,
            format!("header field `descr`: unsupported dtype `{d}` (float32/64, int8–64, uint8–64 or bool expected)"),
        )
    };
    let mut chars = d.chars();
    let order = chars.next().ok_or_else(bad)?;
    let big = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(bad()),
    };
    let kind = chars.next().ok_or_else(bad)?;
    let n: usize = chars.as_str().parse().map_err(|_| bad())?;
    let t = match (kind, n) {
        ('f', 4 | 8) => NpyType::Float(n),
        ('i', 1 | 2 | 4 | 8) => NpyType::Int(n),
        ('u', 1 | 2 | 4 | 8) => NpyType::Uint(n),
        ('b', 1) => NpyType::Bool,
        _ => return Err(bad()),
    };
    Ok((t, big && n > 1))
}

/// The value of `'key': …` in a header dict, up to the next top-level comma or the closing brace.
fn field<'a>(path: &Path, header: &'a str, key: &str) -> Result<&'a str, DataError> {
    let pat = format!("'{key}'");
    let at = header
        .find(&pat)
        .or_else(|| header.find(&format!("\"{key}\"")))
        .ok_or_else(|| corrupt(path, format!("header field `{key}` is missing")))?;
    let rest = header[at + pat.len()..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| corrupt(path, format!("header field `{key}`: no `:` after the key")))?
        .trim_start();
    let end = if rest.starts_with('(') { rest.find(')').map(|i| i + 1) } else { rest.find([',', '}']) };
    let end = end.ok_or_else(|| corrupt(path, format!("header field `{key}`: value is not terminated")))?;
    Ok(rest[..end].trim())
}

/// Parses the header dict into (type, big-endian, fortran order, shape).
fn parse_header(path: &Path, h: &str) -> Result<(NpyType, bool, bool, Vec<usize>), DataError> {
    let descr = field(path, h, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let (dtype, big) = parse_descr(path, descr)?;
    let fortran = match field(path, h, "fortran_order")? {
        "False" => false,
        "True" => true,
        v => return Err(corrupt(path, format!("header field `fortran_order`: `{v}` is not True or False"))),
    };
    let shape_s = field(path, h, "shape")?;
    let inner = shape_s
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| corrupt(path, format!("header field `shape`: `{shape_s}` is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| corrupt(path, format!("header field `shape`: `{s}` is not a size")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((dtype, big, fortran, shape))
}

/// The checked header of a `.npy` file: element type, byte order, shape and where the payload
/// starts (its size is checked against the file's).
#[derive(Debug, Clone)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: NpyType,
    /// Whether multi-byte elements are big-endian.
    pub big: bool,
    /// Shape, C order.
    pub shape: Vec<usize>,
    /// Byte offset of the payload.
    pub offset: u64,
}

/// Opens a `.npy` file and checks its header against the file size, without reading the payload.
pub fn open_npy(path: &Path) -> Result<(NpyHeader, std::fs::File), DataError> {
    let mut f = std::fs::File::open(path).map_err(|e| DataError::from_io(path, "NumPy `.npy` array", e))?;
    let io = |e: std::io::Error| DataError::Io { path: path.to_path_buf(), source: e };
    let file_len = f.metadata().map_err(io)?.len();
    let mut pre = [0u8; 8];
    f.read_exact(&mut pre).map_err(|_| corrupt(path, "shorter than a `.npy` preamble (8 bytes)"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(corrupt(path, "magic: not a NumPy `.npy` file (no `\\x93NUMPY` at the start)"));
    }
    let (major, minor) = (pre[6], pre[7]);
    let (hlen, pre_len) = match major {
        1 => {
            let mut b = [0u8; 2];
            f.read_exact(&mut b).map_err(|_| corrupt(path, "header length: truncated"))?;
            (u16::from_le_bytes(b) as usize, 10usize)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            f.read_exact(&mut b).map_err(|_| corrupt(path, "header length: truncated"))?;
            (u32::from_le_bytes(b) as usize, 12usize)
        }
        _ => return Err(corrupt(path, format!("version: {major}.{minor} is not a known `.npy` version (1–3)"))),
    };
    if hlen > MAX_HEADER || (pre_len + hlen) as u64 > file_len {
        return Err(corrupt(path, format!("header length: {hlen} bytes do not fit in a {file_len}-byte file")));
    }
    let mut hbytes = vec![0u8; hlen];
    f.read_exact(&mut hbytes).map_err(|_| corrupt(path, "header: truncated"))?;
    let header = String::from_utf8(hbytes).map_err(|_| corrupt(path, "header: not text"))?;
    let (dtype, big, fortran, shape) = parse_header(path, &header)?;
    if fortran {
        return Err(corrupt(
            path,
            "header field `fortran_order`: True is not supported; save with np.ascontiguousarray",
        ));
    }
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let have = file_len - (pre_len + hlen) as u64;
    if count.and_then(|c| c.checked_mul(dtype.size())).is_none_or(|w| w as u64 != have) {
        return Err(corrupt(
            path,
            format!(
                "header field `shape`: {shape:?} of {} bytes each needs {} payload bytes, the file has {have}",
                dtype.size(),
                count.and_then(|c| c.checked_mul(dtype.size())).map_or("too many".into(), |w| w.to_string())
            ),
        ));
    }
    Ok((NpyHeader { dtype, big, shape, offset: (pre_len + hlen) as u64 }, f))
}

/// Reads a whole `.npy` file, checking the header and the payload size before allocating it.
pub fn read_npy(path: &Path) -> Result<NpyArray, DataError> {
    let (h, mut f) = open_npy(path)?;
    let n = h.shape.iter().product::<usize>() * h.dtype.size();
    read_payload(path, &h, &mut f, 0, n / h.dtype.size())
}

/// Elements `start..start + count` of an opened file's payload, as an array of shape [count].
pub fn read_payload(
    path: &Path,
    h: &NpyHeader,
    f: &mut std::fs::File,
    start: usize,
    count: usize,
) -> Result<NpyArray, DataError> {
    use std::io::{Seek, SeekFrom};
    let io = |e: std::io::Error| DataError::Io { path: path.to_path_buf(), source: e };
    let size = h.dtype.size();
    f.seek(SeekFrom::Start(h.offset + (start * size) as u64)).map_err(io)?;
    let mut bytes = vec![0u8; count * size];
    f.read_exact(&mut bytes).map_err(io)?;
    if h.big {
        for chunk in bytes.chunks_mut(size) {
            chunk.reverse();
        }
    }
    let shape = if start == 0 && count == h.shape.iter().product::<usize>() { h.shape.clone() } else { vec![count] };
    Ok(NpyArray { path: path.to_path_buf(), dtype: h.dtype, shape, bytes })
}

impl NpyArray {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.dtype.size()
    }

    /// Whether the array has no element.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Element `i` as f64 (exact for every stored type except 64-bit integers beyond 2^53).
    fn get(&self, i: usize) -> f64 {
        let n = self.dtype.size();
        let b = &self.bytes[i * n..(i + 1) * n];
        let mut w = [0u8; 8];
        w[..n].copy_from_slice(b);
        match self.dtype {
            NpyType::Float(4) => f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
            NpyType::Float(_) => f64::from_le_bytes(w),
            NpyType::Int(n) => {
                // Sign-extend from n bytes.
                let shift = 64 - 8 * n as u32;
                ((i64::from_le_bytes(w) << shift) >> shift) as f64
            }
            NpyType::Uint(_) | NpyType::Bool => u64::from_le_bytes(w) as f64,
        }
    }

    /// All values as f64, refusing NaN and infinities (naming the flat index).
    pub fn to_f64(&self) -> Result<Vec<f64>, DataError> {
        self.to_f64_at(0)
    }

    /// [`Self::to_f64`] for a slice that starts at flat index `base` of its file.
    pub fn to_f64_at(&self, base: usize) -> Result<Vec<f64>, DataError> {
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let v = self.get(i);
            if !v.is_finite() {
                return Err(corrupt(&self.path, format!("value {v} at flat index {}: NaN or infinity", base + i)));
            }
            out.push(v);
        }
        Ok(out)
    }

    /// All values as f32 (rounded), refusing NaN and values that are not finite in f32.
    pub fn to_f32(&self) -> Result<Vec<f32>, DataError> {
        let mut out = Vec::with_capacity(self.len());
        for i in 0..self.len() {
            let v = self.get(i) as f32;
            if !v.is_finite() {
                return Err(corrupt(
                    &self.path,
                    format!("value {} at flat index {i}: NaN or infinity (in float32)", self.get(i)),
                ));
            }
            out.push(v);
        }
        Ok(out)
    }
}

/// Writes a little-endian float32 `.npy` (version 1.0), as NumPy would (tests and tools).
pub fn write_npy_f32(path: &Path, shape: &[usize], values: &[f32]) -> std::io::Result<()> {
    let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, npy_bytes("<f4", shape, &payload))
}

/// Writes a little-endian float64 `.npy` (version 1.0) atomically.
pub fn write_npy_f64(path: &Path, shape: &[usize], values: &[f64]) -> Result<(), crate::io::FileError> {
    let payload: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::io::write_atomic(path, |f| std::io::Write::write_all(f, &npy_bytes("<f8", shape, &payload)))
}

/// A version-1.0 `.npy` file of `descr` elements with the given little-endian payload.
fn npy_bytes(descr: &str, shape: &[usize], payload: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad so that the payload starts on a 64-byte boundary, ending the header with '\n'.
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + payload.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(payload);
    out
}
