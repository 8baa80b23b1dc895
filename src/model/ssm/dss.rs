//! DSS (Gupta et al. 2022, "Diagonal State Spaces are as Effective as Structured State
//! Spaces"): `N` complex modes `Λ` shared by all channels, separate step sizes for `Re Λ` and
//! `Im Λ`, output weights `W` per channel, and the exp or softmax kernel. Parameter names follow
//! ag1988/dss's standalone `dss.py` (`kernel.log_dt`, `kernel.Lambda_log_neg_re`,
//! `kernel.Lambda_im` or `kernel.Lambda`, `kernel.W`, `D`, `output_linear`).

// Field names mirror the PyTorch state_dict keys.
#![allow(non_snake_case)]

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use super::conv::causal_conv;
use super::diagonal::{DiagonalSystem, DssVersion, dss_system};
use super::hippo::legs_diagonal;
use super::hyper::{self, SsmGroup, SsmHyper, SsmKind};
use super::state::SsmState;
use super::stepper::{SsmStepper, StepError, check_input};
use super::{Activation, defaults};
use crate::config::ConfigError;
use crate::model::{LayerOptions, SeqLayer};
use crate::weights::names::{Layout, Map};

/// Initialization of `Λ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LambdaInit {
    /// `-1/2 + i·μ`: the skew part of HiPPO-LegS of size 2N, largest `μ` first.
    #[default]
    HippoSkewPosImag,
    /// Complex normal.
    Randn,
}

/// Options of the `dss` layer (`model.layer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DssConfig {
    /// Complex modes N (DSS counts complex modes; nothing is conj-expanded).
    #[serde(default = "defaults::d_state")]
    pub d_state: usize,
    /// Kernel output channels C (each mapped back to H by the output projection).
    #[serde(default = "one")]
    pub channels: usize,
    /// Kernel version.
    #[serde(default = "softmax")]
    pub version: DssVersion,
    /// Initialization of `Λ`.
    #[serde(default)]
    pub lambda_init: LambdaInit,
    /// Smallest initial step size.
    #[serde(default = "defaults::dt_min")]
    pub dt_min: f64,
    /// Largest initial step size.
    #[serde(default = "defaults::dt_max")]
    pub dt_max: f64,
    /// Learning rate by dss.py's keys (`log_dt`; `Lambda`: `Lambda_log_neg_re`, `Lambda_im` or
    /// `Lambda`; `W`): a map whose left-out keys keep dss.py's 1e-3, one number for all, or null
    /// for the optimizer's; 0 freezes (dss.py's `trainable: false`).
    #[serde(default = "dss_lr")]
    pub lr: SsmHyper,
    /// Weight decay of the same (dss.py: always 0): a number, null for the optimizer's, or a map
    /// whose left-out keys keep 0.
    #[serde(default = "defaults::ssm_wd")]
    pub wd: SsmHyper,
    /// Activation after the SSM.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout after the activation.
    #[serde(default)]
    pub dropout: f64,
}

fn one() -> usize {
    1
}
fn softmax() -> DssVersion {
    DssVersion::Softmax
}

fn dss_lr() -> SsmHyper {
    SsmHyper::each(&[("log_dt", 1e-3), ("Lambda", 1e-3), ("W", 1e-3)])
}

/// DSS's SSM parameter kinds, keyed as dss.py's `lr` dict (`register(name, …, self.lr.<key>,
/// wd=0.0)`).
const DSS_KINDS: &[SsmKind] = &[
    SsmKind { key: "log_dt", names: &["kernel.log_dt"], takes_wd: true },
    SsmKind {
        key: "Lambda",
        names: &["kernel.Lambda_log_neg_re", "kernel.Lambda_im", "kernel.Lambda"],
        takes_wd: true,
    },
    SsmKind { key: "W", names: &["kernel.W"], takes_wd: true },
];

impl LayerOptions for DssConfig {
    type Layer = Dss;

    /// Optimizer settings of each kind of SSM parameter (dss.py updates its defaults with the
    /// given map, so left-out keys keep lr 1e-3 and weight decay 0).
    fn param_groups(&self) -> Vec<SsmGroup> {
        hyper::resolve(DSS_KINDS, &self.lr, &self.wd, Some(1e-3), Some(0.0))
    }

