//! S4 (Gu, Goel, Ré 2022) as in state-spaces/s4 `models/s4/s4.py` (`FFTConv` + `SSMKernelDPLR`
//! or `SSMKernelDiag`), with the Liquid-S4 terms of raminmh/liquid-s4 as an option.
//!
//! `mode: nplr` (alias `dplr`) is the full S4: `A = diag(w) - PPᴴ`, bilinear, kernel by Cauchy
//! sums and the Woodbury identity. `mode: diag` is S4D with s4.py's options (`init`,
//! `real_transform`, `disc`, `B` trained). Parameter names and shapes are s4.py's state_dict
//! keys (`kernel.inv_dt` [H,1], `kernel.A_real`, `kernel.A_imag` [S,N2], `kernel.B`,
//! `kernel.P` [1,S,N2,2], `kernel.C` [C,H,N2,2], `D` [C,H]); as there, `kernel.C` holds
//! `C̃ = (I - dA^{L})ᵀC` in `nplr` mode, for the kernel length `L` fixed at construction.

// Field names mirror the PyTorch state_dict keys (`D`, `A_real`, `B`, `C`, `P`).
#![allow(non_snake_case)]

use crate::ops::gelu;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use num_complex::Complex64 as C64;
use serde::{Deserialize, Serialize};

use super::Activation;
use super::complex::Complex;
use super::conv::{causal_conv, linear_glu};
use super::defaults;
pub use super::diagonal::RealTransform;
use super::diagonal::{DiagonalSystem, Disc, discretize};
use super::dplr::{dplr_kernel, map_outputs};
use super::hippo;
use super::hyper::{self, SsmGroup, SsmHyper, SsmKind};
use super::liquid::{Liquid, LiquidKernel};
pub use super::s4_init::S4Init;
use super::s4_init::init_copies;
use super::s4_init::{DirectA, InitPart};
use crate::config::ConfigError;
use crate::model::LayerOptions;

/// Kernel algorithm (`mode` in s4.py).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum S4Mode {
    /// Diagonal plus low rank (S4).
    #[default]
    #[serde(alias = "dplr")]
    Nplr,
    /// Diagonal (S4D).
    Diag,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn yes() -> bool {
    true
}
fn s4_lr() -> SsmHyper {
    SsmHyper::each(&[("dt", 1e-3), ("A", 1e-3), ("B", 1e-3)])
}

/// S4's SSM parameter kinds (`register(name, tensor, lr_dict[kind], wd_dict[kind])` in s4.py;
/// `P` follows `A`, and `C` gets `lr_dict['C']` with the optimizer's weight decay).
const S4_KINDS: &[SsmKind] = &[
    SsmKind { key: "dt", names: &["kernel.inv_dt"], takes_wd: true },
    SsmKind { key: "A", names: &["kernel.A_real", "kernel.A_imag", "kernel.P"], takes_wd: true },
    SsmKind { key: "B", names: &["kernel.B"], takes_wd: true },
    SsmKind { key: "C", names: &["kernel.C"], takes_wd: false },
];

