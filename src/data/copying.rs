//! Copying memory (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016, the S4 repo's
//! `copying` data) and selective copying (Gu & Dao 2023): token sequences whose last `memorize`
//! steps must reproduce `memorize` earlier tokens in order. Only those steps are scored; every
//! other step's target is [`IGNORE_INDEX`]. Use with `task=lm model.pool=none`.
//!
//! * Copying: the tokens, `delay` blanks, then one marker per token to recall.
//! * Selective copying: the tokens scattered in order over the first `memorize + delay` steps
//!   (blanks elsewhere), then the markers.
//!
//! Token ids: blank 0, data tokens `1..=vocab`, marker `vocab + 1`; the model predicts one of
//! these `vocab + 2` ids per step.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{DataError, DataModule, IGNORE_INDEX, SeqData, Targets};

/// Options of `copying` and `selective_copying`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyingConfig {
    /// Distinct data tokens.
    #[serde(default = "vocab")]
    pub vocab: usize,
    /// Tokens to recall (M).
    #[serde(default = "memorize")]
    pub memorize: usize,
    /// Blank steps between the tokens and the recall (selective: noise steps among which the
    /// tokens are scattered); L = 2·memorize + delay.
    #[serde(default = "delay")]
    pub delay: usize,
    /// Training sequences.
    #[serde(default = "n_train")]
    pub n_train: usize,
    /// Validation sequences.
    #[serde(default = "n_eval")]
    pub n_val: usize,
    /// Test sequences.
    #[serde(default = "n_eval")]
    pub n_test: usize,
    /// Generator seed (splits use seed, seed+1, seed+2).
    #[serde(default)]
    pub data_seed: u64,
}

fn vocab() -> usize {
    8
}
fn memorize() -> usize {
    10
}
fn delay() -> usize {
    100
}
fn n_train() -> usize {
    5000
}
fn n_eval() -> usize {
    500
}

/// `n` sequences; `selective` scatters the tokens instead of leading with them.
pub fn generate(cfg: &CopyingConfig, n: usize, seed: u64, selective: bool) -> SeqData {
    let (m, d) = (cfg.memorize, cfg.delay);
    let l = 2 * m + d;
    let marker = (cfg.vocab + 1) as f32;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut inputs = vec![0f32; n * l];
    let mut ids = vec![IGNORE_INDEX; n * l];
    for i in 0..n {
        let (row, target) = (&mut inputs[i * l..(i + 1) * l], &mut ids[i * l..(i + 1) * l]);
        let mut at: Vec<usize> =
            if selective { rand::seq::index::sample(&mut rng, m + d, m).into_vec() } else { (0..m).collect() };
        at.sort_unstable();
        for (j, &pos) in at.iter().enumerate() {
            let token = rng.random_range(1..=cfg.vocab as u32);
            row[pos] = token as f32;
            row[m + d + j] = marker;
            target[m + d + j] = token;
        }
    }
    SeqData {
        inputs: inputs.into(),
        seq_len: l,
        channels: 1,
        targets: Targets::Tokens { ids, vocab: cfg.vocab + 2 },
        lengths: None,
        vocab: Some(cfg.vocab + 2),
    }
}

/// Generates the three splits.
pub fn load(cfg: &CopyingConfig, selective: bool) -> Result<DataModule, DataError> {
    if !(2..super::MAX_GENERATED_VOCAB).contains(&cfg.vocab) || cfg.memorize == 0 {
        return Err(DataError::Invalid(format!(
            "copying needs `data.vocab` in 2..{} and `data.memorize` ≥ 1 (got {}, {})",
            super::MAX_GENERATED_VOCAB,
            cfg.vocab,
            cfg.memorize
        )));
    }
    let l = (cfg.memorize as u64).checked_mul(2).and_then(|v| v.checked_add(cfg.delay as u64));
    // Inputs and targets: two values per step.
    let n = [cfg.n_train, cfg.n_val, cfg.n_test];
    super::check_generated(
        "`data.n_train/n_val/n_test`, `data.memorize` and `data.delay`",
        n,
        l.and_then(|l| l.checked_mul(2)),
    )?;
    let s = cfg.data_seed;
    Ok(DataModule {
        train: generate(cfg, cfg.n_train, s, selective),
        val: generate(cfg, cfg.n_val, s.wrapping_add(1), selective),
        test: generate(cfg, cfg.n_test, s.wrapping_add(2), selective),
    })
}
