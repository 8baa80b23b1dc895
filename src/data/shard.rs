//! Prepared shard files (`*.wsd`): one split of a dataset, tokenized and typed, read back by
//! memory-mapping so no epoch parses text, PNG or WAV again.
//!
//! Layout, little endian:
//!
//! ```text
//!  0  magic `WAVESSMD`          16  u64 header offset
//!  8  u32 format version        24  u64 header length
//! 12  u32 CRC32 of the header   32  zero padding to 64
//! 64  inputs   [n, L, D] in the header's encoding        (each section starts at a multiple
//!     targets  u32 labels / f32 values / u32 token ids    of 64 and has its own CRC32)
//!     lengths  u32 per sample (two per sample for pairs), when lengths vary
//!     header   JSON: dataset, split, the data config it was made from, raw-file fingerprint,
//!              shapes, and each section's offset, size and checksum
//! ```
//!
//! The header comes last because inputs are streamed (a clip at a time) before their count is
//! known; the preamble pointing at it is patched in at the end, inside the temp file that
//! `write_atomic` renames into place, so a reader never sees a half-written shard.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::inputs::{Encoding, Inputs, Mapped};
use super::{DataError, SeqData, Targets};
use crate::io::{FileError, write_atomic};

const MAGIC: &[u8; 8] = b"WAVESSMD";
/// Version of the file layout; readers refuse others.
pub const FORMAT_VERSION: u32 = 1;
const PREAMBLE: u64 = 64;
const ALIGN: u64 = 64;

/// Where a section lies and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Section {
    /// Byte offset in the file.
    pub offset: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// CRC32 of the bytes.
    pub crc32: u32,
}

/// What the targets section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum TargetKindMeta {
    /// u32 class labels, one per sample.
    Classes {
        /// Number of classes.
        n_classes: usize,
    },
    /// f32 values, `dim` per sample.
    Values {
        /// Values per sample.
        dim: usize,
    },
    /// u32 token ids, `L` per sample.
    Tokens {
        /// Vocabulary size.
        vocab: usize,
    },
}

/// Identity of a shard: which dataset and config it was prepared from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Registered dataset name.
    pub dataset: String,
    /// The data config (without `path`), as JSON.
    pub config: serde_json::Value,
    /// Hash of `config` and the preparation version: the prepared folder's name.
    pub config_hash: String,
    /// Fingerprint of the raw files (names, sizes, modification times) when prepared.
    pub sources: String,
}

/// The JSON header of a shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// What it was made from.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// `train`, `val` or `test`.
    pub split: String,
    /// wavessm version that wrote it.
    pub wavessm: String,
    /// Samples n.
    pub n: usize,
    /// Steps per sample L.
    pub seq_len: usize,
    /// Features per step D.
    pub channels: usize,
    /// Vocabulary size for token inputs.
    pub vocab: Option<usize>,
    /// Storage of the inputs.
    pub encoding: Encoding,
    /// The inputs section.
    pub inputs: Section,
    /// Kind of targets.
    pub targets_kind: TargetKindMeta,
    /// The targets section.
    pub targets: Section,
    /// The lengths section, when lengths vary.
    pub lengths: Option<Section>,
}

/// Everything but the inputs, known once the inputs are written.
#[derive(Debug, Clone)]
pub struct Tail {
    /// Steps per sample L.
    pub seq_len: usize,
    /// Features per step D.
    pub channels: usize,
    /// Vocabulary size for token inputs.
    pub vocab: Option<usize>,
    /// The targets.
    pub targets: Targets,
    /// Valid steps per sample when they vary.
    pub lengths: Option<Vec<usize>>,
}

/// Streams input values into a shard being written.
pub struct InputSink<'a> {
    w: BufWriter<&'a mut File>,
    encoding: Encoding,
    crc: flate2::Crc,
    buf: Vec<u8>,
    values: u64,
    failure: Option<String>,
}

impl InputSink<'_> {
    /// Appends values; false once a value cannot be stored exactly (the write then fails).
    pub fn push(&mut self, values: &[f32]) -> bool {
        if self.failure.is_some() {
            return false;
        }
        self.buf.clear();
        for (i, &v) in values.iter().enumerate() {
            if !self.encoding.encode(v, &mut self.buf) {
                self.failure = Some(format!(
                    "input value {v} (number {}) cannot be stored exactly as {}",
                    self.values + i as u64,
                    self.encoding
                ));
                return false;
            }
        }
        self.crc.update(&self.buf);
        self.values += values.len() as u64;
        self.w.write_all(&self.buf).map_err(|e| self.failure = Some(format!("write failed: {e}"))).is_ok()
    }
}

