//! `ckconv`: the continuous kernel convolution (CKConv) of Romero, Kuzina, Bekkers, Tomczak &
//! Hoogendoorn, "CKConv: Continuous Kernel Convolution for Sequential Data" (ICLR 2022), as
//! state-spaces/s4's `baselines/ckconv.py`: a causal convolution H → H (every output channel
//! mixes every input channel) whose kernel is sampled from a SIREN, a three-layer MLP with
//! sine activations over the relative position:
//!
//! `K(p) = W₈·sin(ω₀(W₄·sin(ω₀(W₀·p + b₀)) + b₄)) + b₈`, each `W` weight-normalized
//! (`W = g·v/‖v‖` per output row), `K(p)` [H·H] viewed as [H_out, H_in].
//!
//! Positions: the reference samples the kernel at `linspace(-1, 1, L_train)` with the newest
//! input on position 1, so lag `j` sits at `1 - 2j/(L_train-1)`. Here `L_train` is `l_max`
//! (`fit` sets the data's length); the kernel is a function of the lag alone, so outputs do not
//! depend on the length of the input and the layer is causal. The convolution runs by FFT as
//! the SSM layers' long convolution, with the channel mixing as one matrix product per
//! frequency. Parameter names are the reference's `CKConv` state_dict keys
//! (`Kernel.kernel_net.0.weight_g`, …, `bias`). There is no step mode: the kernel is as long as
//! the sequence.

// Field names mirror the PyTorch state_dict keys (`Kernel`).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::signal::{irfft, rfft};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check};
use crate::model::ssm::{Activation, StepError};
use crate::model::{LayerOptions, SeqLayer};
use crate::weights::names::{Layout, Map};

/// Largest hidden width of the kernel network accepted.
const MAX_HIDDEN: usize = 1 << 12;
/// Largest `l_max` accepted (2^24 steps, as the SSM layers).
const MAX_LEN: usize = 1 << 24;
/// Slots of the reference's `nn.Sequential` that hold the three weight-normalized convolutions
/// (the others are parameterless: ×ω₀, identity norm, sine, dropout).
const LINEAR_SLOTS: [usize; 3] = [0, 4, 8];

/// Initialization of the kernel network's weights (`weight_v`; `weight_g = ‖v‖` either way,
/// and the biases are `U(-1, 1)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KernelInit {
    /// The SIREN init of the paper and of the reference's `initialize`: first layer
    /// `U(-1, 1)`, the others `U(±√(6/fan_in)/ω₀)`.
    #[default]
    Siren,
    /// What state-spaces/s4's `ckconv.py` actually trains with: PyTorch's `Conv1d` default,
    /// `U(±1/√fan_in)`. Its SIREN init writes the `weight` that `weight_norm` recomputes from
    /// `weight_g` and `weight_v` at every forward, so it never reaches the parameters.
    Torch,
}

/// Options of the `ckconv` layer (`model.layer`); defaults as state-spaces/s4's
/// `configs/model/baseline/ckconv.yaml` but for `bias` (see its doc); `model=ckconv` is the
/// reference's (biases on, and the init its code runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CkConvConfig {
    /// Hidden units of the kernel network.
    pub kernelnet_hidden_channels: usize,
    /// Frequency factor ω₀ of the sines.
    pub omega_0: f64,
    /// Biases in the kernel network and on the output. Off by default: the reference draws the
    /// kernel network's biases from `U(-1, 1)`, so every kernel starts as a constant of that
    /// size over all lags: its output, a sum over every channel and lag, is many times its
    /// input and drowns the residual path (0.36 test accuracy on the digits with them, 0.97
    /// without).
    pub bias: bool,
    /// Dropout on the sampled kernel (training only).
    pub weight_dropout: f64,
    /// Activation after the convolution.
    pub activation: Activation,
    /// The length whose positions span [-1, 1] (null: `fit` sets the data's length; without
    /// one, each input's own length).
    pub l_max: Option<usize>,
    /// Initialization of the kernel network's weights.
    pub init: KernelInit,
}

impl Default for CkConvConfig {
    fn default() -> Self {
        Self {
            kernelnet_hidden_channels: 32,
            omega_0: 40.0,
            bias: false,
            weight_dropout: 0.0,
            activation: Activation::Gelu,
            l_max: None,
            init: KernelInit::Siren,
        }
    }
}

impl LayerOptions for CkConvConfig {
    type Layer = CkConv;

