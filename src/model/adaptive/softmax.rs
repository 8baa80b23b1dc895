//! `ProjectedAdaptiveLogSoftmax`: log-probabilities over the whole vocabulary from a head
//! softmax (the head cluster's tokens plus one logit per tail cluster) and one softmax per
//! tail cluster: `log p(w) = log p_head(cluster of w) + log p_cluster(w)` for tail tokens.
//! Parameter names are the reference's: `cluster_weight` [C, d_0], `cluster_bias` [C],
//! `out_layers_weights.{i}` (untied only), `out_layers_biases.{i}`, `out_projs.{i}` (untied
//! projections only; tied ones are the embedding's `emb_projs.{i}`).

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Distribution, Tensor};

use super::{AdaptiveConfig, AdaptiveEmbedding, Clusters, init_std};

/// The adaptive softmax: hidden states to log-probabilities.
#[derive(Module, Debug)]
pub struct ProjectedAdaptiveLogSoftmax {
    /// Head rows of the tail clusters [C, d_0] (C = number of cutoffs; none without cutoffs).
    pub cluster_weight: Option<Param<Tensor<2>>>,
    /// Head biases of the tail clusters [C].
    pub cluster_bias: Option<Param<Tensor<1>>>,
    /// Output tables [n_i, d_i] when not tied to the embedding (one [V, H] when `div_val` is 1).
    pub out_layers_weights: Vec<Param<Tensor<2>>>,
    /// Output biases [n_i] (one [V] when `div_val` is 1).
    pub out_layers_biases: Vec<Param<Tensor<1>>>,
    /// Own projections [H, d_i] of the clusters whose projection is not the embedding's.
    pub out_projs: Vec<Option<Param<Tensor<2>>>>,
    /// Dropout between projection and output table.
    pub drop: Dropout,
    /// The cluster layout.
    #[module(skip)]
    pub clusters: Clusters,
    /// Whether the output tables are the embedding's.
    #[module(skip)]
    pub tie_weights: bool,
}

impl ProjectedAdaptiveLogSoftmax {
    /// Builds the softmax for `clusters`. As the reference: cluster rows and own projections
    /// start at zero, biases uniform in ±`bias_scale / sqrt(H)`. Untied output tables start as
    /// the embedding's tables (the reference's zeros would give a zero table behind a zero
    /// projection, which no gradient moves).
    pub fn new(cfg: &AdaptiveConfig, clusters: Clusters, device: &Device) -> Self {
        let (h, n, c) = (clusters.d_model, clusters.len(), clusters.len() - 1);
        let bound = cfg.bias_scale / (h as f64).sqrt();
        let bias = |k: usize| match bound > 0.0 {
            true => Param::from_tensor(Tensor::random([k], Distribution::Uniform(-bound, bound), device)),
            false => Param::from_tensor(Tensor::zeros([k], device)),
        };
        let table = |k: usize, d: usize| {
            let std = init_std(cfg.init_scale, d, 0.02);
            Param::from_tensor(Tensor::random([k, d], Distribution::Normal(0.0, std), device))
        };
        let zeros = |k: usize, d: usize| Param::from_tensor(Tensor::zeros([k, d], device));
        let one_table = clusters.div_val == 1;
        let (out_layers_weights, out_layers_biases, out_projs) = if one_table {
            let w = if cfg.tie_weights { vec![] } else { vec![table(clusters.vocab(), h)] };
            (w, vec![bias(clusters.vocab())], vec![None])
        } else {
            let w = if cfg.tie_weights {
                vec![]
            } else {
                (0..n).map(|i| table(clusters.size(i), clusters.widths[i])).collect()
            };
            let projs =
                (0..n).map(|i| (i == 0 || !clusters.tie_projs[i - 1]).then(|| zeros(h, clusters.widths[i]))).collect();
            (w, (0..n).map(|i| bias(clusters.size(i))).collect(), projs)
        };
        Self {
            cluster_weight: (c > 0).then(|| zeros(c, clusters.widths[0])),
            cluster_bias: (c > 0).then(|| Param::from_tensor(Tensor::zeros([c], device))),
            out_layers_weights,
            out_layers_biases,
            out_projs,
            drop: DropoutConfig::new(cfg.dropsoft).init(),
            clusters,
            tie_weights: cfg.tie_weights,
        }
    }

    /// Cluster `i`'s output table [n_i, d_i] and bias [n_i].
    fn weight_bias(&self, i: usize, emb: &AdaptiveEmbedding) -> (Tensor<2>, Tensor<1>) {
        let (lo, n) = (self.clusters.ends[i], self.clusters.size(i));
        let one_table = self.out_layers_biases.len() == 1;
        let bias =
            if one_table { self.out_layers_biases[0].val().narrow(0, lo, n) } else { self.out_layers_biases[i].val() };
        let weight = match (self.tie_weights, one_table) {
            (true, _) => emb.table(i),
            (false, true) => self.out_layers_weights[0].val().narrow(0, lo, n),
            (false, false) => self.out_layers_weights[i].val(),
        };
        (weight, bias)
    }

    /// Cluster `i`'s projection [H, d_i]: its own, the embedding's when tied, or none.
    fn proj(&self, i: usize, emb: &AdaptiveEmbedding) -> Option<Tensor<2>> {
        match self.out_projs.get(i) {
            Some(Some(p)) => Some(p.val()),
            _ if i > 0 && self.clusters.tie_projs[i - 1] => emb.proj(i),
            _ => None,
        }
    }

    /// Logits of one cluster. Args: `hidden` [R, H]; `weight` [n, d]; `bias` [n]. Returns [R, n].
    fn logits(&self, hidden: Tensor<2>, weight: Tensor<2>, bias: Tensor<1>, proj: Option<Tensor<2>>) -> Tensor<2> {
        let x = match proj {
            Some(p) => self.drop.forward(hidden.matmul(p)), // [R, d]
            None => hidden,
        };
        x.matmul(weight.transpose()) + bias.unsqueeze::<2>() // [R, n]
    }

    /// Log-probabilities of every token. Args: `hidden` [R, H]; `emb` the model's adaptive
    /// embedding (the tied tables and projections). Returns [R, V], each row's exp summing to 1.
    pub fn log_probs(&self, hidden: Tensor<2>, emb: &AdaptiveEmbedding) -> Tensor<2> {
        let (w0, b0) = self.weight_bias(0, emb);
        let (head_w, head_b) = match (&self.cluster_weight, &self.cluster_bias) {
            (Some(cw), Some(cb)) => (Tensor::cat(vec![w0, cw.val()], 0), Tensor::cat(vec![b0, cb.val()], 0)),
            _ => (w0, b0),
        };
        let head = log_softmax(self.logits(hidden.clone(), head_w, head_b, self.proj(0, emb)), 1); // [R, n_0 + C]
        let (n0, c) = (self.clusters.size(0), self.clusters.len() - 1);
        let mut parts = vec![head.clone().narrow(1, 0, n0)]; // [R, n_0]
        for i in 1..=c {
            let (w, b) = self.weight_bias(i, emb);
            let tail = log_softmax(self.logits(hidden.clone(), w, b, self.proj(i, emb)), 1); // [R, n_i]
            // The reference reads cluster i's head log-probability at column -i: the cluster
            // rows are in reverse order.
            parts.push(tail + head.clone().narrow(1, n0 + c - i, 1)); // [R, n_i]
        }
        Tensor::cat(parts, 1) // [R, V]
    }
}
