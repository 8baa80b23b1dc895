//! What a sequence layer implements, and the `layers!` registry that turns one line per layer
//! into the config enum, the built `Layer` enum, their step-mode state enums and every
//! delegation.
//!
//! A new layer is one file with two `impl`s ([`LayerOptions`] for its options, [`SeqLayer`] for
//! the built module) plus its line in `model/mod.rs`. Abilities only some layers have (a kernel
//! length from the data, SSM optimizer groups, a sampling rate, a shared kernel, step mode,
//! PyTorch names) are trait methods with defaults, never `match` arms on names.

use std::fmt::Debug;

use burn::tensor::{Device, Tensor};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ssm::StepError;
use super::ssm::hyper::SsmGroup;
use crate::config::ConfigError;
use crate::weights::names::{Layout, Map};

/// Options of a layer (`model.layer: {_name_: <name>, …}`), deserialized with unknown keys
/// rejected.
pub trait LayerOptions: Serialize + DeserializeOwned + Clone + Debug {
    /// The built layer.
    type Layer: SeqLayer;

    /// Checks values beyond their types (ranges), naming `{path}.{key}` in errors.
    fn validate(&self, _path: &str) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Checks the options that depend on the model width `h`.
    fn check_width(&self, _path: &str, _h: usize) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Takes the data's sequence length `l` where the layer's parameters depend on it (S4's
    /// `l_max`, for which `C̃` is stored), unless the user gave one.
    fn set_l_max(&mut self, _l: usize) {}

    /// Parameters with their own optimizer settings (SSM `lr`/`wd`, no weight decay on Mamba's
    /// `A_log` and `D`), by layer-relative name.
    fn param_groups(&self) -> Vec<SsmGroup> {
        vec![]
    }

    /// The readout `model.pool: auto` takes for this layer: `Mean` unless overridden.
    fn pool(&self) -> crate::model::PoolKind {
        crate::model::PoolKind::Mean
    }

    /// Builds the layer for width `h` (random init from the device's seeded RNG).
    fn init(&self, h: usize, device: &Device) -> Self::Layer;
}

/// A built sequence layer: maps [B, L, H] to [B, L, H].
pub trait SeqLayer {
    /// Step-mode state of a batch (an SSM's recurrence and states, an LSTM's `(h, c)`, …).
    type Stepper: Clone + Debug;
    /// The state carried from one chunk to the next in conv mode.
    type State: Clone + Debug;

    /// Registered name, for messages.
    const NAME: &'static str;

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3>;

    /// Prepares step mode for `batch` sequences from the zero state, reproducing conv mode over
    /// `l` steps (kernels normalized over their length are those of length `l`).
    fn stepper(&self, _batch: usize, _l: usize) -> Result<Self::Stepper, StepError> {
        Err(StepError::NoRecurrentForm { layer: Self::NAME, why: "it has no step mode" })
    }

    /// One recurrent step: [`SeqLayer::forward`] applied to the next time step.
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, _stepper: &mut Self::Stepper, _x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        Err(StepError::NoRecurrentForm { layer: Self::NAME, why: "it has no step mode" })
    }

    /// Conv mode from an initial state (None: zero): the outputs and the state after `x`, equal
    /// to stepping through `x` from that state, so chunks of a sequence can be chained.
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], the state after `x`).
    fn forward_state(
        &self,
        _x: Tensor<3>,
        _state: Option<&Self::State>,
    ) -> Result<(Tensor<3>, Self::State), StepError> {
        Err(StepError::NoRecurrentForm { layer: Self::NAME, why: "it has no state forwarding" })
    }

    /// Continues step mode from `state` (e.g. a prompt's, computed in conv mode); the batch
    /// becomes the state's.
    fn set_state(&self, _stepper: &mut Self::Stepper, _state: &Self::State) -> Result<(), StepError> {
        Err(StepError::NoRecurrentForm { layer: Self::NAME, why: "it has no state forwarding" })
    }

    /// The conv-mode state that step mode has reached (to continue a stepped sequence in conv
    /// mode, or to compare the two modes).
    fn state(&self, _stepper: &Self::Stepper) -> Result<Self::State, StepError> {
        Err(StepError::NoRecurrentForm { layer: Self::NAME, why: "it has no state forwarding" })
    }

    /// Sets the sampling-rate factor that multiplies the layer's step sizes (2 runs a model
    /// trained at 16 kHz on 8 kHz data). Layers without a step size ignore it.
    fn set_rate(&mut self, _rate: f64) {}

    /// Computes the layer's kernel for length `l` and makes the layer use a detached copy of it
    /// that requires its own gradient: (kernel with its graph, the copy), [C, H, L]. `None` for
    /// layers without a length-`l` kernel.
    fn share_kernel(&mut self, _l: usize) -> Option<(Tensor<3>, Tensor<3>)> {
        None
    }

    /// The reference PyTorch key (and layout map) of the parameter at layer-relative path
    /// `rest`, for a layer whose reference module sits at `prefix` in block `block`.
    fn torch_key(_layout: Layout, _prefix: &str, _block: usize, _rest: &[&str]) -> Option<(String, Map)>
    where
        Self: Sized,
    {
        None
    }
}