    /// Checks ranges, naming `{path}.{key}`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        check::count(&format!("{path}.kernelnet_hidden_channels"), self.kernelnet_hidden_channels, MAX_HIDDEN)?;
        check::positive(&format!("{path}.omega_0"), self.omega_0)?;
        check::fraction(&format!("{path}.weight_dropout"), self.weight_dropout)?;
        if let Some(l) = self.l_max {
            check::count(&format!("{path}.l_max"), l, MAX_LEN)?;
        }
        Ok(())
    }

    fn set_l_max(&mut self, l: usize) {
        self.l_max.get_or_insert(l);
    }

    /// Builds the layer for width `h`: `v` as `init`, kernel-network biases `U(-1, 1)`, output
    /// bias 0, and `g = ‖v‖` (weight norm starts as the identity).
    fn init(&self, h: usize, device: &Device) -> CkConv {
        let hid = self.kernelnet_hidden_channels;
        let sizes = [(hid, 1), (hid, hid), (h * h, hid)];
        let mut kernel_net: Vec<Option<WnConv>> = (0..=LINEAR_SLOTS[2]).map(|_| None).collect();
        for (k, (&slot, (out, inp))) in LINEAR_SLOTS.iter().zip(sizes).enumerate() {
            let bound = match self.init {
                KernelInit::Torch => 1.0 / (inp as f64).sqrt(),
                KernelInit::Siren if k == 0 => 1.0,
                KernelInit::Siren => (6.0 / inp as f64).sqrt() / self.omega_0,
            };
            let v = Tensor::<3>::random([out, inp, 1], Distribution::Uniform(-bound, bound), device);
            let g = v.clone().square().sum_dim(1).sum_dim(2).sqrt(); // [out, 1, 1]
            let bias =
                self.bias.then(|| Param::from_tensor(Tensor::random([out], Distribution::Uniform(-1.0, 1.0), device)));
            kernel_net[slot] = Some(WnConv { weight_g: Param::from_tensor(g), weight_v: Param::from_tensor(v), bias });
        }
        CkConv {
            Kernel: KernelNet { kernel_net },
            bias: self.bias.then(|| Param::from_tensor(Tensor::zeros([h], device))),
            weight_dropout: DropoutConfig::new(self.weight_dropout).init(),
            omega_0: self.omega_0,
            l_max: self.l_max,
            activation: self.activation,
        }
    }
}

/// A weight-normalized pointwise `Conv1d` (`torch.nn.utils.weight_norm`, `dim = 0`).
#[derive(Module, Debug)]
pub struct WnConv {
    /// Norm of each output row, [out, 1, 1].
    pub weight_g: Param<Tensor<3>>,
    /// Direction, [out, in, 1].
    pub weight_v: Param<Tensor<3>>,
    /// Bias, [out].
    pub bias: Option<Param<Tensor<1>>>,
}

impl WnConv {
    /// `g·v/‖v‖`, [out, in].
    fn weight(&self) -> Tensor<2> {
        let [out, inp, _] = self.weight_v.dims();
        let v = self.weight_v.val().reshape([out, inp]);
        let norm = v.clone().square().sum_dim(1).sqrt(); // [out, 1]
        v / norm * self.weight_g.val().reshape([out, 1])
    }

    /// Args: `z` [in, P]. Returns [out, P].
    fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let y = self.weight().matmul(z);
        match &self.bias {
            Some(b) => y + b.val().unsqueeze_dim::<2>(1),
            None => y,
        }
    }
}

/// The reference's `KernelNet`: its `nn.Sequential` with the parameterless slots empty, so the
/// parameter paths keep the reference's indices (`kernel_net.0`, `.4`, `.8`).
#[derive(Module, Debug)]
pub struct KernelNet {
    /// Slots 0..=8; `Some` at 0, 4 and 8.
    pub kernel_net: Vec<Option<WnConv>>,
}

/// A built `ckconv` layer.
#[derive(Module, Debug)]
pub struct CkConv {
    /// The kernel network.
    pub Kernel: KernelNet,
    /// Output bias, [H].
    pub bias: Option<Param<Tensor<1>>>,
    /// Dropout on the sampled kernel.
    pub weight_dropout: Dropout,
    /// Frequency factor ω₀.
    #[module(skip)]
    pub omega_0: f64,
    /// The length whose positions span [-1, 1] (None: the input's).
    #[module(skip)]
    pub l_max: Option<usize>,
    /// Activation after the convolution.
    #[module(skip)]
    pub activation: Activation,
}

