//! The closed-form schedules of torch and timm (`step`, `multistep`, `exponential`, `linear`,
//! `polynomial`, `cosine_restarts`, `one_cycle`), `sequential` (schedules chained at
//! milestones, D4L's `schedulers: [{name, kwargs}]`), and [`Schedule`]: any of them with
//! Lightning's `interval: step|epoch` and `frequency`.
//!
//! Every schedule is a pure function of the scheduler step `t` (0-based) and the number of
//! scheduler steps `total`, giving the rate for a base rate; with `interval: epoch` the
//! scheduler steps once per epoch, and with `frequency: k` once every k intervals.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::scheduler::{ScheduleState, SchedulerConfig};
use crate::config::{ConfigError, Named, check};

fn bad(path: &str, key: &str, msg: String) -> Result<(), ConfigError> {
    Err(ConfigError::Key { path: crate::config::join_path(path, key), msg })
}

fn check_factor(path: &str, key: &str, v: f64) -> Result<(), ConfigError> {
    check::positive(&crate::config::join_path(path, key), v)
}

fn check_ratio(path: &str, key: &str, v: f64) -> Result<(), ConfigError> {
    check::unit(&crate::config::join_path(path, key), v)
}

fn check_count(path: &str, key: &str, v: usize) -> Result<(), ConfigError> {
    check::count(&crate::config::join_path(path, key), v, usize::MAX)
}

/// Linear warmup from 0 over `w` steps (1/w at step 0, as the other schedules here).
fn warm(t: usize, w: usize) -> Option<f64> {
    (t < w).then(|| (t + 1) as f64 / w as f64)
}

fn gamma() -> f64 {
    0.1
}
fn one_f() -> f64 {
    1.0
}

/// `step` (torch's StepLR): the rate × `gamma` every `step_size` scheduler steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Scheduler steps between decays.
    pub step_size: usize,
    /// Factor per decay.
    #[serde(default = "gamma")]
    pub gamma: f64,
}

/// `multistep` (torch's MultiStepLR): the rate × `gamma` at each milestone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiStepConfig {
    /// Scheduler steps at which the rate decays (increasing).
    pub milestones: Vec<usize>,
    /// Factor per milestone.
    #[serde(default = "gamma")]
    pub gamma: f64,
}

/// `exponential` (torch's ExponentialLR): the rate × `gamma` every scheduler step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExponentialConfig {
    /// Factor per scheduler step.
    pub gamma: f64,
}

/// `linear`: linear warmup from 0, then linear decay to `min_lr_ratio` × the rate at
/// `training_steps` (transformers' `get_linear_schedule_with_warmup`), held after.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    /// Warmup steps.
    #[serde(default, alias = "num_warmup_steps")]
    pub warmup_steps: usize,
    /// End of the decay (null: the whole run).
    #[serde(default, alias = "num_training_steps")]
    pub training_steps: Option<usize>,
    /// Final rate as a fraction of the base rate.
    #[serde(default)]
    pub min_lr_ratio: f64,
}

/// `polynomial`: warmup, then `(1 - p)^power` decay to `min_lr_ratio` × the rate (transformers'
/// `get_polynomial_decay_schedule_with_warmup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolynomialConfig {
    /// Warmup steps.
    #[serde(default, alias = "num_warmup_steps")]
    pub warmup_steps: usize,
    /// End of the decay (null: the whole run).
    #[serde(default, alias = "num_training_steps")]
    pub training_steps: Option<usize>,
    /// Exponent of the decay.
    #[serde(default = "one_f")]
    pub power: f64,
    /// Final rate as a fraction of the base rate.
    #[serde(default)]
    pub min_lr_ratio: f64,
}

/// `cosine_restarts` (timm's CosineLRScheduler): cosine cycles of `cycle_steps` × `cycle_mul`^i
/// steps, each peak × `cycle_decay`^i, after a warmup (counted before the first cycle).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosineRestartsConfig {
    /// Length of the first cycle (timm's `t_initial`).
    #[serde(alias = "t_initial")]
    pub cycle_steps: usize,
    /// Growth of each cycle's length.
    #[serde(default = "one_f")]
    pub cycle_mul: f64,
    /// Decay of each cycle's peak.
    #[serde(default = "one_f")]
    pub cycle_decay: f64,
    /// Cycles before the rate stays at the floor (null: no limit).
    #[serde(default)]
    pub cycle_limit: Option<usize>,
    /// Floor as a fraction of the base rate.
    #[serde(default)]
    pub min_lr_ratio: f64,
    /// Warmup steps.
    #[serde(default, alias = "warmup_t")]
    pub warmup_steps: usize,
    /// timm's `k_decay` (the cosine's phase is `(t/T)^k`).
    #[serde(default = "one_f")]
    pub k_decay: f64,
}

