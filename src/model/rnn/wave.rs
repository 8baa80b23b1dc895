//! `wave_rnn`: the wave RNN (wRNN) of Keller, Muller, Sejnowski & Welling, "Traveling Waves
//! Encode the Recent Past and Enhance Sequence Learning" (ICLR 2024). The hidden state of a
//! sequence is `n_ch` channels × `n_hid` positions on a ring, and the recurrence is a circular
//! convolution over the ring:
//!
//! `h_t = act(Wx·x_t + bx + conv(h_{t-1}))`, `conv(h)[c, i] = bWy[c] + Σ_{c', k} Wy[c, c', k]·h[c', (i + k - p) mod n_hid]`
//!
//! with `p = ksize / 2` (a cross-correlation, as PyTorch's `Conv1d` with circular padding). The
//! `fwd` init makes each position copy its right neighbour: activity travels along the ring.
//! Each step's state (flat index `c·n_hid + i`) is read out to the model width by `readout`.
//! Parameter names are the reference's (`cell.Wx`, `cell.Wy`, `readout`).
//!
//! On the CPU the recurrence runs as the fused Elman kernel (`crate::ops::rnn`) with the
//! convolution written out as its block-circulant matrix; elsewhere, one step of tensor ops
//! per time step.

// Field names mirror the PyTorch state_dict keys (`Wx`, `Wy`).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::stack::check_width;
use crate::config::ConfigError;
use crate::model::ssm::StepError;
use crate::model::{LayerOptions, SeqLayer};

/// Initialization of the recurrent kernel `Wy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WaveInit {
    /// The Dirac kernel: the recurrence starts as the identity.
    Eye,
    /// The Dirac kernel rolled by one tap: every position takes its right neighbour's value,
    /// so activity moves one position toward lower index per step (the traveling wave).
    #[default]
    Fwd,
    /// PyTorch's default `Conv1d` init, uniform in `±1/√(n_ch·ksize)`.
    Rand,
}

/// Activation of the wave RNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WaveAct {
    /// `tanh`.
    Tanh,
    /// `max(0, ·)` (the reference's choice in every published sweep).
    #[default]
    Relu,
    /// None (a linear recurrence; the reference's `ident`).
    #[serde(alias = "ident")]
    Identity,
}

/// Options of the `wave_rnn` layer (`model.layer`); defaults as the reference's published
/// sMNIST/psMNIST/adding sweeps (`init: fwd`, `act: relu`, ksize 3) with `n_hid` the model
/// width, but the small random input map (`solo_init: no`): inside the backbone the layer reads
/// features of either sign, and `solo_init`'s sum of all of them into position 0 can leave a
/// ReLU ring dead from the first step (a normalized input sums to zero). The whole classifier
/// `wrnn`, which reads the raw non-negative input as the reference does, keeps `solo_init`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaveRnnConfig {
    /// Positions on the ring per channel (null: the model width).
    pub n_hid: Option<usize>,
    /// Channels of the hidden state.
    pub n_ch: usize,
    /// Taps of the circular convolution (odd).
    pub ksize: usize,
    /// Initialization of `Wy`.
    pub init: WaveInit,
    /// Activation.
    pub act: WaveAct,
    /// Input map starting as ones into position 0 of every channel, zeros elsewhere and a
    /// zero bias (the reference's `solo_init: yes`); false: `N(0, 1e-3)` weights and
    /// PyTorch's default bias (`solo_init: no`).
    pub solo_init: bool,
}

impl Default for WaveRnnConfig {
    fn default() -> Self {
        Self { n_hid: None, n_ch: 1, ksize: 3, init: WaveInit::Fwd, act: WaveAct::Relu, solo_init: false }
    }
}

/// Largest hidden state `n_ch·n_hid` accepted: the CPU path holds the convolution as a dense
/// [n_ch·n_hid]² matrix (64 MiB at this size).
const MAX_STATE: usize = 1 << 12;

/// Largest state `n_ch·n_hid` run by the fused kernel with the dense circulant; larger ones
/// step by rolls of the ring, whose cost grows with `n_ch·ksize` instead of the state size
/// (`wrnn`'s 16 × 256 state on the digits: 11 samples/s by rolls, 1 by the dense kernel).
const FUSED_STATE: usize = 1 << 10;