/// Options of the `s4` layer (`model.layer`); `liquid_kernel` turns it into Liquid-S4.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S4Config {
    /// Kernel algorithm.
    #[serde(default)]
    pub mode: S4Mode,
    /// State size N (real); N/2 complex modes are stored.
    #[serde(default = "defaults::d_state")]
    pub d_state: usize,
    /// Smallest initial step size.
    #[serde(default = "defaults::dt_min")]
    pub dt_min: f64,
    /// Largest initial step size.
    #[serde(default = "defaults::dt_max")]
    pub dt_max: f64,
    /// Learning rate of the SSM parameters by kind (`dt`: `inv_dt`; `A`: `A_real`, `A_imag`,
    /// `P`; `B`; `C`, not in Liquid-S4): a map (kinds left out: the optimizer's), one number for
    /// all four kinds as s4.py (so also `C`), or null; 0 freezes.
    #[serde(default = "s4_lr")]
    pub lr: SsmHyper,
    /// Weight decay of `dt`, `A`, `B` (a number, null for the optimizer's, or a map whose left-out
    /// kinds take the optimizer's); `C` always has the optimizer's.
    #[serde(default = "defaults::ssm_wd")]
    pub wd: SsmHyper,
    /// Initialization of A (and B, P): a HiPPO measure (`legs`, `fout`, `lagt`), `diag-*` /
    /// `dplr-*`, or a combination (`hippo`, `diag`, `all`) splitting the `n_ssm` copies.
    #[serde(default)]
    pub init: S4Init,
    /// Discretization (default: bilinear for `nplr`, which supports only it; zoh for `diag`).
    #[serde(default)]
    pub disc: Option<Disc>,
    /// Parameterization of `-Re A`.
    #[serde(default)]
    pub real_transform: RealTransform,
    /// Output channels per feature (heads); the output projection mixes `channels·H → H`.
    #[serde(default = "one")]
    pub channels: usize,
    /// Independent `(A, B, P)` copies shared across the H features (null: H); must divide H.
    #[serde(default)]
    pub n_ssm: Option<usize>,
    /// Two-sided kernel (a causal and an anti-causal half).
    #[serde(default)]
    pub bidirectional: bool,
    /// Length the `nplr` kernel is built for (`C̃`); `fit` sets it to the data's length.
    #[serde(default)]
    pub l_max: Option<usize>,
    /// Rank of the low-rank part (only 1).
    #[serde(default = "one")]
    pub rank: usize,
    /// Activation after the SSM.
    #[serde(default)]
    pub activation: Activation,
    /// Dropout after the activation.
    #[serde(default)]
    pub dropout: f64,
    /// Liquid-S4 correction (null: plain S4).
    #[serde(default)]
    pub liquid_kernel: Option<LiquidKernel>,
    /// Highest degree of the liquid input products (≥ 2).
    #[serde(default = "two")]
    pub liquid_degree: usize,
    /// Liquid products over all index combinations of the last steps (false: neighbours).
    #[serde(default = "yes")]
    pub allcombs: bool,
}

impl S4Config {
    /// The SSM parameter kinds: Liquid-S4's kernel (raminmh/liquid-s4) registers `C` plainly.
    fn kinds(&self) -> &'static [SsmKind] {
        if self.liquid_kernel.is_some() { &S4_KINDS[..3] } else { S4_KINDS }
    }

    /// The `liquid_s4` entry: S4 with the `polyb` correction unless `liquid_kernel` says otherwise.
    pub fn liquid(mut self) -> Self {
        self.liquid_kernel.get_or_insert(LiquidKernel::Polyb);
        self
    }

    fn disc(&self) -> Disc {
        self.disc.unwrap_or(if self.mode == S4Mode::Nplr { Disc::Bilinear } else { Disc::Zoh })
    }
}

impl LayerOptions for S4Config {
    type Layer = S4;

    /// Optimizer settings of each kind of SSM parameter (s4.py: map keys left out and `null`
    /// take the optimizer's value).
    fn param_groups(&self) -> Vec<SsmGroup> {
        hyper::resolve(self.kinds(), &self.lr, &self.wd, None, None)
    }

    fn set_l_max(&mut self, l: usize) {
        self.l_max.get_or_insert(l);
    }

