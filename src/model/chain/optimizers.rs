//! A chain's `optimizers` (D4L's structure): each entry names links and gives them an
//! optimizer, its keyword arguments and a list of schedulers. Entries become parameter groups
//! of the trainer's optimizer (regexes over the links' parameter paths), so each keeps its own
//! optimizer state and schedule; every trainable parameter must belong to exactly one entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

use super::links::LinkSpec;
use crate::config::{ConfigError, Named, from_value_at};
use crate::train::config::{OptimizerName, ParamGroupConfig};

/// D4L's `lr_scheduler`: schedulers chained at milestones, with Lightning's
/// `interval`/`frequency` under `out_cfg_kwargs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSchedulerConfig {
    /// The schedules (`{name, kwargs}` or `{_name_: …}`).
    pub schedulers: Vec<Value>,
    /// Scheduler steps where the next schedule takes over (one fewer than schedules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub milestones: Vec<usize>,
    /// `interval: step|epoch`, `frequency`.
    #[serde(default, skip_serializing_if = "Mapping::is_empty")]
    pub out_cfg_kwargs: Mapping,
}

/// One entry of `optimizers`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainOptimizerConfig {
    /// The links it trains.
    pub links: Vec<String>,
    /// The optimizer (`adamw` by default).
    #[serde(default)]
    pub optimizer_name: OptimizerName,
    /// Its options (`lr`, `weight_decay`, `betas`, `momentum`, …; torch's names).
    #[serde(default)]
    pub kwargs: Mapping,
    /// Its schedule (default: constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_scheduler: Option<ChainSchedulerConfig>,
}

/// The regex of a link's parameter paths.
fn link_regex(links: &[String]) -> String {
    let alts: Vec<String> = links.iter().map(|l| regex::escape(l)).collect();
    format!(r"^({})\.", alts.join("|"))
}

impl ChainOptimizerConfig {
    /// The parameter group of entry `path`, checked as `optimizer.groups` entries are.
    pub fn to_group(&self, path: &str) -> Result<ParamGroupConfig, ConfigError> {
        let mut m = self.kwargs.clone();
        for key in ["params", "_name_", "scheduler"] {
            if m.contains_key(key) {
                let msg = "set by the entry itself (`links`, `optimizer_name`, `lr_scheduler`)".into();
                return Err(ConfigError::Key { path: format!("{path}.kwargs.{key}"), msg });
            }
        }
        m.insert("params".into(), link_regex(&self.links).into());
        m.insert("_name_".into(), serde_yaml::to_value(self.optimizer_name).unwrap_or(Value::Null));
        let sched = match &self.lr_scheduler {
            Some(s) => {
                let mut o = Mapping::new();
                o.insert("schedulers".into(), Value::Sequence(s.schedulers.clone()));
                o.insert("milestones".into(), serde_yaml::to_value(&s.milestones).unwrap_or(Value::Null));
                if !s.out_cfg_kwargs.is_empty() {
                    o.insert("out_cfg_kwargs".into(), Value::Mapping(s.out_cfg_kwargs.clone()));
                }
                Named { name: "sequential".into(), options: o }
            }
            None => Named { name: "constant".into(), options: Mapping::new() },
        };
        m.insert("scheduler".into(), serde_yaml::to_value(&sched).unwrap_or(Value::Null));
        let g: ParamGroupConfig = from_value_at(Value::Mapping(m), &format!("{path}.kwargs"))?;
        let sched_path = format!("{path}.lr_scheduler");
        crate::train::schedules::Schedule::from_named(&sched, &sched_path)?;
        for (key, v) in [("lr", g.lr), ("weight_decay", g.weight_decay), ("eps", g.eps), ("momentum", g.momentum)] {
            if let Some(v) = v {
                crate::config::check::non_negative(&format!("{path}.kwargs.{key}"), v)?;
            }
        }
        Ok(g)
    }
}

/// Checks that the entries name links that exist, and that every link with trainable
/// parameters (`params`: its trainable parameter paths) is in exactly one entry. Errors name
/// the orphan parameters and the double claims.
pub fn check_claims(
    entries: &[ChainOptimizerConfig],
    links: &BTreeMap<String, LinkSpec>,
    params: &BTreeMap<String, Vec<String>>,
    path: &str,
) -> Result<(), ConfigError> {
    let mut owner: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        let p = format!("{path}.{i}.links");
        if e.links.is_empty() {
            return Err(ConfigError::Key { path: p, msg: "names no link".into() });
        }
        for l in &e.links {
            let Some(spec) = links.get(l) else {
                let names: Vec<&String> = links.keys().collect();
                return Err(ConfigError::Key { path: p, msg: format!("no link `{l}`; links: {names:?}") });
            };
            if spec.freeze {
                return Err(ConfigError::Key { path: p, msg: format!("link `{l}` is frozen (`freeze: true`)") });
            }
            if let Some(j) = owner.insert(l, i) {
                let msg = format!("link `{l}` is claimed twice: by {path}.{j} and by {path}.{i}");
                return Err(ConfigError::Key { path: p, msg });
            }
        }
    }
    let orphans: Vec<&String> =
        params.iter().filter(|(l, _)| !owner.contains_key(l.as_str())).flat_map(|(_, ps)| ps).collect();
    if let Some(first) = orphans.first() {
        let shown: Vec<&&String> = orphans.iter().take(5).collect();
        let more = if orphans.len() > 5 { format!(" and {} more", orphans.len() - 5) } else { String::new() };
        let link = first.split('.').next().unwrap_or(first);
        return Err(ConfigError::Key {
            path: path.into(),
            msg: format!(
                "{} trainable parameter(s) in no entry: {shown:?}{more}; add link `{link}` to an entry or set its `freeze: true`",
                orphans.len()
            ),
        });
    }
    Ok(())
}