    /// Checks values the type system does not.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        if self.d_state == 0 {
            return bad("d_state", "must be at least 1".into());
        }
        if self.channels == 0 {
            return bad("channels", "must be at least 1".into());
        }
        hyper::check(path, DSS_KINDS, &self.lr, &self.wd)?;
        super::check_sizes(path, self.d_state, self.channels)?;
        super::check_common(path, self.dt_min, self.dt_max, self.dropout)
    }

    /// Builds the layer for width `h`.
    fn init(&self, h: usize, device: &Device) -> Dss {
        let (n, c) = (self.d_state, self.channels);
        let lambda: Vec<(f64, f64)> = match self.lambda_init {
            LambdaInit::HippoSkewPosImag => legs_diagonal(2 * n).into_iter().map(|(re, im)| (re, -im)).collect(),
            LambdaInit::Randn => {
                let t = Tensor::<2>::random([n, 2], Distribution::Normal(0.0, 0.5f64.sqrt()), device);
                t.try_into_vec_as::<f64>().expect("f64").chunks(2).map(|p| (p[0], p[1])).collect()
            }
        };
        let re: Vec<f32> = lambda.iter().map(|p| p.0 as f32).collect();
        let im: Vec<f32> = lambda.iter().map(|p| p.1 as f32).collect();
        let log_dt = Tensor::<1>::random([h], Distribution::Uniform(self.dt_min.ln(), self.dt_max.ln()), device);
        let (mut log_neg_re, mut lambda_im, mut lambda_raw) = (None, None, None);
        match self.version {
            DssVersion::Exp => {
                let neg: Vec<f32> = re.iter().map(|v| (-v).max(1e-4).ln()).collect();
                log_neg_re = Some(Param::from_tensor(Tensor::<1>::from_floats(neg.as_slice(), device)));
                lambda_im = Some(Param::from_tensor(Tensor::<1>::from_floats(im.as_slice(), device)));
            }
            DssVersion::Softmax => {
                let pairs: Vec<f32> = re.iter().zip(&im).flat_map(|(r, i)| [*r, *i]).collect();
                lambda_raw =
                    Some(Param::from_tensor(Tensor::<1>::from_floats(pairs.as_slice(), device).reshape([n, 2])));
            }
        }
        Dss {
            D: Param::from_tensor(Tensor::random([c, h], Distribution::Normal(0.0, 1.0), device)),
            kernel: DssKernel {
                log_dt: Param::from_tensor(log_dt.reshape([h, 1]).repeat_dim(1, 2)),
                Lambda_log_neg_re: log_neg_re,
                Lambda_im: lambda_im,
                Lambda: lambda_raw,
                W: Param::from_tensor(Tensor::random([c, h, n, 2], Distribution::Normal(0.0, 1.0), device)),
                version: self.version,
                rate: 1.0,
            },
            output_linear: LinearConfig::new(c * h, h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            shared_kernel: None,
        }
    }
}

/// DSS kernel parameters.
#[derive(Module, Debug)]
pub struct DssKernel {
    /// log step sizes for `Re Λ` and `Im Λ`, [H, 2].
    pub log_dt: Param<Tensor<2>>,
    /// log(-Re Λ), [N] (exp version).
    pub Lambda_log_neg_re: Option<Param<Tensor<1>>>,
    /// Im Λ, [N] (exp version).
    pub Lambda_im: Option<Param<Tensor<1>>>,
    /// Λ as (re, im) pairs, [N, 2] (softmax version).
    pub Lambda: Option<Param<Tensor<2>>>,
    /// Output weights as (re, im) pairs, [C, H, N, 2].
    pub W: Param<Tensor<4>>,
    /// Kernel version.
    #[module(skip)]
    pub version: DssVersion,
    /// Sampling-rate factor multiplying both step sizes.
    #[module(skip)]
    pub rate: f64,
}

impl DssKernel {
    /// The kernel. Returns [C, H, L].
    pub fn forward(&self, l: usize) -> Tensor<3> {
        self.system(l).kernel(l)
    }

    /// The diagonal system of the kernel of length `l` (see [`dss_system`]; only `softmax`
    /// depends on `l`).
    pub fn system(&self, l: usize) -> DiagonalSystem {
        let lambda = match (&self.Lambda, &self.Lambda_log_neg_re, &self.Lambda_im) {
            (Some(raw), _, _) => {
                let n = raw.dims()[0];
                let v = raw.val();
                (v.clone().narrow(1, 0, 1).reshape([n]), v.narrow(1, 1, 1).reshape([n]))
            }
            (None, Some(neg), Some(im)) => (-neg.val().exp(), im.val()),
            _ => unreachable!("DssConfig::init sets the parameters of its version"),
        };
        let [c, h, n, _] = self.W.dims();
        let w = self.W.val();
        let w = (w.clone().narrow(3, 0, 1).reshape([c, h, n]), w.narrow(3, 1, 1).reshape([c, h, n]));
        dss_system(self.version, self.log_dt.val().exp() * self.rate, lambda, w, l)
    }
}

