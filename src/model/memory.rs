//! A rough estimate of the memory a model config needs, checked before anything is allocated:
//! an absurd `d_model`, `n_layers` or `d_state` becomes an error that states the estimate and
//! the machine's memory, instead of an out-of-memory abort midway through initialization.
//!
//! The estimate reads the layer's sizes by key (`d_state`, `channels`, `expand`, `l_max`), so
//! it covers every registered layer without knowing its type; it errs low (a refused config
//! cannot fit, an accepted one may still be tight).

use serde_yaml::Value;

use super::ModelConfig;
use crate::config::ConfigError;
use crate::io::{human_bytes, mem_available};

/// Bytes per stored value (f32).
const F32: f64 = 4.0;
/// Copies of each parameter while training: value, gradient, AdamW's two moments.
const TRAIN_COPIES: f64 = 4.0;
/// Values kept per step, feature and block for the backward pass (norm, layer input and
/// output, FFT buffers, activation, dropout mask, residual).
const ACT_PER_STEP: f64 = 16.0;

/// Estimated memory of a model, in bytes (f64: absurd configs overflow no integer).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryEstimate {
    /// Parameters with their gradients and optimizer state.
    pub params: f64,
    /// Activations of one training step.
    pub activations: f64,
}

impl MemoryEstimate {
    /// Both together.
    pub fn total(&self) -> f64 {
        self.params + self.activations
    }
}

/// A layer option read as a number (absent or not a number: `default`).
fn opt(cfg: &ModelConfig, key: &str, default: f64) -> f64 {
    match cfg.layer.options.get(key) {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(default),
        _ => default,
    }
}

/// Estimates `cfg` with `d_in` input features (or a vocabulary of that many tokens),
/// `d_output` outputs, sequences of `seq_len` steps and batches of `batch`.
pub fn estimate(cfg: &ModelConfig, d_in: usize, d_output: usize, seq_len: usize, batch: usize) -> MemoryEstimate {
    let h = cfg.d_model as f64;
    let layers = cfg.n_layers as f64;
    let (n, c) = (opt(cfg, "d_state", 64.0), opt(cfg, "channels", 1.0));
    // Gated layers (Mamba) widen the block by `expand` and keep a state per inner feature.
    let e = opt(cfg, "expand", 0.0);
    let block = h * h * (2.0 + 2.0 * cfg.ff as f64 + 3.0 * e) + h * n * (c + 3.0 * e) + 8.0 * h;
    let params = layers * block + h * (d_in as f64 + d_output as f64 + 4.0);
    let (l, b) = (seq_len.max(1) as f64, batch.max(1) as f64);
    // Per block: activations of every step (a feed-forward sub-block widens them by `ff`, a
    // selective scan keeps an N-state per inner feature), plus the kernel and its FFT (C·H·L).
    let per_step = ACT_PER_STEP + 2.0 * cfg.ff as f64 + 2.0 * e * n;
    let act = layers * (b * l * h * per_step + 4.0 * h * l * c);
    MemoryEstimate { params: params * TRAIN_COPIES * F32, activations: act * F32 }
}

/// Refuses `cfg` when its estimate exceeds the memory available (`MemAvailable` of
/// /proc/meminfo; no check where that is unknown). The error names the sizes that drive it.
pub fn check(cfg: &ModelConfig, d_in: usize, d_output: usize, seq_len: usize, batch: usize) -> Result<(), ConfigError> {
    let est = estimate(cfg, d_in, d_output, seq_len, batch);
    let Some(avail) = mem_available() else { return Ok(()) };
    if est.total() <= avail as f64 {
        return Ok(());
    }
    let bytes = |v: f64| if v >= u64::MAX as f64 { "more than 16 EiB".to_string() } else { human_bytes(v as u64) };
    let sizes: Vec<String> = ["d_state", "channels", "expand", "l_max"]
        .iter()
        .filter_map(|k| cfg.layer.options.get(*k).map(|v| format!("model.layer.{k}={}", crate::config::inline_yaml(v))))
        .collect();
    Err(ConfigError::Key {
        path: "model".into(),
        msg: format!(
            "this model needs about {} (parameters and optimizer state {}, activations {} for a batch of {batch} × \
             {seq_len} steps), more than the {} of memory available; reduce model.d_model={}, model.n_layers={}{}{}",
            bytes(est.total()),
            bytes(est.params),
            bytes(est.activations),
            human_bytes(avail),
            cfg.d_model,
            cfg.n_layers,
            if sizes.is_empty() { "" } else { " or " },
            sizes.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> ModelConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn estimate_grows_with_every_size_and_never_overflows() {
        let base = cfg("{d_model: 64, n_layers: 2, layer: {_name_: s4, d_state: 64}}");
        let e0 = estimate(&base, 1, 10, 784, 32);
        assert!(e0.total() > 0.0 && e0.total() < 1e9, "{e0:?}");
        let wide = cfg("{d_model: 128, n_layers: 2, layer: {_name_: s4, d_state: 64}}");
        assert!(estimate(&wide, 1, 10, 784, 32).params > e0.params);
        let huge = cfg("{d_model: 65536, n_layers: 4096, layer: {_name_: s4, d_state: 18446744073709551615}}");
        let e = estimate(&huge, 1, 10, 1 << 24, 1 << 24);
        assert!(e.total().is_finite() && e.total() > 1e28, "{e:?}");
        if mem_available().is_some() {
            let msg = check(&huge, 1, 10, 1 << 24, 1).unwrap_err().to_string();
            assert!(msg.contains("`model`") && msg.contains("memory available") && msg.contains("d_state"), "{msg}");
        }
        assert!(check(&base, 1, 10, 784, 1).is_ok());
    }
}