/// Declares the sequence layers, one line each: `"name" => Variant(OptionsType, LayerType)`.
/// Generates `LayerConfig` (the registry of options), `Layer` (the built module),
/// `LayerStepper` / `LayerState` (their step-mode states) and the delegation between them.
#[macro_export]
macro_rules! layers {
    ($($name:literal => $Variant:ident($Cfg:ty, $Ty:ty)),+ $(,)?) => {
        $crate::registry! {
            /// Sequence layers selectable as `model.layer` (one line per layer).
            pub enum LayerConfig ("layer") { $($name => $Variant($Cfg)),+ }
        }

        /// A built sequence layer: maps [B, L, H] to [B, L, H].
        #[derive(burn::module::Module, Debug)]
        pub enum Layer { $(#[doc = $name] $Variant($Ty)),+ }

        /// Step-mode state of one layer for a batch.
        #[derive(Debug, Clone)]
        pub enum LayerStepper { $(#[doc = $name] $Variant(<$Ty as $crate::model::SeqLayer>::Stepper)),+ }

        /// Conv-mode state of one layer carried between chunks.
        #[derive(Debug, Clone)]
        pub enum LayerState { $(#[doc = $name] $Variant(<$Ty as $crate::model::SeqLayer>::State)),+ }

        impl LayerConfig {
            /// Validates option values beyond their types.
            pub fn validate(&self, path: &str) -> Result<(), $crate::config::ConfigError> {
                match self { $(LayerConfig::$Variant(c) => $crate::model::LayerOptions::validate(c, path)),+ }
            }

            /// Checks the options that depend on the model width `h`.
            pub fn check_width(&self, path: &str, h: usize) -> Result<(), $crate::config::ConfigError> {
                match self { $(LayerConfig::$Variant(c) => $crate::model::LayerOptions::check_width(c, path, h)),+ }
            }

            /// Gives the layer the data's sequence length `l` (see [`LayerOptions::set_l_max`]).
            pub fn set_l_max(&mut self, l: usize) {
                match self { $(LayerConfig::$Variant(c) => $crate::model::LayerOptions::set_l_max(c, l)),+ }
            }

            /// The readout of `model.pool: auto` (see [`LayerOptions::pool`]).
            pub fn pool(&self) -> $crate::model::PoolKind {
                match self { $(LayerConfig::$Variant(c) => $crate::model::LayerOptions::pool(c)),+ }
            }

            /// Resolves `auto` to this layer's readout; other kinds stay as they are.
            pub fn resolve_pool(&self, pool: $crate::model::PoolKind) -> $crate::model::PoolKind {
                match pool {
                    $crate::model::PoolKind::Auto => self.pool(),
                    other => other,
                }
            }

            /// Optimizer settings of the layer's SSM (or otherwise special) parameters.
            pub fn ssm_groups(&self) -> Vec<$crate::model::ssm::hyper::SsmGroup> {
                match self { $(LayerConfig::$Variant(c) => $crate::model::LayerOptions::param_groups(c)),+ }
            }

            /// Builds the layer for width `h`, its `lr: 0` parameters frozen.
            pub fn init(&self, h: usize, device: &burn::tensor::Device) -> Layer {
                let layer = match self {
                    $(LayerConfig::$Variant(c) => Layer::$Variant($crate::model::LayerOptions::init(c, h, device))),+
                };
                let frozen: Vec<&str> =
                    self.ssm_groups().iter().filter(|g| g.frozen()).flat_map(|g| g.names).copied().collect();
                $crate::model::freeze(layer, &frozen)
            }
        }

        impl Layer {
            /// Registered name of the layer.
            pub fn name(&self) -> &'static str {
                match self { $(Layer::$Variant(_) => $name),+ }
            }

            /// See [`SeqLayer::set_rate`].
            pub fn set_rate(&mut self, rate: f64) {
                match self { $(Layer::$Variant(l) => $crate::model::SeqLayer::set_rate(l, rate)),+ }
            }

            /// See [`SeqLayer::share_kernel`].
            pub fn share_kernel(&mut self, l: usize) -> Option<(burn::tensor::Tensor<3>, burn::tensor::Tensor<3>)> {
                match self { $(Layer::$Variant(m) => $crate::model::SeqLayer::share_kernel(m, l)),+ }
            }

            /// Args: `x` [B, L, H]. Returns [B, L, H].
            pub fn forward(&self, x: burn::tensor::Tensor<3>) -> burn::tensor::Tensor<3> {
                match self { $(Layer::$Variant(l) => $crate::model::SeqLayer::forward(l, x)),+ }
            }

            /// See [`SeqLayer::forward_state`]. Args: `x` [B, L, H]. Returns ([B, L, H], state).
            pub fn forward_state(
                &self,
                x: burn::tensor::Tensor<3>,
                state: Option<&LayerState>,
            ) -> Result<(burn::tensor::Tensor<3>, LayerState), $crate::model::StepError> {
                match (self, state) {
                    $((Layer::$Variant(l), None) => {
                        let (y, s) = $crate::model::SeqLayer::forward_state(l, x, None)?;
                        Ok((y, LayerState::$Variant(s)))
                    })+
                    $((Layer::$Variant(l), Some(LayerState::$Variant(s0))) => {
                        let (y, s) = $crate::model::SeqLayer::forward_state(l, x, Some(s0))?;
                        Ok((y, LayerState::$Variant(s)))
                    })+
                    #[allow(unreachable_patterns)]
                    (l, Some(_)) => Err($crate::model::StepError::Mismatch { layer: l.name() }),
                }
            }

            /// See [`SeqLayer::stepper`].
            pub fn stepper(&self, batch: usize, l: usize) -> Result<LayerStepper, $crate::model::StepError> {
                match self {
                    $(Layer::$Variant(m) => Ok(LayerStepper::$Variant($crate::model::SeqLayer::stepper(m, batch, l)?))),+
                }
            }

            /// See [`SeqLayer::step`]. Args: `x` [B, H]. Returns [B, H].
            pub fn step(
                &self,
                stepper: &mut LayerStepper,
                x: burn::tensor::Tensor<2>,
            ) -> Result<burn::tensor::Tensor<2>, $crate::model::StepError> {
                match (self, stepper) {
                    $((Layer::$Variant(m), LayerStepper::$Variant(s)) => $crate::model::SeqLayer::step(m, s, x),)+
                    #[allow(unreachable_patterns)]
                    (l, _) => Err($crate::model::StepError::Mismatch { layer: l.name() }),
                }
            }

            /// See [`SeqLayer::set_state`].
            pub fn set_state(&self, stepper: &mut LayerStepper, state: &LayerState) -> Result<(), $crate::model::StepError> {
                match (self, stepper, state) {
                    $((Layer::$Variant(m), LayerStepper::$Variant(s), LayerState::$Variant(st)) => {
                        $crate::model::SeqLayer::set_state(m, s, st)
                    })+
                    #[allow(unreachable_patterns)]
                    (l, _, _) => Err($crate::model::StepError::Mismatch { layer: l.name() }),
                }
            }

            /// See [`SeqLayer::state`].
            pub fn state(&self, stepper: &LayerStepper) -> Result<LayerState, $crate::model::StepError> {
                match (self, stepper) {
                    $((Layer::$Variant(m), LayerStepper::$Variant(s)) => {
                        Ok(LayerState::$Variant($crate::model::SeqLayer::state(m, s)?))
                    })+
                    #[allow(unreachable_patterns)]
                    (l, _) => Err($crate::model::StepError::Mismatch { layer: l.name() }),
                }
            }

            /// The reference key of the parameter at `rest` inside a layer whose module path
            /// names the enum variant `variant` (see [`SeqLayer::torch_key`]).
            pub fn torch_key(
                variant: &str,
                layout: $crate::weights::names::Layout,
                prefix: &str,
                block: usize,
                rest: &[&str],
            ) -> Option<(String, $crate::weights::names::Map)> {
                match variant {
                    $(stringify!($Variant) => <$Ty as $crate::model::SeqLayer>::torch_key(layout, prefix, block, rest),)+
                    _ => None,
                }
            }
        }
    };
}
