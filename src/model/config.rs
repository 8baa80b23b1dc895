//! Options of the residual backbone (`model:`), besides its layer.

use serde::{Deserialize, Serialize};
use serde_yaml::Mapping;

use crate::config::{ConfigError, Named, check};

/// The model kind of the residual backbone.
pub const SEQUENCE: &str = "sequence";

/// The `model` section: the residual backbone (state-spaces/s4 `SequenceModel`), or with
/// `_name_` another model of the registry.
///
/// The root config sets the backbone's sizes for every run, so they are always present; a
/// model other than `sequence` leaves them unused and reads its own keys from `options`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `sequence` (this backbone; the default) or a registered model such as `resnet1d`.
    #[serde(rename = "_name_", default = "sequence", skip_serializing_if = "is_sequence")]
    pub name: String,
    /// Options of a model other than `sequence`, checked by its registry entry.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub options: Mapping,
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

fn sequence() -> String {
    SEQUENCE.into()
}
fn is_sequence(name: &str) -> bool {
    name == SEQUENCE
}

impl ModelConfig {
    /// The registered model other than the backbone, with its checked options; `None` for
    /// the backbone (which must then have no `options`).
    pub fn classifier(&self) -> Result<Option<super::ClassifierConfig>, ConfigError> {
        if self.name == SEQUENCE {
            if let Some(k) = self.options.keys().next() {
                let k = k.as_str().unwrap_or("?");
                return Err(ConfigError::Key {
                    path: format!("model.options.{k}"),
                    msg: "the sequence backbone takes no `options`; set `model._name_` to a registered model".into(),
                });
            }
            return Ok(None);
        }
        let named = Named { name: self.name.clone(), options: self.options.clone() };
        let c = super::ClassifierConfig::from_named(&named, "model.options").map_err(|e| match e {
            // An unknown model kind is `model._name_`, not `model.options._name_`.
            ConfigError::Key { path, msg } if path == "model.options._name_" => {
                ConfigError::Key { path: "model._name_".into(), msg: format!("{msg}, {SEQUENCE}") }
            }
            e => e,
        })?;
        c.validate("model.options")?;
        Ok(Some(c))
    }

    /// The display name of the model: the backbone's layer, or the registered model.
    pub fn display_name(&self) -> &str {
        if self.name == SEQUENCE { &self.layer.name } else { &self.name }
    }

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
    /// The layer's own readout ([`crate::model::LayerOptions::pool`]): the last step of a
    /// causal recurrent layer or causal transformer (the state that has seen the whole input),
    /// the mean for the others. Resolved when the config is.
    Auto,
}
