//! Chain models (`model._name_: chain`): named links (any registered piece or a whole
//! backbone), named commands that say which link methods run in which order, per-link
//! optimizers (D4L's `optimizers`) and a loss manager, all set in YAML.
//!
//! Parameter paths start with the link's name (`encoder.layers.0.layer.kernel.log_dt`), so
//! checkpoints and `optimizer.groups` regexes use the names the config gives.

pub mod commands;
pub mod links;
pub mod optimizers;

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use self::commands::{Checked, StepConfig};
use self::links::{Link, LinkKind, LinkSpec, Shape, Steps};
use self::optimizers::ChainOptimizerConfig;
use crate::config::{ConfigError, Named};
use crate::model::{Classifier, ClassifierOptions, PoolKind};
use crate::task::loss_manager::{LossManager, LossTermConfig};

/// The command the trainer runs for training and evaluation.
pub const FORWARD: &str = "forward";

/// Options of `chain`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainConfig {
    /// Named links (`encoder: {_name_: linear}`), each with `d_input`, `d_output`, `freeze`.
    pub links: BTreeMap<String, Named>,
    /// Named lists of steps; `forward` is required.
    pub commands: BTreeMap<String, Vec<StepConfig>>,
    /// Per-link optimizers (empty: the `optimizer` section trains everything).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub optimizers: Vec<ChainOptimizerConfig>,
    /// The loss terms (empty: the task's loss on `forward`'s output).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub loss: Vec<LossTermConfig>,
}

impl ChainConfig {
    /// Every link's checked options.
    fn specs(&self, path: &str) -> Result<BTreeMap<String, LinkSpec>, ConfigError> {
        if self.links.is_empty() {
            return Err(ConfigError::Key { path: format!("{path}.links"), msg: "a chain needs links".into() });
        }
        self.links
            .iter()
            .map(|(name, n)| {
                let p = format!("{path}.links.{name}");
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(ConfigError::Key { path: p, msg: "a link name is letters, digits or `_`".into() });
                }
                Ok((name.clone(), LinkSpec::from_named(n, &p)?))
            })
            .collect()
    }

    /// Checks every command (`forward` first) for input `x` and task outputs `k`; returns each
    /// link's input width and what `forward` produces.
    fn plan(
        &self,
        specs: &BTreeMap<String, LinkSpec>,
        x: Shape,
        k: usize,
        path: &str,
    ) -> Result<(BTreeMap<String, usize>, Checked), ConfigError> {
        let Some(fwd) = self.commands.get(FORWARD) else {
            let msg = format!("needs a `{FORWARD}` command (the trainer runs it)");
            return Err(ConfigError::Key { path: format!("{path}.commands"), msg });
        };
        let mut widths = BTreeMap::new();
        let cp = |name: &str| format!("{path}.commands.{name}");
        let checked = commands::check(FORWARD, fwd, specs, &mut widths, x, k, &cp(FORWARD))?;
        for (name, steps) in self.commands.iter().filter(|(n, _)| *n != FORWARD) {
            commands::check(name, steps, specs, &mut widths, x, k, &cp(name))?;
        }
        if self.loss.is_empty() {
            commands::check_output(&checked, k, &cp(FORWARD))?;
        }
        Ok((widths, checked))
    }

    /// The parameter groups of `optimizers`, as `(path, display name, group)`.
    pub fn optimizer_groups(
        &self,
        path: &str,
    ) -> Result<Vec<(String, String, crate::train::config::ParamGroupConfig)>, ConfigError> {
        self.optimizers
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let p = format!("{path}.optimizers.{i}");
                Ok((p.clone(), format!("optimizers.{i}:{}", e.links.join("+")), e.to_group(&p)?))
            })
            .collect()
    }
}

/// Whether `forward` ends with one row per step, from the link kinds alone.
fn forward_per_step(cfg: &ChainConfig) -> bool {
    let Some(steps) = cfg.commands.get(FORWARD) else { return false };
    let mut values = BTreeMap::from([(commands::INPUT.to_string(), Steps::All)]);
    let mut prev = commands::INPUT.to_string();
    for s in steps {
        let input = values.get(s.input.as_ref().unwrap_or(&prev)).copied().unwrap_or(Steps::All);
        let kind = cfg.links.get(&s.link).and_then(|n| LinkSpec::from_named(n, "").ok()).map(|l| l.kind);
        let out = match kind {
            Some(LinkKind::Sequence(c)) if c.pool != PoolKind::None => Steps::One,
            Some(LinkKind::Repeat) => Steps::All,
            _ => input,
        };
        prev = s.out.clone().unwrap_or(s.link.clone());
        values.insert(prev.clone(), out);
    }
    values[&prev] == Steps::All
}

/// Parameter paths of each link that trains (not `freeze: true`), whatever the device.
fn trainable(links: &BTreeMap<String, Link>, specs: &BTreeMap<String, LinkSpec>) -> BTreeMap<String, Vec<String>> {
    struct V {
        path: Vec<String>,
        out: Vec<String>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
            self.out.push(self.path.join("."));
        }
    }
    links
        .iter()
        .filter(|(name, _)| !specs[*name].freeze)
        .map(|(name, l)| {
            let mut v = V { path: vec![name.clone()], out: vec![] };
            l.visit(&mut v);
            (name.clone(), v.out)
        })
        .filter(|(_, ps)| !ps.is_empty())
        .collect()
}

