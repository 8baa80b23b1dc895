//! The optimizer with parameter groups: the whole model, then one group per kind of SSM
//! parameter the layer marks (`ssm.dt`, `ssm.A`, …: s4's `lr` / `wd` options, by default lr 1e-3
//! and weight decay 0), then the user's regex groups (last match wins), each with its own
//! optimizer kind ([`OptimizerSpec`]). Each group's learning rate follows its own schedule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::optim::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;

use super::optimizers::OptimizerSpec;
use super::scheduler::ScheduleState;
use super::schedules::Schedule;
use crate::config::ConfigError;
use crate::experiment::ExperimentConfig;
use crate::model::{ClassifierConfig, LayerConfig};
use crate::train::config::ParamGroupConfig;

/// A learning rate that the trainer sets before each step (burn's schedulers cannot see
/// validation metrics, so ours computes the value and this hands it over).
#[derive(Clone)]
struct SharedLr(Arc<AtomicU64>);

impl LrScheduler for SharedLr {
    fn step(&mut self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
    }
    fn load_record(&mut self, _record: LrSchedulerRecord) {}
}

/// One parameter group's learning-rate plan.
#[derive(Debug, Clone)]
pub struct GroupPlan {
    /// Display name (`default`, `ssm.dt`, `ssm.A`, `groups.0`, …).
    pub name: String,
    /// Base learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Schedule applied to it.
    pub schedule: Schedule,
    /// Index into the schedule states (groups without their own schedule share state 0).
    pub state: usize,
}

/// The optimizer and the learning-rate policy of every group.
pub struct Optim {
    /// burn's module optimizer (one optimizer per group).
    pub inner: ModuleOptimizer,
    policy: ModuleLrScheduler,
    cells: Vec<Arc<AtomicU64>>,
    /// Groups in precedence order (index 0 matches everything).
    pub groups: Vec<GroupPlan>,
    /// Schedule states: 0 is the global schedule, then one per group with its own.
    pub states: Vec<ScheduleState>,
    /// Factor on every group's rate (lowered by `on_nonfinite: rollback`; checkpointed).
    pub lr_scale: f64,
    /// Optimizer steps per epoch (for `interval: epoch` schedules; the trainer sets it).
    pub steps_per_epoch: usize,
}

/// Regex matching `names` (layer-relative, like `kernel.log_dt`) at the end of a parameter path.
pub fn suffix_regex(names: &[&str]) -> String {
    let alts: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    format!(r"(^|\.)({})$", alts.join("|"))
}

impl Optim {
    /// Builds the optimizer for a config (the layer config supplies the SSM group).
    pub fn new(cfg: &ExperimentConfig) -> Result<Self, ConfigError> {
        let o = &cfg.optimizer;
        let spec = OptimizerSpec::global(o);
        spec.validate("optimizer")?;
        let global = Schedule::from_named(&cfg.scheduler, "scheduler")?;
        let mut inner = spec.module();
        let mut groups = vec![GroupPlan {
            name: "default".into(),
            lr: o.lr,
            weight_decay: o.weight_decay,
            schedule: global.clone(),
            state: 0,
        }];
        let mut matchers = vec![ParamGroup::all()];
        let mut states = vec![ScheduleState::default()];

        let layer = LayerConfig::from_named(&cfg.model.layer, "model.layer")?;
        // One group per kind of SSM parameter with settings of its own (`ssm.dt`, `ssm.A`, …);
        // frozen kinds have no gradient (see `LayerConfig::init`) and need none.
        for g in layer.ssm_groups().into_iter().filter(|g| !g.is_default() && !g.frozen()) {
            let m = ParamGroup::from_regex(suffix_regex(g.names)).expect("escaped names form a valid regex");
            let weight_decay = g.wd.unwrap_or(o.weight_decay);
            inner = spec.with_weight_decay(weight_decay).add_group(inner, m.clone());
            matchers.push(m);
            groups.push(GroupPlan {
                name: format!("ssm.{}", g.key),
                lr: g.lr.unwrap_or(o.lr),
                weight_decay,
                schedule: global.clone(),
                state: 0,
            });
        }
        // The user's regex groups, then a chain's per-link entries (D4L's `optimizers`).
        let mut listed: Vec<(String, String, ParamGroupConfig)> = o
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (format!("optimizer.groups.{i}"), format!("groups.{i}"), g.clone()))
            .collect();
        if let Some(ClassifierConfig::Chain(c)) = cfg.model.classifier()? {
            listed.extend(c.optimizer_groups("model.options")?);
        }
        for (path, name, gc) in &listed {
            let path = path.as_str();
            let g = ParamGroup::from_regex(&gc.params)
                .map_err(|e| ConfigError::Key { path: format!("{path}.params"), msg: format!("{e:?}") })?;
            let group_spec = OptimizerSpec::for_group(o, gc);
            group_spec.validate(path)?;
            let weight_decay = group_spec.weight_decay;
            inner = group_spec.add_group(inner, g.clone());
            matchers.push(g);
            let (schedule, state) = match &gc.scheduler {
                Some(s) => {
                    states.push(ScheduleState::default());
                    (Schedule::from_named(s, &format!("{path}.scheduler"))?, states.len() - 1)
                }
                None => (global.clone(), 0),
            };
            groups.push(GroupPlan { name: name.clone(), lr: gc.lr.unwrap_or(o.lr), weight_decay, schedule, state });
        }

