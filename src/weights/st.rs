//! `.safetensors` files as host tensors (the format of `safetensors.torch.save_file`).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, View};

use super::TorchError;

/// A tensor on the host: row-major values (f64 holds every f32 and the integer buffers exactly).
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: Vec<f64>,
    /// Integer tensor (written as I64, as torch's `l_kernel` buffer).
    pub int: bool,
}

/// Reads every tensor of a safetensors file, converting float and integer dtypes to f64.
pub fn read(path: &Path) -> Result<BTreeMap<String, HostTensor>, TorchError> {
    let cap = crate::io::mem_available().unwrap_or(u64::MAX);
    let bytes =
        crate::io::read_capped(path, cap, "the memory available").map_err(|e| TorchError::file(path, e.to_string()))?;
    parse(&bytes).map_err(|msg| TorchError::file(path, msg))
}

/// Top-level keys of a JSON object, refusing a key that appears twice (serde_json, and so the
/// safetensors crate, would keep the last one silently).
struct UniqueKeys;

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<UniqueKeys, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    map.next_value::<serde::de::IgnoredAny>()?;
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!("key `{key}` appears twice in the header")));
                    }
                }
                Ok(UniqueKeys)
            }
        }
        d.deserialize_map(V)
    }
}

/// Decodes safetensors bytes: every tensor as f64, after checking that the header's keys are
/// unique and every float value is finite (errors name the key).
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, HostTensor>, String> {
    let n = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let n =
        n.ok_or_else(|| format!("not a safetensors file: {} bytes, shorter than the 8-byte header size", bytes.len()))?;
    if n > crate::io::MAX_HEADER_BYTES || n > bytes.len() as u64 - 8 {
        return Err(format!("not a safetensors file: header size field {n} exceeds the file"));
    }
    serde_json::from_slice::<UniqueKeys>(&bytes[8..8 + n as usize])
        .map_err(|e| format!("not a safetensors file: header: {e}"))?;
    let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file: {e}"))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let raw = view.data();
        let data: Vec<f64> = match view.dtype() {
            Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4")) as f64).collect(),
            Dtype::F64 => raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8"))).collect(),
            // bfloat16 is the top half of an f32.
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16) as f64)
                .collect(),
            Dtype::I64 => raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8")) as f64).collect(),
            Dtype::I32 => raw.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4")) as f64).collect(),
            other => return Err(format!("`{name}` has dtype {other:?}; save it as float32 (`.float()`) first")),
        };
        let int = matches!(view.dtype(), Dtype::I64 | Dtype::I32);
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(format!("`{name}`: value number {i} is {}, not a finite number", data[i]));
        }
        out.insert(name, HostTensor { shape: view.shape().to_vec(), data, int });
    }
    Ok(out)
}

/// A tensor ready to serialize: dtype F32 (floats) or I64 (integers).
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Writes `tensors` (floats as F32) with `{"format": "pt"}` plus `metadata`, atomically.
pub fn write(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    metadata: &[(&str, String)],
) -> Result<(), TorchError> {
    let raws: Vec<(String, Raw)> = tensors
        .iter()
        .map(|(name, t)| {
            let (dtype, bytes) = if t.int {
                (Dtype::I64, t.data.iter().flat_map(|v| (*v as i64).to_le_bytes()).collect())
            } else {
                (Dtype::F32, t.data.iter().flat_map(|v| (*v as f32).to_le_bytes()).collect())
            };
            (name.clone(), Raw { dtype, shape: t.shape.clone(), bytes })
        })
        .collect();
    let mut info: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    info.insert("format".into(), "pt".into());
    let mut bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), Some(info))
        .map_err(|e| TorchError::file(path, e.to_string()))?;
    sort_metadata(&mut bytes).map_err(|e| TorchError::file(path, e))?;
    crate::io::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))
        .map_err(|e| TorchError::file(path, e.to_string()))
}

/// Rewrites the header of serialized safetensors bytes with `__metadata__` in key order: the
/// crate writes it from a HashMap, in a different order each run, and an export must be
/// byte-reproducible. The same entries serialize to the same length, so offsets stay valid.
fn sort_metadata(bytes: &mut [u8]) -> Result<(), String> {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = &bytes[8..8 + n];
    let mut tree: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| format!("serialized header: {e}"))?;
    let mut sorted = Vec::with_capacity(n);
    sorted.push(b'{');
    let mut first = true;
    let mut entry = |k: &str, v: &serde_json::Value| -> Result<(), String> {
        if !std::mem::take(&mut first) {
            sorted.push(b',');
        }
        serde_json::to_writer(&mut sorted, k).map_err(|e| e.to_string())?;
        sorted.push(b':');
        serde_json::to_writer(&mut sorted, v).map_err(|e| e.to_string())
    };
    if let Some(meta) = tree.remove("__metadata__") {
        let meta: BTreeMap<String, serde_json::Value> = serde_json::from_value(meta).map_err(|e| e.to_string())?;
        entry("__metadata__", &serde_json::to_value(meta).map_err(|e| e.to_string())?)?;
    }
    let rest: BTreeMap<String, serde_json::Value> = tree.into_iter().collect();
    for (k, v) in &rest {
        entry(k, v)?;
    }
    sorted.push(b'}');
    if sorted.len() > n {
        return Err(format!("sorted header is {} bytes, the original {n}", sorted.len()));
    }
    sorted.resize(n, b' ');
    bytes[8..8 + n].copy_from_slice(&sorted);
    Ok(())
}
