//! ml4gw's `ResNet1D` (aframe's time-domain detector): a torchvision ResNet in 1D with
//! BasicBlocks and GroupNorm. Stem `Conv1d(D→64, k=7, stride 2, pad 3)` → norm → ReLU →
//! `MaxPool1d(3, 2, pad 1)`; stage i has width `64·2^i` and `layers[i]` blocks, the first block
//! of stages 1.. with stride 2; head: mean over time → `Linear(width, K)`. Field names are
//! ml4gw's state_dict keys (`conv1`, `bn1`, `residual_layers.{i}.{j}.…`, `fc`).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::pool::{MaxPool1d, MaxPool1dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::group_norm::GroupNorm1d;
use crate::config::ConfigError;
use crate::model::{Classifier, ClassifierOptions};

/// Options of `resnet1d` (ml4gw's defaults, aframe's `GroupNorm1DGetter(16)`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resnet1dConfig {
    /// BasicBlocks per stage; stage i has width `base_width·2^i`.
    pub layers: Vec<usize>,
    /// Kernel size of the blocks' convolutions (odd).
    pub kernel_size: usize,
    /// Groups of every GroupNorm (capped at the channel count).
    pub norm_groups: usize,
    /// Width of the stem and the first stage.
    pub base_width: usize,
}

impl Default for Resnet1dConfig {
    fn default() -> Self {
        Self { layers: vec![3, 4, 6, 3], kernel_size: 3, norm_groups: 16, base_width: 64 }
    }
}

/// The stages of a torchvision-style ResNet: stage i has `layers[i]` blocks of width `w·2^i`,
/// its first block striding by 2 from stage 1 on. Returns the blocks and the last width.
pub(super) fn stages<B>(
    layers: &[usize],
    w: usize,
    mut block: impl FnMut(usize, usize, usize) -> B,
) -> (Vec<Vec<B>>, usize) {
    let mut c_in = w;
    let out = layers
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let c_out = w << i;
            (0..n)
                .map(|j| {
                    let b = block(c_in, c_out, if i > 0 && j == 0 { 2 } else { 1 });
                    c_in = c_out;
                    b
                })
                .collect()
        })
        .collect();
    (out, c_in)
}

/// Kaiming-normal for ReLU, fan-out (torchvision's and ml4gw's conv init).
fn kaiming() -> Initializer {
    Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true }
}

fn conv(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Conv1d {
    Conv1dConfig::new(c_in, c_out, k)
        .with_stride(stride)
        .with_padding(PaddingConfig1d::Explicit(k / 2, k / 2))
        .with_bias(false)
        .with_initializer(kaiming())
        .init(device)
}

/// The skip path when stride or width changes: 1×1 conv, then norm (ml4gw's `nn.Sequential`
/// keys them `downsample.0` and `downsample.1`).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1×1 convolution carrying the stride.
    pub conv: Conv1d,
    /// Its norm.
    pub norm: GroupNorm1d,
}

/// conv → norm → ReLU → conv → norm, plus the skip, then ReLU.
#[derive(Module, Debug)]
pub struct BasicBlock {
    /// First convolution (carries the stride).
    pub conv1: Conv1d,
    /// Its norm.
    pub bn1: GroupNorm1d,
    /// Second convolution.
    pub conv2: Conv1d,
    /// Its norm.
    pub bn2: GroupNorm1d,
    /// Skip projection, when the shape changes.
    pub downsample: Option<Downsample>,
}

impl BasicBlock {
    fn new(c_in: usize, c_out: usize, stride: usize, cfg: &Resnet1dConfig, device: &Device) -> Self {
        let k = cfg.kernel_size;
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(c_in, c_out, 1, stride, device),
            norm: GroupNorm1d::new(c_out, cfg.norm_groups, device),
        });
        Self {
            conv1: conv(c_in, c_out, k, stride, device),
            bn1: GroupNorm1d::new(c_out, cfg.norm_groups, device),
            conv2: conv(c_out, c_out, k, 1, device),
            bn2: GroupNorm1d::new(c_out, cfg.norm_groups, device),
            downsample,
        }
    }

    /// Args: `x` [B, C_in, L]. Returns [B, C_out, L/stride].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        let out = self.bn2.forward(self.conv2.forward(out));
        let skip = match &self.downsample {
            Some(d) => d.norm.forward(d.conv.forward(x)),
            None => x,
        };
        relu(out + skip)
    }
}

/// The whole classifier.
#[derive(Module, Debug)]
pub struct Resnet1d {
    /// Stem convolution, k = 7, stride 2.
    pub conv1: Conv1d,
    /// Stem norm.
    pub bn1: GroupNorm1d,
    /// Stem max-pool, k = 3, stride 2.
    pub maxpool: MaxPool1d,
    /// Stages of BasicBlocks.
    pub residual_layers: Vec<Vec<BasicBlock>>,
    /// Output layer.
    pub fc: Linear,
}

impl ClassifierOptions for Resnet1dConfig {
    type Model = Resnet1d;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let key = |k: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{k}"), msg });
        if self.layers.is_empty() || self.layers.contains(&0) {
            return key("layers", format!("must list at least one stage of at least one block, got {:?}", self.layers));
        }
        if self.layers.len() > 16 {
            return key("layers", format!("at most 16 stages (widths double per stage), got {}", self.layers.len()));
        }
        if self.kernel_size.is_multiple_of(2) {
            return key("kernel_size", format!("must be odd (padding k/2 keeps lengths), got {}", self.kernel_size));
        }
        if self.norm_groups == 0 || !self.base_width.is_multiple_of(self.norm_groups.min(self.base_width)) {
            return key(
                "norm_groups",
                format!("must be at least 1 and divide base_width {}, got {}", self.base_width, self.norm_groups),
            );
        }
        if self.base_width == 0 {
            return key("base_width", "must be at least 1".into());
        }
        Ok(())
    }

    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<Resnet1d, ConfigError> {
        self.validate("model")?;
        let w = self.base_width;
        let (residual_layers, c_in) =
            stages(&self.layers, w, |c_in, c_out, stride| BasicBlock::new(c_in, c_out, stride, self, device));
        Ok(Resnet1d {
            conv1: Conv1dConfig::new(d_input, w, 7)
                .with_stride(2)
                .with_padding(PaddingConfig1d::Explicit(3, 3))
                .with_bias(false)
                .with_initializer(kaiming())
                .init(device),
            bn1: GroupNorm1d::new(w, self.norm_groups, device),
            maxpool: MaxPool1dConfig::new(3).with_stride(2).with_padding(PaddingConfig1d::Explicit(1, 1)).init(),
            residual_layers,
            fc: LinearConfig::new(c_in, d_output).init(device),
        })
    }
}

impl Classifier for Resnet1d {
    /// Args: `x` [B, L, D] (lengths are not used: inputs are fixed-length windows). Returns
    /// [B, 1, K].
    fn forward(&self, x: Tensor<3>, _lengths: Option<&[usize]>) -> Tensor<3> {
        let x = x.swap_dims(1, 2); // [B, D, L]
        let x = self.maxpool.forward(relu(self.bn1.forward(self.conv1.forward(x)))); // [B, 64, L/4]
        let mut z = x;
        for stage in &self.residual_layers {
            for block in stage {
                z = block.forward(z); // [B, W_i, L_i]
            }
        }
        let pooled = z.mean_dim(2).swap_dims(1, 2); // [B, 1, W]
        self.fc.forward(pooled) // [B, 1, K]
    }
}
