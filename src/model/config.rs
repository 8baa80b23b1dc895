//! Options of the residual backbone (`model:`), besides its layer.

use serde::{Deserialize, Serialize};

use crate::config::Named;

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
