//! Synthetic recall tasks generated from a seed (token inputs, one class label per sequence,
//! read at the last step: use `model.pool=last`).
//!
//! * Associative recall: `k1 v1 k2 v2 … kn vn q`; the label is the value stored under key `q`.
//! * Induction heads: random tokens with one `trigger x` pair; the sequence ends with `trigger`
//!   and the label is `x`, the token that followed it before.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets};

/// Options of `associative_recall`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecallConfig {
    /// Key-value pairs per sequence (L = 2·pairs + 1).
    #[serde(default = "pairs")]
    pub pairs: usize,
    /// Distinct keys (≥ pairs; keys within a sequence are distinct).
    #[serde(default = "keys")]
    pub keys: usize,
    /// Distinct values (the classes).
    #[serde(default = "values")]
    pub values: usize,
    /// Sequences per split.
    #[serde(default = "splits")]
    pub n_train: usize,
    /// Validation sequences.
    #[serde(default = "eval")]
    pub n_val: usize,
    /// Test sequences.
    #[serde(default = "eval")]
    pub n_test: usize,
    /// Generator seed (splits use seed, seed+1, seed+2).
    #[serde(default)]
    pub data_seed: u64,
}

/// Options of `induction_heads`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InductionConfig {
    /// Sequence length L.
    #[serde(default = "seq_len")]
    pub seq_len: usize,
    /// Ordinary tokens (the classes); the trigger is one more.
    #[serde(default = "values")]
    pub vocab: usize,
    /// Training sequences.
    #[serde(default = "splits")]
    pub n_train: usize,
    /// Validation sequences.
    #[serde(default = "eval")]
    pub n_val: usize,
    /// Test sequences.
    #[serde(default = "eval")]
    pub n_test: usize,
    /// Generator seed (splits use seed, seed+1, seed+2).
    #[serde(default)]
    pub data_seed: u64,
}

fn pairs() -> usize {
    8
}
fn keys() -> usize {
    16
}
fn values() -> usize {
    16
}
fn splits() -> usize {
    5000
}
fn eval() -> usize {
    500
}
fn seq_len() -> usize {
    64
}

fn split(inputs: Vec<f32>, labels: Vec<u32>, l: usize, classes: usize, vocab: usize) -> SeqData {
    SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Classes { labels, n_classes: classes },
        lengths: None,
        vocab: Some(vocab),
    }
}

/// `n` associative-recall sequences. Token ids: keys `1..=K`, values `K+1..=K+V` (0 pads).
pub fn recall(cfg: &RecallConfig, n: usize, seed: u64) -> SeqData {
    let (k, v, p) = (cfg.keys, cfg.values, cfg.pairs);
    let l = 2 * p + 1;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut inputs, mut labels) = (Vec::with_capacity(n * l), Vec::with_capacity(n));
    let all_keys: Vec<usize> = (1..=k).collect();
    for _ in 0..n {
        let mut chosen = all_keys.clone();
        chosen.shuffle(&mut rng);
        chosen.truncate(p);
        let vals: Vec<usize> = (0..p).map(|_| rng.random_range(0..v)).collect();
        for (key, val) in chosen.iter().zip(&vals) {
            inputs.extend([*key as f32, (k + 1 + val) as f32]);
        }
        let q = rng.random_range(0..p);
        inputs.push(chosen[q] as f32);
        labels.push(vals[q] as u32);
    }
    split(inputs, labels, l, v, k + v + 1)
}

/// `n` induction-head sequences. Token ids: ordinary `1..=V`, trigger `V+1` (0 pads).
pub fn induction(cfg: &InductionConfig, n: usize, seed: u64) -> SeqData {
    let (l, v) = (cfg.seq_len, cfg.vocab);
    let trigger = (v + 1) as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut inputs, mut labels) = (Vec::with_capacity(n * l), Vec::with_capacity(n));
    for _ in 0..n {
        let mut seq: Vec<f32> = (0..l).map(|_| rng.random_range(1..=v) as f32).collect();
        let pos = rng.random_range(0..l - 2);
        let x = rng.random_range(0..v);
        seq[pos] = trigger;
        seq[pos + 1] = (x + 1) as f32;
        seq[l - 1] = trigger;
        inputs.extend(seq);
        labels.push(x as u32);
    }
    split(inputs, labels, l, v, v + 2)
}

/// Generates the associative-recall splits.
pub fn load_recall(cfg: &RecallConfig) -> Result<DataModule, DataError> {
    if cfg.pairs == 0 || cfg.keys < cfg.pairs || cfg.values < 2 {
        return Err(DataError::Invalid(format!(
            "associative recall needs pairs ≥ 1, keys ≥ pairs and values ≥ 2 (got {}, {}, {})",
            cfg.pairs, cfg.keys, cfg.values
        )));
    }
    if cfg.keys.checked_add(cfg.values).is_none_or(|v| v >= super::MAX_GENERATED_VOCAB) {
        return Err(DataError::Invalid(format!(
            "`data.keys` + `data.values` must be below {} (token ids are exact f32), got {} + {}",
            super::MAX_GENERATED_VOCAB,
            cfg.keys,
            cfg.values
        )));
    }
    let per = (cfg.pairs as u64).checked_mul(2).and_then(|v| v.checked_add(1));
    super::check_generated("`data.n_train/n_val/n_test` and `data.pairs`", [cfg.n_train, cfg.n_val, cfg.n_test], per)?;
    let s = cfg.data_seed;
    Ok(DataModule {
        train: recall(cfg, cfg.n_train, s),
        val: recall(cfg, cfg.n_val, s.wrapping_add(1)),
        test: recall(cfg, cfg.n_test, s.wrapping_add(2)),
    })
}

/// Generates the induction-head splits.
pub fn load_induction(cfg: &InductionConfig) -> Result<DataModule, DataError> {
    if cfg.seq_len < 4 || !(2..super::MAX_GENERATED_VOCAB).contains(&cfg.vocab) {
        return Err(DataError::Invalid(format!(
            "induction heads need seq_len ≥ 4 and vocab in 2..{} (got {}, {})",
            super::MAX_GENERATED_VOCAB,
            cfg.seq_len,
            cfg.vocab
        )));
    }
    let n = [cfg.n_train, cfg.n_val, cfg.n_test];
    super::check_generated("`data.n_train/n_val/n_test` and `data.seq_len`", n, Some(cfg.seq_len as u64))?;
    let s = cfg.data_seed;
    Ok(DataModule {
        train: induction(cfg, cfg.n_train, s),
        val: induction(cfg, cfg.n_val, s.wrapping_add(1)),
        test: induction(cfg, cfg.n_test, s.wrapping_add(2)),
    })
}