/// How `one_cycle` anneals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Anneal {
    /// Half cosine.
    #[default]
    Cos,
    /// Straight line.
    Linear,
}

/// `one_cycle` (torch's OneCycleLR): from rate/`div_factor` up to the rate over `pct_start` of
/// the steps, then down to rate/(`div_factor`·`final_div_factor`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneCycleConfig {
    /// Total scheduler steps (null: the whole run).
    #[serde(default)]
    pub total_steps: Option<usize>,
    /// Fraction of the steps spent rising.
    #[serde(default = "pct_start")]
    pub pct_start: f64,
    /// Shape of each phase.
    #[serde(default)]
    pub anneal_strategy: Anneal,
    /// Initial rate = rate / div_factor.
    #[serde(default = "div_factor")]
    pub div_factor: f64,
    /// Final rate = initial rate / final_div_factor.
    #[serde(default = "final_div_factor")]
    pub final_div_factor: f64,
    /// torch's three-phase variant (up, back down to the initial rate, then to the final).
    #[serde(default)]
    pub three_phase: bool,
}

fn pct_start() -> f64 {
    0.3
}
fn div_factor() -> f64 {
    25.0
}
fn final_div_factor() -> f64 {
    1e4
}

/// `sequential` (torch's SequentialLR, D4L's scheduler lists): `schedulers[i]` runs from
/// `milestones[i-1]` on, restarted at step 0 there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequentialConfig {
    /// The schedules, in order (`{_name_: …}` or D4L's `{name: …, kwargs: {…}}`).
    pub schedulers: Vec<SchedulerConfig>,
    /// Scheduler steps where the next schedule takes over (one fewer than schedules).
    #[serde(default)]
    pub milestones: Vec<usize>,
}

impl StepConfig {
    /// Rate at scheduler step `t`.
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        base * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
}

impl MultiStepConfig {
    /// Rate at scheduler step `t`.
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        base * self.gamma.powi(self.milestones.iter().filter(|&&m| m <= t).count() as i32)
    }
}

impl ExponentialConfig {
    /// Rate at scheduler step `t`.
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        base * self.gamma.powf(t as f64)
    }
}

/// Decay progress in [0, 1] after `w` warmup steps, ending at `end` (or `total`).
fn progress(t: usize, w: usize, end: Option<usize>, total: usize) -> f64 {
    let span = end.unwrap_or(total).saturating_sub(w).max(1) as f64;
    ((t - w) as f64 / span).min(1.0)
}

impl LinearConfig {
    /// Rate at scheduler step `t` of `total`.
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        if let Some(f) = warm(t, self.warmup_steps) {
            return base * f;
        }
        let p = progress(t, self.warmup_steps, self.training_steps, total);
        base * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * (1.0 - p))
    }
}

impl PolynomialConfig {
    /// Rate at scheduler step `t` of `total`.
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        if let Some(f) = warm(t, self.warmup_steps) {
            return base * f;
        }
        let p = progress(t, self.warmup_steps, self.training_steps, total);
        base * (self.min_lr_ratio + (1.0 - self.min_lr_ratio) * (1.0 - p).powf(self.power))
    }
}

impl CosineRestartsConfig {
    /// Rate at scheduler step `t` (timm's `_get_lr` with `warmup_prefix`).
    pub fn lr(&self, base: f64, t: usize) -> f64 {
        if let Some(f) = warm(t, self.warmup_steps) {
            return base * f;
        }
        let t = (t - self.warmup_steps) as f64;
        let t0 = self.cycle_steps as f64;
        let (i, t_i, t_cur) = if self.cycle_mul != 1.0 {
            let m = self.cycle_mul;
            let i = ((1.0 - t / t0 * (1.0 - m)).ln() / m.ln()).floor().max(0.0);
            let t_i = m.powf(i) * t0;
            (i, t_i, t - (1.0 - m.powf(i)) / (1.0 - m) * t0)
        } else {
            let i = (t / t0).floor();
            (i, t0, t - t0 * i)
        };
        let floor = base * self.min_lr_ratio;
        if self.cycle_limit.is_some_and(|l| i >= l as f64) {
            return floor;
        }
        let peak = base * self.cycle_decay.powf(i);
        let k = self.k_decay;
        floor + 0.5 * (peak - floor) * (1.0 + (PI * t_cur.powf(k) / t_i.powf(k)).cos())
    }
}