fn crc(bytes: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(bytes);
    c.sum()
}

fn pad_to_align(f: &mut File) -> std::io::Result<u64> {
    let pos = f.stream_position()?;
    let aligned = pos.div_ceil(ALIGN) * ALIGN;
    f.write_all(&vec![0u8; (aligned - pos) as usize])?;
    Ok(aligned)
}

fn write_section(f: &mut File, bytes: &[u8]) -> std::io::Result<Section> {
    let offset = pad_to_align(f)?;
    f.write_all(bytes)?;
    Ok(Section { offset, bytes: bytes.len() as u64, crc32: crc(bytes) })
}

fn targets_bytes(t: &Targets) -> (TargetKindMeta, Vec<u8>, usize) {
    match t {
        Targets::Classes { labels, n_classes } => (
            TargetKindMeta::Classes { n_classes: *n_classes },
            labels.iter().flat_map(|v| v.to_le_bytes()).collect(),
            labels.len(),
        ),
        Targets::Values { values, dim } => (
            TargetKindMeta::Values { dim: *dim },
            values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            values.len() / dim.max(&1),
        ),
        Targets::Tokens { ids, vocab, .. } => {
            (TargetKindMeta::Tokens { vocab: *vocab }, ids.iter().flat_map(|v| v.to_le_bytes()).collect(), ids.len())
        }
    }
}

/// Writes one split atomically: `fill` streams the inputs into the sink and returns the rest.
pub fn write(
    path: &Path,
    provenance: &Provenance,
    split: &str,
    encoding: Encoding,
    fill: impl FnOnce(&mut InputSink) -> Result<Tail, DataError>,
) -> Result<ShardHeader, DataError> {
    let mut outcome: Option<Result<ShardHeader, DataError>> = None;
    let written = write_atomic(path, |f| {
        f.write_all(&[0u8; PREAMBLE as usize])?;
        let mut sink = InputSink {
            w: BufWriter::with_capacity(1 << 20, &mut *f),
            encoding,
            crc: flate2::Crc::new(),
            buf: Vec::new(),
            values: 0,
            failure: None,
        };
        let tail = fill(&mut sink);
        let (values, input_crc, failure) = (sink.values, sink.crc.sum(), sink.failure.take());
        sink.w.flush()?;
        drop(sink);
        let fail = |outcome: &mut Option<_>, e: DataError| {
            *outcome = Some(Err(e));
            Err(std::io::Error::other("shard not written"))
        };
        let tail = match (tail, failure) {
            (Err(e), _) => return fail(&mut outcome, e),
            (Ok(_), Some(msg)) => return fail(&mut outcome, DataError::Corrupt { path: path.to_path_buf(), msg }),
            (Ok(t), None) => t,
        };
        let (targets_kind, target_bytes, target_count) = targets_bytes(&tail.targets);
        let n = match targets_kind {
            TargetKindMeta::Classes { .. } | TargetKindMeta::Values { .. } => target_count,
            TargetKindMeta::Tokens { .. } => target_count / tail.seq_len.max(1),
        };
        let row = (tail.seq_len * tail.channels) as u64;
        if values != n as u64 * row {
            let msg = format!("{values} input values for {n} samples of {}×{}", tail.seq_len, tail.channels);
            return fail(&mut outcome, DataError::Invalid(msg));
        }
        let inputs = Section { offset: PREAMBLE, bytes: values * encoding.dtype.size() as u64, crc32: input_crc };
        let targets = write_section(f, &target_bytes)?;
        let lengths = match &tail.lengths {
            Some(ls) => Some(write_section(f, &ls.iter().flat_map(|&v| (v as u32).to_le_bytes()).collect::<Vec<_>>())?),
            None => None,
        };
        let header = ShardHeader {
            provenance: provenance.clone(),
            split: split.to_string(),
            wavessm: env!("CARGO_PKG_VERSION").into(),
            n,
            seq_len: tail.seq_len,
            channels: tail.channels,
            vocab: tail.vocab,
            encoding,
            inputs,
            targets_kind,
            targets,
            lengths,
        };
        let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
        let at = pad_to_align(f)?;
        f.write_all(&json)?;
        f.seek(SeekFrom::Start(0))?;
        let mut pre = Vec::with_capacity(PREAMBLE as usize);
        pre.extend_from_slice(MAGIC);
        pre.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        pre.extend_from_slice(&crc(&json).to_le_bytes());
        pre.extend_from_slice(&at.to_le_bytes());
        pre.extend_from_slice(&(json.len() as u64).to_le_bytes());
        f.write_all(&pre)?;
        outcome = Some(Ok(header));
        Ok(())
    });
    match (written, outcome) {
        (_, Some(Err(e))) => Err(e),
        (Err(FileError { path, source }), _) => Err(DataError::Io { path, source }),
        (Ok(()), Some(Ok(h))) => Ok(h),
        (Ok(()), None) => unreachable!("write_atomic ran the writer"),
    }
}

