//! Command-line overrides in the two dialects researchers already type.
//!
//! Hydra: `key.sub=value`, `group=option`, `+key=value` (add), `++key=value` (add or set),
//! `~key` / `~key=value` (remove), `key=null`. LightningCLI: `--key.sub value`, `--key.sub=value`.
//! Values are parsed as YAML 1.2 scalars or flow collections (`[1, 2]`, `{a: 1}`).

use serde_yaml::{Mapping, Value};

use super::ConfigError;

/// One parsed command-line override.
#[derive(Debug, Clone, PartialEq)]
pub enum Override {
    /// `key.sub=value` or `--key.sub value`: set, creating missing parents.
    Set { path: String, value: Value },
    /// `+key=value` (fails if present) or `++key=value` (`force`: add or replace).
    Add { path: String, value: Value, force: bool },
    /// `~key` or `~key=value` (only when the current value equals `value`).
    Remove { path: String, value: Option<Value> },
}

impl Override {
    /// Parses one Hydra-style token (`a.b=1`, `+a=1`, `~a`).
    pub fn parse_hydra(token: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError::Override { token: token.to_string(), why: why.to_string() };
        if let Some(rest) = token.strip_prefix('~') {
            let (path, value) = match rest.split_once('=') {
                Some((p, v)) => (p, Some(parse_value(v))),
                None => (rest, None),
            };
            check_path(path).map_err(|w| bad(&w))?;
            return Ok(Override::Remove { path: path.to_string(), value });
        }
        let (force, add, rest) = if let Some(r) = token.strip_prefix("++") {
            (true, true, r)
        } else if let Some(r) = token.strip_prefix('+') {
            (false, true, r)
        } else {
            (false, false, token)
        };
        let (path, raw) = rest.split_once('=').ok_or_else(|| bad("expected `key=value`"))?;
        check_path(path).map_err(|w| bad(&w))?;
        let value = parse_value(raw);
        let path = path.to_string();
        Ok(if add { Override::Add { path, value, force } } else { Override::Set { path, value } })
    }

    /// The dotted key this override touches.
    pub fn path(&self) -> &str {
        match self {
            Override::Set { path, .. } | Override::Add { path, .. } | Override::Remove { path, .. } => path,
        }
    }

