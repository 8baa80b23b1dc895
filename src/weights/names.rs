//! Where each of our parameters lives in a reference PyTorch state_dict, and how its layout
//! differs. Our paths are burn's module paths, which name enum variants
//! (`layers.0.layer.S4.kernel.inv_dt`, `layers.0.norm.Layer.gamma`); the reference keys were
//! printed by running the reference code (`scripts/torch_reference.py keys`).

use std::fmt;
use std::str::FromStr;

/// Which PyTorch model's state_dict the names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// state-spaces/s4 `example.py`'s `S4Model`: `encoder`, `s4_layers.{i}` (`S4D` of
    /// `models/s4/s4d.py`, `S4Block` of `models/s4/s4.py`, or ag1988/dss's standalone `DSS`),
    /// `norms.{i}`, `decoder`. Post-norm with LayerNorm, no final norm, no feed-forward.
    S4Example,
    /// state-spaces/s4's training script: the Lightning module around `SequenceModel`
    /// (`encoder.0`, `model.layers.{i}.layer` (+ `.layer` for `S4Block`'s `FFTConv`),
    /// `model.layers.{i}.norm.norm`, `model.norm.norm`, `decoder.0.output_transform`).
    S4Sequence,
    /// state-spaces/mamba's `MambaLMHeadModel`: `backbone.embedding`, `backbone.layers.{i}`
    /// (`.mixer` a `Mamba`, `.norm` an RMSNorm), `backbone.norm_f`, and a bias-free `lm_head`.
    /// Pre-norm, token inputs, no encoder for real-valued inputs.
    Mamba,
}

impl Layout {
    /// Every layout, for help texts.
    pub const ALL: [Layout; 3] = [Layout::S4Example, Layout::S4Sequence, Layout::Mamba];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layout::S4Example => "s4-example",
            Layout::S4Sequence => "s4-sequence",
            Layout::Mamba => "mamba",
        }
    }

    /// The reference's default `dt_transform` of S4's `inv_dt`: s4.py's `exp` for the example,
    /// `softplus` for the training script (`configs/model/layer/s4.yaml`).
    pub fn default_dt_transform(self) -> DtTransform {
        match self {
            Layout::S4Example | Layout::Mamba => DtTransform::Exp,
            Layout::S4Sequence => DtTransform::Softplus,
        }
    }

    fn encoder(self) -> Option<&'static str> {
        match self {
            Layout::S4Example => Some("encoder"),
            Layout::S4Sequence => Some("encoder.0"),
            Layout::Mamba => None,
        }
    }

    fn decoder(self) -> &'static str {
        match self {
            Layout::S4Example => "decoder",
            Layout::S4Sequence => "decoder.0.output_transform",
            Layout::Mamba => "lm_head",
        }
    }

    /// The sequence layer of block `i`.
    fn layer(self, i: &str) -> String {
        match self {
            Layout::S4Example => format!("s4_layers.{i}"),
            Layout::S4Sequence => format!("model.layers.{i}.layer"),
            Layout::Mamba => format!("backbone.layers.{i}.mixer"),
        }
    }

    /// The norm of block `i`.
    fn block_norm(self, i: &str) -> String {
        match self {
            Layout::S4Example => format!("norms.{i}"),
            Layout::S4Sequence => format!("model.layers.{i}.norm.norm"),
            Layout::Mamba => format!("backbone.layers.{i}.norm"),
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Layout::ALL.into_iter().find(|l| l.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Layout::ALL.iter().map(|l| l.name()).collect();
            format!("unknown layout `{s}`; use one of {}", names.join(", "))
        })
    }
}

/// How the reference stores S4's step size in `inv_dt` (s4.py's `dt_transform`); ours is `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtTransform {
    /// `dt = exp(inv_dt)`.
    Exp,
    /// `dt = softplus(inv_dt) = ln(1 + exp(inv_dt))`.
    Softplus,
}

impl DtTransform {
    /// Our `ln dt` from the reference's stored value.
    pub fn to_log_dt(self, v: f64) -> f64 {
        match self {
            DtTransform::Exp => v,
            // ln(softplus(v)), computed without overflow for large v.
            DtTransform::Softplus => (v.max(0.0) + (-v.abs()).exp().ln_1p()).ln(),
        }
    }

