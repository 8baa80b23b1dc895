//! `lstm`: `torch.nn.LSTM` as a sequence layer (Hochreiter & Schmidhuber 1997): gates i, f,
//! g, o along the rows of `weight_ih_l{k}` / `weight_hh_l{k}`, two biases, state (h, c).

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::cell::CellKind;
use super::stack::{Recurrent, StackOptions};
use crate::config::ConfigError;
use crate::model::LayerOptions;

/// Options of the `lstm` layer (`model.layer`); the defaults are `torch.nn.LSTM`'s with
/// `hidden_size` the model width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LstmConfig {
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

impl Default for LstmConfig {
    fn default() -> Self {
        Self { num_layers: 1, bidirectional: false, dropout: 0.0, hidden_size: None }
    }
}

/// A built `lstm` layer.
pub type Lstm = Recurrent;

impl LstmConfig {
    fn stack(&self) -> StackOptions {
        StackOptions {
            num_layers: self.num_layers,
            bidirectional: self.bidirectional,
            dropout: self.dropout,
            hidden_size: self.hidden_size,
        }
    }
}

impl LayerOptions for LstmConfig {
    type Layer = Lstm;

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
    fn init(&self, h: usize, device: &Device) -> Lstm {
        self.stack().init(CellKind::Lstm, h, device)
    }
}