        let cells: Vec<Arc<AtomicU64>> = groups.iter().map(|g| Arc::new(AtomicU64::new(g.lr.to_bits()))).collect();
        let mut policy = ModuleLrScheduler::new(SharedLr(cells[0].clone()));
        for (m, c) in matchers.into_iter().zip(&cells).skip(1) {
            policy = policy.with_group(m, SharedLr(c.clone()));
        }
        Ok(Self { inner, policy, cells, groups, states, lr_scale: 1.0, steps_per_epoch: 1 })
    }

    /// Learning rate of every group at `step` of `total`.
    pub fn lrs(&self, step: usize, total: usize) -> Vec<f64> {
        self.groups
            .iter()
            .map(|g| self.lr_scale * g.schedule.lr(g.lr, step, total, self.steps_per_epoch, &self.states[g.state]))
            .collect()
    }

    /// One optimizer update with the scheduled rates; returns the updated module.
    pub fn step<M: Module>(&mut self, step: usize, total: usize, module: M, grads: GradientsParams) -> M {
        for (cell, lr) in self.cells.iter().zip(self.lrs(step, total)) {
            cell.store(lr.to_bits(), Ordering::Relaxed);
        }
        let lr: ModuleLearningRate = self.policy.step();
        self.inner.step(lr, module, grads)
    }

    /// Feeds validation metrics to every schedule that watches them.
    pub fn on_validation(&mut self, metrics: &std::collections::BTreeMap<String, f64>) -> Result<(), String> {
        let mut done = vec![false; self.states.len()];
        for g in &self.groups {
            if !done[g.state] {
                g.schedule.kind.on_validation(metrics, &mut self.states[g.state])?;
                done[g.state] = true;
            }
        }
        Ok(())
    }
}

/// Parameter paths of a module with the id of each (for group listings and tests).
pub fn param_paths<M: Module>(module: &M) -> Vec<(String, ParamId)> {
    params_by_path(module).into_iter().map(|(path, id, _)| (path, id)).collect()
}

/// Every float parameter of a module: its dotted path, id and shape, in visiting order.
pub fn params_by_path<M: Module>(module: &M) -> Vec<(String, ParamId, Vec<usize>)> {
    struct V {
        path: Vec<String>,
        out: Vec<(String, ParamId, Vec<usize>)>,
    }
    impl ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            self.out.push((self.path.join("."), p.id, p.lazy_shape().to_vec()));
        }
    }
    let mut v = V { path: vec![], out: vec![] };
    module.visit(&mut v);
    v.out
}

/// Scales all gradients so their global L2 norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
pub fn clip_global_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: Option<f64>) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sum: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.get::<D>(p.id) {
                let s = g.square().sum();
                self.sum = Some(match self.sum.take() {
                    Some(acc) => acc + s,
                    None => s,
                });
            }
        }
    }
    struct Scale<'a> {
        grads: &'a mut GradientsParams,
        factor: f64,
    }
    impl ModuleVisitor for Scale<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(p.id) {
                self.grads.register(p.id, g * self.factor);
            }
        }
    }
    let mut n = Norm { grads, sum: None };
    module.visit(&mut n);
    let norm = n.sum.map_or(0.0, |s| s.into_scalar::<f64>().sqrt());
    if let Some(max) = max_norm
        && norm > max
    {
        let factor = max / (norm + 1e-6);
        module.visit(&mut Scale { grads, factor });
    }
    norm
}