impl LayerOptions for WaveRnnConfig {
    type Layer = WaveRnn;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        if self.ksize == 0 || self.ksize.is_multiple_of(2) {
            return bad("ksize", format!("must be odd (taps -p..+p around each position), got {}", self.ksize));
        }
        if self.n_ch == 0 || self.n_ch > MAX_STATE {
            return bad("n_ch", format!("must be in 1..={MAX_STATE}, got {}", self.n_ch));
        }
        if let Some(n) = self.n_hid
            && (n == 0 || n * self.n_ch > MAX_STATE)
        {
            return bad("n_hid", format!("must be ≥ 1 with n_ch·n_hid ≤ {MAX_STATE}, got {n}"));
        }
        Ok(())
    }

    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        if self.n_hid.is_none() && h * self.n_ch > MAX_STATE {
            return Err(ConfigError::Key {
                path: format!("{path}.n_hid"),
                msg: format!("defaults to d_model = {h}, but n_ch·n_hid must be ≤ {MAX_STATE}; give n_hid"),
            });
        }
        Ok(())
    }

    /// `pool: auto` reads the last step: the ring's state after the whole input, which the
    /// reference's classifier decodes.
    fn pool(&self) -> crate::model::PoolKind {
        crate::model::PoolKind::Last
    }

    fn init(&self, h: usize, device: &Device) -> WaveRnn {
        let n_hid = self.n_hid.unwrap_or(h);
        WaveRnn {
            cell: WaveCell::new(self, h, n_hid, device),
            readout: LinearConfig::new(self.n_ch * n_hid, h).init(device),
            act: self.act,
        }
    }
}

/// `Wy` of the `eye` or `fwd` init, [n_ch, n_ch, ksize] flattened: `Wy[c, c, p]` = 1 (eye), or
/// `Wy[c, c, (p+1) mod ksize]` = 1 (fwd). `rand` has no fixed value (zeros here).
pub fn wy_init(init: WaveInit, n_ch: usize, ksize: usize) -> Vec<f32> {
    let p = ksize / 2;
    let tap = match init {
        WaveInit::Eye => p,
        WaveInit::Fwd => (p + 1) % ksize,
        WaveInit::Rand => return vec![0.0; n_ch * n_ch * ksize],
    };
    let mut w = vec![0f32; n_ch * n_ch * ksize];
    for c in 0..n_ch {
        w[(c * n_ch + c) * ksize + tap] = 1.0;
    }
    w
}

/// PyTorch's `Conv1d(n_ch, n_ch, ksize, padding=ksize//2, padding_mode='circular')`.
#[derive(Module, Debug)]
pub struct CircularConv {
    /// Taps, [out channel, in channel, ksize].
    pub weight: Param<Tensor<3>>,
    /// Bias per channel, [n_ch].
    pub bias: Param<Tensor<1>>,
}

/// The reference's `RNN_Cell`: the input map and the recurrent circular convolution.
#[derive(Module, Debug)]
pub struct WaveCell {
    /// Input map, In → n_ch·n_hid.
    pub Wx: Linear,
    /// Recurrent convolution over the ring.
    pub Wy: CircularConv,
}

/// A built `wave_rnn` layer.
#[derive(Module, Debug)]
pub struct WaveRnn {
    /// The recurrent cell.
    pub cell: WaveCell,
    /// Per-step readout of the state, n_ch·n_hid → H.
    pub readout: Linear,
    /// Activation.
    #[module(skip)]
    pub act: WaveAct,
}

