//! S4D (Gu et al. 2022, "On the Parameterization and Initialization of Diagonal State Space
//! Models"): a diagonal state space `x' = Ax + Bu, y = Cx + Du` per channel, discretized with
//! zero-order hold, applied as a long convolution. Parameter names follow the minimal
//! state-spaces/s4 `s4d.py` state_dict (`kernel.log_dt`, `kernel.C`, `kernel.log_A_real`,
//! `kernel.A_imag`, `D`, `output_linear`).

// Field names mirror the PyTorch state_dict keys (`D`, `C`, `log_A_real`).
#![allow(non_snake_case)]

use std::f64::consts::PI;

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::glu;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

pub use super::Activation;
use super::conv::{causal_conv, linear_glu};
use super::defaults;
use super::diagonal::{DiagonalSystem, Disc, RealTransform, discretize};
use super::hyper::{self, SsmGroup, SsmHyper, SsmKind};
use super::state::SsmState;
use super::stepper::{SsmStepper, StepError, check_input};
use crate::model::{LayerOptions, SeqLayer};
use crate::weights::names::{Layout, Map};

/// Initialization of the diagonal `A` (S4D paper, section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum S4dInit {
    /// S4D-Lin: `A_n = -1/2 + iπn`.
    #[default]
    Lin,
    /// S4D-Inv: `A_n = -1/2 + i(N/π)(N/(2n+1) - 1)`.
    Inv,
    /// S4D-LegS: the diagonal of HiPPO-LegS's normal-plus-low-rank form.
    Legs,
    /// S4D-Real: `A_n = -(n+1)` (no oscillation).
    Real,
    /// `A_n = -1/2 + i·exp(ε)`, `ε ~ N(0, 1)` drawn per channel and mode.
    Rand,
}

/// Options of the `s4d` layer (`model.layer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S4dConfig {
    /// State size N (real); N/2 complex modes are stored.
    #[serde(default = "defaults::d_state")]
    pub d_state: usize,
    /// Smallest initial step size.
    #[serde(default = "defaults::dt_min")]
    pub dt_min: f64,
    /// Largest initial step size.
    #[serde(default = "defaults::dt_max")]
    pub dt_max: f64,
    /// Learning rate of the SSM parameters (`dt`: `log_dt`; `A`: `log_A_real`, `A_imag`): one
    /// number as s4d.py, null for the optimizer's, or a map by kind (left out: the optimizer's);
    /// 0 freezes.
    #[serde(default = "s4d_lr")]
    pub lr: SsmHyper,
    /// Weight decay of the SSM parameters (s4d.py: always 0): a number, null for the
    /// optimizer's, or a map by kind (left out: the optimizer's).
    #[serde(default = "defaults::ssm_wd")]
    pub wd: SsmHyper,
    /// Initialization of A.
    #[serde(default)]
    pub init: S4dInit,
    /// Activation after the SSM.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout after the activation.
    #[serde(default)]
    pub dropout: f64,
    /// Discretization.
    #[serde(default)]
    pub disc: Disc,
    /// Positive parameterization of `-Re A` (s4.py's option; `exp` is s4d.py's `log_A_real`).
    #[serde(default)]
    pub real_transform: RealTransform,
}

impl Default for S4dConfig {
    /// The serde defaults (what `model.layer: s4d` with no options gives).
    fn default() -> Self {
        Self {
            d_state: defaults::d_state(),
            dt_min: defaults::dt_min(),
            dt_max: defaults::dt_max(),
            lr: s4d_lr(),
            wd: defaults::ssm_wd(),
            init: S4dInit::default(),
            activation: Activation::default(),
            dropout: 0.0,
            disc: Disc::default(),
            real_transform: RealTransform::default(),
        }
    }
}

fn s4d_lr() -> SsmHyper {
    SsmHyper::All(Some(1e-3))
}

/// S4D's SSM parameter kinds (s4d.py registers these three with `lr`; `C` is a plain
/// parameter and there is no `B`).
const S4D_KINDS: &[SsmKind] = &[
    SsmKind { key: "dt", names: &["kernel.log_dt"], takes_wd: true },
    SsmKind { key: "A", names: &["kernel.log_A_real", "kernel.A_imag"], takes_wd: true },
];