/// The DSS layer: per-channel SSM convolution with skip, activation, dropout, then a linear
/// map from the C·H channel outputs back to H.
#[derive(Module, Debug)]
pub struct Dss {
    /// Skip connection per channel, [C, H].
    pub D: Param<Tensor<2>>,
    /// The SSM kernel.
    pub kernel: DssKernel,
    /// C·H → H projection.
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

impl Dss {
    /// Per channel: convolution, skip, the initial state's `response` [B, L, C·H], activation;
    /// then dropout and the C·H → H map.
    ///
    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn mix(&self, u: Tensor<3>, response: Option<Tensor<3>>) -> Tensor<3> {
        let [_, l, h] = u.dims();
        let k = self.shared_kernel.clone().unwrap_or_else(|| self.kernel.forward(l)); // [C, H, L]
        let c = k.dims()[0];
        let gelu = self.activation == Activation::Gelu;
        let d = self.D.val();
        let ys: Vec<Tensor<3>> = (0..c)
            .map(|ci| {
                let kc = k.clone().narrow(0, ci, 1).reshape([h, l]);
                let dc = d.clone().narrow(0, ci, 1).reshape([h]);
                match &response {
                    None => causal_conv(u.clone(), kc, dc, gelu),
                    Some(r) => {
                        self.activation.apply(causal_conv(u.clone(), kc, dc, false) + r.clone().narrow(2, ci * h, h))
                    }
                }
            })
            .collect();
        let y = if c == 1 { ys.into_iter().next().expect("one channel") } else { Tensor::cat(ys, 2) }; // [B, L, C·H]
        self.output_linear.forward(self.dropout.forward(y))
    }
}

impl SeqLayer for Dss {
    type Stepper = SsmStepper;
    type State = SsmState;
    const NAME: &'static str = "dss";

    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn forward(&self, u: Tensor<3>) -> Tensor<3> {
        self.mix(u, None)
    }

    /// Conv mode from an initial state (None: zero): the same outputs and final state as
    /// stepping through `u` from that state (see [`super::state`]). For `softmax` both are those
    /// of the kernel of length L.
    ///
    /// Args: `u` [B, L, H]; `state` [B, H, N]. Returns ([B, L, H], the state after `u`).
    fn forward_state(&self, u: Tensor<3>, state: Option<&SsmState>) -> Result<(Tensor<3>, SsmState), StepError> {
        let hk = self.kernel.W.dims()[1];
        check_input(u.dims(), hk)?;
        let (response, last) = self.kernel.system(u.dims()[1]).forward_parts(u.clone(), state)?;
        Ok((self.mix(u, response), last))
    }

    /// Prepares step mode for `batch` sequences from the zero state, reproducing conv mode over
    /// `l` steps: `softmax` normalizes each mode over the kernel's length, so its recurrence
    /// is that of the length-`l` kernel (later steps extend that kernel); `exp` ignores `l`.
    fn stepper(&self, batch: usize, l: usize) -> Result<SsmStepper, StepError> {
        SsmStepper::diagonal(l, |l| self.kernel.system(l), self.D.val(), batch)
    }

    /// One recurrent step: the same map as [`Dss::forward`] applied to the next time step.
    ///
    /// Args: `u` [B, H]. Returns [B, H].
    fn step(&self, s: &mut SsmStepper, u: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let y = self.activation.apply(s.advance(u)?); // [B, C·H]
        Ok(self.output_linear.forward(self.dropout.forward(y)))
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
        let k = self.kernel.forward(l); // [C, H, L]
        let leaf = k.clone().detach().require_grad();
        self.shared_kernel = Some(leaf.clone());
        Some((k, leaf))
    }

    /// ag1988/dss standalone DSS: output_linear is a plain linear map (postact None), a
    /// TransposedLinear with bias [H, 1] in the example's transposed=True layout.
    fn torch_key(layout: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let same = |name: String| Some((name, Map::Same));
        match rest {
            ["D"] => same(format!("{prefix}.D")),
            ["kernel", k @ ("log_dt" | "Lambda_log_neg_re" | "Lambda_im" | "Lambda" | "W")] => {
                same(format!("{prefix}.kernel.{k}"))
            }
            ["output_linear", "weight"] => Some((format!("{prefix}.output_linear.weight"), Map::Transpose)),
            ["output_linear", "bias"] => {
                let map = if layout == Layout::S4Example { Map::Column } else { Map::Same };
                Some((format!("{prefix}.output_linear.bias"), map))
            }
            _ => None,
        }
    }
}
