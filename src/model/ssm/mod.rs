//! State-space layers.

pub mod complex;
pub mod conv;
pub mod diagonal;
pub mod diagonal_step;
pub mod dplr;
pub mod dplr_step;
pub mod dss;
pub mod gated_norm;
pub mod hippo;
pub mod hyper;
pub mod liquid;
pub mod mamba;
pub mod mamba2;
pub mod recurrence;
pub mod s4;
pub mod s4_init;
pub mod s4_state;
pub mod s4d;
pub mod selective;
pub mod ssd;
pub mod state;
pub mod stepper;
pub mod vandermonde;

pub use dss::{Dss, DssConfig};
pub use mamba::{Mamba, MambaConfig, MambaState};
pub use mamba2::{Mamba2, Mamba2Config, Mamba2State};
pub use s4::{LiquidS4Config, S4, S4Config};
pub use s4d::{S4d, S4dConfig, S4dKernel};
pub use state::SsmState;
pub use stepper::{SsmStepper, StepError};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// Pointwise activation inside a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Gaussian error linear unit (exact erf form, as `nn.GELU()`).
    #[default]
    Gelu,
    /// Identity.
    Id,
}

impl Activation {
    /// Applies the activation elementwise.
    pub fn apply<const D: usize>(self, x: burn::tensor::Tensor<D>) -> burn::tensor::Tensor<D> {
        match self {
            Activation::Gelu => crate::ops::gelu(x),
            Activation::Id => x,
        }
    }
}

/// Defaults shared by the SSM layers' options (state-spaces/s4 values).
pub(crate) mod defaults {
    /// State size.
    pub fn d_state() -> usize {
        64
    }
    /// Smallest initial step size.
    pub fn dt_min() -> f64 {
        1e-3
    }
    /// Largest initial step size.
    pub fn dt_max() -> f64 {
        1e-1
    }
    /// Weight decay of the SSM parameters (s4.py's `wd`).
    pub fn ssm_wd() -> super::hyper::SsmHyper {
        super::hyper::SsmHyper::All(Some(0.0))
    }
}

/// Checks the options every SSM layer has: `0 < dt_min ≤ dt_max`, dropout in [0, 1).
/// The largest state size a layer accepts (the reference configs use up to a few hundred).
pub const MAX_STATE: usize = 1 << 16;
/// The most output channels a layer accepts.
pub const MAX_CHANNELS: usize = 1 << 10;

/// Upper bounds of the size keys every SSM layer has: `d_state` and `channels` (1 where the
/// layer has none).
pub(crate) fn check_sizes(path: &str, d_state: usize, channels: usize) -> Result<(), ConfigError> {
    crate::config::check::at_most(&format!("{path}.d_state"), d_state, MAX_STATE)?;
    crate::config::check::count(&format!("{path}.channels"), channels, MAX_CHANNELS)
}

pub(crate) fn check_common(path: &str, dt_min: f64, dt_max: f64, dropout: f64) -> Result<(), ConfigError> {
    if !dt_max.is_finite() {
        return Err(ConfigError::Key {
            path: format!("{path}.dt_max"),
            msg: format!("must be a finite number, got {dt_max}"),
        });
    }
    if !(dt_min > 0.0 && dt_min <= dt_max) {
        return Err(ConfigError::Key {
            path: format!("{path}.dt_min"),
            msg: format!("need 0 < dt_min ≤ dt_max, got {dt_min} and {dt_max}"),
        });
    }
    // log dt is drawn uniformly between the f32 logarithms, which must differ.
    if (dt_min.ln() as f32) >= (dt_max.ln() as f32) {
        return Err(ConfigError::Key {
            path: format!("{path}.dt_max"),
            msg: format!("must be larger than dt_min ({dt_min}): log dt is drawn between them, got {dt_max}"),
        });
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(ConfigError::Key {
            path: format!("{path}.dropout"),
            msg: format!("must be in [0, 1), got {dropout}"),
        });
    }
    Ok(())
}
