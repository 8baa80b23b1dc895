//! The pieces a chain is made of (`model.options.links.<name>`): what each kind takes, which
//! methods it has, the shapes those methods give, and the built modules.
//!
//! Shapes are checked before anything is built: a value is `[B, L, D]` (one row per step) or
//! `[B, 1, D]` (one per sequence), with D known; see [`Shape`].

use crate::ops::gelu;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Distribution, Tensor};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use crate::config::{ConfigError, Named, from_value_at, join_path};
use crate::model::{Layer, LayerConfig, ModelConfig, PoolKind, SequenceModel};

/// Steps of a value: every step of the input, or one per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Steps {
    /// L rows, as the batch input.
    All,
    /// One row per sequence (after pooling).
    One,
}

/// The shape of a value flowing through a command, `[B, L|1, width]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Rows per sequence.
    pub steps: Steps,
    /// Features per row.
    pub width: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = if self.steps == Steps::All { "L" } else { "1" };
        write!(f, "[B, {l}, {}]", self.width)
    }
}

/// What kind of piece a link is, with its own options.
#[derive(Debug, Clone)]
pub enum LinkKind {
    /// A per-step `Linear(d_input → d_output)`.
    Linear,
    /// Per-step `Linear → GELU → Linear` with `hidden` units.
    Mlp {
        /// Hidden width (None: the input width).
        hidden: Option<usize>,
    },
    /// A whole residual backbone (the options of `model:` for `sequence`).
    Sequence(Box<ModelConfig>),
    /// Any registered sequence layer (`s4d`, `lstm`, `mamba`, …): `[B, L, H]` → `[B, L, H]`.
    Layer(Box<LayerConfig>),
    /// A diagonal Gaussian: `[B, T, 2Z]` → mean and log-variance `[B, T, Z]` each; `sample`
    /// draws by reparameterization, `mean` returns the mean.
    Gaussian,
    /// Repeats a per-sequence value `[B, 1, D]` over the batch input's L steps.
    Repeat,
}

/// A link's options: its kind plus the keys every kind has.
#[derive(Debug, Clone)]
pub struct LinkSpec {
    /// The piece.
    pub kind: LinkKind,
    /// Input width (None: taken from the first step that uses the link).
    pub d_input: Option<usize>,
    /// Output width (None: the task's output size K).
    pub d_output: Option<usize>,
    /// Stops gradients of every parameter of the link (no optimizer entry needed).
    pub freeze: bool,
}

