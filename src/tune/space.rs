//! A search space (`search:`, usually from a `hparams_search/` config): one distribution per
//! config key (`loguniform(1e-4, 1e-2)`, `uniform(0, 0.3)`, `randint(1, 5)`, `choice(64, 128)`),
//! the number of trials, the metric and how to sample.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// How trials are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sampler {
    /// Independent draws (seeded).
    #[default]
    Random,
    /// Every combination of `choice(…)` values (no continuous distributions), in order.
    Grid,
}

/// How trials are stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Asynchronous successive halving (Li et al., MLSys 2020).
    #[default]
    Asha,
    /// Every trial runs to `max_t`.
    Fifo,
}

fn sixteen() -> usize {
    16
}
fn one() -> usize {
    1
}
fn three() -> usize {
    3
}
fn two() -> usize {
    2
}

/// The `search:` section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Config key → distribution (`optimizer.lr: loguniform(…)`, or nested maps).
    pub search_space: serde_yaml::Value,
    /// Trials to start.
    #[serde(default = "sixteen")]
    pub n_trials: usize,
    /// Validation metric ranked (default: `trainer.monitor`).
    #[serde(default)]
    pub metric: Option<String>,
    /// `max` or `min` (default: `trainer.mode`).
    #[serde(default)]
    pub mode: Option<crate::train::Mode>,
    /// How trials are drawn.
    #[serde(default)]
    pub sampler: Sampler,
    /// How trials are stopped early.
    #[serde(default)]
    pub scheduler: Scheduler,
    /// Epochs every trial gets (ASHA's minimum resource r).
    #[serde(default = "one")]
    pub grace_period: usize,
    /// Epochs of a trial that reaches the top rung (ASHA's R; also `trainer.max_epochs` of every
    /// trial, so schedules are those of a full run).
    pub max_t: usize,
    /// ASHA's η: the top 1/η of a rung is promoted.
    #[serde(default = "three")]
    pub reduction_factor: usize,
    /// Trials running at once.
    #[serde(default = "two")]
    pub max_concurrent: usize,
}

/// One parameter's distribution.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Uniform in [low, high).
    Uniform(f64, f64),
    /// Log-uniform in [low, high).
    LogUniform(f64, f64),
    /// Integers in [low, high).
    RandInt(i64, i64),
    /// One of the values (override strings).
    Choice(Vec<String>),
}

impl Dist {
    /// Parses `name(args)`, naming `path` in errors.
    pub fn parse(expr: &str, path: &str) -> Result<Self, ConfigError> {
        let bad = |msg: String| ConfigError::Key { path: path.into(), msg };
        let (name, args) = expr.trim().strip_suffix(')').and_then(|e| e.split_once('(')).ok_or_else(|| {
            bad(format!("`{expr}` is not a distribution: loguniform(a, b), uniform(a, b), randint(a, b) or choice(…)"))
        })?;
        let args: Vec<String> = args.split(',').map(|a| a.trim().to_string()).filter(|a| !a.is_empty()).collect();
        let nums = || -> Result<(f64, f64), ConfigError> {
            let v: Vec<f64> = args
                .iter()
                .map(|a| a.parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| bad(format!("{name} takes two numbers")))?;
            match v[..] {
                [a, b] if a.is_finite() && b.is_finite() && a < b => Ok((a, b)),
                [a, b] => Err(bad(format!("{name}({a}, {b}): need finite low < high"))),
                _ => Err(bad(format!("{name} takes two numbers"))),
            }
        };
        match name.trim() {
            "uniform" => nums().map(|(a, b)| Dist::Uniform(a, b)),
            "loguniform" => {
                let (a, b) = nums()?;
                if a <= 0.0 {
                    return Err(bad(format!("loguniform({a}, {b}): low must be > 0")));
                }
                Ok(Dist::LogUniform(a, b))
            }
            "randint" => {
                let (a, b) = nums()?;
                if a.fract() != 0.0 || b.fract() != 0.0 {
                    return Err(bad("randint takes integers".into()));
                }
                Ok(Dist::RandInt(a as i64, b as i64))
            }
            "choice" if !args.is_empty() => Ok(Dist::Choice(args)),
            "choice" => Err(bad("choice needs at least one value".into())),
            other => Err(bad(format!("unknown distribution `{other}`; use loguniform, uniform, randint or choice"))),
        }
    }