    /// The reference's stored value for our `ln dt`.
    pub fn from_log_dt(self, log_dt: f64) -> f64 {
        match self {
            DtTransform::Exp => log_dt,
            // softplus⁻¹(dt) = ln(e^dt - 1).
            DtTransform::Softplus => log_dt.exp().exp_m1().ln(),
        }
    }
}

impl FromStr for DtTransform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exp" => Ok(DtTransform::Exp),
            "softplus" => Ok(DtTransform::Softplus),
            _ => Err(format!("unknown dt transform `{s}`; use exp or softplus")),
        }
    }
}

/// How a tensor's layout differs between us and the reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Map {
    /// Same shape and values.
    Same,
    /// burn `Linear` weight [in, out] ↔ `nn.Linear` weight [out, in].
    Transpose,
    /// burn `Linear` weight [in, out] ↔ `nn.Conv1d(kernel_size=1)` weight [out, in, 1].
    Conv1,
    /// [n] ↔ [n, 1] (the bias of DSS's `TransposedLinear`).
    Column,
    /// S4's `inv_dt`: our `ln dt` ↔ the reference's `dt_transform`.
    InvDt,
    /// S4's `kernel.C` of block `block`: in `nplr` mode it holds `C̃` for a kernel length that
    /// the reference records in the buffer `l_kernel` beside it.
    S4C {
        /// Block index.
        block: usize,
    },
    /// A parameter the reference does not have because it is zero there (`lm_head` has no
    /// bias): import sets zeros, export writes nothing (and refuses nonzero values).
    Zero,
}

impl Map {
    /// The reference's shape for our shape `ours`.
    pub fn torch_shape(&self, ours: &[usize]) -> Vec<usize> {
        match (self, ours) {
            (Map::Transpose, [a, b]) => vec![*b, *a],
            (Map::Conv1, [a, b]) => vec![*b, *a, 1],
            (Map::Column, [n]) => vec![*n, 1],
            _ => ours.to_vec(),
        }
    }

    /// Converts the reference's row-major values (already checked to have `torch_shape(ours)`)
    /// to ours.
    pub fn to_ours(&self, ours: &[usize], v: &[f64], dt: DtTransform) -> Vec<f64> {
        match self {
            Map::Transpose | Map::Conv1 => transpose(v, ours[1], ours[0]),
            Map::InvDt => v.iter().map(|&x| dt.to_log_dt(x)).collect(),
            _ => v.to_vec(),
        }
    }

    /// Converts our row-major values of shape `ours` to the reference's.
    pub fn to_torch(&self, ours: &[usize], v: &[f64], dt: DtTransform) -> Vec<f64> {
        match self {
            Map::Transpose | Map::Conv1 => transpose(v, ours[0], ours[1]),
            Map::InvDt => v.iter().map(|&x| dt.from_log_dt(x)).collect(),
            _ => v.to_vec(),
        }
    }
}