/// The link kinds besides the registered layers.
pub const KINDS: &[&str] = &["linear", "mlp", "sequence", "gaussian", "repeat"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MlpOptions {
    #[serde(default)]
    hidden: Option<usize>,
}

/// A backbone link's width and depth when not given (the root config's).
const DEFAULT_SIZES: [(&str, u64); 2] = [("d_model", 64), ("n_layers", 4)];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

impl LinkSpec {
    /// Reads `named` (a link's `_name_` and options), naming `path` in errors.
    pub fn from_named(named: &Named, path: &str) -> Result<Self, ConfigError> {
        let mut opts = named.options.clone();
        let mut take = |key: &str| -> Result<Option<usize>, ConfigError> {
            match opts.remove(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => {
                    let n: usize = from_value_at(v, &join_path(path, key))?;
                    crate::config::check::count(&join_path(path, key), n, crate::model::config::MAX_WIDTH)?;
                    Ok(Some(n))
                }
            }
        };
        let (d_input, d_output) = (take("d_input")?, take("d_output")?);
        let freeze = match opts.remove("freeze") {
            None => false,
            Some(v) => from_value_at(v, &join_path(path, "freeze"))?,
        };
        let rest = Value::Mapping(opts.clone());
        let kind = match named.name.as_str() {
            "linear" => from_value_at::<NoOptions>(rest, path).map(|_| LinkKind::Linear)?,
            "mlp" => {
                let o: MlpOptions = from_value_at(rest, path)?;
                if let Some(h) = o.hidden {
                    crate::config::check::count(&join_path(path, "hidden"), h, crate::model::config::MAX_WIDTH)?;
                }
                LinkKind::Mlp { hidden: o.hidden }
            }
            "sequence" => {
                let mut m = opts;
                m.insert("_name_".into(), "sequence".into());
                for (key, v) in DEFAULT_SIZES {
                    m.entry(key.into()).or_insert(Value::from(v));
                }
                let cfg: ModelConfig = from_value_at(Value::Mapping(m), path)?;
                cfg.validate().map_err(|e| relocate(e, path))?;
                LinkKind::Sequence(Box::new(cfg))
            }
            "gaussian" => from_value_at::<NoOptions>(rest, path).map(|_| LinkKind::Gaussian)?,
            "repeat" => from_value_at::<NoOptions>(rest, path).map(|_| LinkKind::Repeat)?,
            name if LayerConfig::NAMES.contains(&name) => {
                if d_output.is_some() {
                    let msg = "a layer keeps its input width; it takes no `d_output`".into();
                    return Err(ConfigError::Key { path: join_path(path, "d_output"), msg });
                }
                let layer = LayerConfig::from_named(&Named { name: name.into(), options: opts }, path)?;
                layer.validate(path)?;
                LinkKind::Layer(Box::new(layer))
            }
            _ => {
                let kinds: Vec<&str> = KINDS.iter().chain(LayerConfig::NAMES).copied().collect();
                return Err(named.unknown("chain link", path, &kinds));
            }
        };
        Ok(Self { kind, d_input, d_output, freeze })
    }

    /// Back to its config form (for printing).
    pub fn to_named(&self) -> Named {
        let mut options = Mapping::new();
        let name = match &self.kind {
            LinkKind::Linear => "linear",
            LinkKind::Mlp { hidden } => {
                if let Some(h) = hidden {
                    options.insert("hidden".into(), Value::from(*h as u64));
                }
                "mlp"
            }
            LinkKind::Layer(layer) => {
                let n = layer.to_named();
                options.extend(n.options);
                layer.name()
            }
            LinkKind::Sequence(cfg) => {
                if let Ok(Value::Mapping(m)) = serde_yaml::to_value(cfg.as_ref()) {
                    options.extend(m);
                }
                "sequence"
            }
            LinkKind::Gaussian => "gaussian",
            LinkKind::Repeat => "repeat",
        };
        for (key, v) in [("d_input", self.d_input), ("d_output", self.d_output)] {
            if let Some(v) = v {
                options.insert(key.into(), Value::from(v as u64));
            }
        }
        if self.freeze {
            options.insert("freeze".into(), Value::Bool(true));
        }
        Named { name: name.into(), options }
    }

    /// The methods a command may call on this kind.
    pub fn methods(&self) -> &'static [&'static str] {
        match self.kind {
            LinkKind::Gaussian => &["forward", "sample", "mean", "prior"],
            _ => &["forward"],
        }
    }

    /// The keyword arguments `method` accepts.
    pub fn kwargs(&self, method: &str) -> &'static [&'static str] {
        match (&self.kind, method) {
            (LinkKind::Gaussian, "forward" | "sample" | "prior") => &["temperature"],
            _ => &[],
        }
    }

    /// Whether the link reads a width of its own from its input (and must see the same width
    /// at every use).
    pub fn has_input_width(&self) -> bool {
        !matches!(self.kind, LinkKind::Gaussian | LinkKind::Repeat)
    }

    /// The shapes `method` gives for `input` (the link taking `d_in` features): the main
    /// output first (suffix ""), then named side outputs (`mu`, `logvar`). `k` is the task's
    /// output size. Errors say what the input should have been.
    pub fn outputs(&self, input: Shape, k: usize) -> Result<Vec<(&'static str, Shape)>, String> {
        let width = self.d_output.unwrap_or(k);
        let same = |width| Shape { steps: input.steps, width };
        Ok(match &self.kind {
            LinkKind::Linear | LinkKind::Mlp { .. } => vec![("", same(width))],
            LinkKind::Layer(_) => vec![("", input)],
            LinkKind::Sequence(cfg) => {
                let steps = if cfg.pool == PoolKind::None { input.steps } else { Steps::One };
                vec![("", Shape { steps, width })]
            }
            LinkKind::Gaussian => {
                if !input.width.is_multiple_of(2) || input.width == 0 {
                    return Err(format!("takes [B, T, 2Z] (mean and log-variance), an even width, got {input}"));
                }
                let z = same(input.width / 2);
                vec![("", z), ("mu", z), ("logvar", z)]
            }
            LinkKind::Repeat => {
                if input.steps != Steps::One {
                    return Err(format!("takes one row per sequence [B, 1, D], got {input}"));
                }
                vec![("", Shape { steps: Steps::All, width: input.width })]
            }
        })
    }

    /// Builds the link for `d_in` input features and `k` task outputs.
    pub fn init(&self, d_in: usize, k: usize, path: &str, device: &Device) -> Result<Link, ConfigError> {
        let d_out = self.d_output.unwrap_or(k);
        let link = match &self.kind {
            LinkKind::Linear => Link::Linear(LinearConfig::new(d_in, d_out).init(device)),
            LinkKind::Mlp { hidden } => {
                let hidden = hidden.unwrap_or(d_in);
                Link::Mlp(Mlp {
                    fc1: LinearConfig::new(d_in, hidden).init(device),
                    fc2: LinearConfig::new(hidden, d_out).init(device),
                })
            }
            LinkKind::Layer(layer) => {
                layer.check_width(path, d_in)?;
                Link::Layer(layer.init(d_in, device))
            }
            LinkKind::Sequence(cfg) => {
                Link::Sequence(SequenceModel::new(cfg, d_in, d_out, device).map_err(|e| relocate(e, path))?)
            }
            LinkKind::Gaussian => Link::Gaussian(Stateless {}),
            LinkKind::Repeat => Link::Repeat(Stateless {}),
        };
        Ok(if self.freeze { link.freeze() } else { link })
    }
}

