//! ml4gw's `ResNet2D` on a spectrogram front end (aframe's frequency-domain detector): the
//! ResNet of [`super::resnet1d`] with 2D convolutions over [C, F, T] time-frequency images of
//! the detectors. Stem `Conv2d(C→w, 7, stride 2, pad 3)` → norm → ReLU → `MaxPool2d(3, 2, 1)`;
//! stage i has width `w·2^i`; head: mean over F and T → `Linear`. Field names follow ml4gw's
//! state_dict keys (`conv1`, `bn1`, `residual_layers.{i}.{j}.…`, `fc`).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::group_norm::GroupNorm1d;
use super::resnet1d::Resnet1dConfig;
use super::spectrogram::Spectrogram;
use crate::config::ConfigError;
use crate::model::{Classifier, ClassifierOptions};

/// Options of `resnet2d`: the ResNet's (as `resnet1d`) and the spectrogram's.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resnet2dConfig {
    /// BasicBlocks per stage; stage i has width `base_width·2^i`.
    pub layers: Vec<usize>,
    /// Kernel size of the blocks' convolutions (odd).
    pub kernel_size: usize,
    /// Groups of every GroupNorm (capped at the channel count).
    pub norm_groups: usize,
    /// Width of the stem and the first stage.
    pub base_width: usize,
    /// STFT frame length.
    pub n_fft: usize,
    /// Samples between STFT frames.
    pub hop: usize,
    /// Log-magnitude (else magnitude).
    pub log: bool,
}

impl Default for Resnet2dConfig {
    fn default() -> Self {
        let r = Resnet1dConfig::default();
        Self {
            layers: r.layers,
            kernel_size: r.kernel_size,
            norm_groups: r.norm_groups,
            base_width: r.base_width,
            n_fft: 128,
            hop: 32,
            log: true,
        }
    }
}

impl Resnet2dConfig {
    fn resnet(&self) -> Resnet1dConfig {
        Resnet1dConfig {
            layers: self.layers.clone(),
            kernel_size: self.kernel_size,
            norm_groups: self.norm_groups,
            base_width: self.base_width,
        }
    }
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    let p = k / 2;
    Conv2dConfig::new([c_in, c_out], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true })
        .init(device)
}

/// Group norm of [B, C, H, W]: ml4gw's GroupNorm2D is GroupNorm1D over the flattened H·W.
fn norm(n: &GroupNorm1d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    n.forward(x.reshape([b, c, h * w])).reshape([b, c, h, w])
}

/// The skip path when stride or width changes: 1×1 conv, then norm.
#[derive(Module, Debug)]
pub struct Downsample2d {
    /// 1×1 convolution carrying the stride.
    pub conv: Conv2d,
    /// Its norm.
    pub norm: GroupNorm1d,
}

/// conv → norm → ReLU → conv → norm, plus the skip, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock2d {
    /// First convolution (carries the stride).
    pub conv1: Conv2d,
    /// Its norm.
    pub bn1: GroupNorm1d,
    /// Second convolution.
    pub conv2: Conv2d,
    /// Its norm.
    pub bn2: GroupNorm1d,
    /// Skip projection, when the shape changes.
    pub downsample: Option<Downsample2d>,
}

impl BasicBlock2d {
    fn new(c_in: usize, c_out: usize, stride: usize, cfg: &Resnet2dConfig, device: &Device) -> Self {
        let (k, g) = (cfg.kernel_size, cfg.norm_groups);
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample2d {
            conv: conv(c_in, c_out, 1, stride, device),
            norm: GroupNorm1d::new(c_out, g, device),
        });
        Self {
            conv1: conv(c_in, c_out, k, stride, device),
            bn1: GroupNorm1d::new(c_out, g, device),
            conv2: conv(c_out, c_out, k, 1, device),
            bn2: GroupNorm1d::new(c_out, g, device),
            downsample,
        }
    }

    /// Args: `x` [B, C_in, H, W]. Returns [B, C_out, H/stride, W/stride].
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = relu(norm(&self.bn1, self.conv1.forward(x.clone())));
        let out = norm(&self.bn2, self.conv2.forward(out));
        let skip = match &self.downsample {
            Some(d) => norm(&d.norm, d.conv.forward(x)),
            None => x,
        };
        relu(out + skip)
    }
}

/// The whole classifier.
#[derive(Module, Debug)]
pub struct Resnet2d {
    /// Stem convolution, k = 7, stride 2.
    pub conv1: Conv2d,
    /// Stem norm.
    pub bn1: GroupNorm1d,
    /// Stem max-pool, k = 3, stride 2.
    pub maxpool: MaxPool2d,
    /// Stages of BasicBlocks.
    pub residual_layers: Vec<Vec<BasicBlock2d>>,
    /// Output layer.
    pub fc: Linear,
    /// The time-frequency front end.
    #[module(skip)]
    pub spectrogram: Spectrogram,
}

impl ClassifierOptions for Resnet2dConfig {
    type Model = Resnet2d;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.resnet().validate(path)?;
        let key = |k: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{k}"), msg });
        if !(2..=65536).contains(&self.n_fft) {
            return key("n_fft", format!("must be in 2..=65536, got {}", self.n_fft));
        }
        if !(1..=self.n_fft).contains(&self.hop) {
            return key("hop", format!("must be in 1..=n_fft ({}), got {}", self.n_fft, self.hop));
        }
        Ok(())
    }

    fn check_seq_len(&self, path: &str, seq_len: usize) -> Result<(), ConfigError> {
        if self.n_fft > seq_len {
            let msg = format!("{} is longer than the data's sequences of {seq_len} steps (no STFT frame)", self.n_fft);
            return Err(ConfigError::Key { path: format!("{path}.n_fft"), msg });
        }
        Ok(())
    }

    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<Resnet2d, ConfigError> {
        self.validate("model.options")?;
        let w = self.base_width;
        let (residual_layers, c_in) = super::resnet1d::stages(&self.layers, w, |c_in, c_out, stride| {
            BasicBlock2d::new(c_in, c_out, stride, self, device)
        });
        Ok(Resnet2d {
            conv1: conv(d_input, w, 7, 2, device),
            bn1: GroupNorm1d::new(w, self.norm_groups, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            residual_layers,
            fc: LinearConfig::new(c_in, d_output).init(device),
            spectrogram: Spectrogram { n_fft: self.n_fft, hop: self.hop, log: self.log },
        })
    }
}

impl Classifier for Resnet2d {
    /// Args: `x` [B, L, D] windows of D detectors. Returns [B, 1, K].
    fn forward(&self, x: Tensor<3>, _lengths: Option<&[usize]>) -> Tensor<3> {
        let img = self.spectrogram.forward(x.swap_dims(1, 2)); // [B, D, F, T]
        let mut z = self.maxpool.forward(relu(norm(&self.bn1, self.conv1.forward(img)))); // [B, w, F/4, T/4]
        for stage in &self.residual_layers {
            for block in stage {
                z = block.forward(z); // [B, W_i, F_i, T_i]
            }
        }
        let [b, c, h, w] = z.dims();
        let pooled = z.reshape([b, c, h * w]).mean_dim(2).swap_dims(1, 2); // [B, 1, W]
        self.fc.forward(pooled) // [B, 1, K]
    }
}
