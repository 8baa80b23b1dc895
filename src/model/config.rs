//! Options of the residual backbone (`model:`), besides its layer.

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, Named, check};

/// The residual backbone (state-spaces/s4 `SequenceModel`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width H of every block.
    pub d_model: usize,
    /// Number of residual blocks.
    pub n_layers: usize,
    /// Dropout after each layer (and in the FF sub-block).
    #[serde(default)]
    pub dropout: f64,
    /// Normalization of each block.
    #[serde(default)]
    pub norm: NormKind,
    /// Normalize before the layer (true) or after the residual sum (false).
    #[serde(default)]
    pub prenorm: bool,
    /// Expansion factor of a pointwise GELU feed-forward sub-block per block (0 = none).
    #[serde(default)]
    pub ff: usize,
    /// How the sequence is reduced before the decoder.
    #[serde(default)]
    pub pool: PoolKind,
    /// The sequence layer (registry `layer`).
    pub layer: Named,
}

/// The widest `d_model` accepted (larger widths are typos or overflow attempts).
pub const MAX_WIDTH: usize = 1 << 16;
/// The most residual blocks accepted.
pub const MAX_LAYERS: usize = 1 << 12;
/// The largest feed-forward expansion factor accepted.
pub const MAX_FF: usize = 64;

impl ModelConfig {
    /// Checks the backbone's numeric options (the layer's are its own).
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::count("model.d_model", self.d_model, MAX_WIDTH)?;
        check::at_most("model.n_layers", self.n_layers, MAX_LAYERS)?;
        check::at_most("model.ff", self.ff, MAX_FF)?;
        check::fraction("model.dropout", self.dropout)
    }
}

/// Normalization inside residual blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// LayerNorm over the feature dimension.
    #[default]
    Layer,
    /// BatchNorm over batch and time.
    Batch,
    /// Identity.
    None,
    /// RMSNorm over the feature dimension (Mamba's).
    Rms,
}

/// Sequence reduction before the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PoolKind {
    /// Mean over valid time steps.
    #[default]
    Mean,
    /// The last time step.
    Last,
    /// No pooling: one output per time step.
    None,
}
