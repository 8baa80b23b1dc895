//! aframe's autoencoder (ml4gw's `ConvolutionalAutoencoder` as aframe configures it): block i
//! encodes with `Conv1d(k, stride, pad (k−1)/2, no bias)` → BatchNorm → ReLU to
//! `encode_channels[i]` channels per detector, and decodes back with the mirrored
//! `ConvTranspose1d` → BatchNorm → ReLU (no activation after the last decoder); decoded lengths
//! are centre-cropped or zero-padded to the encoder's input (ml4gw's `match_size`). Every
//! convolution has `groups` = the number of detectors, so a detector's reconstruction never
//! sees another detector. The skip connection between mirrored blocks concatenates decoded
//! and encoded channels *per detector*: aframe's `ConcatSkipConnect()` concatenates across
//! all channels, which lets the next grouped convolution mix detectors; the parameter shapes
//! are the same. Field names are ml4gw's state_dict keys (`blocks.{i}.encode_layer`, …).

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig, ConvTranspose1d, ConvTranspose1dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check};
use crate::model::{Classifier, ClassifierOptions};

/// How a decoded block meets the state its mirrored encoder produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SkipConnection {
    /// Concatenate, per detector (aframe's choice, without its cross-detector leak).
    #[default]
    Concat,
    /// Add.
    Add,
    /// None: a plain encoder-decoder (each decoded length is still matched to its mirrored
    /// encoder's input, where ml4gw matches only the final output).
    None,
}

impl SkipConnection {
    /// Channels entering a decoder whose mirrored encoder put out `c` channels.
    fn decoder_in(self, c: usize) -> usize {
        if self == Self::Concat { 2 * c } else { c }
    }
}

/// Options of `gw_autoencoder` (aframe's `autoencoder.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GwAutoencoderConfig {
    /// Channels per detector after each encoder block.
    pub encode_channels: Vec<usize>,
    /// Kernel size of every convolution (odd, so padding (k−1)/2 is symmetric).
    pub kernel_size: usize,
    /// Stride of every convolution.
    pub stride: usize,
    /// Skip connection between mirrored blocks: `concat`, `add` or `none`.
    pub skip_connection: SkipConnection,
}

impl Default for GwAutoencoderConfig {
    fn default() -> Self {
        Self {
            encode_channels: vec![16, 64, 256, 1024],
            kernel_size: 7,
            stride: 2,
            skip_connection: SkipConnection::Concat,
        }
    }
}

/// One encoder/decoder pair.
#[derive(Module, Debug)]
pub struct ConvBlock {
    /// Grouped convolution down to the block's channels (carries the stride).
    pub encode_layer: Conv1d,
    /// Its norm.
    pub encode_norm: BatchNorm,
    /// Grouped transposed convolution back to the block's input channels.
    pub decode_layer: ConvTranspose1d,
    /// Its norm.
    pub decode_norm: BatchNorm,
    /// Whether ReLU follows the decoder (all but the outermost block).
    #[module(skip)]
    pub decode_relu: bool,
}

impl ConvBlock {
    /// `c_in` → `c_out` channels in `groups` groups; the decoder takes `dec_in` channels.
    fn new(
        c_in: usize,
        c_out: usize,
        dec_in: usize,
        groups: usize,
        cfg: &GwAutoencoderConfig,
        device: &Device,
    ) -> Self {
        let (k, s) = (cfg.kernel_size, cfg.stride);
        let p = (k - 1) / 2;
        Self {
            encode_layer: Conv1dConfig::new(c_in, c_out, k)
                .with_stride(s)
                .with_padding(PaddingConfig1d::Explicit(p, p))
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            encode_norm: BatchNormConfig::new(c_out).init(device),
            decode_layer: ConvTranspose1dConfig::new([dec_in, c_in], k)
                .with_stride(s)
                .with_padding(p)
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            decode_norm: BatchNormConfig::new(c_in).init(device),
            decode_relu: true,
        }
    }
}

/// The whole autoencoder.
#[derive(Module, Debug)]
pub struct GwAutoencoder {
    /// Blocks from the outermost (input side) to the bottleneck.
    pub blocks: Vec<ConvBlock>,
    /// The skip connection.
    #[module(skip)]
    pub skip: SkipConnection,
    /// Detectors (convolution groups).
    #[module(skip)]
    pub groups: usize,
}