    /// Applies the override to a config tree.
    pub fn apply(&self, root: &mut Value) -> Result<(), ConfigError> {
        match self {
            Override::Set { path, value } => {
                *slot(root, path, true)?.expect("created") = value.clone();
            }
            Override::Add { path, value, force } => {
                let exists = get(root, path).is_some_and(|v| !v.is_null());
                if exists && !force {
                    return Err(ConfigError::Override {
                        token: format!("+{path}"),
                        why: format!("`{path}` already exists; use `{path}=…` to change it or `++{path}=…` to force"),
                    });
                }
                *slot(root, path, true)?.expect("created") = value.clone();
            }
            Override::Remove { path, value } => {
                let (parent, key) = match path.rsplit_once('.') {
                    Some((p, k)) => (Some(p), k),
                    None => (None, path.as_str()),
                };
                let missing =
                    || ConfigError::Override { token: format!("~{path}"), why: format!("`{path}` does not exist") };
                let map = match parent {
                    Some(p) => slot(root, p, false)?.ok_or_else(missing)?,
                    None => root,
                };
                let map = map.as_mapping_mut().ok_or_else(missing)?;
                let current = map.get(key).ok_or_else(missing)?;
                if let Some(expected) = value
                    && current != expected
                {
                    return Err(ConfigError::Override {
                        token: format!("~{path}"),
                        why: format!(
                            "`{path}` is {}, not {}",
                            super::inline_yaml(current),
                            super::inline_yaml(expected)
                        ),
                    });
                }
                map.remove(key);
            }
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.split('.').any(|s| s.is_empty()) {
        return Err(format!("`{path}` is not a dotted key"));
    }
    if path.contains(char::is_whitespace) {
        return Err(format!("`{path}` contains whitespace"));
    }
    Ok(())
}

/// Parses a command-line value with YAML 1.2 rules; anything unparsable stays a string.
pub fn parse_value(raw: &str) -> Value {
    if raw.is_empty() {
        return Value::String(String::new());
    }
    serde_yaml::from_str::<Value>(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// Reads the value at a dotted path (numeric segments index sequences).
pub fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path.split('.') {
        cur = match cur {
            Value::Mapping(m) => m.get(seg)?,
            Value::Sequence(s) => s.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Finds (and with `create`, makes) the slot at a dotted path.
fn slot<'a>(root: &'a mut Value, path: &str, create: bool) -> Result<Option<&'a mut Value>, ConfigError> {
    let mut cur = root;
    let mut walked = String::new();
    for seg in path.split('.') {
        if cur.is_null() && create {
            *cur = Value::Mapping(Mapping::new());
        }
        cur = match cur {
            Value::Mapping(m) => {
                let key = Value::String(seg.to_string());
                if !m.contains_key(&key) {
                    if !create {
                        return Ok(None);
                    }
                    m.insert(key.clone(), Value::Null);
                }
                m.get_mut(&key).expect("just inserted")
            }
            Value::Sequence(s) => {
                let len = s.len();
                let i = seg.parse::<usize>().ok().filter(|&i| i < len).ok_or_else(|| ConfigError::Override {
                    token: path.to_string(),
                    why: format!("`{walked}` is a list of {len}; `{seg}` is not an index into it"),
                })?;
                &mut s[i]
            }
            other => {
                if !create {
                    return Ok(None);
                }
                return Err(ConfigError::Override {
                    token: path.to_string(),
                    why: format!("`{walked}` is the value {}, it has no key `{seg}`", super::inline_yaml(other)),
                });
            }
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(seg);
    }
    Ok(Some(cur))
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces. A name
/// shorthand (`layer: s4d`) merged with options becomes `{_name_: s4d, ...options}`.
pub fn merge(base: &mut Value, over: Value) {
    if let (Value::String(name), Value::Mapping(o)) = (&*base, &over)
        && !o.contains_key("_name_")
    {
        let mut m = Mapping::new();
        m.insert("_name_".into(), Value::String(name.clone()));
        *base = Value::Mapping(m);
    }
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Value {
        serde_yaml::from_str("trainer: {max_epochs: 3}\nmodel: {layer: {_name_: s4d, d_state: 64}}\nlist: [1, 2]")
            .unwrap()
    }

    #[test]
    fn set_add_remove() {
        let mut t = tree();
        Override::parse_hydra("trainer.max_epochs=5").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "trainer.max_epochs"), Some(&Value::from(5)));
        Override::parse_hydra("+trainer.new=a b").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "trainer.new"), Some(&Value::from("a b")));
        let err = Override::parse_hydra("+trainer.new=1").unwrap().apply(&mut t).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        Override::parse_hydra("++trainer.new=1").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "trainer.new"), Some(&Value::from(1)));
        Override::parse_hydra("~trainer.new").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "trainer.new"), None);
        let err = Override::parse_hydra("~trainer.nope").unwrap().apply(&mut t).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = Override::parse_hydra("~trainer.max_epochs=4").unwrap().apply(&mut t).unwrap_err();
        assert!(err.to_string().contains("not 4"), "{err}");
        Override::parse_hydra("list.1=7").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "list.1"), Some(&Value::from(7)));
        Override::parse_hydra("model.layer=null").unwrap().apply(&mut t).unwrap();
        assert_eq!(get(&t, "model.layer"), Some(&Value::Null));
    }

    #[test]
    fn values_are_typed_yaml_1_2() {
        assert_eq!(parse_value("2"), Value::from(2));
        assert_eq!(parse_value("1e-3"), Value::from(1e-3));
        assert_eq!(parse_value("true"), Value::from(true));
        for s in ["no", "on", "off", "yes", "y", "n"] {
            assert_eq!(parse_value(s), Value::from(s), "{s} must stay a string in YAML 1.2");
        }
        assert_eq!(parse_value("null"), Value::Null);
        assert_eq!(parse_value("[1, 2]"), serde_yaml::from_str::<Value>("[1, 2]").unwrap());
        assert_eq!(parse_value("../data/x"), Value::from("../data/x"));
    }

    #[test]
    fn malformed_tokens_are_errors() {
        assert!(Override::parse_hydra("noequals").is_err());
        assert!(Override::parse_hydra("a..b=1").is_err());
        assert!(Override::parse_hydra("=1").is_err());
        let mut t = tree();
        let err = Override::parse_hydra("trainer.max_epochs.x=1").unwrap().apply(&mut t).unwrap_err();
        assert!(err.to_string().contains("no key `x`"), "{err}");
    }
}
