//! The adding problem (Hochreiter & Schmidhuber 1997): two channels, values uniform in [0, 1]
//! and a marker that is 1 at two random positions (one in each half); the target is the sum of
//! the two marked values. Generated from a seed, so it needs no files.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, SeqData, Targets};

/// Options of `adding`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddingConfig {
    /// Sequence length L.
    #[serde(default = "seq_len")]
    pub seq_len: usize,
    /// Training sequences.
    #[serde(default = "n_train")]
    pub n_train: usize,
    /// Validation sequences.
    #[serde(default = "n_eval")]
    pub n_val: usize,
    /// Test sequences.
    #[serde(default = "n_eval")]
    pub n_test: usize,
    /// Seed of the generator (splits use seed, seed+1, seed+2).
    #[serde(default)]
    pub data_seed: u64,
}

fn seq_len() -> usize {
    200
}
fn n_train() -> usize {
    5000
}
fn n_eval() -> usize {
    500
}

/// Generates `n` sequences of length `l`.
pub fn generate(n: usize, l: usize, seed: u64) -> SeqData {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut inputs = vec![0f32; n * l * 2];
    let mut values = Vec::with_capacity(n);
    for i in 0..n {
        let row = &mut inputs[i * l * 2..(i + 1) * l * 2];
        for t in 0..l {
            row[2 * t] = rng.random::<f32>();
        }
        let half = (l / 2).max(1);
        let a = rng.random_range(0..half);
        let b = half.min(l - 1) + rng.random_range(0..(l - half).max(1));
        let b = if b == a { (a + 1) % l } else { b };
        row[2 * a + 1] = 1.0;
        row[2 * b + 1] = 1.0;
        values.push(row[2 * a] + row[2 * b]);
    }
    SeqData::dense(inputs, l, 2, Targets::Values { values, dim: 1 })
}

/// Generates the three splits.
pub fn load(cfg: &AddingConfig) -> Result<DataModule, DataError> {
    if cfg.seq_len < 2 {
        return Err(DataError::Invalid(format!("`data.seq_len` must be at least 2, got {}", cfg.seq_len)));
    }
    let n = [cfg.n_train, cfg.n_val, cfg.n_test];
    super::check_generated("`data.n_train/n_val/n_test` and `data.seq_len`", n, (cfg.seq_len as u64).checked_mul(2))?;
    let s = cfg.data_seed;
    Ok(DataModule {
        train: generate(cfg.n_train, cfg.seq_len, s),
        val: generate(cfg.n_val, cfg.seq_len, s.wrapping_add(1)),
        test: generate(cfg.n_test, cfg.seq_len, s.wrapping_add(2)),
    })
}