/// Transposes a row-major [rows, cols] matrix.
fn transpose(v: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

/// The reference key of the buffer that records the length `C̃` of an S4 `nplr` kernel is for,
/// given the key of its `C`.
pub fn l_kernel_key(c_key: &str) -> String {
    format!("{}l_kernel", c_key.strip_suffix('C').unwrap_or(c_key))
}

/// The reference key and layout map of our parameter `path`, or `None` if the layout has no
/// counterpart (feed-forward sub-blocks, BatchNorm, the retrieval head, …).
pub fn torch_name(layout: Layout, path: &str) -> Option<(String, Map)> {
    let s: Vec<&str> = path.split('.').collect();
    let linear = |prefix: &str, p: &str| {
        let map = if p == "weight" { Map::Transpose } else { Map::Same };
        Some((format!("{prefix}.{p}"), map))
    };
    let norm = |prefix: &str, p: &str| {
        let p = match p {
            "gamma" => "weight",
            "beta" => "bias",
            _ => return None,
        };
        Some((format!("{prefix}.{p}"), Map::Same))
    };
    let mamba = layout == Layout::Mamba;
    match s.as_slice() {
        ["encoder", p @ ("weight" | "bias")] => linear(layout.encoder()?, p),
        // nn.Embedding and burn's Embedding both store [V, H].
        ["embedding", "weight"] if layout == Layout::S4Sequence => Some(("encoder.0.weight".into(), Map::Same)),
        ["embedding", "weight"] if mamba => Some(("backbone.embedding.weight".into(), Map::Same)),
        ["decoder", "bias"] if mamba => Some(("lm_head.bias".into(), Map::Zero)),
        ["decoder", p @ ("weight" | "bias")] => linear(layout.decoder(), p),
        // The adaptive pieces keep the reference's own names under its task's modules.
        ["adaptive_embedding", rest @ ..] if layout == Layout::S4Sequence => {
            Some((format!("encoder.0.{}", rest.join(".")), Map::Same))
        }
        ["adaptive_softmax", rest @ ..] if layout == Layout::S4Sequence => {
            Some((format!("loss.{}", rest.join(".")), Map::Same))
        }
        ["norm", "Layer", p] if layout == Layout::S4Sequence => norm("model.norm.norm", p),
        ["norm", "Rms", p] if mamba => norm("backbone.norm_f", p),
        ["layers", i, "norm", "Layer", p] if !mamba => norm(&layout.block_norm(i), p),
        ["layers", i, "norm", "Rms", p] if mamba => norm(&layout.block_norm(i), p),
        ["layers", i, "layer", variant, rest @ ..] => {
            let block: usize = i.parse().ok()?;
            crate::model::Layer::torch_key(variant, layout, &layout.layer(i), block, rest)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_shapes() {
        let (k, m) = torch_name(Layout::S4Example, "layers.1.layer.S4d.output_linear.weight").unwrap();
        assert_eq!((k.as_str(), m.torch_shape(&[4, 8])), ("s4_layers.1.output_linear.0.weight", vec![8, 4, 1]));
        let (k, m) = torch_name(Layout::S4Sequence, "layers.0.layer.S4.kernel.C").unwrap();
        assert_eq!((k.as_str(), m), ("model.layers.0.layer.layer.kernel.C", Map::S4C { block: 0 }));
        assert_eq!(l_kernel_key(&k), "model.layers.0.layer.layer.kernel.l_kernel");
        assert_eq!(torch_name(Layout::S4Example, "norm.Layer.gamma"), None, "the example has no final norm");
        assert_eq!(torch_name(Layout::S4Example, "layers.0.ff.linear1.weight"), None);
        assert_eq!(
            Map::Transpose.to_torch(&[2, 3], &[1., 2., 3., 4., 5., 6.], DtTransform::Exp),
            [1., 4., 2., 5., 3., 6.]
        );
    }

    #[test]
    fn adaptive_pieces_keep_the_reference_names() {
        let name = |p: &str| torch_name(Layout::S4Sequence, p).map(|(k, _)| k);
        assert_eq!(name("adaptive_embedding.emb_projs.2").as_deref(), Some("encoder.0.emb_projs.2"));
        assert_eq!(name("adaptive_softmax.cluster_weight").as_deref(), Some("loss.cluster_weight"));
        assert_eq!(torch_name(Layout::S4Example, "adaptive_softmax.cluster_bias"), None);
    }

    #[test]
    fn dt_transforms_invert() {
        for v in [-7.0, -1.0, 0.3, 2.0, 40.0] {
            let t = DtTransform::Softplus;
            assert!((t.from_log_dt(t.to_log_dt(v)) - v).abs() < 1e-9 * v.abs().max(1.0), "{v}");
        }
        assert!("tanh".parse::<DtTransform>().unwrap_err().contains("tanh"));
        assert!("s4".parse::<Layout>().unwrap_err().contains("s4-example"));
    }

    #[test]
    fn mamba_lm_head_model_names() {
        let name = |p: &str| torch_name(Layout::Mamba, p);
        let (k, m) = name("layers.2.layer.Mamba.in_proj.weight").unwrap();
        assert_eq!((k.as_str(), m.torch_shape(&[8, 32])), ("backbone.layers.2.mixer.in_proj.weight", vec![32, 8]));
        assert_eq!(name("layers.0.layer.Mamba.A_log").unwrap(), ("backbone.layers.0.mixer.A_log".into(), Map::Same));
        assert_eq!(name("layers.1.norm.Rms.gamma").unwrap().0, "backbone.layers.1.norm.weight");
        assert_eq!(name("norm.Rms.gamma").unwrap().0, "backbone.norm_f.weight");
        assert_eq!(name("embedding.weight").unwrap().0, "backbone.embedding.weight");
        assert_eq!(name("decoder.weight").unwrap(), ("lm_head.weight".into(), Map::Transpose));
        assert_eq!(name("decoder.bias").unwrap().1, Map::Zero);
        assert_eq!(name("encoder.weight"), None, "MixerModel embeds tokens only");
        assert_eq!(name("layers.0.norm.Layer.gamma"), None);
    }
}