impl LayerOptions for S4dConfig {
    type Layer = S4d;

    /// Optimizer settings of each kind of SSM parameter.
    fn param_groups(&self) -> Vec<SsmGroup> {
        hyper::resolve(S4D_KINDS, &self.lr, &self.wd, None, None)
    }

    /// Checks values the type system does not.
    fn validate(&self, path: &str) -> Result<(), crate::config::ConfigError> {
        let bad = |key: &str, msg: String| Err(crate::config::ConfigError::Key { path: format!("{path}.{key}"), msg });
        if self.d_state < 2 || !self.d_state.is_multiple_of(2) {
            return bad("d_state", format!("must be an even number ≥ 2 (N/2 complex modes), got {}", self.d_state));
        }
        if self.init == S4dInit::Real && self.real_transform == RealTransform::Sigmoid {
            return bad("real_transform", "`sigmoid` keeps -Re A below 1, but init `real` starts at 1, 2, …".into());
        }
        hyper::check(path, S4D_KINDS, &self.lr, &self.wd)?;
        super::check_sizes(path, self.d_state, 1)?;
        super::check_common(path, self.dt_min, self.dt_max, self.dropout)
    }

    /// Builds the layer for width `h` (random init from the device's seeded RNG).
    fn init(&self, h: usize, device: &Device) -> S4d {
        S4d {
            D: Param::from_tensor(Tensor::random([h], Distribution::Normal(0.0, 1.0), device)),
            kernel: S4dKernel::new(self, h, device),
            output_linear: LinearConfig::new(h, 2 * h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            shared_kernel: None,
        }
    }
}

/// The diagonal SSM parameters; generates the convolution kernel.
#[derive(Module, Debug)]
pub struct S4dKernel {
    /// log step size, [H].
    pub log_dt: Param<Tensor<1>>,
    /// Output matrix as (re, im) pairs, [H, N2, 2] (`torch.view_as_real`).
    pub C: Param<Tensor<3>>,
    /// `-Re A` through the inverse of `real_transform`, [H, N2]: with the default `exp`,
    /// s4d.py's `log(-Re A)` (the name is kept for its state_dict).
    pub log_A_real: Param<Tensor<2>>,
    /// Im A, [H, N2].
    pub A_imag: Param<Tensor<2>>,
    /// Discretization.
    #[module(skip)]
    pub disc: Disc,
    /// How `log_A_real` maps to `-Re A`.
    #[module(skip)]
    pub real_transform: RealTransform,
    /// Sampling-rate factor multiplying `dt` (1 in training; 2 runs a 16 kHz model at 8 kHz).
    #[module(skip)]
    pub rate: f64,
}

impl S4dKernel {
    /// S4D init: log-uniform dt, complex normal C, `A` by `init` (`Re A = -1/2` but for `real`).
    pub fn new(cfg: &S4dConfig, h: usize, device: &Device) -> Self {
        let (n, init) = (cfg.d_state, cfg.init);
        let n2 = n / 2;
        let log_dt = Tensor::random([h], Distribution::Uniform(cfg.dt_min.ln(), cfg.dt_max.ln()), device);
        // torch.randn(cfloat) draws re and im with variance 1/2 each.
        let c = Tensor::random([h, n2, 2], Distribution::Normal(0.0, 0.5f64.sqrt()), device);
        let per_mode = |v: Vec<f64>| -> Tensor<2> {
            let v: Vec<f32> = v.iter().map(|x| *x as f32).collect();
            Tensor::<1>::from_floats(v.as_slice(), device).unsqueeze_dim::<2>(0).repeat_dim(0, h)
        };
        let a_imag = match init {
            S4dInit::Rand => Tensor::random([h, n2], Distribution::Normal(0.0, 1.0), device).exp(),
            _ => per_mode(init.imags(n)),
        };
        let reals = (0..n2).map(|k| cfg.real_transform.inverse(init.real(k))).collect();
        Self {
            log_dt: Param::from_tensor(log_dt),
            C: Param::from_tensor(c),
            log_A_real: Param::from_tensor(per_mode(reals)),
            A_imag: Param::from_tensor(a_imag),
            disc: cfg.disc,
            real_transform: cfg.real_transform,
            rate: 1.0,
        }
    }

