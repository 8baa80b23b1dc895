//! Input storage of a split: f32 values owned in memory (what every loader builds), or typed
//! values in a memory-mapped prepared shard. A mapped split costs no heap: the full Speech
//! Commands is ~3.4 GB of i16 on disk instead of ~7 GB of f32 in memory, the OS pages it in
//! on demand, and a batch decodes only its own rows.

use std::fmt;
use std::sync::Arc;

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

/// Element type of stored values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// Unsigned byte (pixels, small vocabularies).
    U8,
    /// Unsigned 16-bit (vocabularies up to 65,536).
    U16,
    /// Unsigned 32-bit (larger vocabularies).
    U32,
    /// Signed 16-bit (PCM audio).
    I16,
    /// IEEE float (features, normalized data).
    F32,
}

impl Dtype {
    /// Bytes per value.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::F32 => 4,
        }
    }

    /// The integer range a stored value can take (None for f32).
    fn range(self) -> Option<(f64, f64)> {
        match self {
            Dtype::U8 => Some((0.0, u8::MAX as f64)),
            Dtype::U16 => Some((0.0, u16::MAX as f64)),
            Dtype::U32 => Some((0.0, u32::MAX as f64)),
            Dtype::I16 => Some((i16::MIN as f64, i16::MAX as f64)),
            Dtype::F32 => None,
        }
    }
}

/// How a value is stored: `value = stored as f32 / divisor`, the same expression the loaders
/// use (`byte / 255.0`, `sample / 32768.0`), so decoding reproduces their f32 bits exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Encoding {
    /// Element type.
    pub dtype: Dtype,
    /// Divisor applied after conversion to f32 (1 for token ids and f32).
    pub divisor: f32,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = format!("{:?}", self.dtype).to_lowercase();
        if self.divisor == 1.0 { write!(f, "{name}") } else { write!(f, "{name}/{}", self.divisor) }
    }
}

impl Encoding {
    /// Stores values as they are.
    pub const F32: Encoding = Encoding { dtype: Dtype::F32, divisor: 1.0 };

    /// The narrowest encoding that stores token ids below `vocab`.
    pub fn for_vocab(vocab: usize) -> Self {
        let dtype = match vocab {
            0..=256 => Dtype::U8,
            257..=65_536 => Dtype::U16,
            _ => Dtype::U32,
        };
        Encoding { dtype, divisor: 1.0 }
    }

    /// The most compact encoding that reproduces every value bit for bit: pixels (`/255`),
    /// 16-bit audio (`/32768`), small integers, else f32.
    pub fn detect(values: &[f32]) -> Self {
        const CANDIDATES: [(Dtype, f32); 4] =
            [(Dtype::U8, 255.0), (Dtype::U8, 1.0), (Dtype::I16, 32768.0), (Dtype::I16, 1.0)];
        CANDIDATES
            .iter()
            .map(|&(dtype, divisor)| Encoding { dtype, divisor })
            .find(|e| values.iter().all(|&v| e.stored(v).is_some()))
            .unwrap_or(Encoding::F32)
    }

    /// The stored number for `v` when it decodes back to exactly `v`.
    fn stored(&self, v: f32) -> Option<f64> {
        let Some((lo, hi)) = self.dtype.range() else { return Some(v as f64) };
        let k = (v as f64 * self.divisor as f64).round();
        // Decode from the integer actually stored (so -0.0, stored as 0, does not pass as exact).
        ((lo..=hi).contains(&k) && ((k as i64 as f32) / self.divisor).to_bits() == v.to_bits()).then_some(k)
    }

    /// Appends `v`'s little-endian bytes; false (nothing written) when `v` would not decode
    /// back exactly.
    pub fn encode(&self, v: f32, out: &mut Vec<u8>) -> bool {
        let Some(k) = self.stored(v) else { return false };
        match self.dtype {
            Dtype::U8 => out.push(k as u8),
            Dtype::U16 => out.extend_from_slice(&(k as u16).to_le_bytes()),
            Dtype::U32 => out.extend_from_slice(&(k as u32).to_le_bytes()),
            Dtype::I16 => out.extend_from_slice(&(k as i16).to_le_bytes()),
            Dtype::F32 => out.extend_from_slice(&v.to_le_bytes()),
        }
        true
    }

    /// Decodes little-endian stored values onto `out`.
    pub fn decode(&self, bytes: &[u8], out: &mut Vec<f32>) {
        let d = self.divisor;
        // One loop per type keeps each a simple, vectorizable conversion.
        match self.dtype {
            Dtype::U8 => out.extend(bytes.iter().map(|&b| b as f32 / d)),
            Dtype::U16 => out.extend(bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f32 / d)),
            Dtype::U32 => {
                out.extend(bytes.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / d))
            }
            Dtype::I16 => out.extend(bytes.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / d)),
            Dtype::F32 => out.extend(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        }
    }
}

/// Values of a verified prepared shard, mapped read-only.
#[derive(Clone)]
pub struct Mapped {
    map: Arc<Mmap>,
    offset: usize,
    len: usize,
    encoding: Encoding,
}