    /// Checks values the type system does not.
    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        // An odd N keeps N/2 modes (rounded down) and drops the real one, as s4.py's `nplr`
        // does (Liquid-S4's LRA configs use `d_state: 7`).
        if self.d_state < 2 {
            return bad("d_state", format!("must be ≥ 2 (N/2 complex modes are kept), got {}", self.d_state));
        }
        let real = self.init.parts().iter().any(|p| matches!(p, InitPart::Direct { a: DirectA::Real, .. }));
        if real && self.real_transform == RealTransform::Sigmoid {
            return bad("real_transform", "`sigmoid` keeps -Re A below 1, but init `real` starts at 1, 2, …".into());
        }
        let fout = self.init.parts().iter().any(|p| matches!(p, InitPart::Nplr(hippo::Measure::Fout)));
        if fout && !self.d_state.is_multiple_of(2) {
            return bad(
                "d_state",
                format!("init `{}` (Fourier) needs an even d_state, got {}", self.init.name(), self.d_state),
            );
        }
        if self.d_state < self.init.min_state() {
            return bad(
                "d_state",
                format!(
                    "init `{}` needs d_state ≥ {} (its NPLR form allows one zero eigenvalue pair), got {}",
                    self.init.name(),
                    self.init.min_state(),
                    self.d_state
                ),
            );
        }
        if self.mode == S4Mode::Nplr && self.disc() != Disc::Bilinear {
            return bad(
                "disc",
                format!(
                    "mode `nplr` supports `bilinear` only (its Cauchy/Woodbury kernel is exact for the bilinear \
                     transform), got `{:?}`; use `mode: diag` for zoh or dss",
                    self.disc()
                )
                .to_lowercase(),
            );
        }
        hyper::check(path, self.kinds(), &self.lr, &self.wd)?;
        super::check_sizes(path, self.d_state, self.channels)?;
        if self.liquid_kernel.is_some() {
            crate::config::check::at_most(&format!("{path}.liquid_degree"), self.liquid_degree, 16)?;
        }
        if self.rank != 1 {
            return bad("rank", format!("only rank 1 is implemented, got {}", self.rank));
        }
        if self.channels == 0 {
            return bad("channels", "must be ≥ 1".into());
        }
        if self.n_ssm == Some(0) {
            return bad("n_ssm", "must be ≥ 1 (or null for one per feature)".into());
        }
        if let Some(l) = self.l_max
            && !(1..=1 << 24).contains(&l)
        {
            return bad("l_max", format!("must be in 1..=16777216 (2^24 steps) or null, got {l}"));
        }
        if self.liquid_kernel.is_some() {
            if self.liquid_degree < 2 {
                return bad(
                    "liquid_degree",
                    format!("must be ≥ 2 (degree 1 is the plain SSM), got {}", self.liquid_degree),
                );
            }
            if self.bidirectional {
                return bad("bidirectional", "is not supported together with `liquid_kernel`".into());
            }
        }
        super::check_common(path, self.dt_min, self.dt_max, self.dropout)
    }

    /// Checks the options that depend on the model width `h`.
    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        if let Some(s) = self.n_ssm
            && !h.is_multiple_of(s)
        {
            return Err(ConfigError::Key {
                path: format!("{path}.n_ssm"),
                msg: format!("must divide d_model = {h}, got {s}"),
            });
        }
        let (s, k) = (self.n_ssm.unwrap_or(h), self.init.parts().len());
        if !s.is_multiple_of(k) {
            return Err(ConfigError::Key {
                path: format!("{path}.init"),
                msg: format!(
                    "`{}` splits the SSM copies into {k} blocks, but n_ssm (null: d_model) = {s} is not a multiple of {k}",
                    self.init.name()
                ),
            });
        }
        Ok(())
    }

    /// Builds the layer for width `h` (random init from the device's seeded RNG).
    fn init(&self, h: usize, device: &Device) -> S4 {
        let c_out = self.channels * if self.bidirectional { 2 } else { 1 };
        S4 {
            D: Param::from_tensor(Tensor::random([self.channels, h], Distribution::Normal(0.0, 1.0), device)),
            kernel: S4Kernel::new(self, h, c_out, device),
            output_linear: LinearConfig::new(self.channels * h, 2 * h).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            activation: self.activation,
            bidirectional: self.bidirectional,
            liquid: self.liquid_kernel.map(|kernel| Liquid {
                kernel,
                degree: self.liquid_degree,
                allcombs: self.allcombs,
            }),
            shared_kernel: None,
        }
    }
}

/// Options of the `liquid_s4` layer: S4's, with the `polyb` correction unless `liquid_kernel`
/// says otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LiquidS4Config(pub S4Config);

impl LayerOptions for LiquidS4Config {
    type Layer = S4;

    fn param_groups(&self) -> Vec<SsmGroup> {
        self.0.clone().liquid().param_groups()
    }