    /// Effective `(dt [H], A_re [H,N2], A_im [H,N2], C_re [H,N2], C_im [H,N2])`.
    fn materialize(&self) -> (Tensor<1>, Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) {
        let [h, n2, _] = self.C.dims();
        let c = self.C.val();
        let c_re = c.clone().narrow(2, 0, 1).reshape([h, n2]);
        let c_im = c.narrow(2, 1, 1).reshape([h, n2]);
        let a_re = -self.real_transform.apply(self.log_A_real.val());
        (self.log_dt.val().exp() * self.rate, a_re, self.A_imag.val(), c_re, c_im)
    }

    /// The discretized system for kernels of length `l` (only `disc: dss` depends on it).
    pub fn system(&self, l: usize) -> DiagonalSystem {
        let (dt, a_re, a_im, c_re, c_im) = self.materialize();
        let [h, n2] = a_re.dims();
        // B is folded into C in S4D's minimal parameterization (B = 1).
        let c = (c_re.reshape([1, h, n2]), c_im.reshape([1, h, n2]));
        discretize(self.disc, dt, (a_re, a_im), None, c, l)
    }

    /// The convolution kernel. Returns [H, L].
    pub fn forward(&self, l: usize) -> Tensor<2> {
        let [h, _, _] = self.C.dims();
        self.system(l).kernel(l).reshape([h, l])
    }
}

impl S4dInit {
    /// `-Im A_n` for the `N/2` stored modes of a state of size `big_n`, clamped at 1e-4 as the
    /// reference stores them.
    pub fn imags(self, big_n: usize) -> Vec<f64> {
        let nf = big_n as f64;
        let raw: Vec<f64> = match self {
            S4dInit::Lin => (0..big_n / 2).map(|n| PI * n as f64).collect(),
            S4dInit::Inv => (0..big_n / 2).map(|n| nf / PI * (nf / (2 * n + 1) as f64 - 1.0)).collect(),
            S4dInit::Legs => super::hippo::legs_diagonal(big_n).into_iter().map(|(_, im)| -im).collect(),
            // Real does not oscillate; Rand draws its own (see `S4dKernel::new`).
            S4dInit::Real | S4dInit::Rand => return vec![0.0; big_n / 2],
        };
        raw.into_iter().map(|v| v.max(1e-4)).collect()
    }

    /// `-Re A_n` of mode `n`.
    pub fn real(self, n: usize) -> f64 {
        if self == S4dInit::Real { (n + 1) as f64 } else { 0.5 }
    }
}

/// The S4D layer: SSM convolution, D skip, activation, dropout, then a GLU output projection.
#[derive(Module, Debug)]
pub struct S4d {
    /// Skip connection, [H].
    pub D: Param<Tensor<1>>,
    /// The SSM kernel.
    pub kernel: S4dKernel,
    /// Position-wise H → 2H projection followed by GLU.
    pub output_linear: Linear,
    /// Dropout after the activation.
    pub dropout: Dropout,
    /// Activation after the SSM.
    #[module(skip)]
    pub activation: Activation,
    /// The kernel computed once per optimizer step and shared by its micro-batches (see
    /// [`crate::train::shared::SharedKernels`]); `None` computes it in every forward.
    #[module(skip)]
    pub shared_kernel: Option<Tensor<3>>,
}

impl S4d {
    /// The kernel of length `l` (the shared one while training with shared kernels), [H, L].
    fn kernel_at(&self, l: usize) -> Tensor<2> {
        match &self.shared_kernel {
            Some(k) => k.clone().reshape([k.dims()[1], l]),
            None => self.kernel.forward(l),
        }
    }

