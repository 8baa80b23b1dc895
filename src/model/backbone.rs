//! `SequenceModel`: encoder → residual blocks → (final norm) → pooling → decoder.

use crate::ops::gelu;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::LayerConfig;
use super::LayerStepper;
use super::adaptive::{AdaptiveConfig, AdaptiveEmbedding, ProjectedAdaptiveLogSoftmax};
use super::block::{Norm, ResidualBlock};
use super::ssm::StepError;
use super::{ModelConfig, PoolKind};
use crate::config::ConfigError;

/// The backbone used by every task.
#[derive(Module, Debug)]
pub struct SequenceModel {
    /// Per-step input projection D → H (real-valued inputs).
    pub encoder: Option<Linear>,
    /// Token embedding V → H (token inputs; id 0 is padding).
    pub embedding: Option<Embedding>,
    /// Adaptive input embedding V → H (`task: adaptivelm`), the reference's `encoder.0`.
    pub adaptive_embedding: Option<AdaptiveEmbedding>,
    /// Residual blocks.
    pub layers: Vec<ResidualBlock>,
    /// Final norm (prenorm models only, as in state-spaces/s4).
    pub norm: Option<Norm>,
    /// Dual-encoder head 4H → H over `[x1, x2, x1·x2, x1 - x2]` (pairs of documents only).
    pub retrieval: Option<Linear>,
    /// Output projection H → K (none with the adaptive softmax).
    pub decoder: Option<Linear>,
    /// Adaptive softmax H → log-probabilities over V (`task: adaptivelm`), the reference's `loss`.
    pub adaptive_softmax: Option<ProjectedAdaptiveLogSoftmax>,
    /// Sequence reduction.
    #[module(skip)]
    pub pool: PoolKind,
}

impl SequenceModel {
    /// Builds the model for `d_input` real features per step and `d_output` outputs.
    pub fn new(cfg: &ModelConfig, d_input: usize, d_output: usize, device: &Device) -> Result<Self, ConfigError> {
        Self::build(cfg, Some(d_input), None, d_output, device)
    }

    /// Builds the model for token inputs from a vocabulary of `vocab` ids.
    pub fn for_tokens(cfg: &ModelConfig, vocab: usize, d_output: usize, device: &Device) -> Result<Self, ConfigError> {
        Self::build(cfg, None, Some(vocab), d_output, device)
    }

    /// Builds a language model for a vocabulary of `vocab` ids with the adaptive input embedding
    /// and softmax of `adaptive` (options under `path`); outputs are log-probabilities [.., V].
    pub fn for_adaptive_tokens(
        cfg: &ModelConfig,
        adaptive: &AdaptiveConfig,
        path: &str,
        vocab: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let clusters = adaptive.clusters(path, vocab, cfg.d_model)?;
        let mut m = Self::build(cfg, None, None, 1, device)?;
        // The adaptive pieces take the place of the embedding and the decoder.
        m.decoder = None;
        m.adaptive_embedding = Some(AdaptiveEmbedding::new(adaptive, clusters.clone(), device));
        m.adaptive_softmax = Some(ProjectedAdaptiveLogSoftmax::new(adaptive, clusters, device));
        Ok(m)
    }

    /// Builds a dual encoder for pairs of token documents (LRA Retrieval): both documents go
    /// through the same backbone, and the head sees `[x1, x2, x1·x2, x1 - x2]`.
    pub fn for_token_pairs(
        cfg: &ModelConfig,
        vocab: usize,
        d_output: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let mut m = Self::build(cfg, None, Some(vocab), d_output, device)?;
        m.retrieval = Some(LinearConfig::new(4 * cfg.d_model, cfg.d_model).init(device));
        Ok(m)
    }

    fn build(
        cfg: &ModelConfig,
        d_input: Option<usize>,
        vocab: Option<usize>,
        d_output: usize,
        device: &Device,
    ) -> Result<Self, ConfigError> {
        let layer = LayerConfig::from_named(&cfg.layer, "model.layer")?;
        layer.validate("model.layer")?;
        cfg.validate()?;
        // Before any allocation: one sequence of the kernel length the layer was given.
        let l = cfg.layer.options.get("l_max").and_then(serde_yaml::Value::as_u64).unwrap_or(1) as usize;
        super::memory::check(cfg, d_input.or(vocab).unwrap_or(1), d_output, l, 1)?;
        let h = cfg.d_model;
        layer.check_width("model.layer", h)?;
        let layers = (0..cfg.n_layers)
            .map(|_| ResidualBlock::new(layer.init(h, device), h, cfg.norm, cfg.prenorm, cfg.ff, cfg.dropout, device))
            .collect();
        Ok(Self {
            encoder: d_input.map(|d| LinearConfig::new(d, h).init(device)),
            embedding: vocab.map(|v| EmbeddingConfig::new(v, h).init(device)),
            adaptive_embedding: None,
            layers,
            norm: if cfg.prenorm { Norm::new(cfg.norm, h, device) } else { None },
            retrieval: None,
            decoder: Some(LinearConfig::new(h, d_output).init(device)),
            adaptive_softmax: None,
            pool: layer.resolve_pool(cfg.pool),
        })
    }

