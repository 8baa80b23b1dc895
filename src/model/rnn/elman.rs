//! `rnn`: `torch.nn.RNN`, the Elman network, as a sequence layer:
//! `h_t = act(W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh)` with `act` tanh or ReLU.

use std::sync::LazyLock;

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::cell::{CellKind, Nonlinearity};
use super::stack::{MAX_LAYERS, Recurrent, StackOptions};
use crate::config::ConfigError;
use crate::model::LayerOptions;
use crate::model::ssm::hyper::SsmGroup;

/// Initialization of the recurrent weights `weight_hh`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HiddenInit {
    /// A random orthogonal matrix (Saxe et al. 2014; Henaff et al. 2016; the `orthogonal` option
    /// of state-spaces/s4's RNN cell): every eigenvalue on the unit circle, so the state neither
    /// fades nor blows up through the linear part of a step.
    #[default]
    Orthogonal,
    /// The identity (Le, Jaitly & Hinton 2015's IRNN, with `relu`): the state is carried
    /// unchanged until the input moves it.
    Identity,
    /// `torch.nn.RNN`'s `U(±1/√H)`: spectral radius about 0.58, so the gradient from the last
    /// step fades by about that factor per step.
    Torch,
}

/// Options of the `rnn` layer (`model.layer`); the defaults are `torch.nn.RNN`'s with
/// `hidden_size` the model width, but for the orthogonal `weight_hh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RnnConfig {
    /// `tanh` or `relu`.
    pub nonlinearity: Nonlinearity,
    /// Stacked layers.
    pub num_layers: usize,
    /// A reverse direction per layer (no step mode then); each direction gets H/2 units.
    pub bidirectional: bool,
    /// Dropout on the outputs of every layer but the last.
    pub dropout: f64,
    /// Units per direction (null: H, or H/2 when bidirectional); a linear layer maps other
    /// widths back to H.
    pub hidden_size: Option<usize>,
    /// Initialization of `weight_hh` (the other tensors are `U(±1/√H)` as PyTorch's).
    pub init_hh: HiddenInit,
    /// Learning rate of the RNN's own tensors (null: the optimizer's), as S4's `lr` is for its
    /// SSM parameters: a tanh recurrence is stable only while `weight_hh` stays near the unit
    /// circle, which the encoder's and decoder's rate (the root config's 0.01) soon breaks.
    pub lr: Option<f64>,
}

impl Default for RnnConfig {
    fn default() -> Self {
        Self {
            nonlinearity: Nonlinearity::Tanh,
            num_layers: 1,
            bidirectional: false,
            dropout: 0.0,
            hidden_size: None,
            init_hh: HiddenInit::Orthogonal,
            lr: Some(0.001),
        }
    }
}

/// A random orthogonal [n, n] matrix, Haar-distributed: Gram-Schmidt on the rows of a Gaussian
/// matrix from the device's seeded RNG (its positive `R` diagonal is the sign fix of
/// `torch.nn.init.orthogonal_`).
pub fn orthogonal(n: usize, device: &Device) -> Tensor<2> {
    let g = Tensor::<2>::random([n, n], Distribution::Normal(0.0, 1.0), device);
    let mut rows: Vec<Vec<f64>> =
        g.try_into_vec_as::<f64>().expect("f64 data").chunks(n.max(1)).map(<[f64]>::to_vec).collect();
    for i in 0..n {
        for j in 0..i {
            let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
            let prev = rows[j].clone();
            rows[i].iter_mut().zip(&prev).for_each(|(a, b)| *a -= dot * b);
        }
        let norm = rows[i].iter().map(|a| a * a).sum::<f64>().sqrt();
        rows[i].iter_mut().for_each(|a| *a /= norm);
    }
    let flat: Vec<f32> = rows.into_iter().flatten().map(|v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [n, n]), device)
}

/// PyTorch's names of every cell tensor, layer by layer (8 per layer: both directions),
/// for as many layers as `num_layers` allows; made once, as parameter groups name their
/// tensors with `'static` strings.
static CELL_NAMES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut names = Vec::with_capacity(MAX_LAYERS * 8);
    for l in 0..MAX_LAYERS {
        for dir in ["", "_reverse"] {
            for t in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
                names.push(&*Box::leak(format!("{t}_l{l}{dir}").into_boxed_str()));
            }
        }
    }
    names
});

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
        if let Some(lr) = self.lr {
            crate::config::check::non_negative(&format!("{path}.lr"), lr)?;
        }
        self.stack().validate(path)
    }

    /// The cells' tensors under `lr` (group `ssm.rnn`; 0 freezes them).
    fn param_groups(&self) -> Vec<SsmGroup> {
        let names = &CELL_NAMES[..(self.num_layers * 8).min(CELL_NAMES.len())];
        vec![SsmGroup { key: "rnn", names, lr: self.lr, wd: None }]
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
    fn init(&self, h: usize, device: &Device) -> Rnn {
        let mut rnn = self.stack().init(CellKind::Rnn(self.nonlinearity), h, device);
        for cell in &mut rnn.cells {
            let n = cell.hidden();
            match self.init_hh {
                HiddenInit::Orthogonal => cell.weight_hh = Param::from_tensor(orthogonal(n, device)),
                HiddenInit::Identity => cell.weight_hh = Param::from_tensor(Tensor::eye(n, device)),
                HiddenInit::Torch => {}
            }
        }
        rnn
    }
}