impl OneCycleConfig {
    /// Rate at scheduler step `t` of `total` (torch's phases and anneals).
    pub fn lr(&self, base: f64, t: usize, total: usize) -> f64 {
        let n = self.total_steps.unwrap_or(total).max(2) as f64;
        let initial = base / self.div_factor;
        let min = initial / self.final_div_factor;
        let phases: Vec<(f64, f64, f64)> = if self.three_phase {
            vec![
                (self.pct_start * n - 1.0, initial, base),
                (2.0 * self.pct_start * n - 2.0, base, initial),
                (n - 1.0, initial, min),
            ]
        } else {
            vec![(self.pct_start * n - 1.0, initial, base), (n - 1.0, base, min)]
        };
        let t = t as f64;
        let mut start = 0.0;
        for (i, &(end, from, to)) in phases.iter().enumerate() {
            if t <= end || i == phases.len() - 1 {
                let pct = ((t - start) / (end - start)).min(1.0);
                return match self.anneal_strategy {
                    Anneal::Cos => to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0),
                    Anneal::Linear => (to - from) * pct + from,
                };
            }
            start = end;
        }
        unreachable!("the last phase always answers")
    }
}

impl SequentialConfig {
    /// Rate at scheduler step `t` of `total`: the active schedule at its own step.
    pub fn lr(&self, base: f64, t: usize, total: usize, state: &ScheduleState) -> f64 {
        let i = self.milestones.iter().filter(|&&m| m <= t).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        let end = self.milestones.get(i).copied().unwrap_or(total);
        self.schedulers[i].lr(base, t - start, end.saturating_sub(start).max(1), state)
    }
}

/// Range checks of the schedules in this file, naming `path.key`.
pub fn validate(s: &SchedulerConfig, path: &str) -> Result<(), ConfigError> {
    match s {
        SchedulerConfig::Step(c) => {
            check_count(path, "step_size", c.step_size)?;
            check_factor(path, "gamma", c.gamma)
        }
        SchedulerConfig::MultiStep(c) => {
            if c.milestones.windows(2).any(|w| w[0] >= w[1]) {
                return bad(path, "milestones", format!("must increase, got {:?}", c.milestones));
            }
            check_factor(path, "gamma", c.gamma)
        }
        SchedulerConfig::Exponential(c) => check_factor(path, "gamma", c.gamma),
        SchedulerConfig::Linear(c) => check_ratio(path, "min_lr_ratio", c.min_lr_ratio),
        SchedulerConfig::Polynomial(c) => {
            check_factor(path, "power", c.power)?;
            check_ratio(path, "min_lr_ratio", c.min_lr_ratio)
        }
        SchedulerConfig::CosineRestarts(c) => {
            check_count(path, "cycle_steps", c.cycle_steps)?;
            check_factor(path, "cycle_mul", c.cycle_mul)?;
            check_factor(path, "cycle_decay", c.cycle_decay)?;
            check_factor(path, "k_decay", c.k_decay)?;
            check_ratio(path, "min_lr_ratio", c.min_lr_ratio)
        }
        SchedulerConfig::OneCycle(c) => {
            if !(c.pct_start > 0.0 && c.pct_start < 1.0) {
                return bad(path, "pct_start", format!("must be in (0, 1), got {}", c.pct_start));
            }
            if let Some(n) = c.total_steps {
                check_count(path, "total_steps", n)?;
            }
            check_factor(path, "div_factor", c.div_factor)?;
            check_factor(path, "final_div_factor", c.final_div_factor)
        }
        SchedulerConfig::Sequential(c) => {
            if c.schedulers.is_empty() || c.milestones.len() + 1 != c.schedulers.len() {
                return bad(
                    path,
                    "milestones",
                    format!(
                        "needs one fewer milestone than schedulers: {} schedulers, {:?}",
                        c.schedulers.len(),
                        c.milestones
                    ),
                );
            }
            if c.milestones.windows(2).any(|w| w[0] >= w[1]) || c.milestones.first() == Some(&0) {
                return bad(path, "milestones", format!("must increase from above 0, got {:?}", c.milestones));
            }
            for (i, s) in c.schedulers.iter().enumerate() {
                let at = format!("{path}.schedulers.{i}");
                if matches!(s, SchedulerConfig::Plateau(_) | SchedulerConfig::Sequential(_)) {
                    return Err(ConfigError::Key {
                        path: format!("{at}._name_"),
                        msg: format!("`{}` cannot be part of `sequential`", s.name()),
                    });
                }
                validate(s, &at)?;
            }
            Ok(())
        }
        SchedulerConfig::Plateau(c) => {
            if !(c.factor > 0.0 && c.factor < 1.0) {
                return bad(path, "factor", format!("must be in (0, 1), got {}", c.factor));
            }
            check::non_negative(&crate::config::join_path(path, "min_lr"), c.min_lr)
        }
        SchedulerConfig::CosineWarmup(c) => {
            check_ratio(path, "min_lr_ratio", c.min_lr_ratio)?;
            c.training_steps.map_or(Ok(()), |n| check_count(path, "training_steps", n))
        }
        SchedulerConfig::Constant(_) => Ok(()),
    }
}

