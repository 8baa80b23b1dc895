//! The experiment configuration: composition from YAML groups, command-line overrides in the
//! Hydra and LightningCLI dialects, and strict typed validation with errors that name the key's
//! full path and the closest valid names.

pub mod check;
pub mod compat;
pub mod compose;
pub mod interpolate;
pub mod lightning;
mod lightning_trainer;
mod named;
pub mod overrides;
pub mod sources;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_yaml::Value;

pub use compose::{Item, classify};
pub use named::Named;
pub use overrides::Override;
pub use sources::ConfigSources;

/// Everything that can be wrong with a configuration, each naming where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A malformed or inapplicable command-line override.
    #[error("override `{token}`: {why}")]
    Override { token: String, why: String },
    /// A key with a wrong name, type or value.
    #[error("`{path}`: {msg}")]
    Key { path: String, msg: String },
    /// A config file that cannot be read or parsed.
    #[error("{origin}: {msg}")]
    File { origin: String, msg: String },
    /// A group selection naming no config file.
    #[error("`{group}={option}`: {msg}")]
    Group { group: String, option: String, msg: String },
}

/// What the command line says about the configuration.
#[derive(Debug, Clone, Default)]
pub struct ConfigRequest {
    /// Extra config folders searched before the embedded ones (`--config-dir`).
    pub config_dirs: Vec<PathBuf>,
    /// LightningCLI `-c FILE`s, merged in order after the defaults.
    pub files: Vec<PathBuf>,
    /// Hydra tokens (`a.b=1`, `model=s4d`) and converted `--a.b 1` flags, in order.
    pub tokens: Vec<String>,
    /// Files merged under one section after the `-c` files (D4L's `--model_cfg`, …): the
    /// section key and the file.
    pub section_files: Vec<(String, PathBuf)>,
}

impl ConfigRequest {
    /// Composes the config tree and applies the overrides (typed validation happens one level
    /// up, in the experiment).
    pub fn compose(&self) -> Result<Value, ConfigError> {
        self.compose_with(&mut |_| Ok(()))
    }

    /// [`Self::compose`] with `dialect` rewriting the merged files into our keys before the
    /// command-line overrides apply (LightningCLI sections, see [`lightning`]).
    pub fn compose_with(&self, dialect: &mut compose::Dialect) -> Result<Value, ConfigError> {
        let sources = ConfigSources::new(self.config_dirs.clone());
        let items: Vec<Item> =
            self.tokens.iter().filter_map(|t| classify(&sources, t).transpose()).collect::<Result<_, _>>()?;
        let files: Vec<&Path> = self.files.iter().map(|p| p.as_path()).collect();
        let sections = self.read_section_files()?;
        let mut hook = |tree: &mut Value| {
            for (key, body) in &sections {
                merge_section(tree, key, body.clone());
            }
            dialect(tree)
        };
        compose::compose(&sources, &files, &items, &mut hook)
    }

    /// Reads [`Self::section_files`]; two files for one section must name the same entry.
    fn read_section_files(&self) -> Result<Vec<(String, Value)>, ConfigError> {
        let mut out: Vec<(String, Value)> = Vec::new();
        for (key, f) in &self.section_files {
            let origin = f.display().to_string();
            let text = crate::io::read_text_capped(f, crate::io::MAX_CONFIG_BYTES, "a config file")
                .map_err(|e| ConfigError::File { origin: origin.clone(), msg: e.to_string() })?;
            let body: Value =
                serde_yaml::from_str(&text).map_err(|e| ConfigError::File { origin, msg: e.to_string() })?;
            let name = |v: &Value| v.get("_name_").and_then(Value::as_str).map(str::to_string);
            if let Some((_, earlier)) = out.iter().find(|(k, _)| k == key)
                && let (Some(a), Some(b)) = (name(earlier), name(&body))
                && a != b
            {
                return Err(ConfigError::Key {
                    path: format!("{key}._name_"),
                    msg: format!(
                        "`{}` names `{b}` but an earlier `{key}` file names `{a}`: one dataset gives the \
                         training and validation splits",
                        f.display()
                    ),
                });
            }
            out.push((key.clone(), body));
        }
        Ok(out)
    }
}

/// Merges `body` under `key`; a body naming another registry entry than the tree's replaces it.
fn merge_section(tree: &mut Value, key: &str, body: Value) {
    let Some(root) = tree.as_mapping_mut() else { return };
    let slot = root.entry(key.into()).or_insert(Value::Null);
    let current = match &*slot {
        Value::String(s) => Some(s.clone()),
        v => v.get("_name_").and_then(Value::as_str).map(str::to_string),
    };
    let new = body.get("_name_").and_then(Value::as_str);
    if new.is_some_and(|n| current.as_deref() != Some(n)) {
        *slot = Value::Null;
    }
    overrides::merge(slot, body);
}

/// Deserializes `value` into `T`, turning serde's message into one that names `prefix.path`,
/// the offending key and the closest valid keys.
pub fn from_value_at<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let inner = e.path().to_string();
        let mut path = join_path(prefix, if inner == "." { "" } else { &inner });
        let raw = e.into_inner().to_string();
        let msg = explain(&raw, &mut path);
        ConfigError::Key { path, msg }
    })
}

/// Joins dotted path pieces, skipping empty ones.
pub fn join_path(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

/// Rewrites serde's standard messages ("unknown field `x`, expected one of ...").
fn explain(raw: &str, path: &mut String) -> String {
    let ticked = |s: &str| -> Vec<String> { s.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = ticked(tail);
        if !path.ends_with(field) {
            *path = join_path(path, field);
        }
        return format!(
            "unknown key{}; valid keys: {}",
            suggest(field, &valid),
            if valid.is_empty() { "none".to_string() } else { valid.join(", ") }
        );
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let (variant, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let valid = ticked(tail);
        return format!("unknown value `{variant}`{}; allowed: {}", suggest(variant, &valid), valid.join(", "));
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ")
        && let Some((got, expected)) = rest.split_once(", expected ")
    {
        return format!("wrong type: expected {expected}, got {got}");
    }
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or(rest);
        *path = join_path(path, field);
        return "required key is missing".into();
    }
    raw.to_string()
}

/// Checks that a run name (`name`, `logger.name`) is one path component, so the run stays
/// inside `logger.save_dir`: not empty, no `/` or `\\`, not `.` or `..`, no control characters.
pub fn check_run_name(path: &str, name: &str) -> Result<(), ConfigError> {
    let why = if name.is_empty() {
        "is empty"
    } else if name == "." || name == ".." {
        "is a relative folder reference"
    } else if name.contains(['/', '\\']) {
        "contains a path separator"
    } else if name.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(ConfigError::Key {
        path: path.into(),
        msg: format!("{name:?} {why}; a run name is one folder name inside `logger.save_dir`"),
    })
}

/// "; did you mean `x`?" when a candidate is close to `word`, else "".
pub fn suggest(word: &str, candidates: &[String]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(s, _)| *s >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// A value as one line of YAML, for messages.
pub fn inline_yaml(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        _ => serde_yaml::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_default(),
    }
}