impl Mapped {
    /// `len` values stored with `encoding` at byte `offset` of `map`; None when they do not fit.
    pub fn new(map: Arc<Mmap>, offset: usize, len: usize, encoding: Encoding) -> Option<Self> {
        let end = len.checked_mul(encoding.dtype.size())?.checked_add(offset)?;
        (end <= map.len()).then_some(Self { map, offset, len, encoding })
    }

    /// The stored bytes of values `start..start + count`.
    fn bytes(&self, start: usize, count: usize) -> &[u8] {
        let s = self.encoding.dtype.size();
        &self.map[self.offset + start * s..self.offset + (start + count) * s]
    }
}

/// The `[n, L, D]` input values of a split.
#[derive(Clone)]
pub enum Inputs {
    /// f32 values in memory.
    Owned(Vec<f32>),
    /// Typed values in a memory-mapped shard, decoded per batch.
    Mapped(Mapped),
}

impl Inputs {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Inputs::Owned(v) => v.len(),
            Inputs::Mapped(m) => m.len,
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends values `start..start + count` as f32 (panics past the end, like slicing).
    pub fn extend_into(&self, start: usize, count: usize, out: &mut Vec<f32>) {
        match self {
            Inputs::Owned(v) => out.extend_from_slice(&v[start..start + count]),
            Inputs::Mapped(m) => m.encoding.decode(m.bytes(start, count), out),
        }
    }

    /// Every value as f32 (decodes a mapped split into memory).
    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Inputs::Owned(v) => v.clone(),
            Inputs::Mapped(_) => {
                let mut out = Vec::with_capacity(self.len());
                self.extend_into(0, self.len(), &mut out);
                out
            }
        }
    }

    /// The values when they are owned f32 (no copy).
    pub fn as_owned(&self) -> Option<&[f32]> {
        match self {
            Inputs::Owned(v) => Some(v),
            Inputs::Mapped(_) => None,
        }
    }

    /// How the values are stored (mapped), or None for owned f32.
    pub fn encoding(&self) -> Option<Encoding> {
        match self {
            Inputs::Owned(_) => None,
            Inputs::Mapped(m) => Some(m.encoding),
        }
    }
}

impl From<Vec<f32>> for Inputs {
    fn from(v: Vec<f32>) -> Self {
        Inputs::Owned(v)
    }
}

impl Default for Inputs {
    fn default() -> Self {
        Inputs::Owned(Vec::new())
    }
}

impl fmt::Debug for Inputs {
    // Millions of values are no use in a debug print; the size and storage are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inputs::Owned(v) => write!(f, "Inputs::Owned({} f32)", v.len()),
            Inputs::Mapped(m) => write!(f, "Inputs::Mapped({} {})", m.len, m.encoding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_picks_the_narrowest_exact_encoding() {
        let px: Vec<f32> = (0..=255u32).map(|b| b as f32 / 255.0).collect();
        assert_eq!(Encoding::detect(&px), Encoding { dtype: Dtype::U8, divisor: 255.0 });
        let pcm: Vec<f32> = [-32768i32, -1, 0, 5, 32767].iter().map(|&s| s as f32 / 32768.0).collect();
        assert_eq!(Encoding::detect(&pcm), Encoding { dtype: Dtype::I16, divisor: 32768.0 });
        assert_eq!(Encoding::detect(&[0.0, 3.0, 200.0]), Encoding { dtype: Dtype::U8, divisor: 1.0 });
        assert_eq!(Encoding::detect(&[0.1, 0.2]), Encoding::F32);
        assert_eq!(Encoding::detect(&[-0.0]), Encoding::F32, "-0.0 must keep its sign bit");
        assert_eq!(Encoding::for_vocab(257).dtype, Dtype::U16);
    }

    #[test]
    fn encode_decode_round_trips_bits() {
        for (enc, vals) in [
            (Encoding { dtype: Dtype::U8, divisor: 255.0 }, vec![0.0, 1.0 / 255.0, 1.0]),
            (Encoding { dtype: Dtype::I16, divisor: 32768.0 }, vec![-1.0, -49.0 * 100.0 / 32768.0, 0.5]),
            (Encoding::for_vocab(70_000), vec![0.0, 69_999.0]),
            (Encoding::F32, vec![f32::MIN_POSITIVE, -3.5, f32::NAN]),
        ] {
            let mut bytes = Vec::new();
            assert!(vals.iter().all(|&v| enc.encode(v, &mut bytes)), "{enc}");
            assert_eq!(bytes.len(), vals.len() * enc.dtype.size());
            let mut back = Vec::new();
            enc.decode(&bytes, &mut back);
            assert_eq!(
                back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        let mut bytes = Vec::new();
        assert!(!Encoding { dtype: Dtype::U8, divisor: 1.0 }.encode(256.0, &mut bytes) && bytes.is_empty());
        assert!(!Encoding { dtype: Dtype::U8, divisor: 255.0 }.encode(0.3, &mut bytes));
    }
}