impl ClassifierOptions for ChainConfig {
    type Model = Chain;

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        self.specs(path).map(|_| ())
    }

    fn per_step(&self) -> bool {
        forward_per_step(self)
    }

    fn own_metrics(&self) -> Option<Vec<String>> {
        (!self.loss.is_empty()).then(|| crate::task::loss_manager::metric_names(&self.loss))
    }

    fn init(&self, d_input: usize, d_output: usize, device: &Device) -> Result<Chain, ConfigError> {
        let path = "model.options";
        let specs = self.specs(path)?;
        let x = Shape { steps: Steps::All, width: d_input };
        let (widths, checked) = self.plan(&specs, x, d_output, path)?;
        let losses = if self.loss.is_empty() {
            None
        } else {
            Some(Arc::new(LossManager::new(&self.loss, &checked.values, &format!("{path}.loss"))?))
        };
        let mut links = BTreeMap::new();
        for (name, spec) in &specs {
            let p = format!("{path}.links.{name}");
            // A link no command reads from has no input width: it needs its own `d_input`.
            let d_in = match (widths.get(name), spec.d_input, spec.has_input_width()) {
                (Some(&w), _, _) | (None, Some(w), _) => w,
                (None, None, false) => 0,
                (None, None, true) => {
                    let msg = "no command uses this link, so its input width is unknown: set `d_input`".into();
                    return Err(ConfigError::Key { path: p, msg });
                }
            };
            links.insert(name.clone(), spec.init(d_in, d_output, &p, device)?);
        }
        if !self.optimizers.is_empty() {
            let params = trainable(&links, &specs);
            optimizers::check_claims(&self.optimizers, &specs, &params, &format!("{path}.optimizers"))?;
            self.optimizer_groups(path)?;
        }
        Ok(Chain { links, commands: Arc::new(self.commands.clone()), losses })
    }
}

/// A built chain: its links (parameter paths `<link>.…`), commands and loss manager.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The links by name.
    pub links: BTreeMap<String, Link>,
    commands: Arc<BTreeMap<String, Vec<StepConfig>>>,
    losses: Option<Arc<LossManager>>,
}

impl Chain {
    /// The commands it has.
    pub fn commands(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// Runs `command` (`forward`, `encode`, `reconstruct`, …). Args: `x` [B, L, D]; `lengths`
    /// valid steps per sample. Returns every value by name and the name of the last step's
    /// output; `None` for a command the config does not define.
    pub fn run(
        &self,
        command: &str,
        x: Tensor<3>,
        lengths: Option<&[usize]>,
    ) -> Option<(BTreeMap<String, Tensor<3>>, String)> {
        Some(commands::run(self.commands.get(command)?, &self.links, x, lengths))
    }

    /// The loss manager, when the config has `loss` terms.
    pub fn losses(&self) -> Option<&LossManager> {
        self.losses.as_deref()
    }
}

impl Classifier for Chain {
    /// Args: `x` [B, L, D]. Returns `forward`'s last output [B, 1|L, K].
    fn forward(&self, x: Tensor<3>, lengths: Option<&[usize]>) -> Tensor<3> {
        let (mut values, last) = self.run(FORWARD, x, lengths).expect("`forward` exists (checked at build)");
        values.remove(&last).expect("the last step's output")
    }

    /// Sets the sampling-rate factor of every backbone link.
    fn set_rate(&mut self, rate: f64) {
        for l in self.links.values_mut() {
            if let Link::Sequence(m) = l {
                *m = m.clone().with_rate(rate);
            }
        }
    }
}

/// The container type of links in visitor paths.
const CONTAINER: &str = "Struct:Chain";

impl Module for Chain {
    fn collect_devices(&self, mut devices: burn::module::Devices) -> burn::module::Devices {
        for l in self.links.values() {
            devices = l.collect_devices(devices);
        }
        devices
    }
    fn fork(self, device: &Device) -> Self {
        self.map_links(|l| l.fork(device))
    }
    fn to_device(self, device: &Device) -> Self {
        self.map_links(|l| l.to_device(device))
    }
    fn train(self) -> Self {
        self.map_links(|l| l.train())
    }
    fn valid(&self) -> Self {
        self.clone().map_links(|l| l.valid())
    }
    fn materialize(self) -> Self {
        self.map_links(|l| l.materialize())
    }
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (name, l) in &self.links {
            visitor.enter_module(name, CONTAINER);
            l.visit(visitor);
            visitor.exit_module(name, CONTAINER);
        }
    }
    fn map<M: burn::module::ModuleMapper>(self, mapper: &mut M) -> Self {
        let links = self
            .links
            .into_iter()
            .map(|(name, l)| {
                mapper.enter_module(&name, CONTAINER);
                let l = l.map(mapper);
                mapper.exit_module(&name, CONTAINER);
                (name, l)
            })
            .collect();
        Self { links, ..self }
    }
}

impl Chain {
    fn map_links(self, mut f: impl FnMut(Link) -> Link) -> Self {
        Self { links: self.links.into_iter().map(|(n, l)| (n, f(l))).collect(), ..self }
    }
}
