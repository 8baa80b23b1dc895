//! Range checks of a prepared shard beyond its checksums: a header whose checksum matches can
//! still hold sizes no loader writes (a zero dimension, no classes) or values a model cannot
//! take (non-finite numbers, token ids outside the vocabulary). Each message names the header
//! field or the value's position.

use super::IGNORE_INDEX;
use super::inputs::Dtype;
use super::shard::{ShardHeader, TargetKindMeta};

/// The header fields' ranges.
pub(super) fn header(h: &ShardHeader) -> Result<(), String> {
    let zero = |field: &str| Err(format!("header field `{field}` is 0"));
    if h.seq_len == 0 {
        return zero("seq_len");
    }
    if h.channels == 0 {
        return zero("channels");
    }
    if !["train", "val", "test"].contains(&h.split.as_str()) {
        return Err(format!("header field `split` is {:?}; expected train, val or test", h.split));
    }
    if let Some(v) = h.vocab {
        if v == 0 {
            return zero("vocab");
        }
        if h.channels > 2 {
            return Err(format!("header field `channels` is {} for token inputs (1, or 2 for pairs)", h.channels));
        }
    }
    match h.targets_kind {
        TargetKindMeta::Classes { n_classes: 0 } => return zero("targets_kind.n_classes"),
        TargetKindMeta::Values { dim: 0 } => return zero("targets_kind.dim"),
        TargetKindMeta::Tokens { vocab: 0 } => return zero("targets_kind.vocab"),
        _ => {}
    }
    let d = h.encoding.divisor;
    if !(d.is_finite() && d > 0.0) {
        return Err(format!("header field `encoding.divisor` is {d}; expected a positive number"));
    }
    Ok(())
}

/// The input values: finite, and token ids below the vocabulary size.
pub(super) fn inputs(h: &ShardHeader, bytes: &[u8]) -> Result<(), String> {
    // Integer encodings with a finite divisor always decode to finite values.
    if h.vocab.is_none() && h.encoding.dtype != Dtype::F32 {
        return Ok(());
    }
    let mut values = Vec::new();
    let size = h.encoding.dtype.size();
    for (c, chunk) in bytes.chunks(size << 16).enumerate() {
        values.clear();
        h.encoding.decode(chunk, &mut values);
        let bad = |v: f32| match h.vocab {
            Some(vocab) => !(v >= 0.0 && v.fract() == 0.0 && (v as f64) < vocab as f64),
            None => !v.is_finite(),
        };
        if let Some(i) = values.iter().position(|&v| bad(v)) {
            let what = match h.vocab {
                Some(v) => format!("not a token id below the vocabulary size {v}"),
                None => "not a finite number".into(),
            };
            return Err(format!("input value number {} ({}) is {what}", (c << 16) + i, values[i]));
        }
    }
    Ok(())
}

/// The target values: finite regression targets, token ids below the vocabulary size.
pub(super) fn targets(h: &ShardHeader, bytes: &[u8]) -> Result<(), String> {
    let words = bytes.chunks_exact(4).map(|c| [c[0], c[1], c[2], c[3]]);
    match h.targets_kind {
        TargetKindMeta::Classes { .. } => Ok(()),
        TargetKindMeta::Values { .. } => match words.map(f32::from_le_bytes).position(|v| !v.is_finite()) {
            Some(i) => Err(format!("target value number {i} is not a finite number")),
            None => Ok(()),
        },
        TargetKindMeta::Tokens { vocab } => {
            match words.map(u32::from_le_bytes).enumerate().find(|(_, t)| *t != IGNORE_INDEX && *t as usize >= vocab) {
                Some((i, t)) => Err(format!("target token {t} (number {i}) is not below the vocabulary size {vocab}")),
                None => Ok(()),
            }
        }
    }
}