    /// Sets the sampling-rate factor of every layer (see [`super::Layer::set_rate`]).
    pub fn with_rate(mut self, rate: f64) -> Self {
        for block in &mut self.layers {
            block.layer.set_rate(rate);
        }
        self
    }

    /// Args: `x` [B, L, D] (token ids in D = 1 for token models); `lengths` valid steps per
    /// sample (None: all L). Returns [B, 1, K] after pooling, or [B, L, K] with `pool: none`.
    pub fn forward(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Tensor<3> {
        if let Some(head) = &self.retrieval {
            // Pairs [B, L, 2] -> documents [2B, L, 1] (b0 d1, b0 d2, b1 d1, …, as `lengths`).
            let [b, l, _] = x.dims();
            let docs = x.swap_dims(1, 2).reshape([2 * b, l, 1]);
            let z = self.encode(docs, lengths).reshape([b, 2, self.width()]); // [B, 2, H]
            let (x1, x2) = (z.clone().narrow(1, 0, 1), z.narrow(1, 1, 1)); // [B, 1, H]
            let feats = Tensor::cat(vec![x1.clone(), x2.clone(), x1.clone() * x2.clone(), x1 - x2], 2); // [B, 1, 4H]
            return self.decode(gelu(head.forward(feats)));
        }
        let z = self.encode(x, lengths);
        self.decode(z)
    }

    /// Decoder or adaptive softmax: [B, L, H] -> [B, L, K] (log-probabilities for the latter).
    fn decode(&self, z: Tensor<3>) -> Tensor<3> {
        match (&self.decoder, &self.adaptive_softmax, &self.adaptive_embedding) {
            (Some(dec), _, _) => dec.forward(z),
            (None, Some(soft), Some(emb)) => {
                let [b, l, h] = z.dims();
                let logp = soft.log_probs(z.reshape([b * l, h]), emb); // [B·L, V]
                let v = logp.dims()[1];
                logp.reshape([b, l, v])
            }
            _ => unreachable!("built with a decoder or an adaptive embedding and softmax"),
        }
    }

    /// Model width H.
    fn width(&self) -> usize {
        match (&self.decoder, &self.adaptive_softmax) {
            (Some(dec), _) => dec.weight.dims()[0],
            (None, Some(soft)) => soft.clusters.d_model,
            (None, None) => unreachable!("built with a decoder or an adaptive softmax"),
        }
    }

    /// Encoder or embedding: [B, L, D] -> [B, L, H].
    fn embed(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, l, _] = x.dims();
        match (&self.encoder, &self.embedding, &self.adaptive_embedding) {
            (Some(enc), _, _) => enc.forward(x),
            (None, Some(emb), _) => emb.forward(x.reshape([b, l]).int()),
            (None, None, Some(emb)) => emb.forward(x.reshape([b, l]).int()),
            (None, None, None) => unreachable!("built with an encoder or an embedding"),
        }
    }

    /// Input features per step the model takes (1 for token ids).
    fn d_input(&self) -> usize {
        self.encoder.as_ref().map_or(1, |enc| enc.weight.dims()[0])
    }

    /// Prepares step mode for `batch` sequences from the zero state, each layer reproducing
    /// its conv mode over `l` steps (see [`super::Layer::stepper`]). Errors for a dual encoder
    /// and for layers with no causal recurrence.
    pub fn stepper(&self, batch: usize, l: usize) -> Result<ModelStepper, StepError> {
        if self.retrieval.is_some() {
            return Err(StepError::NoRecurrentForm {
                layer: "dual-encoder model",
                why: "its head compares two whole documents",
            });
        }
        let layers = self.layers.iter().map(|b| b.layer.stepper(batch, l)).collect::<Result<_, _>>()?;
        Ok(ModelStepper { layers })
    }

