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
    let bytes = std::fs::read(path).map_err(|e| TorchError::file(path, e.to_string()))?;
    let st =
        SafeTensors::deserialize(&bytes).map_err(|e| TorchError::file(path, format!("not a safetensors file: {e}")))?;
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
            other => {
                return Err(TorchError::file(
                    path,
                    format!("`{name}` has dtype {other:?}; save it as float32 (`.float()`) first"),
                ));
            }
        };
        let int = matches!(view.dtype(), Dtype::I64 | Dtype::I32);
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
    let bytes = safetensors::serialize(raws.iter().map(|(n, r)| (n.as_str(), r)), Some(info))
        .map_err(|e| TorchError::file(path, e.to_string()))?;
    crate::io::write_atomic(path, |f| std::io::Write::write_all(f, &bytes))
        .map_err(|e| TorchError::file(path, e.to_string()))
}
