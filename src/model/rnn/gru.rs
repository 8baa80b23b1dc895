//! `gru`: `torch.nn.GRU` as a sequence layer (Cho et al. 2014): gates r, z, n along the rows
//! of `weight_ih_l{k}` / `weight_hh_l{k}`; `b_hn` sits inside `r⊙(W_hn·h + b_hn)`, and
//! `h_t = (1-z)⊙n + z⊙h_{t-1}`.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::cell::CellKind;
use super::stack::{Recurrent, StackOptions};
use crate::config::ConfigError;
use crate::model::LayerOptions;

/// Options of the `gru` layer (`model.layer`); the defaults are `torch.nn.GRU`'s with
/// `hidden_size` the model width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GruConfig {
    /// Stacked layers.
    pub num_layers: usize,
    /// A reverse direction per layer (no step mode then); each direction gets H/2 units.
    pub bidirectional: bool,
    /// Dropout on the outputs of every layer but the last.
    pub dropout: f64,
    /// Units per direction (null: H, or H/2 when bidirectional); a linear layer maps other
    /// widths back to H.
    pub hidden_size: Option<usize>,
}

impl Default for GruConfig {
    fn default() -> Self {
        Self { num_layers: 1, bidirectional: false, dropout: 0.0, hidden_size: None }
    }
}

/// A built `gru` layer.
pub type Gru = Recurrent;

impl GruConfig {
    fn stack(&self) -> StackOptions {
        StackOptions {
            num_layers: self.num_layers,
            bidirectional: self.bidirectional,
            dropout: self.dropout,
            hidden_size: self.hidden_size,
        }
    }
}

impl LayerOptions for GruConfig {
    type Layer = Gru;

    /// Checks ranges, naming `{path}.{key}`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.stack().validate(path)
    }

    /// Checks the options against the model width `h`.
    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        self.stack().check_width(path, h)
    }

    /// `pool: auto` reads the last step (the state that has seen the whole input, as an RNN
    /// classifier reads it), or the mean when bidirectional.
    fn pool(&self) -> crate::model::PoolKind {
        self.stack().pool()
    }

    /// Builds the layer for width `h`.
    fn init(&self, h: usize, device: &Device) -> Gru {
        self.stack().init(CellKind::Gru, h, device)
    }
}