impl CkConv {
    fn linear(&self, k: usize) -> &WnConv {
        self.Kernel.kernel_net[LINEAR_SLOTS[k]].as_ref().expect("the kernel network has its three layers")
    }

    /// The causal kernel of width `h` for lags `0..l`: `K[o, i, j]` multiplies input channel
    /// `i` at `t - j` into output channel `o` at `t`. Returns [H, H, L].
    pub fn kernel(&self, h: usize, l: usize) -> Tensor<3> {
        let device = self.linear(0).weight_v.device();
        let span = self.l_max.unwrap_or(l);
        // Lag j at position 1 - 2j/(span-1); a span of 1 has its one position at -1.
        let (start, step) = if span > 1 { (1.0, 2.0 / (span - 1) as f64) } else { (-1.0, 0.0) };
        let pos: Vec<f32> = (0..l).map(|j| (start - step * j as f64) as f32).collect();
        let p = Tensor::<2>::from_data(TensorData::new(pos, [1, l]), &device); // [1, L]
        let z = self.linear(0).forward(p).mul_scalar(self.omega_0).sin(); // [hid, L]
        let z = self.linear(1).forward(z).mul_scalar(self.omega_0).sin(); // [hid, L]
        let k = self.weight_dropout.forward(self.linear(2).forward(z)); // [H·H, L]
        k.reshape([h, h, l])
    }

    /// The causal convolution with channel mixing by FFT: `y[b, t, o] = Σ_{i, j ≤ t}
    /// K[o, i, j]·x[b, t - j, i]`, one complex matrix product [B, H_in] × [H_in, H_out] per
    /// frequency.
    ///
    /// Args: `x` [B, L, H], `k` [H, H, L]. Returns [B, L, H].
    pub fn convolve(x: Tensor<3>, k: Tensor<3>) -> Tensor<3> {
        let [_, l, _] = x.dims();
        let n = (2 * l).next_power_of_two();
        let (xr, xi) = rfft(x.swap_dims(1, 2), 2, Some(n)); // [B, I, F]
        let (kr, ki) = rfft(k, 2, Some(n)); // [O, I, F]
        let (xr, xi) = (xr.permute([2, 0, 1]), xi.permute([2, 0, 1])); // [F, B, I]
        let (kr, ki) = (kr.permute([2, 1, 0]), ki.permute([2, 1, 0])); // [F, I, O]
        let yr = xr.clone().matmul(kr.clone()) - xi.clone().matmul(ki.clone()); // [F, B, O]
        let yi = xr.matmul(ki) + xi.matmul(kr);
        let y = irfft(yr.permute([1, 2, 0]), yi.permute([1, 2, 0]), 2, Some(n)); // [B, O, n]
        y.narrow(2, 0, l).swap_dims(1, 2) // [B, L, O]
    }
}

impl SeqLayer for CkConv {
    type Stepper = ();
    type State = ();
    const NAME: &'static str = "ckconv";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [_, l, h] = x.dims();
        if l == 0 {
            return x;
        }
        let y = Self::convolve(x, self.kernel(h, l));
        let y = match &self.bias {
            Some(b) => y + b.val().unsqueeze::<3>(),
            None => y,
        };
        match self.activation {
            Activation::Gelu => crate::ops::gelu(y),
            Activation::Id => y,
        }
    }

    fn stepper(&self, _batch: usize, _l: usize) -> Result<(), StepError> {
        Err(StepError::NoRecurrentForm {
            layer: Self::NAME,
            why: "its kernel is as long as the sequence (a convolution, not a recurrence): run it in conv mode",
        })
    }

    fn forward_state(&self, _x: Tensor<3>, _state: Option<&()>) -> Result<(Tensor<3>, ()), StepError> {
        Err(StepError::NoRecurrentForm {
            layer: Self::NAME,
            why: "a convolution over the whole past has no state to carry between chunks: run whole sequences",
        })
    }

    /// The reference's `CKConv` keys under the layer's prefix (all stored as they are).
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        match rest {
            ["Kernel", "kernel_net", _, "weight_g" | "weight_v" | "bias"] | ["bias"] => {
                Some((format!("{prefix}.{}", rest.join(".")), Map::Same))
            }
            _ => None,
        }
    }
}
