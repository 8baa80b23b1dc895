//! Optimizer settings of a layer's SSM parameters: the `lr` / `wd` options of state-spaces/s4's
//! kernels (`register(name, tensor, lr, wd)`), a number for every SSM parameter, null for the
//! optimizer's, or a map by parameter kind (`{dt: 0.001, A: 0.001, B: null}`). A learning rate
//! of 0 freezes the parameter (the reference registers it as a buffer).

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `lr` or `wd` of the SSM parameters: one value (null: the optimizer's) or one per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum SsmHyper {
    /// The same value for every kind (`None`: the optimizer's).
    All(Option<f64>),
    /// Per kind, in the order written; a kind not listed takes the layer's fallback.
    Each(Vec<(String, Option<f64>)>),
}

impl SsmHyper {
    /// `{key: value}` for each pair (config defaults).
    pub fn each(pairs: &[(&str, f64)]) -> Self {
        SsmHyper::Each(pairs.iter().map(|(k, v)| (k.to_string(), Some(*v))).collect())
    }

    /// The value for `kind`; `missing` where a map does not list it.
    pub fn get(&self, kind: &str, missing: Option<f64>) -> Option<f64> {
        match self {
            SsmHyper::All(v) => *v,
            SsmHyper::Each(m) => m.iter().find(|(k, _)| k == kind).map_or(missing, |(_, v)| *v),
        }
    }

    /// Checks map keys against `allowed` and values for sign; `path` is the option's path.
    pub fn check(&self, path: &str, allowed: &[&str]) -> Result<(), ConfigError> {
        let values: Vec<(String, Option<f64>)> = match self {
            SsmHyper::All(v) => vec![(String::new(), *v)],
            SsmHyper::Each(m) => m.clone(),
        };
        for (key, v) in values {
            let at = if key.is_empty() { path.to_string() } else { format!("{path}.{key}") };
            if !key.is_empty() && !allowed.contains(&key.as_str()) {
                return Err(ConfigError::Key {
                    path: at,
                    msg: format!("unknown SSM parameter kind `{key}`; allowed: {}", allowed.join(", ")),
                });
            }
            if let Some(x) = v
                && !(x >= 0.0 && x.is_finite())
            {
                return Err(ConfigError::Key {
                    path: at,
                    msg: format!("must be a finite number ≥ 0 or null, got {x}"),
                });
            }
        }
        Ok(())
    }
}

impl Serialize for SsmHyper {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SsmHyper::All(v) => v.serialize(s),
            SsmHyper::Each(m) => {
                let mut map = s.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SsmHyper {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SsmHyper;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, null, or a map from SSM parameter kind to a number or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<SsmHyper, E> {
                Ok(SsmHyper::All(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<SsmHyper, E> {
                Ok(SsmHyper::All(None))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SsmHyper, E> {
                Ok(SsmHyper::All(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SsmHyper, E> {
                Ok(SsmHyper::All(Some(v as f64)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SsmHyper, E> {
                Ok(SsmHyper::All(Some(v as f64)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<SsmHyper, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, Option<f64>>()? {
                    out.push((k, v));
                }
                Ok(SsmHyper::Each(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One kind of SSM parameter of a layer: the names it covers and how its options apply.
#[derive(Debug, Clone, Copy)]
pub struct SsmKind {
    /// Key in the `lr` / `wd` maps (`dt`, `A`, `B`, …).
    pub key: &'static str,
    /// Parameter names relative to the layer (`kernel.inv_dt`); absent ones are skipped.
    pub names: &'static [&'static str],
    /// Whether `wd` applies (false: always the optimizer's, as s4.py registers `C`).
    pub takes_wd: bool,
}

/// The resolved optimizer settings of one kind of SSM parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct SsmGroup {
    /// Kind key, shown as the optimizer group `ssm.<key>`.
    pub key: &'static str,
    /// Parameter names relative to the layer.
    pub names: &'static [&'static str],
    /// Learning rate (`None`: the optimizer's; `Some(0.0)`: frozen).
    pub lr: Option<f64>,
    /// Weight decay (`None`: the optimizer's).
    pub wd: Option<f64>,
}

impl SsmGroup {
    /// Whether the parameters are frozen (`lr: 0`, a buffer in the reference).
    pub fn frozen(&self) -> bool {
        self.lr == Some(0.0)
    }

    /// Whether the settings are the optimizer's own (no group needed).
    pub fn is_default(&self) -> bool {
        self.lr.is_none() && self.wd.is_none()
    }
}

/// Resolves `lr` / `wd` for each kind; `missing` is the value of a kind a map leaves out.
pub fn resolve(
    kinds: &[SsmKind],
    lr: &SsmHyper,
    wd: &SsmHyper,
    missing_lr: Option<f64>,
    missing_wd: Option<f64>,
) -> Vec<SsmGroup> {
    kinds
        .iter()
        .map(|k| SsmGroup {
            key: k.key,
            names: k.names,
            lr: lr.get(k.key, missing_lr),
            wd: if k.takes_wd { wd.get(k.key, missing_wd) } else { None },
        })
        .collect()
}

/// Checks `lr` against every kind and `wd` against the kinds it applies to.
pub fn check(path: &str, kinds: &[SsmKind], lr: &SsmHyper, wd: &SsmHyper) -> Result<(), ConfigError> {
    let all: Vec<&str> = kinds.iter().map(|k| k.key).collect();
    let with_wd: Vec<&str> = kinds.iter().filter(|k| k.takes_wd).map(|k| k.key).collect();
    lr.check(&format!("{path}.lr"), &all)?;
    wd.check(&format!("{path}.wd"), &with_wd)
}