/// Writes a loaded split (its inputs in `encoding`).
pub fn write_split(
    path: &Path,
    provenance: &Provenance,
    split: &str,
    data: &SeqData,
    encoding: Encoding,
) -> Result<ShardHeader, DataError> {
    write(path, provenance, split, encoding, |sink| {
        let row = data.seq_len * data.channels;
        let mut buf = Vec::with_capacity(row);
        for i in 0..data.len() {
            buf.clear();
            data.inputs.extend_into(i * row, row, &mut buf);
            if !sink.push(&buf) {
                break;
            }
        }
        Ok(Tail {
            seq_len: data.seq_len,
            channels: data.channels,
            vocab: data.vocab,
            targets: data.targets.clone(),
            lengths: data.lengths.clone(),
        })
    })
}

fn corrupt(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), msg: format!("prepared shard: {}", msg.into()) }
}

/// Opens a shard file (a regular file only: a FIFO or device would block or never end).
fn open_file(path: &Path) -> Result<(File, u64), DataError> {
    crate::io::open_regular(path).map_err(|e| DataError::from_io(path, "a prepared shard", e))
}

/// Reads and checks the preamble and JSON header (not the sections): cheap.
pub fn read_header(path: &Path) -> Result<ShardHeader, DataError> {
    let (mut f, size) = open_file(path)?;
    header_of(&mut f, size, path)
}