    fn set_l_max(&mut self, l: usize) {
        self.0.set_l_max(l);
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.0.clone().liquid().validate(path)
    }

    fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        self.0.check_width(path, h)
    }

    fn init(&self, h: usize, device: &Device) -> S4 {
        self.0.clone().liquid().init(h, device)
    }
}

/// The SSM parameters of S4/S4D; generates the convolution kernel `[C, H, L]`.
#[derive(Module, Debug)]
pub struct S4Kernel {
    /// log dt, [H, 1].
    pub inv_dt: Param<Tensor<2>>,
    /// `-Re A` under `real_transform`'s inverse, [S, N2].
    pub A_real: Param<Tensor<2>>,
    /// `-Im A`, [S, N2].
    pub A_imag: Param<Tensor<2>>,
    /// Input matrix, [1, S, N2, 2] (`view_as_real`).
    pub B: Param<Tensor<4>>,
    /// Output matrix (`C̃` in `nplr` mode), [C, H, N2, 2].
    pub C: Param<Tensor<4>>,
    /// Low-rank factor (`nplr` mode), [1, S, N2, 2].
    pub P: Option<Param<Tensor<4>>>,
    /// Discretization.
    #[module(skip)]
    pub disc: Disc,
    /// Parameterization of `-Re A`.
    #[module(skip)]
    pub real_transform: RealTransform,
    /// FFT length `C̃` belongs to (`nplr`; a power of two).
    #[module(skip)]
    pub l_kernel: usize,
    /// Sampling-rate factor multiplying `dt` (1 in training; 2 runs a 16 kHz model at 8 kHz).
    #[module(skip)]
    pub rate: f64,
}

/// `(re, im)` pairs as a `[.., 2]` tensor.
fn pairs<const D: usize>(v: &[C64], shape: [usize; D], device: &Device) -> Tensor<D> {
    let data: Vec<f32> = v.iter().flat_map(|z| [z.re as f32, z.im as f32]).collect();
    Tensor::from_data(TensorData::new(data, shape.to_vec()), device)
}

impl S4Kernel {
    /// s4.py's init: log-uniform dt, `(A, B, P)` by `init`, complex normal `C` (then `C̃`).
    pub fn new(cfg: &S4Config, h: usize, c_out: usize, device: &Device) -> Self {
        let (n, s) = (cfg.d_state, cfg.n_ssm.unwrap_or(h));
        let n2 = n / 2;
        let nplr = cfg.mode == S4Mode::Nplr;
        let log_dt = Tensor::<2>::random([h, 1], Distribution::Uniform(cfg.dt_min.ln(), cfg.dt_max.ln()), device);
        let (w, b, p) = init_copies(&cfg.init, n, s, nplr, &mut |k, std| host_normal(k, std, device));
        let a_real: Vec<f32> = w.iter().map(|z| cfg.real_transform.inverse(-z.re) as f32).collect();
        let a_imag: Vec<f32> = w.iter().map(|z| (-z.im).max(1e-4) as f32).collect();
        let c = host_normal(2 * c_out * h * n2, 0.5f64.sqrt(), device);
        let c: Vec<C64> = c.chunks(2).map(|z| C64::new(z[0], z[1])).collect();
        let mut kernel = Self {
            inv_dt: Param::from_tensor(log_dt),
            A_real: Param::from_tensor(Tensor::from_data(TensorData::new(a_real, [s, n2]), device)),
            A_imag: Param::from_tensor(Tensor::from_data(TensorData::new(a_imag, [s, n2]), device)),
            B: Param::from_tensor(pairs(&b, [1, s, n2, 2], device)),
            C: Param::from_tensor(pairs(&c, [c_out, h, n2, 2], device)),
            P: p.map(|p| Param::from_tensor(pairs(&p, [1, s, n2, 2], device))),
            disc: cfg.disc(),
            real_transform: cfg.real_transform,
            l_kernel: cfg.l_max.unwrap_or(1024).next_power_of_two(),
            rate: 1.0,
        };
        if let (_, w, b, _, Some(p)) = kernel.effective() {
            // C̃ = (I - dA^L)ᵀC per h, as s4.py does on its first forward: from the stored
            // parameters (HiPPO measures with Re w = 0 are clamped to -1e-4 there).
            let dt: Vec<f64> =
                kernel.inv_dt.val().try_into_vec_as::<f64>().expect("f64 dt").iter().map(|v| v.exp()).collect();
            let host = |z: Complex<2>| -> Vec<C64> {
                let re = z.0.try_into_vec_as::<f64>().expect("f64 data");
                let im = z.1.try_into_vec_as::<f64>().expect("f64 data");
                re.into_iter().zip(im).map(|(r, i)| C64::new(r, i)).collect()
            };
            let l = kernel.l_kernel;
            let ct = map_outputs(&dt, &host(w), &host(p), &host(b), &c, |sys, ci| sys.c_tilde(ci, l));
            kernel.C = Param::from_tensor(pairs(&ct, [c_out, h, n2, 2], device));
        }
        kernel
    }

