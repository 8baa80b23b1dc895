//! Mamba-1 (Gu & Dao 2023): the mixer block of state-spaces/mamba's `mamba_simple.py`.
//! `in_proj` → causal depthwise `conv1d` → SiLU → `x_proj` (δ, B, C) → `dt_proj` + softplus →
//! selective scan with `A = -exp(A_log)` and skip `D` → `y·SiLU(z)` → `out_proj`. Field names
//! are the reference's state_dict keys.

// Field names mirror the PyTorch state_dict keys (`A_log`, `D`).
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::hyper::SsmGroup;
use super::selective::{ScanArgs, selective_scan};
use super::stepper::StepError;
use crate::config::ConfigError;
use crate::model::{LayerOptions, SeqLayer};
use crate::weights::names::{Layout, Map};

/// Rank of the step-size projection: `auto` (= ⌈d_model/16⌉) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtRank {
    /// ⌈d_model / 16⌉.
    #[default]
    Auto,
    /// A fixed rank.
    Fixed(usize),
}

impl DtRank {
    /// The rank for model width `h`.
    pub fn value(self, h: usize) -> usize {
        match self {
            DtRank::Auto => h.div_ceil(16),
            DtRank::Fixed(r) => r,
        }
    }
}

impl Serialize for DtRank {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DtRank::Auto => s.serialize_str("auto"),
            DtRank::Fixed(r) => s.serialize_u64(*r as u64),
        }
    }
}