/// A schedule entry is a registry choice: `{_name_: step, step_size: 10}`, a bare name, or
/// D4L's `{name: step, kwargs: {step_size: 10}}`.
impl<'de> Deserialize<'de> for SchedulerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let named: Named = serde_yaml::from_value(d4l_entry(v)).map_err(D::Error::custom)?;
        let s = SchedulerConfig::from_named(&named, "").map_err(|e| D::Error::custom(e.to_string()))?;
        Ok(s)
    }
}

impl Serialize for SchedulerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_named().serialize(s)
    }
}

/// D4L's `{name, kwargs}` as `{_name_, …kwargs}`; anything else unchanged.
fn d4l_entry(v: Value) -> Value {
    match v {
        Value::Mapping(mut m) if m.contains_key("name") && !m.contains_key("_name_") => {
            let mut out = Mapping::new();
            out.insert("_name_".into(), m.remove("name").unwrap_or(Value::Null));
            if let Some(Value::Mapping(kw)) = m.remove("kwargs") {
                out.extend(kw);
            }
            out.extend(m);
            Value::Mapping(out)
        }
        other => other,
    }
}

/// When a schedule steps (Lightning's `interval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// Every optimizer step.
    #[default]
    Step,
    /// Every epoch.
    Epoch,
}

/// A schedule with Lightning's `interval` and `frequency` (D4L's `out_cfg_kwargs`).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule.
    pub kind: SchedulerConfig,
    /// What one scheduler step is.
    pub interval: Interval,
    /// Scheduler steps happen every `frequency` intervals.
    pub frequency: usize,
    /// Linear warmup (scheduler steps) multiplied onto the schedules that have none of their own
    /// (`step`, `multistep`, `exponential`, `one_cycle`, `sequential`), so a root config's
    /// `scheduler.warmup_steps` applies to any choice.
    pub warmup_steps: usize,
}

/// Whether a schedule reads `warmup_steps` itself.
fn has_own_warmup(name: &str) -> bool {
    matches!(name, "constant" | "cosine_warmup" | "plateau" | "linear" | "polynomial" | "cosine_restarts")
}

