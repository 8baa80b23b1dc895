//! Learning-rate schedules as a multiplier of each group's base rate, a pure function of the
//! optimizer step and a small serializable state (so resuming restores it exactly).

use std::collections::BTreeMap;
use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

use super::Mode;
use super::schedules::{
    CosineRestartsConfig, ExponentialConfig, LinearConfig, MultiStepConfig, OneCycleConfig, PolynomialConfig,
    SequentialConfig, StepConfig,
};

crate::registry! {
    /// Schedules selectable as `scheduler` (one line per schedule).
    pub enum SchedulerConfig ("scheduler") {
        "constant" => Constant(ConstantConfig),
        "cosine_warmup" => CosineWarmup(CosineWarmupConfig),
        "plateau" => Plateau(PlateauConfig),
        "step" => Step(StepConfig),
        "multistep" => MultiStep(MultiStepConfig),
        "exponential" => Exponential(ExponentialConfig),
        "linear" => Linear(LinearConfig),
        "polynomial" => Polynomial(PolynomialConfig),
        "cosine_restarts" => CosineRestarts(CosineRestartsConfig),
        "one_cycle" => OneCycle(OneCycleConfig),
        "sequential" => Sequential(SequentialConfig),
    }
}

/// Options of `constant`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConstantConfig {
    /// Linear warmup steps from 0.
    #[serde(default)]
    pub warmup_steps: usize,
}

/// Options of `cosine_warmup` (the s4 repo's names `num_warmup_steps`, `num_training_steps` are
/// accepted as aliases).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CosineWarmupConfig {
    /// Linear warmup steps from 0.
    #[serde(default, alias = "num_warmup_steps")]
    pub warmup_steps: usize,
    /// Final rate as a fraction of the base rate.
    #[serde(default)]
    pub min_lr_ratio: f64,
    /// Length of the cosine in optimizer steps, warmup included; null: the whole run. Past it the
    /// cosine goes on (back up), as transformers' `get_cosine_schedule_with_warmup` that the s4
    /// configs with a `num_training_steps` shorter than the run were trained with.
    #[serde(default, alias = "num_training_steps")]
    pub training_steps: Option<usize>,
}

/// Options of `plateau` (torch's `ReduceLROnPlateau`, epoch-wise on a validation metric).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateauConfig {
    /// Validation metric to watch (`val/accuracy`, `val/loss`, …).
    #[serde(default = "monitor")]
    pub monitor: String,
    /// Whether it should go up (`max`) or down (`min`).
    #[serde(default = "mode")]
    pub mode: Mode,
    /// Multiplier applied at each reduction.
    #[serde(default = "factor")]
    pub factor: f64,
    /// Epochs without improvement before a reduction.
    #[serde(default = "patience")]
    pub patience: usize,
    /// Floor of every group's rate after reductions.
    #[serde(default)]
    pub min_lr: f64,
    /// Linear warmup steps from 0.
    #[serde(default)]
    pub warmup_steps: usize,
}

fn monitor() -> String {
    "val/accuracy".into()
}
fn mode() -> Mode {
    Mode::Max
}
fn factor() -> f64 {
    0.2
}
fn patience() -> usize {
    10
}

/// Mutable part of a schedule (only `plateau` has one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduleState {
    /// Product of the reductions so far.
    pub factor: f64,
    /// Best monitored value.
    pub best: Option<f64>,
    /// Epochs since it improved.
    pub bad_epochs: usize,
}

impl Default for ScheduleState {
    fn default() -> Self {
        Self { factor: 1.0, best: None, bad_epochs: 0 }
    }
}

impl SchedulerConfig {
    /// The learning rate at scheduler step `step` (0-based) of `total`, for base rate `base`.
    pub fn lr(&self, base: f64, step: usize, total: usize, state: &ScheduleState) -> f64 {
        let warm = |w: usize| if step < w { (step + 1) as f64 / w as f64 } else { 1.0 };
        match self {
            SchedulerConfig::Constant(c) => base * warm(c.warmup_steps),
            SchedulerConfig::CosineWarmup(c) => {
                if step < c.warmup_steps {
                    return base * warm(c.warmup_steps);
                }
                let span = c.training_steps.unwrap_or(total).saturating_sub(c.warmup_steps).max(1) as f64;
                let p = (step - c.warmup_steps) as f64 / span;
                let p = if c.training_steps.is_some() { p } else { p.min(1.0) };
                base * (c.min_lr_ratio + (1.0 - c.min_lr_ratio) * 0.5 * (1.0 + (PI * p).cos()))
            }
            SchedulerConfig::Plateau(c) => {
                let lr = base * warm(c.warmup_steps) * state.factor;
                if state.factor < 1.0 { lr.max(c.min_lr) } else { lr }
            }
            SchedulerConfig::Step(c) => c.lr(base, step),
            SchedulerConfig::MultiStep(c) => c.lr(base, step),
            SchedulerConfig::Exponential(c) => c.lr(base, step),
            SchedulerConfig::Linear(c) => c.lr(base, step, total),
            SchedulerConfig::Polynomial(c) => c.lr(base, step, total),
            SchedulerConfig::CosineRestarts(c) => c.lr(base, step),
            SchedulerConfig::OneCycle(c) => c.lr(base, step, total),
            SchedulerConfig::Sequential(c) => c.lr(base, step, total, state),
        }
    }

