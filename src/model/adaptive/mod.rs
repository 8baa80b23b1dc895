//! Adaptive input embeddings and the adaptive softmax (Baevski & Auli 2019; Grave et al. 2017),
//! as state-spaces/s4's `adaptivelm` task builds them for WikiText-103: the vocabulary, sorted
//! by frequency, is cut into a head and tail clusters at `cutoffs`; cluster `i` gets width
//! `d_model / div_val^i`, projected to `d_model`. The softmax's weights and projections may be
//! the embedding's own (`tie_weights`, `tie_projs`).

pub mod embedding;
pub mod softmax;

pub use embedding::AdaptiveEmbedding;
pub use softmax::ProjectedAdaptiveLogSoftmax;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check, join_path};

/// Whether each tail cluster's softmax projection is the embedding's (one flag or one per cutoff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TieProjs {
    /// The same flag for every tail cluster.
    All(bool),
    /// One flag per cutoff (per tail cluster).
    Each(Vec<bool>),
}

/// Options of the adaptive embedding and softmax (the reference's `task` keys of `adaptivelm`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// Width divisor per cluster: cluster `i` has width `d_model / div_val^i` (1: one width,
    /// one embedding table).
    #[serde(default = "one")]
    pub div_val: usize,
    /// Token ids where the head and each tail cluster end (ascending, below the vocabulary size).
    #[serde(default = "wt103_cutoffs")]
    pub cutoffs: Vec<usize>,
    /// The softmax reads the embedding's tables as its output weights.
    #[serde(default = "yes")]
    pub tie_weights: bool,
    /// The softmax reads the embedding's projection of each tail cluster (flags past the
    /// last cutoff are ignored).
    #[serde(default = "tie_all")]
    pub tie_projs: TieProjs,
    /// Init std of tables and projections is `init_scale / sqrt(width)` (null: 0.02 and 0.01).
    #[serde(default = "some_one")]
    pub init_scale: Option<f64>,
    /// Softmax biases start uniform in ±`bias_scale / sqrt(d_model)`.
    #[serde(default)]
    pub bias_scale: f64,
    /// Dropout on the embedding vectors before their projection.
    #[serde(default)]
    pub dropemb: f64,
    /// Dropout between the softmax's projection and its output weights.
    #[serde(default)]
    pub dropsoft: f64,
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn some_one() -> Option<f64> {
    Some(1.0)
}
fn tie_all() -> TieProjs {
    TieProjs::All(true)
}
fn wt103_cutoffs() -> Vec<usize> {
    vec![19997, 39997, 199997]
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            div_val: one(),
            cutoffs: wt103_cutoffs(),
            tie_weights: true,
            tie_projs: tie_all(),
            init_scale: some_one(),
            bias_scale: 0.0,
            dropemb: 0.0,
            dropsoft: 0.0,
        }
    }
}

/// The largest `div_val` accepted.
pub const MAX_DIV_VAL: usize = 1 << 10;

impl AdaptiveConfig {
    /// Checks the options that need no sizes, naming `{path}.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let at = |k: &str| join_path(path, k);
        check::count(&at("div_val"), self.div_val, MAX_DIV_VAL)?;
        if let Some(w) = self.cutoffs.windows(2).find(|w| w[0] >= w[1]) {
            let msg = format!("must be strictly ascending, got {} then {}", w[0], w[1]);
            return Err(ConfigError::Key { path: at("cutoffs"), msg });
        }
        if self.cutoffs.first() == Some(&0) {
            return Err(ConfigError::Key {
                path: at("cutoffs"),
                msg: "the head cluster needs at least one token".into(),
            });
        }
        // As the reference, flags past the last cutoff are not read.
        if let TieProjs::Each(v) = &self.tie_projs
            && v.len() < self.cutoffs.len()
        {
            let msg = format!("needs a flag per cutoff ({}), got {}", self.cutoffs.len(), v.len());
            return Err(ConfigError::Key { path: at("tie_projs"), msg });
        }
        if let Some(s) = self.init_scale {
            check::positive(&at("init_scale"), s)?;
        }
        check::non_negative(&at("bias_scale"), self.bias_scale)?;
        check::fraction(&at("dropemb"), self.dropemb)?;
        check::fraction(&at("dropsoft"), self.dropsoft)
    }

    /// The clusters for a vocabulary of `vocab` tokens and width `d_model`, or why they do not
    /// fit (a cutoff at or past the vocabulary, a cluster narrower than one feature).
    pub fn clusters(&self, path: &str, vocab: usize, d_model: usize) -> Result<Clusters, ConfigError> {
        self.validate(path)?;
        if let Some(&c) = self.cutoffs.last().filter(|&&c| c >= vocab) {
            let msg = format!("cutoff {c} is not below the vocabulary size {vocab}");
            return Err(ConfigError::Key { path: join_path(path, "cutoffs"), msg });
        }
        let n = self.cutoffs.len() + 1;
        let mut widths = Vec::with_capacity(n);
        let mut div = 1usize;
        for i in 0..n {
            let w = if self.div_val == 1 { d_model } else { d_model / div };
            if w == 0 {
                let msg = format!("cluster {i} would have width d_model / div_val^{i} = {d_model} / {div} = 0");
                return Err(ConfigError::Key { path: join_path(path, "div_val"), msg });
            }
            widths.push(w);
            div = div.saturating_mul(self.div_val);
        }
        let mut ends = vec![0];
        ends.extend(&self.cutoffs);
        ends.push(vocab);
        let tie_projs = match &self.tie_projs {
            TieProjs::All(t) => vec![*t; n - 1],
            TieProjs::Each(v) => v[..n - 1].to_vec(),
        };
        Ok(Clusters { ends, widths, d_model, div_val: self.div_val, tie_projs })
    }
}

/// The cluster layout both pieces share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clusters {
    /// Token boundaries: cluster `i` holds ids `ends[i]..ends[i + 1]` (`ends[0] = 0`, last = vocab).
    pub ends: Vec<usize>,
    /// Width of cluster `i`'s table.
    pub widths: Vec<usize>,
    /// Width H of the model (the projections' output).
    pub d_model: usize,
    /// `div_val` (1: one table for the whole vocabulary, no projections).
    pub div_val: usize,
    /// Whether tail cluster `i + 1`'s softmax projection is the embedding's.
    pub tie_projs: Vec<bool>,
}

impl Clusters {
    /// Number of clusters (head included).
    pub fn len(&self) -> usize {
        self.widths.len()
    }

    /// Never: the head always exists.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Tokens of cluster `i`.
    pub fn size(&self, i: usize) -> usize {
        self.ends[i + 1] - self.ends[i]
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        *self.ends.last().expect("at least the head")
    }
}

/// Normal init std of a table or projection of width `d`: `init_scale / sqrt(d)`, or
/// `default` when `init_scale` is null (the reference's Transformer-XL init).
fn init_std(init_scale: Option<f64>, d: usize, default: f64) -> f64 {
    init_scale.map_or(default, |s| s / (d as f64).sqrt())
}
