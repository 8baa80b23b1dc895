//! Mamba-2 (Dao & Gu 2024): the mixer block of state-spaces/mamba's `mamba2.py`.
//! One `in_proj` → (z, xBC, dt); causal depthwise `conv1d` + SiLU over xBC; SSD with a scalar
//! `A = -exp(A_log)` per head and skip `D`; gated RMSNorm `norm(y, z)`; `out_proj`. Field names
//! are the reference's state_dict keys.

// Field names mirror the PyTorch state_dict keys (`A_log`, `D`, `A_init_range`).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softplus;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::gated_norm::GatedRmsNorm;
use super::hyper::SsmGroup;
use super::mamba::causal_conv_silu;
use super::ssd::{SsdArgs, ssd};
use super::stepper::StepError;
use crate::config::ConfigError;
use crate::model::{LayerOptions, SeqLayer};
use crate::weights::names::{Layout, Map};

/// The reference's `RMSNormGated` epsilon.
const NORM_EPS: f64 = 1e-5;

/// Options of the `mamba2` layer (`model.layer`), with `mamba2.py`'s defaults but for
/// `d_state` (see its doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mamba2Config {
    /// State size N per head. 16 (Mamba-1's; the Mamba-2 paper's state-size ablation starts
    /// there), not `mamba2.py`'s 128: `B` and `C` leave the convolution through a SiLU, so `C·B`
    /// sums N positive-leaning products and its change per optimizer step grows with N. At the
    /// embedded default's AdamW lr 0.01, N = 128 and 64 diverge after a few epochs (test
    /// accuracy 0.34 and 0.43 on the digits) where 16 reaches 0.95; `model=mamba2` sets 128.
    pub d_state: usize,
    /// Width K of the causal depthwise convolution.
    pub d_conv: usize,
    /// Inner width E = expand·d_model.
    pub expand: usize,
    /// Channels P per head (divides E; E/P heads).
    pub headdim: usize,
    /// Groups of heads sharing `B` and `C` (divides the number of heads).
    pub ngroups: usize,
    /// Chunk length of the SSD scan (changes speed, not results).
    pub chunk_size: usize,
    /// `A` is drawn uniformly from this range.
    pub A_init_range: [f64; 2],
    /// Smallest initial step size.
    pub dt_min: f64,
    /// Largest initial step size.
    pub dt_max: f64,
    /// Initial step sizes are at least this.
    pub dt_init_floor: f64,
    /// Clamp of the step size after the softplus (None: the reference's `(0, inf)`, no clamp).
    pub dt_limit: Option<[f64; 2]>,
    /// Whether the convolution has a bias.
    pub conv_bias: bool,
    /// Whether `in_proj` and `out_proj` have biases.
    pub bias: bool,
    /// Learning rate of the tensors that make the scan's inputs and parameters (`in_proj`, which
    /// makes x, `B`, `C` and `Δ`, `conv1d`, `dt_bias`, `A_log`, `D`; null: the optimizer's, the
    /// reference's one rate for the block; 0 freezes them), as Mamba-1's `lr`. At the root
    /// config's 0.01 for the whole block some seeds fall to chance on the digits.
    pub lr: Option<f64>,
}

impl Default for Mamba2Config {
    fn default() -> Self {
        Self {
            d_state: 16,
            d_conv: 4,
            expand: 2,
            headdim: 64,
            ngroups: 1,
            chunk_size: 256,
            A_init_range: [1.0, 16.0],
            dt_min: 1e-3,
            dt_max: 1e-1,
            dt_init_floor: 1e-4,
            dt_limit: None,
            conv_bias: true,
            bias: false,
            lr: Some(0.001),
        }
    }
}

/// The tensors under `lr` besides `A_log`, `D` and `dt_bias`.
const SCAN_NAMES: &[&str] = &["in_proj.weight", "in_proj.bias", "conv1d.weight", "conv1d.bias"];

impl LayerOptions for Mamba2Config {
    type Layer = Mamba2;

