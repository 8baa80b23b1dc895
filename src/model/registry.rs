//! The model registry: `model._name_` picks a whole model. `sequence` (the default, also when
//! `_name_` is absent) is the residual backbone of [`super::SequenceModel`]; every other entry
//! is one line of `crate::models!` in `model/mod.rs` naming its options and its module.
//!
//! [`Model`] is the module the trainer, evaluation, checkpoints and `predict` hold. Its
//! [`Module`] implementation is transparent: parameter paths are those of the model inside
//! (no variant prefix), so checkpoints and parameter-group regexes written before the registry
//! existed still apply.

use std::fmt::Debug;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::ConfigError;

/// A built model other than the sequence backbone (derive(Module, Debug)).
pub trait Classifier: Module {
    /// Args: `x` [B, L, D]; `lengths` valid steps per sample (None: all L). Returns [B, 1, K]
    /// (one output per sequence) or [B, L, K] (one per step).
    fn forward(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Tensor<3>;

    /// Sets a sampling-rate factor; models without a notion of rate ignore it.
    fn set_rate(&mut self, _rate: f64) {}
}

/// Options of a registered model (serde: `#[serde(deny_unknown_fields, default)]`, Default =
/// the reference's defaults).
pub trait ClassifierOptions: Serialize + DeserializeOwned + Clone + Debug + Default {
    /// The model these options build.
    type Model: Classifier;

    /// Checks ranges, naming `{path}.{key}` in errors.
    fn validate(&self, _path: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Whether the model predicts one output per step (tasks such as `lm` need that).
    fn per_step(&self) -> bool {
        false
    }

    /// Checks the model fits inputs of `seq_len` steps, naming `{path}.{key}` (e.g. a frame
    /// longer than the sequence).
    fn check_seq_len(&self, _path: &str, _seq_len: usize) -> Result<(), ConfigError> {
        Ok(())
    }

    /// The metric names of a model that computes its own loss (a chain's loss manager);
    /// `None` when the task's loss and metrics apply.
    fn own_metrics(&self) -> Option<Vec<String>> {
        None
    }

    /// Builds the model for `d_input` features per step and `d_output` outputs.
    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<Self::Model, ConfigError>;
}

/// Declares the model registry: one line per model besides `sequence`. Generates
/// `ClassifierConfig` (a registry of options) and `Model` (the built module) with their
/// delegations.
#[macro_export]
macro_rules! models {
    ($($name:literal => $Variant:ident($Cfg:ty, $Module:ty)),+ $(,)?) => {
        $crate::registry! {
            /// Models other than the sequence backbone, selectable as `model._name_`.
            pub enum ClassifierConfig ("model") { $($name => $Variant($Cfg)),+ }
        }

        impl ClassifierConfig {
            /// Checks the options' ranges (see [`ClassifierOptions::validate`]).
            pub fn validate(&self, path: &str) -> Result<(), $crate::config::ConfigError> {
                match self { $(Self::$Variant(c) => $crate::model::ClassifierOptions::validate(c, path)),+ }
            }

            /// Whether the model predicts every step.
            pub fn per_step(&self) -> bool {
                match self { $(Self::$Variant(c) => $crate::model::ClassifierOptions::per_step(c)),+ }
            }

            /// Checks the model fits the data's sequence length.
            pub fn check_seq_len(&self, path: &str, seq_len: usize) -> Result<(), $crate::config::ConfigError> {
                match self { $(Self::$Variant(c) => $crate::model::ClassifierOptions::check_seq_len(c, path, seq_len)),+ }
            }

            /// The metrics of a model with its own loss (see [`ClassifierOptions::own_metrics`]).
            pub fn own_metrics(&self) -> Option<Vec<String>> {
                match self { $(Self::$Variant(c) => $crate::model::ClassifierOptions::own_metrics(c)),+ }
            }

            /// Builds the model.
            pub fn init(
                &self,
                d_input: usize,
                d_output: usize,
                device: &burn::tensor::Device,
            ) -> Result<Model, $crate::config::ConfigError> {
                match self {
                    $(Self::$Variant(c) => Ok(Model::$Variant($crate::model::ClassifierOptions::init(c, d_input, d_output, device)?))),+
                }
            }
        }

        /// A whole model: the sequence backbone or a registered classifier.
        // One model is held per run, so boxing the larger variant would buy nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum Model {
            /// The residual backbone (`model._name_: sequence`, the default).
            Sequence($crate::model::SequenceModel),
            $(#[doc = $name] $Variant($Module)),+
        }

        impl Model {
            /// Args: `x` [B, L, D]; `lengths` valid steps per sample. Returns [B, 1, K] or
            /// [B, L, K] (per-step models).
            pub fn forward(&self, x: burn::tensor::Tensor<3>, lengths: Option<&[usize]>) -> burn::tensor::Tensor<3> {
                match self {
                    Model::Sequence(m) => m.forward(x, lengths),
                    $(Model::$Variant(m) => $crate::model::Classifier::forward(m, x, lengths)),+
                }
            }

            /// Sets the sampling-rate factor (see [`$crate::model::SequenceModel::with_rate`]).
            pub fn with_rate(self, rate: f64) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.with_rate(rate)),
                    $(Model::$Variant(mut m) => {
                        $crate::model::Classifier::set_rate(&mut m, rate);
                        Model::$Variant(m)
                    }),+
                }
            }

            /// The sequence backbone, when this is one (step mode, PyTorch weight layouts).
            pub fn as_sequence(&self) -> Option<&$crate::model::SequenceModel> {
                match self {
                    Model::Sequence(m) => Some(m),
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// The registered name of the model kind.
            pub fn kind(&self) -> &'static str {
                match self {
                    Model::Sequence(_) => "sequence",
                    $(Model::$Variant(_) => $name),+
                }
            }
        }

        // Transparent: no variant name enters the parameter paths.
        impl burn::module::Module for Model {
            fn collect_devices(&self, devices: burn::module::Devices) -> burn::module::Devices {
                match self {
                    Model::Sequence(m) => m.collect_devices(devices),
                    $(Model::$Variant(m) => m.collect_devices(devices)),+
                }
            }
            fn fork(self, device: &burn::tensor::Device) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.fork(device)),
                    $(Model::$Variant(m) => Model::$Variant(m.fork(device))),+
                }
            }
            fn to_device(self, device: &burn::tensor::Device) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.to_device(device)),
                    $(Model::$Variant(m) => Model::$Variant(m.to_device(device))),+
                }
            }
            fn train(self) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.train()),
                    $(Model::$Variant(m) => Model::$Variant(m.train())),+
                }
            }
            fn valid(&self) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.valid()),
                    $(Model::$Variant(m) => Model::$Variant(m.valid())),+
                }
            }
            fn materialize(self) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.materialize()),
                    $(Model::$Variant(m) => Model::$Variant(m.materialize())),+
                }
            }
            fn visit<V: burn::module::ModuleVisitor>(&self, visitor: &mut V) {
                match self {
                    Model::Sequence(m) => m.visit(visitor),
                    $(Model::$Variant(m) => m.visit(visitor)),+
                }
            }
            fn map<M: burn::module::ModuleMapper>(self, mapper: &mut M) -> Self {
                match self {
                    Model::Sequence(m) => Model::Sequence(m.map(mapper)),
                    $(Model::$Variant(m) => Model::$Variant(m.map(mapper))),+
                }
            }
        }
    };
}