    /// Effective `(dt [H], A [H,N2], B [H,N2], C [C,H,N2], P [H,N2])`.
    #[allow(clippy::type_complexity)]
    pub fn effective(&self) -> (Tensor<1>, Complex<2>, Complex<2>, Complex<3>, Option<Complex<2>>) {
        let [_, h, n2, _] = self.C.dims();
        let s = self.A_real.dims()[0];
        let tile = |t: Tensor<2>| if s == h { t } else { t.repeat_dim(0, h / s) };
        let split4 = |t: Tensor<4>| {
            let [a, b, d, _] = t.dims();
            (t.clone().narrow(3, 0, 1).reshape([a, b, d]), t.narrow(3, 1, 1).reshape([a, b, d]))
        };
        let dt = self.inv_dt.val().exp().reshape([h]) * self.rate;
        let a = (tile(-self.real_transform.apply(self.A_real.val())), tile(-self.A_imag.val()));
        let b = split4(self.B.val());
        let b = (tile(b.0.reshape([s, n2])), tile(b.1.reshape([s, n2])));
        let p = self.P.as_ref().map(|p| {
            let p = split4(p.val());
            (tile(p.0.reshape([s, n2])), tile(p.1.reshape([s, n2])))
        });
        (dt, a, b, split4(self.C.val()), p)
    }

    /// The FFT length of the `nplr` kernel for `l` steps: `l_kernel` at rate 1.
    pub(super) fn fft_len(&self, l: usize) -> usize {
        let discrete = ((self.l_kernel as f64 / self.rate).round() as usize).max(1);
        discrete.next_power_of_two().max(l.next_power_of_two())
    }

    /// The convolution kernel. Returns [C, H, L].
    pub fn forward(&self, l: usize) -> Tensor<3> {
        let (dt, a, b, c, p) = self.effective();
        match p {
            Some(p) => dplr_kernel(dt, a, p, b, c, self.fft_len(l)).narrow(2, 0, l),
            None => discretize(self.disc, dt, a, Some(b), c, l).kernel(l),
        }
    }

    /// The diagonal system of `mode: diag` for kernels of length `l` (None for `nplr`).
    pub fn system(&self, l: usize) -> Option<DiagonalSystem> {
        let (dt, a, b, c, p) = self.effective();
        p.is_none().then(|| discretize(self.disc, dt, a, Some(b), c, l))
    }
}

/// `n` normal draws with standard deviation `std` from the device's seeded RNG, on the host.
fn host_normal(n: usize, std: f64, device: &Device) -> Vec<f64> {
    Tensor::<1>::random([n], Distribution::Normal(0.0, std), device).try_into_vec_as::<f64>().expect("f64 data")
}