    /// Checks values the type system does not; errors name the key under `path`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        for (key, v) in [
            ("d_state", self.d_state),
            ("d_conv", self.d_conv),
            ("expand", self.expand),
            ("headdim", self.headdim),
            ("ngroups", self.ngroups),
            ("chunk_size", self.chunk_size),
        ] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        let [lo, hi] = self.A_init_range;
        if !(lo.is_finite() && hi.is_finite() && 0.0 < lo && lo <= hi) {
            return bad("A_init_range", format!("need 0 < low ≤ high, both finite, got [{lo}, {hi}]"));
        }
        for (key, v) in [("dt_min", self.dt_min), ("dt_max", self.dt_max), ("dt_init_floor", self.dt_init_floor)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        if !(self.dt_min > 0.0 && self.dt_min <= self.dt_max) {
            return bad("dt_min", format!("need 0 < dt_min ≤ dt_max, got {} and {}", self.dt_min, self.dt_max));
        }
        if let Some([lo, hi]) = self.dt_limit
            && !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi)
        {
            return bad("dt_limit", format!("need 0 ≤ low < high, both finite, got [{lo}, {hi}]"));
        }
        if let Some(lr) = self.lr {
            crate::config::check::non_negative(&format!("{path}.lr"), lr)?;
        }
        Ok(())
    }

    /// `headdim` must divide the inner width and `ngroups` the number of heads.
    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        let e = self.expand * h;
        if self.headdim == 0 || !e.is_multiple_of(self.headdim) {
            let msg = format!("must divide the inner width expand·d_model = {e}, got {}", self.headdim);
            return Err(ConfigError::Key { path: format!("{path}.headdim"), msg });
        }
        let nh = e / self.headdim;
        if self.ngroups == 0 || !nh.is_multiple_of(self.ngroups) {
            let msg = format!("must divide the number of heads {nh}, got {}", self.ngroups);
            return Err(ConfigError::Key { path: format!("{path}.ngroups"), msg });
        }
        Ok(())
    }

    /// The scan's tensors under `lr` (groups `ssm.A`, `ssm.D`, `ssm.dt`, `ssm.scan`; 0 freezes
    /// them); `A_log`, `D` and `dt_bias` without weight decay, as the reference registers them
    /// (`_no_weight_decay`).
    fn param_groups(&self) -> Vec<SsmGroup> {
        vec![
            SsmGroup { key: "A", names: &["A_log"], lr: self.lr, wd: Some(0.0) },
            SsmGroup { key: "D", names: &["D"], lr: self.lr, wd: Some(0.0) },
            SsmGroup { key: "dt", names: &["dt_bias"], lr: self.lr, wd: Some(0.0) },
            SsmGroup { key: "scan", names: SCAN_NAMES, lr: self.lr, wd: None },
        ]
    }

    /// Builds the block for width `h` with the reference's init (random draws from the
    /// device's seeded RNG). `check_width` must have passed.
    fn init(&self, h: usize, device: &Device) -> Mamba2 {
        let e = self.expand * h;
        let nh = e / self.headdim;
        let cd = e + 2 * self.ngroups * self.d_state;
        let linear = |i, o| LinearConfig::new(i, o).with_bias(self.bias).init(device);
        // Log-uniform dt, floored, through the inverse softplus `dt + log(-expm1(-dt))`.
        let log_dt = Tensor::<1>::random([nh], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device);
        let dt: Vec<f64> = log_dt.try_into_vec_as::<f64>().expect("f64 data");
        let inv: Vec<f32> =
            dt.iter().map(|v| v.exp().max(self.dt_init_floor)).map(|v| (v + (-(-v).exp_m1()).ln()) as f32).collect();
        let [lo, hi] = self.A_init_range;
        let a = Tensor::<1>::random([nh], Distribution::Uniform(lo, hi), device);
        Mamba2 {
            in_proj: linear(h, 2 * e + 2 * self.ngroups * self.d_state + nh),
            conv1d: Conv1dConfig::new(cd, cd, self.d_conv).with_groups(cd).with_bias(self.conv_bias).init(device),
            dt_bias: Param::from_tensor(Tensor::from_floats(inv.as_slice(), device)),
            A_log: Param::from_tensor(a.log()),
            D: Param::from_tensor(Tensor::ones([nh], device)),
            norm: GatedRmsNorm::new(e, self.ngroups, NORM_EPS, device),
            out_proj: linear(e, h),
            headdim: self.headdim,
            d_state: self.d_state,
            chunk_size: self.chunk_size,
            dt_limit: self.dt_limit,
        }
    }
}