impl ClassifierOptions for GwAutoencoderConfig {
    type Model = GwAutoencoder;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let key = |k: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{k}"), msg });
        if self.encode_channels.is_empty() || self.encode_channels.len() > 16 {
            return key("encode_channels", format!("must list 1 to 16 blocks, got {}", self.encode_channels.len()));
        }
        if let Some(c) = self.encode_channels.iter().find(|&&c| c == 0 || c > 4096) {
            return key("encode_channels", format!("every entry must be in 1..=4096, got {c}"));
        }
        check::count(&format!("{path}.kernel_size"), self.kernel_size, 255)?;
        if self.kernel_size.is_multiple_of(2) {
            return key(
                "kernel_size",
                format!("must be odd (padding (k−1)/2 on both sides), got {}", self.kernel_size),
            );
        }
        check::count(&format!("{path}.stride"), self.stride, self.kernel_size)?;
        Ok(())
    }

    fn per_step(&self) -> bool {
        true
    }

    fn per_channel(&self) -> bool {
        true
    }

    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<GwAutoencoder, ConfigError> {
        self.validate("model.options")?;
        if d_output != d_input {
            let msg = format!(
                "`gw_autoencoder` reconstructs its {d_input} input channels, but the task wants {d_output} outputs \
                 (use `task=autoencoder`)"
            );
            return Err(ConfigError::Key { path: "model._name_".into(), msg });
        }
        let g = d_input;
        let n = self.encode_channels.len();
        let mut c_in = g;
        let blocks = self
            .encode_channels
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let c_out = c * g;
                // The bottleneck's decoder gets the encoding alone; the others also a skip.
                let dec_in = if i + 1 < n { self.skip_connection.decoder_in(c_out) } else { c_out };
                let mut block = ConvBlock::new(c_in, c_out, dec_in, g, self, device);
                block.decode_relu = i > 0;
                c_in = c_out;
                block
            })
            .collect();
        Ok(GwAutoencoder { blocks, skip: self.skip_connection, groups: g })
    }
}

/// Centre-crops or zero-pads the time axis of `x` [B, C, L'] to `len` (ml4gw's `match_size`:
/// an odd difference puts the extra padded step on the right, the extra cropped one on the
/// left). Returns [B, C, len].
fn match_size(x: Tensor<3>, len: usize) -> Tensor<3> {
    let [b, c, l] = x.dims();
    if l < len {
        let left = (len - l) / 2;
        let dev = x.device();
        let z = |n| Tensor::<3>::zeros([b, c, n], &dev);
        Tensor::cat(vec![z(left), x, z(len - l - left)], 2)
    } else {
        x.narrow(2, (l - len).div_ceil(2), len)
    }
}

impl GwAutoencoder {
    /// Joins a decoded `x` and the mirrored encoder's `state` (both [B, G·c, L]) per detector.
    /// Returns [B, 2·G·c, L] (concat) or [B, G·c, L].
    fn connect(&self, x: Tensor<3>, state: Tensor<3>) -> Tensor<3> {
        let [b, c, l] = state.dims();
        let x = match_size(x, l);
        match self.skip {
            SkipConnection::Concat => {
                let g = self.groups;
                let per = |t: Tensor<3>| t.reshape([b, g, c / g, l]); // [B, G, c, L]
                Tensor::cat(vec![per(x), per(state)], 2).reshape([b, 2 * c, l]) // [B, 2Gc, L]
            }
            SkipConnection::Add => x + state,
            SkipConnection::None => x,
        }
    }

    /// Args: `x` [B, C, L] (C detectors). Returns the reconstruction [B, C, L].
    pub fn reconstruct(&self, x: Tensor<3>) -> Tensor<3> {
        let len = x.dims()[2];
        let mut states = Vec::with_capacity(self.blocks.len());
        let mut z = x;
        for block in &self.blocks {
            z = relu(block.encode_norm.forward(block.encode_layer.forward(z))); // [B, G·c_i, L_i]
            states.push(z.clone());
        }
        // The bottleneck is decoded directly; every other state meets its mirrored decoder.
        states.pop();
        for block in self.blocks.iter().rev() {
            z = block.decode_norm.forward(block.decode_layer.forward(z)); // [B, G·c_{i−1}, ≈L_{i−1}]
            if block.decode_relu {
                z = relu(z);
            }
            if let Some(state) = states.pop() {
                z = self.connect(z, state); // [B, (2)·G·c_{i−1}, L_{i−1}]
            }
        }
        match_size(z, len) // [B, C, L]
    }
}

impl Classifier for GwAutoencoder {
    /// Args: `x` [B, L, C] (lengths are not used: inputs are fixed-length windows). Returns the
    /// reconstruction [B, L, C].
    fn forward(&self, x: Tensor<3>, _lengths: Option<&[usize]>) -> Tensor<3> {
        self.reconstruct(x.swap_dims(1, 2)).swap_dims(1, 2)
    }
}