impl WaveCell {
    /// Builds the cell for `n_in` inputs per step.
    pub fn new(cfg: &WaveRnnConfig, n_in: usize, n_hid: usize, device: &Device) -> Self {
        let (n_ch, k) = (cfg.n_ch, cfg.ksize);
        let mut Wx = LinearConfig::new(n_in, n_ch * n_hid).init(device);
        if cfg.solo_init {
            // Every input enters at position 0 of each channel's ring, from where the shift
            // carries it around as a wave.
            let mut w = vec![0f32; n_in * n_ch * n_hid]; // [In, C·n]
            for i in 0..n_in {
                for c in 0..n_ch {
                    w[i * n_ch * n_hid + c * n_hid] = 1.0;
                }
            }
            Wx.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [n_in, n_ch * n_hid]), device));
            Wx.bias = Some(Param::from_tensor(Tensor::zeros([n_ch * n_hid], device)));
        } else {
            // Tiny input weights, the default Linear bias.
            Wx.weight =
                Param::from_tensor(Tensor::random([n_in, n_ch * n_hid], Distribution::Normal(0.0, 1e-3), device));
        }
        let bound = 1.0 / ((n_ch * k) as f64).sqrt();
        let u = Distribution::Uniform(-bound, bound);
        let weight = match cfg.init {
            WaveInit::Rand => Tensor::random([n_ch, n_ch, k], u, device),
            init => Tensor::from_data(TensorData::new(wy_init(init, n_ch, k), [n_ch, n_ch, k]), device),
        };
        WaveCell {
            Wx,
            Wy: CircularConv {
                weight: Param::from_tensor(weight),
                bias: Param::from_tensor(Tensor::random([n_ch], u, device)),
            },
        }
    }

    /// `[n_ch, n_hid]` of the hidden state.
    pub fn state_dims(&self) -> [usize; 2] {
        let n_ch = self.Wy.weight.dims()[0];
        [n_ch, self.Wx.weight.dims()[1] / n_ch]
    }

    /// The hidden states of every step from `h0` (None: zero).
    ///
    /// Args: `x` [B, L, In]; `h0` [B, n_ch·n_hid]. Returns [B, L, n_ch·n_hid] (flat index
    /// `c·n_hid + i`).
    pub fn hidden_states(&self, x: Tensor<3>, h0: Option<Tensor<2>>, act: WaveAct) -> Tensor<3> {
        let [b, l, _] = x.dims();
        let [n_ch, n_hid] = self.state_dims();
        if l == 0 {
            return Tensor::zeros([b, 0, n_ch * n_hid], &x.device());
        }
        let h0 = h0.unwrap_or_else(|| Tensor::zeros([b, n_ch * n_hid], &x.device()));
        let gx = self.Wx.forward(x) + self.conv_bias().unsqueeze::<3>(); // [B, L, C·n]
        let fused = match act {
            WaveAct::Tanh => Some(false),
            WaveAct::Relu => Some(true),
            WaveAct::Identity => None,
        };
        match fused {
            // The dense circulant costs (C·n)² per step against C·n·C·K for the rolls: worth
            // it while it stays small enough for the fused kernel to win.
            Some(relu) if crate::ops::supported(&gx.device()) && n_ch * n_hid <= FUSED_STATE => {
                crate::ops::rnn::rnn_scan(gx, self.circulant(), h0, relu)
            }
            _ => {
                let mut h = h0;
                let mut hs = Vec::with_capacity(l);
                for t in 0..l {
                    h = self.advance(gx.clone().narrow(1, t, 1).reshape([b, n_ch * n_hid]), h, act);
                    hs.push(h.clone());
                }
                Tensor::stack(hs, 1)
            }
        }
    }

    /// One step from the zero-or-given state `h`.
    ///
    /// Args: `x` [B, In]; `h` [B, C·n]. Returns the new state [B, C·n].
    pub fn step(&self, x: Tensor<2>, h: Tensor<2>, act: WaveAct) -> Tensor<2> {
        let gx = self.Wx.forward(x) + self.conv_bias().unsqueeze::<2>();
        self.advance(gx, h, act)
    }

    /// `bWy` repeated over the ring, [n_ch·n_hid].
    fn conv_bias(&self) -> Tensor<1> {
        let [n_ch, n_hid] = self.state_dims();
        self.Wy.bias.val().reshape([n_ch, 1]).repeat_dim(1, n_hid).reshape([n_ch * n_hid])
    }

    /// The convolution (without bias) as its block-circulant matrix `M` [C·n, C·n], `conv(h) =
    /// M·h`: `M[(c, i), (c', j)] = Σ_k Wy[c, c', k]·[j = (i + k - p) mod n]`. Differentiable
    /// in `Wy`.
    pub fn circulant(&self) -> Tensor<2> {
        let [n_ch, n_hid] = self.state_dims();
        let k = self.Wy.weight.dims()[2];
        let p = k / 2;
        let device = self.Wy.weight.device();
        let mut shifts = vec![0f32; k * n_hid * n_hid]; // [K, n, n]
        for tap in 0..k {
            for i in 0..n_hid {
                shifts[(tap * n_hid + i) * n_hid + (i + tap + n_hid * k - p) % n_hid] += 1.0;
            }
        }
        let s = Tensor::<2>::from_data(TensorData::new(shifts, [k, n_hid * n_hid]), &device);
        let m = self.Wy.weight.val().reshape([n_ch * n_ch, k]).matmul(s); // [C·C', n·n]
        m.reshape([n_ch, n_ch, n_hid, n_hid]).permute([0, 2, 1, 3]).reshape([n_ch * n_hid, n_ch * n_hid])
    }

    /// One step by tensor ops: `act(gx + conv(h))` with the convolution as rolled copies of
    /// the ring.
    ///
    /// Args: `gx` [B, C·n] (input map plus conv bias); `h` [B, C·n]. Returns [B, C·n].
    fn advance(&self, gx: Tensor<2>, h: Tensor<2>, act: WaveAct) -> Tensor<2> {
        let [b, _] = h.dims();
        let [n_ch, n_hid] = self.state_dims();
        let k = self.Wy.weight.dims()[2];
        let p = k as i64 / 2;
        let ring = h.reshape([b, n_ch, n_hid]);
        // Tap `k` reads position i + k - p: the ring rolled by p - k.
        let taps: Vec<Tensor<3>> = (0..k as i64).map(|tap| ring.clone().roll_dim(p - tap, 2)).collect();
        let taps = Tensor::stack::<4>(taps, 3).permute([0, 2, 1, 3]).reshape([b * n_hid, n_ch * k]); // [B·n, C'·K]
        let w = self.Wy.weight.val().reshape([n_ch, n_ch * k]).transpose(); // [C'·K, C]
        let conv = taps.matmul(w).reshape([b, n_hid, n_ch]).swap_dims(1, 2).reshape([b, n_ch * n_hid]);
        let a = gx + conv;
        match act {
            WaveAct::Tanh => a.tanh(),
            WaveAct::Relu => relu(a),
            WaveAct::Identity => a,
        }
    }
}