/// Recurrent state of a batch: the last `K` inputs of the convolution (pre-convolution xBC,
/// oldest first) and the SSM state.
#[derive(Debug, Clone)]
pub struct Mamba2State {
    /// `conv_state` [B, E + 2GN, K].
    pub conv: Tensor<3>,
    /// `ssm_state` [B, NH, P, N].
    pub ssm: Tensor<4>,
}

/// The Mamba-2 mixer block.
#[derive(Module, Debug)]
pub struct Mamba2 {
    /// H → 2E + 2GN + NH: the gate `z`, the convolution's input xBC, the step sizes `dt`.
    pub in_proj: Linear,
    /// Causal depthwise convolution over xBC, weight [E + 2GN, 1, K].
    pub conv1d: Conv1d,
    /// Added to `dt` inside the softplus, [NH].
    pub dt_bias: Param<Tensor<1>>,
    /// `log(-A)`, [NH].
    pub A_log: Param<Tensor<1>>,
    /// Skip, [NH].
    pub D: Param<Tensor<1>>,
    /// Gated RMSNorm, weight [E].
    pub norm: GatedRmsNorm,
    /// E → H.
    pub out_proj: Linear,
    /// Channels P per head.
    #[module(skip)]
    pub headdim: usize,
    /// State size N.
    #[module(skip)]
    pub d_state: usize,
    /// Chunk length of the SSD scan.
    #[module(skip)]
    pub chunk_size: usize,
    /// Clamp of the step size.
    #[module(skip)]
    pub dt_limit: Option<[f64; 2]>,
}

impl Mamba2 {
    /// (H, E, NH, G, K).
    fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        let [e, h] = self.out_proj.weight.dims();
        let nh = self.A_log.dims()[0];
        (h, e, nh, self.norm.groups, self.conv1d.weight.dims()[2])
    }

    fn check_state(&self, s: &Mamba2State, b: usize) -> Result<(), StepError> {
        let (_, e, nh, g, k) = self.sizes();
        let (p, n) = (self.headdim, self.d_state);
        if s.conv.dims() != [b, e + 2 * g * n, k] {
            let what = "mamba2 conv_state [B, E + 2GN, K]";
            return Err(StepError::Shape { what, expected: vec![b, e + 2 * g * n, k], got: s.conv.dims().to_vec() });
        }
        if s.ssm.dims() != [b, nh, p, n] {
            let what = "mamba2 ssm_state [B, NH, P, N]";
            return Err(StepError::Shape { what, expected: vec![b, nh, p, n], got: s.ssm.dims().to_vec() });
        }
        Ok(())
    }

    /// `B` or `C` of the groups, [B, L, G·N], repeated for the heads of each group: [B, L, NH, N].
    fn per_head(v: Tensor<3>, g: usize, nh: usize, n: usize) -> Tensor<4> {
        let [b, l, _] = v.dims();
        v.reshape([b, l, g, 1, n]).repeat_dim(3, nh / g).reshape([b, l, nh, n])
    }

    /// The block from an optional state. Args: `x` [B, L, H]. Returns ([B, L, H], the state).
    fn mix(&self, x: Tensor<3>, state: Option<&Mamba2State>) -> (Tensor<3>, Mamba2State) {
        let [b, l, _] = x.dims();
        let (_, e, nh, g, k) = self.sizes();
        let (p, n) = (self.headdim, self.d_state);
        let cd = e + 2 * g * n;
        let device = x.device();
        let zxbcdt = self.in_proj.forward(x); // [B, L, 2E + 2GN + NH]
        let z = zxbcdt.clone().narrow(2, 0, e); // [B, L, E]
        let xbc = zxbcdt.clone().narrow(2, e, cd); // [B, L, CD]
        let dt = zxbcdt.narrow(2, e + cd, nh); // [B, L, NH]
        // The cached pre-convolution inputs come first: [B, K + L, CD].
        let prev = match state {
            Some(s) => s.conv.clone().swap_dims(1, 2), // [B, K, CD]
            None => Tensor::zeros([b, k, cd], &device),
        };
        let padded = Tensor::cat(vec![prev, xbc], 1); // [B, K + L, CD]
        let u = causal_conv_silu(&self.conv1d, padded.clone(), l); // [B, L, CD]
        let xs = u.clone().narrow(2, 0, e).reshape([b, l, nh, p]); // [B, L, NH, P]
        let bm = Self::per_head(u.clone().narrow(2, e, g * n), g, nh, n); // [B, L, NH, N]
        let cm = Self::per_head(u.narrow(2, e + g * n, g * n), g, nh, n); // [B, L, NH, N]
        let mut dt = softplus(dt + self.dt_bias.val().reshape([1, 1, nh]), 1.0); // [B, L, NH]
        if let Some([lo, hi]) = self.dt_limit {
            dt = dt.clamp(lo, hi);
        }
        let a = dt.clone() * (-self.A_log.val().exp()).reshape([1, 1, nh]); // [B, L, NH]
        let (y, ssm) = ssd(SsdArgs {
            x: xs.clone() * dt.unsqueeze_dim::<4>(3),
            a,
            b: bm,
            c: cm,
            h0: state.map(|s| s.ssm.clone()),
            chunk: self.chunk_size,
        }); // [B, L, NH, P], [B, NH, P, N]
        let y = y + xs * self.D.val().reshape([1, 1, nh, 1]); // [B, L, NH, P]
        let y = self.norm.forward(y.reshape([b, l, e]), z); // [B, L, E]
        let conv_state = padded.narrow(1, l, k).swap_dims(1, 2); // [B, CD, K]
        (self.out_proj.forward(y), Mamba2State { conv: conv_state.detach(), ssm: ssm.detach() })
    }
}