    /// Convolution, skip, the initial state's `response` [B, L, H], activation, dropout, GLU.
    ///
    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn mix(&self, u: Tensor<3>, response: Option<Tensor<3>>) -> Tensor<3> {
        let k = self.kernel_at(u.dims()[1]); // [H, L]
        let gelu = self.activation == Activation::Gelu;
        if response.is_none() && self.dropout.prob == 0.0 {
            // With no dropout between them, GELU moves into the output projection, whose
            // backward pass recomputes it from z instead of keeping gelu(z) [B, L, H].
            let z = causal_conv(u, k, self.D.val(), false); // [B, L, H]
            return linear_glu(z, &self.output_linear, gelu); // [B, L, H]
        }
        let y = match response {
            None => causal_conv(u, k, self.D.val(), gelu),
            Some(r) => self.activation.apply(causal_conv(u, k, self.D.val(), false) + r),
        }; // [B, L, H]
        let y = self.dropout.forward(y);
        linear_glu(y, &self.output_linear, false) // [B, L, 2H] -> [B, L, H]
    }
}

impl SeqLayer for S4d {
    type Stepper = SsmStepper;
    type State = SsmState;
    const NAME: &'static str = "s4d";

    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn forward(&self, u: Tensor<3>) -> Tensor<3> {
        self.mix(u, None)
    }

    /// Conv mode from an initial state (None: zero): the same outputs and final state as
    /// stepping through `u` from that state (see [`super::state`]).
    ///
    /// Args: `u` [B, L, H]; `state` [B, H, N2]. Returns ([B, L, H], the state after `u`).
    fn forward_state(&self, u: Tensor<3>, state: Option<&SsmState>) -> Result<(Tensor<3>, SsmState), StepError> {
        let hk = self.kernel.C.dims()[0];
        check_input(u.dims(), hk)?;
        let (response, last) = self.kernel.system(u.dims()[1]).forward_parts(u.clone(), state)?;
        Ok((self.mix(u, response), last))
    }

    /// Prepares step mode for `batch` sequences from the zero state. It reproduces conv mode
    /// over `l` steps; only `disc: dss`, whose normalization sums over the kernel's length,
    /// depends on `l` (later steps extend that kernel).
    fn stepper(&self, batch: usize, l: usize) -> Result<SsmStepper, StepError> {
        SsmStepper::diagonal(l, |l| self.kernel.system(l), self.D.val(), batch)
    }

    /// One recurrent step: the same map as [`S4d::forward`] applied to the next time step.
    ///
    /// Args: `u` [B, H]. Returns [B, H].
    fn step(&self, s: &mut SsmStepper, u: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let y = self.activation.apply(s.advance(u)?); // [B, H]
        Ok(glu(self.output_linear.forward(self.dropout.forward(y)), 1))
    }

    fn set_state(&self, s: &mut SsmStepper, state: &SsmState) -> Result<(), StepError> {
        s.set_state(state)
    }

    fn state(&self, s: &SsmStepper) -> Result<SsmState, StepError> {
        Ok(s.state(&self.D.device()))
    }

    fn set_rate(&mut self, rate: f64) {
        self.kernel.rate = rate;
    }

    fn share_kernel(&mut self, l: usize) -> Option<(Tensor<3>, Tensor<3>)> {
        let k = self.kernel.forward(l).unsqueeze_dim(0); // [1, H, L]
        let leaf = k.clone().detach().require_grad();
        self.shared_kernel = Some(leaf.clone());
        Some((k, leaf))
    }

    /// models/s4/s4d.py: output_linear = Sequential(Conv1d(H, 2H, 1), GLU).
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let same = |name: String| Some((name, Map::Same));
        match rest {
            ["D"] => same(format!("{prefix}.D")),
            ["kernel", k @ ("log_dt" | "C" | "log_A_real" | "A_imag")] => same(format!("{prefix}.kernel.{k}")),
            ["output_linear", "weight"] => Some((format!("{prefix}.output_linear.0.weight"), Map::Conv1)),
            ["output_linear", "bias"] => same(format!("{prefix}.output_linear.0.bias")),
            _ => None,
        }
    }
}