impl WaveRnn {
    /// `[n_ch, n_hid]` of the hidden state.
    pub fn state_dims(&self) -> [usize; 2] {
        self.cell.state_dims()
    }

    /// The hidden states of every step from `h0` (None: zero); see [`WaveCell::hidden_states`].
    ///
    /// Args: `x` [B, L, In]; `h0` [B, n_ch·n_hid]. Returns [B, L, n_ch·n_hid].
    pub fn hidden_states(&self, x: Tensor<3>, h0: Option<Tensor<2>>) -> Tensor<3> {
        self.cell.hidden_states(x, h0, self.act)
    }

    /// The convolution as its block-circulant matrix (see [`WaveCell::circulant`]).
    pub fn circulant(&self) -> Tensor<2> {
        self.cell.circulant()
    }
}

impl SeqLayer for WaveRnn {
    type Stepper = Tensor<2>;
    type State = Tensor<2>;
    const NAME: &'static str = "wave_rnn";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.readout.forward(self.hidden_states(x, None))
    }

    /// Args: `x` [B, L, H]; `state` [B, n_ch·n_hid]. Returns ([B, L, H], the state after `x`).
    fn forward_state(&self, x: Tensor<3>, state: Option<&Tensor<2>>) -> Result<(Tensor<3>, Tensor<2>), StepError> {
        let [b, l, _] = x.dims();
        check_width(&x.dims(), self.cell.Wx.weight.dims()[0])?;
        if let Some(s) = state {
            self.check(s, b)?;
        }
        let hs = self.hidden_states(x, state.cloned()); // [B, L, C·n]
        let last = match l {
            0 => state.cloned().unwrap_or_else(|| Tensor::zeros([b, hs.dims()[2]], &hs.device())),
            _ => hs.clone().narrow(1, l - 1, 1).reshape([b, hs.dims()[2]]),
        };
        Ok((self.readout.forward(hs), last))
    }

    fn stepper(&self, batch: usize, _l: usize) -> Result<Tensor<2>, StepError> {
        let [n_ch, n_hid] = self.state_dims();
        Ok(Tensor::zeros([batch, n_ch * n_hid], &self.readout.weight.device()))
    }

    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, h: &mut Tensor<2>, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        check_width(&x.dims(), self.cell.Wx.weight.dims()[0])?;
        self.check(h, x.dims()[0])?;
        *h = self.cell.step(x, h.clone(), self.act);
        Ok(self.readout.forward(h.clone()))
    }

    fn set_state(&self, stepper: &mut Tensor<2>, state: &Tensor<2>) -> Result<(), StepError> {
        self.check(state, state.dims()[0])?;
        *stepper = state.clone();
        Ok(())
    }

    fn state(&self, stepper: &Tensor<2>) -> Result<Tensor<2>, StepError> {
        Ok(stepper.clone())
    }
}

impl WaveRnn {
    fn check(&self, s: &Tensor<2>, batch: usize) -> Result<(), StepError> {
        let [n_ch, n_hid] = self.state_dims();
        let expected = [batch, n_ch * n_hid];
        if s.dims() == expected {
            Ok(())
        } else {
            Err(StepError::Shape {
                what: "wave RNN state [B, n_ch·n_hid]",
                expected: expected.to_vec(),
                got: s.dims().to_vec(),
            })
        }
    }
}