/// The header of an open shard of `size` bytes; reading it through the same handle that is
/// then mapped keeps header and sections from one file even if the path is replaced meanwhile.
fn header_of(f: &mut (impl Read + Seek), size: u64, path: &Path) -> Result<ShardHeader, DataError> {
    if size < PREAMBLE {
        return Err(corrupt(path, format!("truncated: {size} bytes, shorter than the {PREAMBLE}-byte preamble")));
    }
    let mut pre = [0u8; 32];
    f.read_exact(&mut pre).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if &pre[..8] != MAGIC {
        return Err(corrupt(path, "bad magic (not a wavessm prepared shard)"));
    }
    let u32_at = |i: usize| u32::from_le_bytes(pre[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(pre[i..i + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(corrupt(
            path,
            format!(
                "format version {version}, this wavessm reads version {FORMAT_VERSION}; run `wavessm data prepare` again"
            ),
        ));
    }
    let (at, len) = (u64_at(16), u64_at(24));
    if at.checked_add(len).is_none_or(|end| end > size) || at < PREAMBLE {
        let end = at.saturating_add(len);
        return Err(corrupt(path, format!("truncated: header at bytes {at}..{end} of a {size}-byte file")));
    }
    if len > crate::io::MAX_HEADER_BYTES {
        return Err(corrupt(path, format!("header length field {len} exceeds {} bytes", crate::io::MAX_HEADER_BYTES)));
    }
    let mut json = vec![0u8; len as usize];
    f.seek(SeekFrom::Start(at))
        .and_then(|_| f.read_exact(&mut json))
        .map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    if crc(&json) != u32_at(12) {
        return Err(corrupt(path, "header fails its checksum"));
    }
    let h: ShardHeader = serde_json::from_slice(&json).map_err(|e| corrupt(path, format!("header: {e}")))?;
    super::shard_check::header(&h).map_err(|m| corrupt(path, m))?;
    Ok(h)
}

/// The bytes of a section after checking its bounds, expected size and checksum.
fn section<'m>(map: &'m [u8], s: &Section, expected: u64, what: &str, path: &Path) -> Result<&'m [u8], DataError> {
    if s.bytes != expected {
        return Err(corrupt(path, format!("{what}: {} bytes, the shapes need {expected}", s.bytes)));
    }
    let end = s.offset.checked_add(s.bytes).filter(|&e| e <= map.len() as u64).ok_or_else(|| {
        corrupt(
            path,
            format!(
                "truncated: {what} at bytes {}..{} of a {}-byte file",
                s.offset,
                s.offset.saturating_add(s.bytes),
                map.len()
            ),
        )
    })?;
    let b = &map[s.offset as usize..end as usize];
    if crc(b) != s.crc32 {
        return Err(corrupt(path, format!("{what} fail their checksum")));
    }
    Ok(b)
}

fn u32s(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

/// Opens a shard: verifies header, sizes and checksums, maps the inputs, reads the rest.
pub fn open(path: &Path) -> Result<(ShardHeader, SeqData), DataError> {
    let (mut file, size) = open_file(path)?;
    let h = header_of(&mut file, size, path)?;
    // SAFETY: the map is read-only and shards are only ever replaced by renaming a new file
    // over them (write_atomic), never modified in place, so the mapped bytes stay the ones
    // verified below. Truncating the file behind a running process is outside that contract.
    let map = Arc::new(
        unsafe { memmap2::Mmap::map(&file) }.map_err(|source| DataError::Io { path: path.to_path_buf(), source })?,
    );
    decode(h, map, path)
}

/// Decodes a whole shard from bytes (as [`open`] does a file; `path` names it in errors).
pub fn parse(bytes: &[u8], path: &Path) -> Result<(ShardHeader, SeqData), DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let mut anon = memmap2::MmapMut::map_anon(bytes.len().max(1)).map_err(io)?;
    anon[..bytes.len()].copy_from_slice(bytes);
    let map = anon.make_read_only().map_err(io)?;
    let h = header_of(&mut std::io::Cursor::new(&map[..bytes.len()]), bytes.len() as u64, path)?;
    decode(h, Arc::new(map), path)
}

/// Checks the sections of a shard whose header `h` is verified, and builds the split.
fn decode(h: ShardHeader, map: Arc<memmap2::Mmap>, path: &Path) -> Result<(ShardHeader, SeqData), DataError> {
    let overflow = || corrupt(path, "header sizes overflow");
    let values = h.n.checked_mul(h.seq_len).and_then(|v| v.checked_mul(h.channels)).ok_or_else(overflow)?;
    let input_bytes = (values as u64).checked_mul(h.encoding.dtype.size() as u64).ok_or_else(overflow)?;
    let ib = section(&map, &h.inputs, input_bytes, "inputs", path)?;
    super::shard_check::inputs(&h, ib).map_err(|m| corrupt(path, m))?;
    let per_sample = match h.targets_kind {
        TargetKindMeta::Classes { .. } => 1,
        TargetKindMeta::Values { dim } => dim,
        TargetKindMeta::Tokens { .. } => h.seq_len,
    };
    let expected = (h.n as u64).checked_mul(per_sample as u64).and_then(|v| v.checked_mul(4)).ok_or_else(overflow)?;
    let tb = section(&map, &h.targets, expected, "targets", path)?;
    super::shard_check::targets(&h, tb).map_err(|m| corrupt(path, m))?;
    let targets = match h.targets_kind {
        TargetKindMeta::Classes { n_classes } => {
            let labels: Vec<u32> = u32s(tb).collect();
            if let Some((i, l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= n_classes) {
                return Err(corrupt(path, format!("label {l} of sample {i} is not below {n_classes} classes")));
            }
            Targets::Classes { labels, n_classes }
        }
        TargetKindMeta::Values { dim } => Targets::Values {
            values: tb.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            dim,
        },
        TargetKindMeta::Tokens { vocab } => Targets::Tokens { ids: u32s(tb).collect(), vocab },
    };
    let pairs = h.vocab.is_some() && h.channels == 2;
    let lengths = match &h.lengths {
        None => None,
        Some(s) => {
            let count = (h.n as u64).checked_mul(if pairs { 8 } else { 4 }).ok_or_else(overflow)?;
            let ls: Vec<usize> = u32s(section(&map, s, count, "lengths", path)?).map(|v| v as usize).collect();
            if let Some((i, l)) = ls.iter().enumerate().find(|(_, l)| **l > h.seq_len || **l == 0) {
                return Err(corrupt(path, format!("length {l} (number {i}) is not in 1..={}", h.seq_len)));
            }
            Some(ls)
        }
    };
    let mapped = Mapped::new(map, h.inputs.offset as usize, values, h.encoding).ok_or_else(overflow)?;
    let data = SeqData {
        inputs: Inputs::Mapped(mapped),
        seq_len: h.seq_len,
        channels: h.channels,
        targets,
        lengths,
        vocab: h.vocab,
    };
    Ok((h, data))
}

/// The shard file of `split` in a prepared folder.
pub fn split_path(folder: &Path, split: &str) -> PathBuf {
    folder.join(format!("{split}.wsd"))
}
