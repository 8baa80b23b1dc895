//! `data=gw`: aframe-style two-detector detection windows (the layout of `data=npy`: whitened
//! strain [n, 2, L], labels 1 for an injection) with aframe's online augmentation.

pub mod augment;
pub mod project;
pub mod psd;
pub mod snr;
pub mod strain;
pub mod stream;
pub mod taylorf2;
pub mod waveform;
pub mod whiten;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use augment::GwAugment;

use super::npy::{NpyConfig, NpyLayout, NpyTargets, load_from};
use super::{DataError, DataModule};

/// Options of `gw`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GwConfig {
    /// Folder holding `X_{train,val,test}.npy` [n, C, L] and `y_*.npy` (default `$DATA_PATH/gw`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Online augmentation of training batches.
    #[serde(default)]
    pub augment: GwAugment,
}

/// Loads the splits as `data=npy` does, checking they hold at least two detectors.
pub fn load(cfg: &GwConfig) -> Result<DataModule, DataError> {
    cfg.augment.validate()?;
    let npy =
        NpyConfig { path: cfg.path.clone(), layout: NpyLayout::Ncl, targets: NpyTargets::Classes, n_classes: Some(2) };
    let dm = load_from(&npy, "gw")?;
    if dm.train.channels < 2 && (cfg.augment.swap_prob > 0.0 || cfg.augment.mute_prob > 0.0) {
        return Err(DataError::Invalid(format!(
            "`data.augment.swap_prob`/`mute_prob` need two or more detectors, the arrays have {} channel",
            dm.train.channels
        )));
    }
    Ok(dm)
}