/// The S4 layer (`FFTConv` + output projection): SSM convolution per channel, D skip, Liquid
/// terms, activation, dropout, then `channels·H → 2H` and GLU.
#[derive(Module, Debug)]
pub struct S4 {
    /// Skip connection, [C, H].
    pub D: Param<Tensor<2>>,
    /// The SSM kernel.
    pub kernel: S4Kernel,
    /// Position-wise C·H → 2H projection followed by GLU.
    pub output_linear: Linear,
    /// Dropout after the activation.
    pub dropout: Dropout,
    /// Activation after the SSM.
    #[module(skip)]
    pub activation: Activation,
    /// Two-sided kernel.
    #[module(skip)]
    pub bidirectional: bool,
    /// Liquid-S4 correction.
    #[module(skip)]
    pub liquid: Option<Liquid>,
    /// The kernel computed once per optimizer step and shared by its micro-batches (see
    /// [`crate::train::shared::SharedKernels`]); `None` computes it in every forward.
    #[module(skip)]
    pub shared_kernel: Option<Tensor<3>>,
}

impl S4 {
    /// Per channel: convolution, skip, two-sided and liquid terms, the initial state's
    /// `response` [B, L, C·H], activation; then dropout and `C·H → 2H` with GLU.
    ///
    /// Args: `u` [B, L, H]. Returns [B, L, H].
    pub(super) fn mix(&self, u: Tensor<3>, response: Option<Tensor<3>>) -> Tensor<3> {
        let [_, l, h] = u.dims();
        let channels = self.D.dims()[0];
        let k = self.shared_kernel.clone().unwrap_or_else(|| self.kernel.forward(l)); // [C', H, L]
        let gelu_on = self.activation == Activation::Gelu;
        let liquid = self.liquid.map(|lq| {
            let (dt, w, bb, c, _) = self.kernel.effective();
            (lq, dt, w, bb, c, u.clone().swap_dims(1, 2))
        });
        let ys: Vec<Tensor<3>> = (0..channels)
            .map(|ci| {
                let kc = k.clone().narrow(0, ci, 1).reshape([h, l]);
                let d = self.D.val().narrow(0, ci, 1).reshape([h]);
                if !self.bidirectional && liquid.is_none() && response.is_none() {
                    return causal_conv(u.clone(), kc, d, gelu_on); // [B, L, H]
                }
                let mut y = causal_conv(u.clone(), kc.clone(), d, false);
                if let Some(r) = &response {
                    y = y + r.clone().narrow(2, ci * h, h);
                }
                if self.bidirectional {
                    let k1 = k.clone().narrow(0, channels + ci, 1).reshape([h, l]);
                    y = y + anticausal_conv(u.clone(), k1);
                }
                if let Some((lq, dt, w, bb, c, u_bhl)) = &liquid {
                    let [_, _, n2] = c.0.dims();
                    let cc = |t: &Tensor<3>| t.clone().narrow(0, ci, 1).reshape([h, n2]);
                    let (sigma, g) = Liquid::coefficients(dt.clone(), w.clone(), bb.clone(), (cc(&c.0), cc(&c.1)));
                    y = y + lq.correction(u_bhl.clone(), kc, sigma, g).swap_dims(1, 2);
                }
                if gelu_on { gelu(y) } else { y }
            })
            .collect();
        let y = if channels == 1 { ys.into_iter().next().expect("one channel") } else { Tensor::cat(ys, 2) };
        let y = self.dropout.forward(y); // [B, L, C·H]
        linear_glu(y, &self.output_linear, false) // [B, L, 2H] -> [B, L, H]
    }
}

/// `y[t] = Σ_{j≥0} k[j]·u[t+1+j]`: the anti-causal half of a bidirectional kernel, as s4.py
/// places the flipped second half after the causal one.
///
/// Args: `u` [B, L, H], `k` [H, L]. Returns [B, L, H].
fn anticausal_conv(u: Tensor<3>, k: Tensor<2>) -> Tensor<3> {
    let [b, l, h] = u.dims();
    let device = u.device();
    let z = causal_conv(u.flip([1]), k, Tensor::zeros([h], &device), false).flip([1]); // z[t] = Σ_j k[j]·u[t+j]
    Tensor::cat(vec![z.narrow(1, 1, l - 1), Tensor::zeros([b, 1, h], &device)], 1)
}
