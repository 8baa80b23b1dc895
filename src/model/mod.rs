//! Sequence models: a residual backbone whose layer is picked by name.
//!
//! Dimension letters used in shape comments throughout the crate:
//!
//! | letter | meaning |
//! |---|---|
//! | `B` | batch size |
//! | `L` | sequence length |
//! | `D` | input features per step (`d_input`) |
//! | `H` | model width (`d_model`), one independent SSM per channel |
//! | `N` | SSM state size (`d_state`, real); `N2 = N/2` complex modes are stored |
//! | `C` | kernel output channels |
//! | `K` | outputs of the decoder (classes, regression targets) |

pub mod backbone;
pub mod block;
pub mod rnn;
pub mod ssm;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor};

pub use backbone::{ModelStepper, SequenceModel};
pub use ssm::{SsmState, SsmStepper, StepError};

use crate::config::ConfigError;

crate::registry! {
    /// Sequence layers selectable as `model.layer` (one line per layer).
    pub enum LayerConfig ("layer") {
        "s4d" => S4d(ssm::S4dConfig),
        "dss" => Dss(ssm::DssConfig),
        "s4" => S4(ssm::S4Config),
        "liquid_s4" => LiquidS4(ssm::S4Config),
    }
}

impl LayerConfig {
    /// Validates option values beyond their types.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        match self {
            LayerConfig::S4d(c) => c.validate(path),
            LayerConfig::Dss(c) => c.validate(path),
            LayerConfig::S4(c) => c.validate(path),
            LayerConfig::LiquidS4(c) => c.clone().liquid().validate(path),
        }
    }

    /// Checks the options that depend on the model width `h`.
    pub fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        match self {
            LayerConfig::S4(c) | LayerConfig::LiquidS4(c) => c.check_width(path, h),
            _ => Ok(()),
        }
    }

    /// Sets `l_max` of a layer config that has one (S4's kernel length) to the data's sequence
    /// length `l`, unless given.
    pub fn fill_l_max(layer: &mut crate::config::Named, l: usize) {
        if matches!(layer.name.as_str(), "s4" | "liquid_s4") {
            let key = serde_yaml::Value::from("l_max");
            if layer.options.get(&key).is_none_or(|v| v.is_null()) {
                layer.options.insert(key, serde_yaml::Value::from(l as u64));
            }
        }
    }

    /// Builds the layer for width `h`, its `lr: 0` SSM parameters frozen.
    pub fn init(&self, h: usize, device: &Device) -> Layer {
        let layer = match self {
            LayerConfig::S4d(c) => Layer::S4d(c.init(h, device)),
            LayerConfig::Dss(c) => Layer::Dss(c.init(h, device)),
            LayerConfig::S4(c) => Layer::S4(c.init(h, device)),
            LayerConfig::LiquidS4(c) => Layer::S4(c.clone().liquid().init(h, device)),
        };
        let frozen: Vec<&str> =
            self.ssm_groups().iter().filter(|g| g.frozen()).flat_map(|g| g.names).copied().collect();
        freeze(layer, &frozen)
    }

    /// Optimizer settings of the layer's SSM parameters, one entry per kind (`dt`, `A`, …).
    pub fn ssm_groups(&self) -> Vec<ssm::hyper::SsmGroup> {
        match self {
            LayerConfig::S4d(c) => c.ssm_groups(),
            LayerConfig::Dss(c) => c.ssm_groups(),
            LayerConfig::S4(c) => c.ssm_groups(),
            LayerConfig::LiquidS4(c) => c.clone().liquid().ssm_groups(),
        }
    }
}

/// Stops gradients of the parameters named by `names` (layer-relative suffixes such as
/// `kernel.inv_dt`): the reference registers an `lr: 0` tensor as a buffer, so it gets no
/// gradient, no optimizer update and no share of the clipping norm.
fn freeze(layer: Layer, names: &[&str]) -> Layer {
    struct Freeze<'a> {
        path: Vec<String>,
        names: &'a [&'a str],
    }
    impl ModuleMapper for Freeze<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.path.join(".");
            let hit = self.names.iter().any(|n| path == *n || path.ends_with(&format!(".{n}")));
            if hit { param.set_require_grad(false) } else { param }
        }
    }
    if names.is_empty() {
        return layer;
    }
    layer.map(&mut Freeze { path: vec![], names })
}

/// A built sequence layer: maps [B, L, H] to [B, L, H].
#[derive(Module, Debug)]
pub enum Layer {
    /// Diagonal SSM.
    S4d(ssm::S4d),
    /// Diagonal state space with shared eigenvalues (DSS).
    Dss(ssm::Dss),
    /// S4 (DPLR or diagonal kernel, optionally Liquid-S4).
    S4(ssm::S4),
}

impl Layer {
    /// Sets the sampling-rate factor that multiplies the layer's step sizes (inference on data
    /// sampled at another rate than training: 2 for half the sampling rate).
    pub fn set_rate(&mut self, rate: f64) {
        match self {
            Layer::S4d(l) => l.kernel.rate = rate,
            Layer::Dss(l) => l.kernel.rate = rate,
            Layer::S4(l) => l.kernel.rate = rate,
        }
    }

    /// Computes the layer's kernel for length `l` and makes the layer use a detached copy of
    /// it that requires its own gradient. Returns (kernel with its graph, the copy), [C, H, L].
    pub fn share_kernel(&mut self, l: usize) -> (Tensor<3>, Tensor<3>) {
        let (k, slot) = match self {
            Layer::S4d(m) => (m.kernel.forward(l).unsqueeze_dim(0), &mut m.shared_kernel),
            Layer::Dss(m) => (m.kernel.forward(l), &mut m.shared_kernel),
            Layer::S4(m) => (m.kernel.forward(l), &mut m.shared_kernel),
        };
        let leaf = k.clone().detach().require_grad();
        *slot = Some(leaf.clone());
        (k, leaf)
    }

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        match self {
            Layer::S4d(l) => l.forward(x),
            Layer::Dss(l) => l.forward(x),
            Layer::S4(l) => l.forward(x),
        }
    }

    /// Conv mode from an initial SSM state (None: zero): the outputs and the final state that
    /// stepping through `x` from that state gives, so chunks of a sequence can be chained.
    ///
    /// Args: `x` [B, L, H]; `state` [B, H, N2]. Returns ([B, L, H], the state after `x`).
    pub fn forward_state(&self, x: Tensor<3>, state: Option<&SsmState>) -> Result<(Tensor<3>, SsmState), StepError> {
        match self {
            Layer::S4d(l) => l.forward_state(x, state),
            Layer::Dss(l) => l.forward_state(x, state),
            Layer::S4(l) => l.forward_state(x, state),
        }
    }

    /// Prepares step mode for `batch` sequences from the zero state. The stepper reproduces
    /// conv mode over `l` steps (kernels whose normalization depends on the length, DSS-softmax
    /// and `disc: dss`, are those of length `l`). Errors for layers with no causal recurrence.
    pub fn stepper(&self, batch: usize, l: usize) -> Result<SsmStepper, StepError> {
        match self {
            Layer::S4d(m) => m.stepper(batch, l),
            Layer::Dss(m) => m.stepper(batch, l),
            Layer::S4(m) => m.stepper(batch, l),
        }
    }

    /// One recurrent step: [`Layer::forward`] applied to the next time step of each sequence.
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    pub fn step(&self, stepper: &mut SsmStepper, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        match self {
            Layer::S4d(m) => m.step(stepper, x),
            Layer::Dss(m) => m.step(stepper, x),
            Layer::S4(m) => m.step(stepper, x),
        }
    }
}
