//! `task=autoencoder`: aframe's semi-supervised detector. A model that reconstructs each
//! detector from that detector alone is trained to make every reconstruction correlate with
//! the *other* detector's data (a real signal is coherent across detectors up to the light
//! travel time, noise is not): the loss of a window is `−√Σ_i (max_shift corr_i)²`, the
//! negative of ml4gw's shifted-Pearson score (see [`super::shifted_pearson`] for the host
//! form). The score is the detection statistic, and its AUROC, partial AUROC and efficiencies
//! are reported on the labelled splits. aframe trains on injections only (every training
//! window carries a signal), so by default the training split keeps its positives.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::data::{DataModule, Targets};

/// Which labelled training windows the autoencoder learns from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainOn {
    /// Injections only (label 1), as aframe trains it.
    #[default]
    Positives,
    /// Every window, labels ignored.
    All,
}

/// Options of `autoencoder`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Largest shift S in samples over which each correlation is maximised (aframe's ±5 ms:
    /// 10 samples at 2048 Hz).
    #[serde(default = "default_max_shift")]
    pub max_shift: usize,
    /// Training windows: `positives` (aframe) or `all`.
    #[serde(default)]
    pub train_on: TrainOn,
    /// The false-positive rate up to which `pauc` integrates (aframe's 1e-3).
    #[serde(default = "super::classification::default_max_fpr")]
    pub max_fpr: f64,
    /// False-positive rates at which the detection efficiency `eff@fpr<r>` is reported.
    #[serde(default = "super::classification::default_fprs")]
    pub efficiency_fprs: Vec<f64>,
}

fn default_max_shift() -> usize {
    10
}

impl Default for AutoencoderConfig {
    fn default() -> Self {
        Self {
            max_shift: default_max_shift(),
            train_on: TrainOn::default(),
            max_fpr: super::classification::default_max_fpr(),
            efficiency_fprs: super::classification::default_fprs(),
        }
    }
}

impl AutoencoderConfig {
    /// Checks ranges, naming `{path}.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let at = |k: &str| crate::config::join_path(path, k);
        crate::config::check::at_most(&at("max_shift"), self.max_shift, 1 << 20)?;
        super::binary::check_rates(path, self.max_fpr, &self.efficiency_fprs)
    }

    /// Checks the data suits the task: at least two channels (detectors), binary labels, and
    /// windows longer than the shifts. `d_input` is C, `seq_len` L.
    pub fn check_data(&self, d_input: usize, seq_len: usize, n_classes: usize) -> Result<(), ConfigError> {
        let key = |path: &str, msg: String| Err(ConfigError::Key { path: path.into(), msg });
        if d_input < 2 {
            return key(
                "task._name_",
                format!("task `autoencoder` scores each channel against another; the data has {d_input} channel"),
            );
        }
        if n_classes != 2 {
            return key(
                "task._name_",
                format!("task `autoencoder` needs labels 0/1 (1 = signal), got {n_classes} classes"),
            );
        }
        if self.max_shift >= seq_len {
            return key(
                "task.max_shift",
                format!("must be shorter than the {seq_len}-step windows, got {}", self.max_shift),
            );
        }
        Ok(())
    }

    /// The data with its training split reduced to the windows `train_on` selects (with
    /// `positives`, an error naming `task.train_on` when there is none).
    pub fn training_data(&self, mut data: DataModule) -> Result<DataModule, ConfigError> {
        if self.train_on == TrainOn::Positives {
            let Targets::Classes { labels, .. } = &data.train.targets else {
                return Err(ConfigError::Key { path: "task.train_on".into(), msg: "needs class labels".into() });
            };
            let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == 1).collect();
            if idx.is_empty() {
                let msg = "`positives`: the training split has no window labelled 1".to_string();
                return Err(ConfigError::Key { path: "task.train_on".into(), msg });
            }
            data.train = data.train.subset(&idx);
        }
        Ok(data)
    }

    /// The score of each window. Args: `out` [B·L, C] reconstructions (rows in batch-major
    /// order), `x` [B, L, C] the inputs. Returns [B].
    pub fn score(&self, out: Tensor<2>, x: &Tensor<3>) -> Tensor<1> {
        autoencoder_score(x.clone(), out.reshape(x.dims()), self.max_shift)
    }
}

/// Pearson correlations [2S+1, B, C] of `y` [B, L, C] against `x` [B, L, C] shifted in time:
/// entry j pairs `y[t]` with `x[t + j − S]` (zero outside the window), each window de-meaned
/// over its L steps, per window and channel (ml4gw's `ShiftedPearsonCorrelation`). Tensor ops,
/// so gradients reach both inputs.
pub fn shifted_pearson(x: Tensor<3>, y: Tensor<3>, max_shift: usize) -> Tensor<3> {
    let [b, l, c] = x.dims();
    let s = max_shift;
    let yc = y.clone() - y.mean_dim(1); // [B, L, C]
    let y_norm = yc.clone().square().sum_dim(1); // [B, 1, C]
    let pad = Tensor::<3>::zeros([b, s, c], &x.device());
    let xp = Tensor::cat(vec![pad.clone(), x, pad], 1); // [B, L + 2S, C]
    let corr: Vec<Tensor<2>> = (0..=2 * s)
        .map(|j| {
            let w = xp.clone().narrow(1, j, l); // [B, L, C]
            let wc = w.clone() - w.mean_dim(1);
            let num = (wc.clone() * yc.clone()).sum_dim(1); // [B, 1, C]
            // A floor under the norms keeps a constant window (a dead reconstruction) at 0
            // instead of NaN; any real window is many orders above it.
            let den = (wc.square().sum_dim(1) * y_norm.clone()).clamp_min(1e-30).sqrt();
            (num / den).reshape([b, c]) // [B, C]
        })
        .collect();
    Tensor::stack(corr, 0) // [2S+1, B, C]
}

/// aframe's score per window: each detector of `x` [B, L, C] against the reconstruction of the
/// other (channels of `x_hat` [B, L, C] reversed), maximised over the shifts, then
/// `√Σ_c max²`. Returns [B]; the loss is its negative.
pub fn autoencoder_score(x: Tensor<3>, x_hat: Tensor<3>, max_shift: usize) -> Tensor<1> {
    let [b, _, _] = x.dims();
    let corr = shifted_pearson(x, x_hat.flip([2]), max_shift); // [2S+1, B, C]
    let best = corr.max_dim(0); // [1, B, C]
    best.square().sum_dim(2).sqrt().reshape([b]) // [B]
}
