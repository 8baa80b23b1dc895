//! `wrnn` (`model._name_: wrnn`): the wave RNN paper's own classifier (the `coRNN` of
//! akandykeller/Wave_RNNs' `conv_rnn_model.py`). The wave cell reads the raw input and one
//! linear decoder reads its last hidden state: no encoder, residual blocks or per-step readout
//! as in the `wave_rnn` layer of the backbone. With `freeze_rnn` and `freeze_encoder` only that
//! decoder trains (the reference's options of the same names). Parameter names are the
//! reference's (`cell.Wx`, `cell.Wy`, `readout`).

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::wave::{WaveAct, WaveCell, WaveInit, WaveRnnConfig};
use crate::config::ConfigError;
use crate::model::{Classifier, ClassifierOptions};

/// Options of `wrnn`; defaults as the reference's psMNIST sweep (256 positions × 16 channels,
/// `fwd`, ReLU, `solo_init`, a linear decoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WrnnConfig {
    /// Positions on the ring per channel.
    pub n_hid: usize,
    /// Channels of the hidden state.
    pub n_ch: usize,
    /// Taps of the circular convolution (odd).
    pub ksize: usize,
    /// Initialization of `Wy`.
    pub init: WaveInit,
    /// Activation.
    pub act: WaveAct,
    /// The sparse input init (see [`WaveRnnConfig::solo_init`]).
    pub solo_init: bool,
    /// Keep the recurrent convolution `cell.Wy` at its init.
    pub freeze_rnn: bool,
    /// Keep the input map `cell.Wx` at its init.
    pub freeze_encoder: bool,
}

impl Default for WrnnConfig {
    fn default() -> Self {
        Self {
            n_hid: 256,
            n_ch: 16,
            ksize: 3,
            init: WaveInit::Fwd,
            act: WaveAct::Relu,
            solo_init: true,
            freeze_rnn: false,
            freeze_encoder: false,
        }
    }
}

impl WrnnConfig {
    /// The cell's options as the layer's.
    fn cell(&self) -> WaveRnnConfig {
        WaveRnnConfig {
            n_hid: Some(self.n_hid),
            n_ch: self.n_ch,
            ksize: self.ksize,
            init: self.init,
            act: self.act,
            solo_init: self.solo_init,
        }
    }
}

/// The built `wrnn` classifier.
#[derive(Module, Debug)]
pub struct Wrnn {
    /// The recurrent cell.
    pub cell: WaveCell,
    /// Decoder of the last state, n_ch·n_hid → K.
    pub readout: Linear,
    /// Activation.
    #[module(skip)]
    pub act: WaveAct,
}

impl ClassifierOptions for WrnnConfig {
    type Model = Wrnn;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        crate::model::LayerOptions::validate(&self.cell(), path)
    }

    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<Wrnn, ConfigError> {
        self.validate("model.options")?;
        let mut cell = WaveCell::new(&self.cell(), d_input, self.n_hid, device);
        let freeze = |p: Param<Tensor<1>>| p.set_require_grad(false);
        if self.freeze_encoder {
            cell.Wx.weight = cell.Wx.weight.set_require_grad(false);
            cell.Wx.bias = cell.Wx.bias.map(freeze);
        }
        if self.freeze_rnn {
            cell.Wy.weight = cell.Wy.weight.set_require_grad(false);
            cell.Wy.bias = freeze(cell.Wy.bias);
        }
        let readout = LinearConfig::new(self.n_ch * self.n_hid, d_output).init(device);
        Ok(Wrnn { cell, readout, act: self.act })
    }
}

impl Classifier for Wrnn {
    /// Args: `x` [B, L, D]; `lengths` valid steps per sample. Returns [B, 1, K]: the decoder
    /// of the state after each sample's last valid step (the zero state for an empty one).
    fn forward(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Tensor<3> {
        let [b, l, _] = x.dims();
        let s = self.cell.state_dims().iter().product();
        let device = x.device();
        let last = match lengths {
            _ if l == 0 => Tensor::zeros([b, s], &device),
            None => self.cell.hidden_states(x, None, self.act).narrow(1, l - 1, 1).reshape([b, s]),
            Some(lens) => {
                // Row `i·(L+1) + len_i` of the states with the zero state prepended: the state
                // after step len_i (the zero state for an empty sample).
                let hs = self.cell.hidden_states(x, None, self.act); // [B, L, S]
                let hs = Tensor::cat(vec![Tensor::zeros([b, 1, s], &device), hs], 1).reshape([b * (l + 1), s]);
                let rows: Vec<i64> =
                    (0..b).map(|i| (i * (l + 1) + lens.get(i).map_or(l, |&n| n.min(l))) as i64).collect();
                hs.select(0, Tensor::<1, Int>::from_data(TensorData::new(rows, [b]), &device)) // [B, S]
            }
        };
        let k = self.readout.weight.dims()[1];
        self.readout.forward(last).reshape([b, 1, k])
    }
}
