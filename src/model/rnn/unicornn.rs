//! `unicornn`: UnICORNN (Rusch & Mishra 2021, "UnICORNN: A recurrent model for learning very
//! long time dependencies"), as state-spaces/s4's `baselines/unicornn.py`: `n_layers` stacked
//! pairs of a per-step input `Linear` (`DIs.<i>.fc`) and a diagonal second-order oscillator
//! recurrence (`RNNs.<i>`) discretized by symplectic Euler, per channel with `k = dt_i·σ(c_)`:
//!
//! `hz_t = hz_{t-1} - k·(tanh(weight_hh·hy_{t-1} + u_t) + α·hy_{t-1})`, `hy_t = hy_{t-1} + k·hz_t`
//!
//! Each layer outputs its `hy` sequence, with dropout over time (one mask per sequence and
//! channel) in training. Parameter names are the reference's state_dict keys. On the CPU the
//! recurrence is a fused op (`crate::ops::unicornn`); elsewhere one step of tensor ops per
//! time step.

// Field names mirror the PyTorch state_dict keys (`DIs`, `RNNs`).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::stack::check_width;
use crate::config::{ConfigError, check};
use crate::model::ssm::StepError;
use crate::model::{LayerOptions, SeqLayer};
use crate::ops::unicornn::Coeffs;
use crate::weights::names::{Layout, Map};

/// Largest `n_layers` accepted (a guard against typos).
const MAX_LAYERS: usize = 64;

/// Step sizes: one for every layer, or a list with one per layer (the reference's form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StepSizes {
    /// The same `dt` for every layer.
    One(f64),
    /// `dt` of layer `i` at index `i`.
    PerLayer(Vec<f64>),
}

/// Options of the `unicornn` layer (`model.layer`). The defaults are for a block of the
/// backbone: one recurrence per block (the blocks are the stack), and `dt = 1`, `α = 1`, an
/// oscillation of about 0.6 rad per step at init (`dt·σ(c_)·√α` with `σ(c_) ≈ ½`, plus the
/// `tanh` term), as the reference repo's psMNIST setting (`dt = 0.19`, `α = 30.65`: 0.5 rad).
/// State-spaces/s4's `configs/model/baseline/unicornn.yaml` (the repo's health-care setting:
/// 3 layers, `dt = 0.046`, `α = 10`, 0.07 rad per step, made for ~4000-step series) is
/// `model=unicornn`; on 64 steps its oscillators barely move (0.52 test accuracy on the
/// embedded digits against 0.92).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnicornnConfig {
    /// Stacked recurrent layers.
    pub n_layers: usize,
    /// Step size of each layer's time discretization.
    pub dt: StepSizes,
    /// Restoring force `α` of the oscillators.
    pub alpha: f64,
    /// Dropout over time on each layer's output (training only).
    pub dropout: f64,
}

impl Default for UnicornnConfig {
    fn default() -> Self {
        Self { n_layers: 1, dt: StepSizes::One(1.0), alpha: 1.0, dropout: 0.1 }
    }
}

impl UnicornnConfig {
    /// `dt` of every layer.
    fn dts(&self) -> Vec<f64> {
        match &self.dt {
            StepSizes::One(dt) => vec![*dt; self.n_layers],
            StepSizes::PerLayer(v) => v.clone(),
        }
    }
}

impl LayerOptions for UnicornnConfig {
    type Layer = Unicornn;

    /// Checks ranges, naming `{path}.{key}`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        check::count(&format!("{path}.n_layers"), self.n_layers, MAX_LAYERS)?;
        if let StepSizes::PerLayer(v) = &self.dt
            && v.len() != self.n_layers
        {
            return Err(ConfigError::Key {
                path: format!("{path}.dt"),
                msg: format!("needs one step size per layer (n_layers = {}), got {}", self.n_layers, v.len()),
            });
        }
        for dt in self.dts() {
            check::positive(&format!("{path}.dt"), dt)?;
        }
        check::non_negative(&format!("{path}.alpha"), self.alpha)?;
        check::fraction(&format!("{path}.dropout"), self.dropout)
    }

    /// Builds the layer for width `h` with the reference's init: `fc.weight` Kaiming-uniform
    /// (`a = 8`, fan-in), `fc.bias = 0`, `weight_hh ~ U(0, 1)`, `c_ ~ U(-0.1, 0.1)`.
    fn init(&self, h: usize, device: &Device) -> Unicornn {
        // gain √(2/(1+a²)) times √(3/fan_in).
        let bound = (6.0 / (65.0 * h as f64)).sqrt();
        let DIs = (0..self.n_layers)
            .map(|_| {
                let mut fc = LinearConfig::new(h, h).init(device);
                fc.weight = Param::from_tensor(Tensor::random([h, h], Distribution::Uniform(-bound, bound), device));
                fc.bias = Some(Param::from_tensor(Tensor::zeros([h], device)));
                DenseInput { fc }
            })
            .collect();
        let RNNs = self
            .dts()
            .into_iter()
            .map(|dt| Oscillators {
                c_: Param::from_tensor(Tensor::random([h], Distribution::Uniform(-0.1, 0.1), device)),
                weight_hh: Param::from_tensor(Tensor::random([h], Distribution::Uniform(0.0, 1.0), device)),
                dt,
                alpha: self.alpha,
            })
            .collect();
        Unicornn { DIs, RNNs, dropout: DropoutConfig::new(self.dropout).init() }
    }
}

