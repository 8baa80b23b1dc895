//! Models: a residual backbone whose layer is picked by name, and a registry of whole models
//! beside it (`model._name_`, see [`registry`]).
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

pub mod adaptive;
pub mod attention;
pub mod backbone;
pub mod block;
pub mod chain;
pub mod config;
pub mod conv;
pub mod generate;
pub mod layer;
pub mod memory;
pub mod registry;
pub mod rnn;
pub mod ssm;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;

pub use backbone::{ModelStepper, SequenceModel};
pub use config::{ModelConfig, NormKind, PoolKind};
pub use layer::{LayerOptions, SeqLayer};
pub use registry::{Classifier, ClassifierOptions};
pub use ssm::{SsmState, SsmStepper, StepError};

crate::layers! {
    "s4d" => S4d(ssm::S4dConfig, ssm::S4d),
    "dss" => Dss(ssm::DssConfig, ssm::Dss),
    "s4" => S4(ssm::S4Config, ssm::S4),
    "liquid_s4" => LiquidS4(ssm::LiquidS4Config, ssm::S4),
    "lstm" => Lstm(rnn::LstmConfig, rnn::Lstm),
    "gru" => Gru(rnn::GruConfig, rnn::Gru),
    "rnn" => Rnn(rnn::RnnConfig, rnn::Rnn),
    "wave_rnn" => WaveRnn(rnn::WaveRnnConfig, rnn::WaveRnn),
    "unicornn" => Unicornn(rnn::UnicornnConfig, rnn::Unicornn),
    "lipschitz_rnn" => LipschitzRnn(rnn::LipschitzRnnConfig, rnn::LipschitzRnn),
    "ckconv" => CkConv(conv::CkConvConfig, conv::CkConv),
    "mamba" => Mamba(ssm::MambaConfig, ssm::Mamba),
    "mamba2" => Mamba2(ssm::Mamba2Config, ssm::Mamba2),
    "transformer" => Transformer(attention::TransformerConfig, attention::Transformer),
}

crate::models! {
    "resnet1d" => Resnet1d(conv::Resnet1dConfig, conv::Resnet1d),
    "resnet2d" => Resnet2d(conv::Resnet2dConfig, conv::Resnet2d),
    "gw_autoencoder" => GwAutoencoder(conv::GwAutoencoderConfig, conv::GwAutoencoder),
    "wrnn" => Wrnn(rnn::WrnnConfig, rnn::Wrnn),
    "chain" => Chain(chain::ChainConfig, chain::Chain),
}

impl Model {
    /// The chain, when this is one (its commands and loss manager).
    pub fn as_chain(&self) -> Option<&chain::Chain> {
        match self {
            Model::Chain(c) => Some(c),
            _ => None,
        }
    }

    /// The loss manager of a chain with `loss` terms.
    pub fn loss_manager(&self) -> Option<&crate::task::loss_manager::LossManager> {
        self.as_chain().and_then(chain::Chain::losses)
    }
}

impl LayerConfig {
    /// Sets `l_max` of `layer` (an unresolved `model.layer`) to the data's sequence length `l`
    /// where the layer takes one and the user gave none (see [`LayerOptions::set_l_max`]).
    pub fn fill_l_max(layer: &mut crate::config::Named, l: usize) -> Result<(), crate::config::ConfigError> {
        let mut typed = LayerConfig::from_named(layer, "model.layer")?;
        typed.set_l_max(l);
        *layer = typed.to_named();
        Ok(())
    }
}

/// Stops gradients of the parameters named by `names` (layer-relative suffixes such as
/// `kernel.inv_dt`): the reference registers an `lr: 0` tensor as a buffer, so it gets no
/// gradient, no optimizer update and no share of the clipping norm.
pub(crate) fn freeze(layer: Layer, names: &[&str]) -> Layer {
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