    /// Updates the state after a validation pass; errors if the monitored metric is missing.
    pub fn on_validation(&self, metrics: &BTreeMap<String, f64>, state: &mut ScheduleState) -> Result<(), String> {
        let SchedulerConfig::Plateau(c) = self else { return Ok(()) };
        let v = *metrics.get(&c.monitor).ok_or_else(|| {
            let names: Vec<String> = metrics.keys().cloned().collect();
            format!("`scheduler.monitor`: no metric `{}`; available: {}", c.monitor, names.join(", "))
        })?;
        let better = match (state.best, c.mode) {
            (None, _) => true,
            (Some(b), Mode::Max) => v > b,
            (Some(b), Mode::Min) => v < b,
        };
        if better {
            state.best = Some(v);
            state.bad_epochs = 0;
        } else {
            state.bad_epochs += 1;
            if state.bad_epochs > c.patience {
                state.factor *= c.factor;
                state.bad_epochs = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_cosine_reaches_the_floor() {
        let s = SchedulerConfig::CosineWarmup(CosineWarmupConfig {
            warmup_steps: 10,
            min_lr_ratio: 0.1,
            training_steps: None,
        });
        let st = ScheduleState::default();
        assert!((s.lr(1.0, 0, 110, &st) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 9, 110, &st) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 10, 110, &st) - 1.0).abs() < 1e-12);
        assert!((s.lr(1.0, 60, 110, &st) - 0.55).abs() < 1e-12);
        assert!((s.lr(1.0, 110, 110, &st) - 0.1).abs() < 1e-12);
        assert!((s.lr(1.0, 150, 110, &st) - 0.1).abs() < 1e-12, "stays at the floor past the run");
    }

    #[test]
    fn explicit_training_steps_follow_transformers_past_the_end() {
        let c: CosineWarmupConfig = serde_yaml::from_str("num_warmup_steps: 10\nnum_training_steps: 110").unwrap();
        let s = SchedulerConfig::CosineWarmup(c);
        let st = ScheduleState::default();
        // The run is longer (1000 steps) than the cosine: it ends at 110 and then rises again.
        assert!((s.lr(1.0, 60, 1000, &st) - 0.5).abs() < 1e-12);
        assert!(s.lr(1.0, 110, 1000, &st).abs() < 1e-12);
        assert!((s.lr(1.0, 160, 1000, &st) - 0.5).abs() < 1e-12);
        assert!((s.lr(1.0, 210, 1000, &st) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn plateau_reduces_after_patience() {
        let s = SchedulerConfig::Plateau(PlateauConfig {
            monitor: "val/accuracy".into(),
            mode: Mode::Max,
            factor: 0.5,
            patience: 1,
            min_lr: 0.3,
            warmup_steps: 0,
        });
        let mut st = ScheduleState::default();
        let m = |v: f64| BTreeMap::from([("val/accuracy".to_string(), v)]);
        for v in [0.5, 0.6, 0.6] {
            s.on_validation(&m(v), &mut st).unwrap();
        }
        assert_eq!(st.factor, 1.0, "one bad epoch is within patience");
        s.on_validation(&m(0.55), &mut st).unwrap();
        assert_eq!(st.factor, 0.5);
        assert_eq!(s.lr(1.0, 5, 10, &st), 0.5);
        st.factor = 0.1;
        assert_eq!(s.lr(1.0, 5, 10, &st), 0.3, "min_lr floors reductions");
        let err = s.on_validation(&BTreeMap::new(), &mut st).unwrap_err();
        assert!(err.contains("no metric `val/accuracy`"), "{err}");
    }
}