impl Schedule {
    /// Reads a registry choice with optional `interval`, `frequency` (also under
    /// `out_cfg_kwargs`), checking every range; errors name `path.key`.
    pub fn from_named(named: &Named, path: &str) -> Result<Self, ConfigError> {
        let mut named = named.clone();
        let mut outer = Mapping::new();
        if let Some(v) = named.options.remove("out_cfg_kwargs") {
            match v {
                Value::Mapping(m) => outer.extend(m),
                Value::Null => {}
                other => {
                    let msg = format!("must be a mapping, got {}", crate::config::inline_yaml(&other));
                    return Err(ConfigError::Key { path: crate::config::join_path(path, "out_cfg_kwargs"), msg });
                }
            }
        }
        for key in ["interval", "frequency", "warmup_steps"] {
            if key == "warmup_steps" && has_own_warmup(&named.name) {
                continue;
            }
            if let Some(v) = named.options.remove(key) {
                outer.insert(key.into(), v);
            }
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Outer {
            #[serde(default)]
            interval: Interval,
            #[serde(default = "one")]
            frequency: usize,
            #[serde(default)]
            warmup_steps: usize,
        }
        fn one() -> usize {
            1
        }
        let o: Outer = crate::config::from_value_at(Value::Mapping(outer), path)?;
        check_count(path, "frequency", o.frequency)?;
        let kind = SchedulerConfig::from_named(&named, path)?;
        validate(&kind, path)?;
        Ok(Self { kind, interval: o.interval, frequency: o.frequency, warmup_steps: o.warmup_steps })
    }

    /// Back to a registry choice with every default filled in.
    pub fn to_named(&self) -> Named {
        let mut n = self.kind.to_named();
        n.options.insert("interval".into(), serde_yaml::to_value(self.interval).unwrap_or(Value::Null));
        n.options.insert("frequency".into(), Value::from(self.frequency as u64));
        if !has_own_warmup(self.kind.name()) {
            n.options.insert("warmup_steps".into(), Value::from(self.warmup_steps as u64));
        }
        n
    }

    /// The rate at optimizer step `step` of `total`, with `per_epoch` optimizer steps an epoch.
    pub fn lr(&self, base: f64, step: usize, total: usize, per_epoch: usize, state: &ScheduleState) -> f64 {
        let unit = match self.interval {
            Interval::Step => 1,
            Interval::Epoch => per_epoch.max(1),
        } * self.frequency;
        let t = step / unit;
        let lr = self.kind.lr(base, t, total.div_ceil(unit).max(1), state);
        match warm(t, self.warmup_steps) {
            Some(f) if !has_own_warmup(self.kind.name()) => lr * f,
            _ => lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(yaml: &str) -> Result<Schedule, String> {
        let named: Named = serde_yaml::from_str(yaml).unwrap();
        Schedule::from_named(&named, "scheduler").map_err(|e| e.to_string())
    }

    /// The schedule's rate at every step of `total` against `f(t)`.
    fn curve(yaml: &str, total: usize, f: impl Fn(f64) -> f64) {
        let s = sched(yaml).unwrap();
        let st = ScheduleState::default();
        for t in 0..total {
            let (got, want) = (s.lr(2.0, t, total, 1, &st), 2.0 * f(t as f64));
            assert!((got - want).abs() < 1e-12, "{yaml} at {t}: {got} vs {want}");
        }
    }

    #[test]
    fn step_multistep_exponential() {
        curve("{_name_: step, step_size: 3, gamma: 0.5}", 10, |t| 0.5f64.powf((t / 3.0).floor()));
        curve("{_name_: multistep, milestones: [2, 5]}", 8, |t| 0.1f64.powi((t >= 2.0) as i32 + (t >= 5.0) as i32));
        curve("{_name_: exponential, gamma: 0.9}", 10, |t| 0.9f64.powf(t));
    }

    #[test]
    fn linear_and_polynomial_with_warmup() {
        curve(
            "{_name_: linear, warmup_steps: 4}",
            20,
            |t| {
                if t < 4.0 { (t + 1.0) / 4.0 } else { 1.0 - (t - 4.0) / 16.0 }
            },
        );
        curve("{_name_: polynomial, warmup_steps: 2, training_steps: 12, power: 2, min_lr_ratio: 0.1}", 20, |t| {
            if t < 2.0 { (t + 1.0) / 2.0 } else { 0.1 + 0.9 * (1.0 - ((t - 2.0) / 10.0).min(1.0)).powi(2) }
        });
    }

    #[test]
    fn cosine_restarts_follow_timm_cycles() {
        let cos = |t_cur: f64, t_i: f64, peak: f64| 0.1 + 0.5 * (peak - 0.1) * (1.0 + (PI * t_cur / t_i).cos());
        curve("{_name_: cosine_restarts, cycle_steps: 5, min_lr_ratio: 0.1, cycle_decay: 0.5}", 20, |t| {
            let i = (t / 5.0).floor();
            cos(t - 5.0 * i, 5.0, 0.5f64.powf(i))
        });
        // Cycles of 4, 8, 16 steps (cycle_mul 2), limited to two.
        curve("{_name_: cosine_restarts, cycle_steps: 4, cycle_mul: 2, cycle_limit: 2, min_lr_ratio: 0.1}", 20, |t| {
            match t {
                t if t < 4.0 => cos(t, 4.0, 1.0),
                t if t < 12.0 => cos(t - 4.0, 8.0, 1.0),
                _ => 0.1,
            }
        });
    }

    #[test]
    fn one_cycle_matches_torch_phases() {
        // torch: up over pct_start·N - 1 steps from lr/25, then down to lr/25/1e4 at N - 1.
        let (n, lo, hi) = (20.0, 1.0 / 25.0, 1.0);
        let min = lo / 1e4;
        let up_end = 0.3 * n - 1.0;
        let cos = |from: f64, to: f64, p: f64| to + (from - to) / 2.0 * ((PI * p).cos() + 1.0);
        curve("{_name_: one_cycle}", 20, |t| {
            if t <= up_end { cos(lo, hi, t / up_end) } else { cos(hi, min, (t - up_end) / (n - 1.0 - up_end)) }
        });
        curve("{_name_: one_cycle, anneal_strategy: linear, total_steps: 10, pct_start: 0.5}", 10, |t| {
            if t <= 4.0 { lo + (hi - lo) * t / 4.0 } else { hi + (min - hi) * (t - 4.0) / 5.0 }
        });
    }

    #[test]
    fn sequential_restarts_each_schedule_at_its_milestone() {
        let d4l = "{_name_: sequential, milestones: [3], schedulers: [{name: linear, kwargs: {warmup_steps: 3, training_steps: 3}}, {name: exponential, kwargs: {gamma: 0.5}}]}";
        curve(d4l, 10, |t| if t < 3.0 { (t + 1.0) / 3.0 } else { 0.5f64.powf(t - 3.0) });
        let e = sched("{_name_: sequential, milestones: [], schedulers: [constant, constant]}").unwrap_err();
        assert!(e.contains("`scheduler.milestones`") && e.contains("one fewer"), "{e}");
        let e = sched("{_name_: sequential, milestones: [2], schedulers: [constant, plateau]}").unwrap_err();
        assert!(e.contains("`scheduler.schedulers.1._name_`") && e.contains("plateau"), "{e}");
        let e = sched("{_name_: sequential, milestones: [2], schedulers: [constant, {_name_: stp}]}").unwrap_err();
        assert!(e.contains("unknown scheduler `stp`") && e.contains("did you mean `step`"), "{e}");
    }

    #[test]
    fn interval_and_frequency_as_lightning() {
        // 5 optimizer steps an epoch; the StepLR steps once every 2 epochs.
        let s =
            sched("{_name_: step, step_size: 1, gamma: 0.5, out_cfg_kwargs: {interval: epoch, frequency: 2}}").unwrap();
        let st = ScheduleState::default();
        let lrs: Vec<f64> = (0..30).step_by(5).map(|step| s.lr(1.0, step, 30, 5, &st)).collect();
        assert_eq!(lrs, vec![1.0, 1.0, 0.5, 0.5, 0.25, 0.25]);
        assert_eq!(s.to_named().options["interval"], Value::from("epoch"));
        // A root config's warmup applies to schedules without their own.
        let s = sched("{_name_: exponential, gamma: 0.5, warmup_steps: 2}").unwrap();
        let lrs: Vec<f64> = (0..4).map(|t| s.lr(1.0, t, 10, 5, &st)).collect();
        assert_eq!(lrs, vec![0.5, 0.5, 0.25, 0.125]);
        let e = sched("{_name_: constant, interval: hour}").unwrap_err();
        assert!(e.contains("`scheduler.interval`") && e.contains("epoch"), "{e}");
        assert!(sched("{_name_: constant, frequency: 0}").unwrap_err().contains("`scheduler.frequency`"));
    }

    #[test]
    fn bad_ranges_name_the_key() {
        for (yaml, key) in [
            ("{_name_: step, step_size: 2, gamma: -0.1}", "scheduler.gamma"),
            ("{_name_: exponential, gamma: .nan}", "scheduler.gamma"),
            ("{_name_: plateau, factor: -1}", "scheduler.factor"),
            ("{_name_: plateau, factor: .nan}", "scheduler.factor"),
            ("{_name_: step, step_size: 0}", "scheduler.step_size"),
            ("{_name_: multistep, milestones: [5, 2]}", "scheduler.milestones"),
            ("{_name_: one_cycle, pct_start: 1.5}", "scheduler.pct_start"),
            ("{_name_: cosine_restarts, cycle_steps: 3, cycle_mul: -2}", "scheduler.cycle_mul"),
        ] {
            let e = sched(yaml).unwrap_err();
            assert!(e.contains(&format!("`{key}`")), "{yaml}: {e}");
        }
    }
}