/// The reference's `LinearInitovertime`: a `Linear` applied at every step.
#[derive(Module, Debug)]
pub struct DenseInput {
    /// H → H.
    pub fc: Linear,
}

/// The reference's `UnICORNN_recurrence`: H independent oscillators.
#[derive(Module, Debug)]
pub struct Oscillators {
    /// Time-scale logits: the step of channel `h` is `dt·σ(c_[h])`, [H].
    pub c_: Param<Tensor<1>>,
    /// Recurrent weight per channel (diagonal), [H].
    pub weight_hh: Param<Tensor<1>>,
    /// Step size (a constant, not in the state_dict).
    #[module(skip)]
    pub dt: f64,
    /// Restoring force (a constant).
    #[module(skip)]
    pub alpha: f64,
}

/// The `(hy, hz)` states of every layer of a batch, each [n_layers, B, H].
#[derive(Debug, Clone)]
pub struct UnicornnState {
    /// Positions `hy`.
    pub hy: Tensor<3>,
    /// Velocities `hz`.
    pub hz: Tensor<3>,
}

impl Oscillators {
    fn coeffs(&self) -> Coeffs {
        Coeffs { dt: self.dt as f32, alpha: self.alpha as f32 }
    }

    /// `dt·σ(c_)` as a row, [1, H].
    fn step_sizes(&self) -> Tensor<2> {
        sigmoid(self.c_.val()).mul_scalar(self.dt).unsqueeze::<2>()
    }

    /// One symplectic Euler step by tensor ops. Args: `u` [B, H]; `(hy, hz)` [B, H] each, with
    /// `k` [1, H] from [`Oscillators::step_sizes`]. Returns the new `(hy, hz)`.
    fn advance(&self, k: &Tensor<2>, u: Tensor<2>, hy: Tensor<2>, hz: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let w = self.weight_hh.val().unsqueeze::<2>(); // [1, H]
        let act = (hy.clone() * w + u).tanh();
        let hz = hz - k.clone() * (act + hy.clone().mul_scalar(self.alpha));
        let hy = hy + k.clone() * hz.clone();
        (hy, hz)
    }

    /// The recurrence over a sequence from `(hy0, hz0)`.
    ///
    /// Args: `u` [B, L, H]; `hy0`, `hz0` [B, H]. Returns (`hy` of every step [B, L, H], the
    /// final `hy`, the final `hz`, each [B, H]).
    fn scan(&self, u: Tensor<3>, hy0: Tensor<2>, hz0: Tensor<2>) -> (Tensor<3>, Tensor<2>, Tensor<2>) {
        let [b, l, h] = u.dims();
        if l == 0 {
            return (u, hy0, hz0);
        }
        if crate::ops::supported(&u.device()) {
            let k = self.coeffs();
            let out = crate::ops::unicornn::unicornn_scan(u, self.weight_hh.val(), self.c_.val(), hy0, hz0, k); // [B, L, 2H]
            let last = out.clone().narrow(1, l - 1, 1).reshape([b, 2 * h]);
            return (out.narrow(2, 0, h), last.clone().narrow(1, 0, h), last.narrow(1, h, h));
        }
        let k = self.step_sizes();
        let (mut hy, mut hz) = (hy0, hz0);
        let mut hs = Vec::with_capacity(l);
        for t in 0..l {
            (hy, hz) = self.advance(&k, u.clone().narrow(1, t, 1).reshape([b, h]), hy, hz);
            hs.push(hy.clone());
        }
        (Tensor::stack(hs, 1), hy, hz)
    }
}

/// A built `unicornn` layer. Its parameter paths are the reference's state_dict keys
/// (`DIs.0.fc.weight`, `RNNs.0.c_`, …).
#[derive(Module, Debug)]
pub struct Unicornn {
    /// Input map of each layer.
    pub DIs: Vec<DenseInput>,
    /// Recurrence of each layer.
    pub RNNs: Vec<Oscillators>,
    /// Dropout over time (its mask drawn once per sequence and channel).
    pub dropout: Dropout,
}

impl Unicornn {
    fn width(&self) -> usize {
        self.RNNs[0].weight_hh.dims()[0]
    }