    /// One draw, as an override value.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> String {
        match self {
            Dist::Uniform(a, b) => format!("{}", rng.random_range(*a..*b)),
            Dist::LogUniform(a, b) => format!("{}", rng.random_range(a.ln()..b.ln()).exp()),
            Dist::RandInt(a, b) => rng.random_range(*a..*b).to_string(),
            Dist::Choice(v) => v[rng.random_range(0..v.len())].clone(),
        }
    }
}

impl SearchConfig {
    /// The parsed distributions by dotted config key, checked.
    pub fn dists(&self) -> Result<Vec<(String, Dist)>, ConfigError> {
        let mut flat = BTreeMap::new();
        crate::train::run_info::flatten(&self.search_space, "", &mut flat);
        if flat.is_empty() || !self.search_space.is_mapping() {
            return Err(ConfigError::Key {
                path: "search.search_space".into(),
                msg: "needs `key: distribution` entries".into(),
            });
        }
        flat.iter().map(|(k, e)| Ok((k.clone(), Dist::parse(e, &format!("search.search_space.{k}"))?))).collect()
    }

    /// Checks ranges, naming `search.<key>`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("search.{key}"), msg });
        self.dists()?;
        if self.n_trials == 0 || self.n_trials > 100_000 {
            return bad("n_trials", format!("must be in 1..=100000, got {}", self.n_trials));
        }
        if self.grace_period == 0 || self.grace_period > self.max_t {
            return bad("grace_period", format!("must be in 1..=max_t ({}), got {}", self.max_t, self.grace_period));
        }
        if self.reduction_factor < 2 {
            return bad("reduction_factor", format!("must be ≥ 2, got {}", self.reduction_factor));
        }
        if self.max_concurrent == 0 {
            return bad("max_concurrent", "must be at least 1".into());
        }
        Ok(())
    }

    /// The overrides of trial `i` (random: seeded by `seed` and `i`; grid: the i-th combination).
    pub fn trial(&self, i: usize, seed: u64) -> Result<Vec<String>, ConfigError> {
        let dists = self.dists()?;
        match self.sampler {
            Sampler::Random => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                Ok(dists.iter().map(|(k, d)| format!("{k}={}", d.sample(&mut rng))).collect())
            }
            Sampler::Grid => {
                let mut rest = i;
                let mut out = Vec::new();
                for (k, d) in dists.iter().rev() {
                    let Dist::Choice(v) = d else {
                        return Err(ConfigError::Key {
                            path: format!("search.search_space.{k}"),
                            msg: "sampler: grid needs choice(…) for every key".into(),
                        });
                    };
                    out.push(format!("{k}={}", v[rest % v.len()]));
                    rest /= v.len();
                }
                out.reverse();
                Ok(out)
            }
        }
    }

    /// How many trials the sampler can give (grid: the product of the choices).
    pub fn capacity(&self) -> usize {
        match self.sampler {
            Sampler::Random => self.n_trials,
            Sampler::Grid => self
                .dists()
                .map(|d| d.iter().map(|(_, d)| if let Dist::Choice(v) = d { v.len() } else { 1 }).product::<usize>())
                .unwrap_or(0)
                .min(self.n_trials),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_parse_sample_and_refuse_nonsense() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let d = Dist::parse("loguniform(1e-4, 1e-2)", "k").unwrap();
        for _ in 0..100 {
            let v: f64 = d.sample(&mut rng).parse().unwrap();
            assert!((1e-4..1e-2).contains(&v));
        }
        assert_eq!(Dist::parse("choice(64, 128)", "k").unwrap(), Dist::Choice(vec!["64".into(), "128".into()]));
        for (e, word) in [
            ("uniform(1, 0)", "low < high"),
            ("loguniform(0, 1)", "> 0"),
            ("normal(0, 1)", "unknown"),
            ("3", "not a distribution"),
        ] {
            let err = Dist::parse(e, "search.search_space.x").unwrap_err().to_string();
            assert!(err.contains(word) && err.contains("search.search_space.x"), "{e}: {err}");
        }
    }
}