/// Moves an error about `model.*` (the backbone's own checks) under the link's path.
fn relocate(e: ConfigError, path: &str) -> ConfigError {
    match e {
        ConfigError::Key { path: p, msg } => {
            let rest = p.strip_prefix("model").unwrap_or(&p).trim_start_matches('.');
            ConfigError::Key { path: join_path(path, rest), msg }
        }
        e => e,
    }
}

/// Two per-step linear maps with a GELU between (`fc1`, `fc2` as torch's MLP blocks).
#[derive(Module, Debug)]
pub struct Mlp {
    /// D → hidden.
    pub fc1: Linear,
    /// hidden → K.
    pub fc2: Linear,
}

/// A link without parameters.
#[derive(Module, Debug)]
pub struct Stateless {}

/// A built link.
// A chain holds a handful of links, so boxing the backbone would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Link {
    /// Per-step linear map.
    Linear(Linear),
    /// Per-step MLP.
    Mlp(Mlp),
    /// Residual backbone.
    Sequence(SequenceModel),
    /// A registered sequence layer.
    Layer(Layer),
    /// Diagonal Gaussian (no parameters).
    Gaussian(Stateless),
    /// Repeat over time (no parameters).
    Repeat(Stateless),
}

/// Delegates a [`Module`] method to the variant, adding no name to parameter paths.
macro_rules! each_link {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Link::Linear($m) => $body,
            Link::Mlp($m) => $body,
            Link::Sequence($m) => $body,
            Link::Layer($m) => $body,
            Link::Gaussian($m) | Link::Repeat($m) => $body,
        }
    };
}

/// Rebuilds the same variant from a mapped inner module.
macro_rules! map_link {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Link::Linear($m) => Link::Linear($body),
            Link::Mlp($m) => Link::Mlp($body),
            Link::Sequence($m) => Link::Sequence($body),
            Link::Layer($m) => Link::Layer($body),
            Link::Gaussian($m) => Link::Gaussian($body),
            Link::Repeat($m) => Link::Repeat($body),
        }
    };
}

impl Module for Link {
    fn collect_devices(&self, devices: burn::module::Devices) -> burn::module::Devices {
        each_link!(self, m => m.collect_devices(devices))
    }
    fn fork(self, device: &Device) -> Self {
        map_link!(self, m => m.fork(device))
    }
    fn to_device(self, device: &Device) -> Self {
        map_link!(self, m => m.to_device(device))
    }
    fn train(self) -> Self {
        map_link!(self, m => m.train())
    }
    fn valid(&self) -> Self {
        map_link!(self, m => m.valid())
    }
    fn materialize(self) -> Self {
        map_link!(self, m => m.materialize())
    }
    fn visit<V: burn::module::ModuleVisitor>(&self, visitor: &mut V) {
        each_link!(self, m => m.visit(visitor))
    }
    fn map<M: burn::module::ModuleMapper>(self, mapper: &mut M) -> Self {
        map_link!(self, m => m.map(mapper))
    }
}

impl Link {
    /// Runs `method` (checked at build time). Args: `x` [B, T, D]; `l` the batch input's
    /// length; `lengths` valid steps per sample (for inputs with every step). Returns the main
    /// output and the side outputs, as [`LinkSpec::outputs`] names them.
    pub fn call(
        &self,
        method: &str,
        kwargs: &Mapping,
        x: Tensor<3>,
        l: usize,
        lengths: Option<&[usize]>,
    ) -> Vec<(&'static str, Tensor<3>)> {
        match self {
            Link::Linear(m) => vec![("", m.forward(x))], // [B, T, K]
            Link::Mlp(m) => vec![("", m.fc2.forward(gelu(m.fc1.forward(x))))], // [B, T, K]
            Link::Sequence(m) => {
                let lengths = lengths.filter(|_| x.dims()[1] == l);
                vec![("", m.forward(x, lengths))] // [B, L|1, K]
            }
            Link::Layer(m) => vec![("", m.forward(x))], // [B, L, H]
            Link::Gaussian(_) => {
                let z = x.dims()[2] / 2;
                let mu = x.clone().narrow(2, 0, z); // [B, T, Z]
                let logvar = x.narrow(2, z, z); // [B, T, Z]
                let t = kwargs.get("temperature").and_then(Value::as_f64).unwrap_or(1.0);
                let eps = || Tensor::random(mu.dims(), Distribution::Normal(0.0, 1.0), &mu.device());
                let main = match method {
                    "mean" => mu.clone(),
                    // A draw from the standard-normal prior: the input gives only the shape.
                    "prior" => eps() * t,
                    _ => mu.clone() + (logvar.clone() * 0.5).exp() * eps() * t,
                };
                vec![("", main), ("mu", mu), ("logvar", logvar)]
            }
            Link::Repeat(_) => vec![("", x.repeat_dim(1, l))], // [B, 1, D] -> [B, L, D]
        }
    }
}