impl SeqLayer for Mamba2 {
    /// Boxed: two tensors would make every layer's stepper this large.
    type Stepper = Box<Mamba2State>;
    type State = Mamba2State;
    const NAME: &'static str = "mamba2";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.mix(x, None).0
    }

    /// Conv mode from a state (None: zero), returning the state after `x` (no gradient: step
    /// mode is inference only).
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the state after `x`).
    fn forward_state(&self, x: Tensor<3>, state: Option<&Mamba2State>) -> Result<(Tensor<3>, Mamba2State), StepError> {
        let [b, l, h] = x.dims();
        let (hm, ..) = self.sizes();
        if h != hm {
            return Err(StepError::Shape {
                what: "mamba2 input [B, L, H]",
                expected: vec![b, l, hm],
                got: vec![b, l, h],
            });
        }
        if let Some(s) = state {
            self.check_state(s, b)?;
        }
        Ok(self.mix(x, state))
    }

    /// Step mode for `batch` sequences from the zero state (no length-dependent kernel).
    fn stepper(&self, batch: usize, _l: usize) -> Result<Box<Mamba2State>, StepError> {
        let (_, e, nh, g, k) = self.sizes();
        let device = self.A_log.device();
        Ok(Box::new(Mamba2State {
            conv: Tensor::zeros([batch, e + 2 * g * self.d_state, k], &device),
            ssm: Tensor::zeros([batch, nh, self.headdim, self.d_state], &device),
        }))
    }

    /// One token: [`SeqLayer::forward`]'s next output, carrying the state.
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, s: &mut Box<Mamba2State>, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let [b, h] = x.dims();
        let (y, next) = self.forward_state(x.reshape([b, 1, h]), Some(s))?;
        **s = next;
        Ok(y.reshape([b, h]))
    }

    /// Continues step mode from a state that conv mode returned.
    fn set_state(&self, s: &mut Box<Mamba2State>, state: &Mamba2State) -> Result<(), StepError> {
        self.check_state(state, state.conv.dims()[0])?;
        **s = state.clone();
        Ok(())
    }

    /// The state step mode has reached.
    fn state(&self, s: &Box<Mamba2State>) -> Result<Mamba2State, StepError> {
        Ok((**s).clone())
    }

    /// `mamba2.py`'s keys under `prefix`; `Linear` weights are transposed.
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let map = match rest {
            ["in_proj" | "out_proj", "weight"] => Map::Transpose,
            ["in_proj" | "out_proj" | "conv1d", "bias"]
            | ["conv1d" | "norm", "weight"]
            | ["A_log" | "D" | "dt_bias"] => Map::Same,
            _ => return None,
        };
        Some((format!("{prefix}.{}", rest.join(".")), map))
    }
}
