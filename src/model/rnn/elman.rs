//! `rnn`: `torch.nn.RNN`, the Elman network, as a sequence layer:
//! `h_t = act(W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh)` with `act` tanh or ReLU.
//!
//! The defaults are the IRNN of Le, Jaitly & Hinton (2015), the RNN baseline of the wave RNN
//! paper (akandykeller/Wave_RNNs: `act: relu`, `init: eye`): ReLU with the identity as the
//! initial recurrent weights, so the state carries the past unchanged until training says
//! otherwise. `nonlinearity: tanh, init: torch` is `torch.nn.RNN` exactly; its small uniform
//! `W_hh` forgets within a few steps and learns the digits far more slowly.

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::cell::{CellKind, Nonlinearity};
use super::stack::{Recurrent, StackOptions};
use crate::config::ConfigError;
use crate::model::LayerOptions;

/// Initialization of the recurrent weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RnnInit {
    /// `W_hh` the identity and `b_hh` zero (IRNN); the other tensors as `torch`.
    #[default]
    Eye,
    /// PyTorch's: every tensor uniform in `±1/√hidden`.
    Torch,
}

/// Options of the `rnn` layer (`model.layer`): `torch.nn.RNN`'s with `hidden_size` the model
/// width, and the IRNN's nonlinearity and init as defaults (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnConfig {
    /// `tanh` or `relu`.
    pub nonlinearity: Nonlinearity,
    /// Initialization of `W_hh` and `b_hh`.
    pub init: RnnInit,
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

impl Default for RnnConfig {
    fn default() -> Self {
        Self {
            nonlinearity: Nonlinearity::Relu,
            init: RnnInit::Eye,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            hidden_size: None,
        }
    }
}

/// A built `rnn` layer.
pub type Rnn = Recurrent;

impl RnnConfig {
    fn stack(&self) -> StackOptions {
        StackOptions {
            num_layers: self.num_layers,
            bidirectional: self.bidirectional,
            dropout: self.dropout,
            hidden_size: self.hidden_size,
        }
    }
}

impl LayerOptions for RnnConfig {
    type Layer = Rnn;

    /// Checks ranges, naming `{path}.{key}`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.stack().validate(path)
    }

    /// Checks the options against the model width `h`.
    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        self.stack().check_width(path, h)
    }

    /// Builds the layer for width `h`.
    fn init(&self, h: usize, device: &Device) -> Rnn {
        let mut rnn = self.stack().init(CellKind::Rnn(self.nonlinearity), h, device);
        if self.init == RnnInit::Eye {
            for cell in &mut rnn.cells {
                let hidden = cell.hidden();
                cell.weight_hh = Param::from_tensor(Tensor::eye(hidden, device));
                cell.bias_hh = Param::from_tensor(Tensor::zeros([hidden], device));
            }
        }
        rnn
    }
}