    /// One step of the whole model: encoder, blocks, final norm and decoder on the next time
    /// step, i.e. this step's row of [`SequenceModel::forward`] with `pool: none` (with
    /// `pool: last`, the last step's output is the pooled one). Inference only: in training
    /// mode dropout is active and BatchNorm would see one step's batch statistics.
    ///
    /// Args: `x` [B, D] (token ids in D = 1). Returns [B, K].
    pub fn step(&self, stepper: &mut ModelStepper, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let [b, d] = x.dims();
        let shape_err = |what, expected: Vec<usize>, got: Vec<usize>| StepError::Shape { what, expected, got };
        if d != self.d_input() {
            return Err(shape_err("model step input [B, D]", vec![b, self.d_input()], vec![b, d]));
        }
        if stepper.layers.len() != self.layers.len() {
            return Err(shape_err("model stepper layers", vec![self.layers.len()], vec![stepper.layers.len()]));
        }
        let h = self.width();
        let mut z = self.embed(x.reshape([b, 1, d])).reshape([b, h]);
        for (block, s) in self.layers.iter().zip(&mut stepper.layers) {
            z = block.step(s, z)?;
        }
        let mut z = z.reshape([b, 1, h]);
        if let Some(n) = &self.norm {
            z = n.forward(z);
        }
        let out = self.decode(z); // [B, 1, K]
        let k = out.dims()[2];
        Ok(out.reshape([b, k]))
    }

    /// A prompt in conv mode, then step mode from where it ends (generation): the outputs of
    /// the prompt's last step and a stepper holding every layer's state. Layers without conv-mode
    /// state forwarding step through the prompt instead. `l` is the length the steppers
    /// reproduce (the training length).
    ///
    /// Args: `x` [B, L, D]. Returns ([B, K], the stepper).
    pub fn prefill(&self, x: Tensor<3>, l: usize) -> Result<(Tensor<2>, ModelStepper), StepError> {
        let [b, len, d] = x.dims();
        if len == 0 {
            return Err(StepError::ZeroLength);
        }
        match self.prefill_conv(x.clone(), l) {
            Ok(done) => Ok(done),
            Err(StepError::NoRecurrentForm { .. }) => {
                let mut stepper = self.stepper(b, l)?;
                let mut last = None;
                for t in 0..len {
                    last = Some(self.step(&mut stepper, x.clone().narrow(1, t, 1).reshape([b, d]))?);
                }
                Ok((last.expect("a step"), stepper))
            }
            Err(e) => Err(e),
        }
    }

    /// [`SequenceModel::prefill`] by conv-mode state forwarding, block by block.
    fn prefill_conv(&self, x: Tensor<3>, l: usize) -> Result<(Tensor<2>, ModelStepper), StepError> {
        let [b, len, _] = x.dims();
        let mut z = self.embed(x); // [B, L, H]
        let mut layers = Vec::with_capacity(self.layers.len());
        for block in &self.layers {
            let (y, state) = block.forward_state(z)?;
            let mut s = block.layer.stepper(b, l)?;
            block.layer.set_state(&mut s, &state)?;
            layers.push(s);
            z = y;
        }
        let mut last = z.narrow(1, len - 1, 1); // [B, 1, H]
        if let Some(n) = &self.norm {
            last = n.forward(last);
        }
        let out = self.decode(last); // [B, 1, K]
        let k = out.dims()[2];
        Ok((out.reshape([b, k]), ModelStepper { layers }))
    }

    /// Encoder, blocks, final norm and pooling: [B, L, D] -> [B, 1, H] (or [B, L, H]).
    fn encode(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Tensor<3> {
        let mut z = self.embed(x); // [B, L, H]
        for block in &self.layers {
            z = block.forward(z);
        }
        if let Some(n) = &self.norm {
            z = n.forward(z);
        }
        pool(z, self.pool, lengths)
    }
}

/// Step mode of a [`SequenceModel`]: one layer stepper per residual block.
#[derive(Debug, Clone)]
pub struct ModelStepper {
    /// The blocks' steppers, in order.
    pub layers: Vec<LayerStepper>,
}

/// Reduces [B, L, H] to [B, 1, H] (mean over valid steps, or the last valid step).
pub fn pool(z: Tensor<3>, kind: PoolKind, lengths: Option<&[usize]>) -> Tensor<3> {
    let [b, l, h] = z.dims();
    match (kind, lengths) {
        (PoolKind::None, _) => z,
        // `auto` is resolved when the model is built; unresolved, it is the mean.
        (PoolKind::Mean | PoolKind::Auto, None) => z.mean_dim(1),
        (PoolKind::Last, None) => z.narrow(1, l - 1, 1),
        (kind, Some(lens)) => {
            // Weights over time: 1/len on valid steps (mean) or 1 on the last valid step.
            let mut w = vec![0f32; b * l];
            for (i, &n) in lens.iter().enumerate() {
                let n = n.clamp(1, l);
                match kind {
                    PoolKind::Mean | PoolKind::Auto => w[i * l..i * l + n].fill(1.0 / n as f32),
                    _ => w[i * l + n - 1] = 1.0,
                }
            }
            let w = Tensor::<1>::from_floats(w.as_slice(), &z.device()).reshape([b, l, 1]);
            (z * w).sum_dim(1).reshape([b, 1, h])
        }
    }
}