impl<'de> Deserialize<'de> for DtRank {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DtRank;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`auto` or a positive integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DtRank, E> {
                if v == "auto" { Ok(DtRank::Auto) } else { Err(E::invalid_value(de::Unexpected::Str(v), &self)) }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DtRank, E> {
                Ok(DtRank::Fixed(v as usize))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DtRank, E> {
                usize::try_from(v).map(DtRank::Fixed).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Initialization of `dt_proj.weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DtInit {
    /// Uniform in `±dt_scale/√dt_rank`.
    #[default]
    Random,
    /// The constant `dt_scale/√dt_rank`.
    Constant,
}

/// Options of the `mamba` layer (`model.layer`), with `mamba_simple.py`'s defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MambaConfig {
    /// State size N per channel.
    pub d_state: usize,
    /// Width K of the causal depthwise convolution.
    pub d_conv: usize,
    /// Inner width E = expand·d_model.
    pub expand: usize,
    /// Rank R of the step-size projection.
    pub dt_rank: DtRank,
    /// Smallest initial step size.
    pub dt_min: f64,
    /// Largest initial step size.
    pub dt_max: f64,
    /// Initialization of `dt_proj.weight`.
    pub dt_init: DtInit,
    /// Scale of `dt_proj.weight`'s initialization.
    pub dt_scale: f64,
    /// Initial step sizes are at least this.
    pub dt_init_floor: f64,
    /// Whether the convolution has a bias.
    pub conv_bias: bool,
    /// Whether `in_proj` and `out_proj` have biases.
    pub bias: bool,
    /// Learning rate of the tensors between the projections, which shape the recurrence
    /// (`conv1d`, `x_proj`, `dt_proj`, `A_log`, `D`; null: the optimizer's; 0 freezes them), as
    /// S4's `lr` is for its SSM parameters. The reference trains the block at one rate; at the
    /// root config's 0.01 the input-dependent `B`, `C` and `Δ` move enough per step that a change
    /// of GEMM summation order sends some seeds to chance, which 0.001 here does not.
    pub lr: Option<f64>,
}

impl Default for MambaConfig {
    fn default() -> Self {
        Self {
            d_state: 16,
            d_conv: 4,
            expand: 2,
            dt_rank: DtRank::Auto,
            dt_min: 1e-3,
            dt_max: 1e-1,
            dt_init: DtInit::Random,
            dt_scale: 1.0,
            dt_init_floor: 1e-4,
            conv_bias: true,
            bias: false,
            lr: Some(0.001),
        }
    }
}

/// The tensors under `lr` besides `A_log` and `D`: everything that feeds the selective scan
/// after `in_proj` (the convolution, and `x_proj` and `dt_proj`, which make `Δ`, `B`, `C`).
const SCAN_NAMES: &[&str] = &["conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias"];

impl LayerOptions for MambaConfig {
    type Layer = Mamba;

    /// Checks values the type system does not; errors name the key under `path`.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        for (key, v) in [("d_state", self.d_state), ("d_conv", self.d_conv), ("expand", self.expand)] {
            if v == 0 {
                return bad(key, "must be at least 1".into());
            }
        }
        if self.dt_rank == DtRank::Fixed(0) {
            return bad("dt_rank", "must be `auto` or at least 1".into());
        }
        for (key, v) in [("dt_min", self.dt_min), ("dt_max", self.dt_max), ("dt_init_floor", self.dt_init_floor)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(key, format!("must be a finite number ≥ 0, got {v}"));
            }
        }
        if !(self.dt_min > 0.0 && self.dt_min <= self.dt_max) {
            return bad("dt_min", format!("need 0 < dt_min ≤ dt_max, got {} and {}", self.dt_min, self.dt_max));
        }
        if !self.dt_scale.is_finite() {
            return bad("dt_scale", format!("must be finite, got {}", self.dt_scale));
        }
        if let Some(lr) = self.lr {
            crate::config::check::non_negative(&format!("{path}.lr"), lr)?;
        }
        Ok(())
    }

    /// The scan's tensors under `lr` (groups `ssm.A`, `ssm.D`, `ssm.scan`; 0 freezes them);
    /// `A_log` and `D` without weight decay, as the reference registers them (`_no_weight_decay`).
    fn param_groups(&self) -> Vec<SsmGroup> {
        vec![
            SsmGroup { key: "A", names: &["A_log"], lr: self.lr, wd: Some(0.0) },
            SsmGroup { key: "D", names: &["D"], lr: self.lr, wd: Some(0.0) },
            SsmGroup { key: "scan", names: SCAN_NAMES, lr: self.lr, wd: None },
        ]
    }

    /// Builds the block for width `h` with the reference's init (random draws from the
    /// device's seeded RNG).
    fn init(&self, h: usize, device: &Device) -> Mamba {
        let (e, n, k, r) = (self.expand * h, self.d_state, self.d_conv, self.dt_rank.value(h));
        let linear = |i, o, bias| LinearConfig::new(i, o).with_bias(bias).init(device);
        let mut dt_proj = linear(r, e, true);
        let std = self.dt_scale / (r as f64).sqrt();
        dt_proj.weight = Param::from_tensor(match self.dt_init {
            DtInit::Random => Tensor::random([r, e], Distribution::Uniform(-std, std), device),
            DtInit::Constant => Tensor::full([r, e], std, device),
        });
        // Log-uniform dt, floored, through the inverse softplus `dt + log(-expm1(-dt))`.
        let log_dt = Tensor::<1>::random([e], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device);
        let dt: Vec<f64> = log_dt.try_into_vec_as::<f64>().expect("f64 data");
        let inv: Vec<f32> =
            dt.iter().map(|v| v.exp().max(self.dt_init_floor)).map(|v| (v + (-(-v).exp_m1()).ln()) as f32).collect();
        dt_proj.bias = Some(Param::from_tensor(Tensor::from_floats(inv.as_slice(), device)));
        // S4D-Real: A[e, n] = -(n + 1).
        let a_log: Vec<f32> = (0..e).flat_map(|_| (1..=n).map(|v| (v as f32).ln())).collect();
        Mamba {
            in_proj: linear(h, 2 * e, self.bias),
            conv1d: Conv1dConfig::new(e, e, k).with_groups(e).with_bias(self.conv_bias).init(device),
            x_proj: linear(e, r + 2 * n, false),
            dt_proj,
            A_log: Param::from_tensor(Tensor::<1>::from_floats(a_log.as_slice(), device).reshape([e, n])),
            D: Param::from_tensor(Tensor::ones([e], device)),
            out_proj: linear(e, h, self.bias),
        }
    }
}

/// Recurrent state of a batch: the last `K` inputs of the convolution (pre-convolution `x̃`,
/// oldest first) and the SSM state.
#[derive(Debug, Clone)]
pub struct MambaState {
    /// `conv_state` [B, E, K].
    pub conv: Tensor<3>,
    /// `ssm_state` [B, E, N].
    pub ssm: Tensor<3>,
}

/// The Mamba mixer block.
#[derive(Module, Debug)]
pub struct Mamba {
    /// H → 2E: the scan's input `x̃` and the gate `z`.
    pub in_proj: Linear,
    /// Causal depthwise convolution, weight [E, 1, K].
    pub conv1d: Conv1d,
    /// E → R + 2N: `δ`, `B`, `C`.
    pub x_proj: Linear,
    /// R → E step-size projection; its bias is added inside the softplus.
    pub dt_proj: Linear,
    /// `log(-A)`, [E, N].
    pub A_log: Param<Tensor<2>>,
    /// Skip, [E].
    pub D: Param<Tensor<1>>,
    /// E → H.
    pub out_proj: Linear,
}

impl Mamba {
    /// (H, E, N, K).
    fn sizes(&self) -> (usize, usize, usize, usize) {
        let h = self.in_proj.weight.dims()[0];
        let [e, n] = self.A_log.dims();
        (h, e, n, self.conv1d.weight.dims()[2])
    }

    fn check_state(&self, s: &MambaState, b: usize) -> Result<(), StepError> {
        let (_, e, n, k) = self.sizes();
        for (what, got, expected) in [
            ("mamba conv_state [B, E, K]", s.conv.dims(), [b, e, k]),
            ("mamba ssm_state [B, E, N]", s.ssm.dims(), [b, e, n]),
        ] {
            if got != expected {
                return Err(StepError::Shape { what, expected: expected.to_vec(), got: got.to_vec() });
            }
        }
        Ok(())
    }

    /// The block from an optional state. Args: `x` [B, L, H]. Returns ([B, L, H], the state).
    fn mix(&self, x: Tensor<3>, state: Option<&MambaState>) -> (Tensor<3>, MambaState) {
        let [b, l, _] = x.dims();
        let (_, e, n, k) = self.sizes();
        let r = self.dt_proj.weight.dims()[0];
        let device = x.device();
        let xz = self.in_proj.forward(x); // [B, L, 2E]
        let (xt, z) = (xz.clone().narrow(2, 0, e), xz.narrow(2, e, e)); // [B, L, E] each
        // The cached pre-convolution inputs come first: [B, K + L, E].
        let prev = match state {
            Some(s) => s.conv.clone().swap_dims(1, 2), // [B, K, E]
            None => Tensor::zeros([b, k, e], &device),
        };
        let padded = Tensor::cat(vec![prev, xt], 1); // [B, K + L, E]
        let u = causal_conv_silu(&self.conv1d, padded.clone(), l); // [B, L, E]
        let dbc = self.x_proj.forward(u.clone()); // [B, L, R + 2N]
        let delta = dbc.clone().narrow(2, 0, r).matmul(self.dt_proj.weight.val().unsqueeze::<3>()); // [B, L, E]
        let (bm, cm) = (dbc.clone().narrow(2, r, n), dbc.narrow(2, r + n, n)); // [B, L, N] each
        let (y, ssm) = selective_scan(ScanArgs {
            u,
            delta,
            a: -self.A_log.val().exp(),
            b: bm,
            c: cm,
            d: Some(self.D.val()),
            z: Some(z),
            delta_bias: self.dt_proj.bias.as_ref().map(|p| p.val()),
            delta_softplus: true,
            h0: state.map(|s| s.ssm.clone()),
        }); // [B, L, E], [B, E, N]
        let conv_state = padded.narrow(1, l, k).swap_dims(1, 2); // [B, E, K]
        (self.out_proj.forward(y), MambaState { conv: conv_state.detach(), ssm: ssm.detach() })
    }
}

/// SiLU of the depthwise causal convolution (newest input on the last tap) over `x`
/// [B, K + L, E], whose first K rows are the inputs before the sequence: fused on the CPU,
/// tensor ops elsewhere. Returns [B, L, E].
pub(crate) fn causal_conv_silu(conv1d: &Conv1d, x: Tensor<3>, l: usize) -> Tensor<3> {
    let [_, _, e] = x.dims();
    let k = conv1d.weight.dims()[2];
    let w = conv1d.weight.val().reshape([e, k]); // [E, K]
    // Output t reads inputs t-K+1 ..= t: rows t+1 ..= t+K; the oldest cached row is no tap's.
    let x = x.narrow(1, 1, k - 1 + l); // [B, K-1+L, E]
    if crate::ops::supported(&x.device()) {
        let bias = match &conv1d.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([e], &x.device()),
        };
        return crate::ops::dwconv::dwconv_silu(x, w, bias);
    }
    let mut y = match &conv1d.bias {
        Some(bias) => bias.val().reshape([1, 1, e]).repeat_dim(1, l),
        None => Tensor::zeros([1, l, e], &x.device()),
    };
    for j in 0..k {
        y = y + x.clone().narrow(1, j, l) * w.clone().narrow(1, j, 1).reshape([1, 1, e]);
    }
    silu(y)
}

impl SeqLayer for Mamba {
    /// Boxed: two tensors would make every layer's stepper this large.
    type Stepper = Box<MambaState>;
    type State = MambaState;
    const NAME: &'static str = "mamba";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.mix(x, None).0
    }

    /// Conv mode from a state (None: zero), returning the state after `x`: a prompt goes
    /// through in conv mode, then [`SeqLayer::step`] continues from its state. The returned
    /// state carries no gradient (step mode is inference only).
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the state after `x`).
    fn forward_state(&self, x: Tensor<3>, state: Option<&MambaState>) -> Result<(Tensor<3>, MambaState), StepError> {
        let [b, l, h] = x.dims();
        let (hm, ..) = self.sizes();
        if h != hm {
            return Err(StepError::Shape {
                what: "mamba input [B, L, H]",
                expected: vec![b, l, hm],
                got: vec![b, l, h],
            });
        }
        if let Some(s) = state {
            self.check_state(s, b)?;
        }
        Ok(self.mix(x, state))
    }

    /// Step mode for `batch` sequences from the zero state (`l` is not needed: the block has
    /// no length-dependent kernel).
    fn stepper(&self, batch: usize, _l: usize) -> Result<Box<MambaState>, StepError> {
        let (_, e, n, k) = self.sizes();
        let device = self.A_log.device();
        Ok(Box::new(MambaState {
            conv: Tensor::zeros([batch, e, k], &device),
            ssm: Tensor::zeros([batch, e, n], &device),
        }))
    }

    /// One token: [`SeqLayer::forward`]'s next output, carrying the state (the reference's
    /// `step()`: the convolution over the cached inputs, one step of the scan).
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, s: &mut Box<MambaState>, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let [b, h] = x.dims();
        let (y, next) = self.forward_state(x.reshape([b, 1, h]), Some(s))?;
        **s = next;
        Ok(y.reshape([b, h]))
    }

    /// Continues step mode from a state that conv mode returned.
    fn set_state(&self, s: &mut Box<MambaState>, state: &MambaState) -> Result<(), StepError> {
        self.check_state(state, state.conv.dims()[0])?;
        **s = state.clone();
        Ok(())
    }

    /// `mamba_simple.py`'s keys under `prefix` (`backbone.layers.{i}.mixer`); `Linear` weights
    /// are transposed.
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let map = match rest {
            ["in_proj" | "x_proj" | "dt_proj" | "out_proj", "weight"] => Map::Transpose,
            ["in_proj" | "dt_proj" | "out_proj" | "conv1d", "bias"] | ["conv1d", "weight"] | ["A_log" | "D"] => {
                Map::Same
            }
            _ => return None,
        };
        Some((format!("{prefix}.{}", rest.join(".")), map))
    }

    /// The state step mode has reached.
    fn state(&self, s: &Box<MambaState>) -> Result<MambaState, StepError> {
        Ok((**s).clone())
    }
}