    fn check_state(&self, s: &UnicornnState, batch: usize) -> Result<(), StepError> {
        let expected = [self.RNNs.len(), batch, self.width()];
        for t in [&s.hy, &s.hz] {
            if t.dims() != expected {
                return Err(StepError::Shape {
                    what: "UnICORNN state [n_layers, B, H] (hy and hz)",
                    expected: expected.to_vec(),
                    got: t.dims().to_vec(),
                });
            }
        }
        Ok(())
    }

    /// Dropout over time: one mask [B, 1, H] for all steps (the identity outside training).
    fn drop_over_time(&self, y: Tensor<3>) -> Tensor<3> {
        if self.dropout.prob == 0.0 {
            return y;
        }
        let [b, _, h] = y.dims();
        let mask = self.dropout.forward(Tensor::<3>::ones([b, 1, h], &y.device()));
        y * mask
    }

    /// Every layer from `state` (None: zero).
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the state after `x`).
    fn run(&self, x: Tensor<3>, state: Option<&UnicornnState>) -> (Tensor<3>, UnicornnState) {
        let [b, _, h] = x.dims();
        let device = x.device();
        let (mut hys, mut hzs) = (Vec::with_capacity(self.RNNs.len()), Vec::with_capacity(self.RNNs.len()));
        let mut v = x;
        for (i, (di, rnn)) in self.DIs.iter().zip(&self.RNNs).enumerate() {
            let init = |t: Option<&Tensor<3>>| match t {
                Some(t) => t.clone().narrow(0, i, 1).reshape([b, h]),
                None => Tensor::zeros([b, h], &device),
            };
            let u = di.fc.forward(v); // [B, L, H]
            let (y, hy, hz) = rnn.scan(u, init(state.map(|s| &s.hy)), init(state.map(|s| &s.hz)));
            v = self.drop_over_time(y);
            hys.push(hy);
            hzs.push(hz);
        }
        (v, UnicornnState { hy: Tensor::stack(hys, 0), hz: Tensor::stack(hzs, 0) })
    }
}

impl SeqLayer for Unicornn {
    type Stepper = UnicornnState;
    type State = UnicornnState;
    const NAME: &'static str = "unicornn";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.run(x, None).0
    }

    /// Args: `x` [B, L, H]; `state` [n_layers, B, H] each. Returns ([B, L, H], the state after `x`).
    fn forward_state(
        &self,
        x: Tensor<3>,
        state: Option<&UnicornnState>,
    ) -> Result<(Tensor<3>, UnicornnState), StepError> {
        check_width(&x.dims(), self.width())?;
        if let Some(s) = state {
            self.check_state(s, x.dims()[0])?;
        }
        Ok(self.run(x, state))
    }

    /// Step mode from the zero state (`l` is not needed: the layer is its own recurrence).
    fn stepper(&self, batch: usize, _l: usize) -> Result<UnicornnState, StepError> {
        let z = Tensor::zeros([self.RNNs.len(), batch, self.width()], &self.RNNs[0].c_.device());
        Ok(UnicornnState { hy: z.clone(), hz: z })
    }

    /// One step through every layer (step mode is for inference: no dropout).
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, state: &mut UnicornnState, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        check_width(&x.dims(), self.width())?;
        let [b, h] = x.dims();
        self.check_state(state, b)?;
        let (mut hys, mut hzs) = (Vec::with_capacity(self.RNNs.len()), Vec::with_capacity(self.RNNs.len()));
        let mut v = x;
        for (i, (di, rnn)) in self.DIs.iter().zip(&self.RNNs).enumerate() {
            let at = |t: &Tensor<3>| t.clone().narrow(0, i, 1).reshape([b, h]);
            let (hy, hz) = rnn.advance(&rnn.step_sizes(), di.fc.forward(v), at(&state.hy), at(&state.hz));
            v = hy.clone();
            hys.push(hy);
            hzs.push(hz);
        }
        *state = UnicornnState { hy: Tensor::stack(hys, 0), hz: Tensor::stack(hzs, 0) };
        Ok(v)
    }

    /// Continues step mode from `state`; the batch becomes the state's.
    fn set_state(&self, stepper: &mut UnicornnState, state: &UnicornnState) -> Result<(), StepError> {
        self.check_state(state, state.hy.dims()[1])?;
        *stepper = state.clone();
        Ok(())
    }

    /// Step mode's state is the conv-mode state.
    fn state(&self, stepper: &UnicornnState) -> Result<UnicornnState, StepError> {
        Ok(stepper.clone())
    }

    /// The reference's keys under the layer's prefix; `fc.weight` is stored [out, in].
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let map = match rest {
            ["DIs", _, "fc", "weight"] => Map::Transpose,
            ["DIs", _, "fc", "bias"] | ["RNNs", _, "c_" | "weight_hh"] => Map::Same,
            _ => return None,
        };
        Some((format!("{prefix}.{}", rest.join(".")), map))
    }
}
