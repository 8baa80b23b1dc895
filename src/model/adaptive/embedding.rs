//! `AdaptiveEmbedding`: one table per frequency cluster, of width `d_model / div_val^i`, each
//! projected to `d_model`, scaled by `sqrt(d_model)` (state-spaces/s4's adaptive input).
//! Parameter names are the reference's: `emb_layers.{i}.weight` [n_i, d_i], `emb_projs.{i}`
//! [H, d_i] (`div_val: 1` has one table and no projection).

use burn::module::{Initializer, Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};

use super::{AdaptiveConfig, Clusters, init_std};

/// Adaptive input embedding of token ids.
#[derive(Module, Debug)]
pub struct AdaptiveEmbedding {
    /// Cluster tables: `emb_layers.{i}.weight` [n_i, d_i] (one [V, H] table when `div_val` is 1).
    pub emb_layers: Vec<Embedding>,
    /// Projections d_i → H, stored [H, d_i] as `F.linear` weights (none when `div_val` is 1).
    pub emb_projs: Vec<Param<Tensor<2>>>,
    /// Dropout on the table vectors before the projection.
    pub drop: Dropout,
    /// The cluster layout.
    #[module(skip)]
    pub clusters: Clusters,
}

impl AdaptiveEmbedding {
    /// Builds the tables and projections of `clusters` (normal init, std `init_scale / sqrt(width)`).
    pub fn new(cfg: &AdaptiveConfig, clusters: Clusters, device: &Device) -> Self {
        let h = clusters.d_model;
        let table = |n: usize, d: usize| {
            let std = init_std(cfg.init_scale, d, 0.02);
            EmbeddingConfig::new(n, d).with_initializer(Initializer::Normal { mean: 0.0, std }).init(device)
        };
        let proj = |d: usize| {
            let std = init_std(cfg.init_scale, h, 0.01);
            Param::from_tensor(Tensor::random([h, d], Distribution::Normal(0.0, std), device))
        };
        let (emb_layers, emb_projs) = if clusters.div_val == 1 {
            (vec![table(clusters.vocab(), h)], vec![])
        } else {
            let n = clusters.len();
            let tables = (0..n).map(|i| table(clusters.size(i), clusters.widths[i])).collect();
            (tables, clusters.widths.iter().map(|&d| proj(d)).collect())
        };
        Self { emb_layers, emb_projs, drop: DropoutConfig::new(cfg.dropemb).init(), clusters }
    }

    /// Args: `ids` [B, L] token ids below the vocabulary size. Returns [B, L, H].
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let h = self.clusters.d_model;
        let scale = (h as f64).sqrt();
        if self.emb_projs.is_empty() {
            return self.drop.forward(self.emb_layers[0].forward(ids)) * scale; // [B, L, H]
        }
        // Every cluster looks up every token (ids clamped into its range) and the rows outside
        // the cluster are masked out: no gather/scatter, and masked rows get no gradient.
        let mut out: Option<Tensor<3>> = None;
        for (i, (table, proj)) in self.emb_layers.iter().zip(&self.emb_projs).enumerate() {
            let (lo, n) = (self.clusters.ends[i] as i64, self.clusters.size(i) as i64);
            let local = ids.clone().sub_scalar(lo).clamp(0, n - 1); // [B, L]
            let inside = ids.clone().greater_equal_elem(lo).bool_and(ids.clone().lower_elem(lo + n));
            let e = self.drop.forward(table.forward(local)); // [B, L, d_i]
            let [b, l, d] = e.dims();
            let e = e.reshape([b * l, d]).matmul(proj.val().transpose()).reshape([b, l, h]); // [B, L, H]
            let e = e * inside.float().unsqueeze_dim::<3>(2); // [B, L, H]
            out = Some(match out {
                Some(acc) => acc + e,
                None => e,
            });
        }
        out.expect("at least the head cluster") * scale
    }

    /// The table that holds cluster `i`'s output weights when the softmax is tied: [n_i, d_i].
    pub fn table(&self, i: usize) -> Tensor<2> {
        if self.emb_projs.is_empty() {
            self.emb_layers[0].weight.val().narrow(0, self.clusters.ends[i], self.clusters.size(i))
        } else {
            self.emb_layers[i].weight.val()
        }
    }

    /// Cluster `i`'s projection [H, d_i], when there is one.
    pub fn proj(&self, i: usize) -> Option<Tensor<2>> {
        self.emb_projs.get(i).map(Param::val)
    }
}
