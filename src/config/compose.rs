//! Hydra-style composition: a root `config.yaml` whose `defaults:` list picks one option per
//! config group (`model: s4d` loads `configs/model/s4d.yaml` under the key `model`), or several
//! merged in order (`logger: [csv, tensorboard]`, `logger=[csv,mlflow]`), experiment
//! files that re-select groups with `override /group: option`, LightningCLI `-c FILE`s merged on
//! top, then key overrides applied in command-line order. A `pipeline` (data, task, schedule and
//! training settings of one benchmark, as in state-spaces/s4) is an overlay applied before the
//! experiment.

use std::path::Path;

use serde_yaml::{Mapping, Value};

use super::overrides::{Override, merge};
use super::sources::{ConfigFile, ConfigSources};
use super::{ConfigError, suggest};

/// Groups whose option is a global overlay rather than a section of the tree.
const OVERLAY_GROUPS: &[&str] = &["pipeline", "experiment"];

/// One command-line item after classification.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `group=option` or `group=[a,b]` (merged in order); empty for `group=null`: drop the group.
    Select { group: String, options: Vec<String> },
    /// A key override.
    Key(Override),
}

/// Splits Hydra tokens into group selections and key overrides, after reading the s4 repo's
/// names as ours (see [`super::compat`]; notes go to stderr). `None`: nothing to do.
pub fn classify(sources: &ConfigSources, token: &str) -> Result<Option<Item>, ConfigError> {
    match super::compat::translate(token, &mut |n| eprintln!("note: {n}"))? {
        super::compat::Translated::Drop => Ok(None),
        super::compat::Translated::Token(t) => classify_token(sources, &t).map(Some),
    }
}

fn classify_token(sources: &ConfigSources, token: &str) -> Result<Item, ConfigError> {
    if let Some((key, raw)) = token.split_once('=')
        && !key.starts_with(['+', '~'])
        && !key.contains('.')
        && !key.is_empty()
        && sources.is_group(key)
    {
        let bad = || ConfigError::Override {
            token: token.into(),
            why: format!("`{key}` is a config group: choose one of {} (or a list)", sources.options(key).join(", ")),
        };
        let options = option_list(super::overrides::parse_value(raw)).ok_or_else(bad)?;
        return Ok(Item::Select { group: key.into(), options });
    }
    Ok(Item::Key(Override::parse_hydra(token)?))
}

/// The options a group value names: null → none, a name → one, a list of names → each.
fn option_list(v: Value) -> Option<Vec<String>> {
    match v {
        Value::Null => Some(vec![]),
        Value::String(s) => Some(vec![s]),
        Value::Sequence(items) => items.into_iter().map(|i| i.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

/// A parsed config file: its `defaults:` entries, its body, and where the body goes.
struct Parsed {
    defaults: Vec<Default>,
    body: Value,
    global: bool,
}

/// One `defaults:` entry.
#[derive(Debug, Clone)]
enum Default {
    SelfMarker,
    /// `group: option` or `group: [a, b]` (`override /group: …` alike; empty for null);
    /// `absolute` for `/group`.
    Group {
        group: String,
        options: Vec<String>,
        absolute: bool,
    },
}

fn parse_file(file: &ConfigFile) -> Result<Parsed, ConfigError> {
    let err = |msg: String| ConfigError::File { origin: file.origin.clone(), msg };
    let global = file
        .text
        .lines()
        .take_while(|l| l.trim_start().starts_with('#') || l.trim().is_empty())
        .any(|l| l.replace(' ', "").starts_with("#@package_global_"));
    let mut body: Value = serde_yaml::from_str(&file.text).map_err(|e| err(e.to_string()))?;
    if body.is_null() {
        body = Value::Mapping(Mapping::new());
    }
    let map = body.as_mapping_mut().ok_or_else(|| err("the top level must be a mapping of keys".into()))?;
    let mut defaults = Vec::new();
    if let Some(list) = map.remove("defaults") {
        let Value::Sequence(items) = list else {
            return Err(err("`defaults` must be a list".into()));
        };
        for item in items {
            defaults.push(match item {
                Value::String(s) if s == "_self_" => Default::SelfMarker,
                Value::Mapping(m) if m.len() == 1 => {
                    let (k, v) = m.into_iter().next().expect("one entry");
                    let key = k.as_str().ok_or_else(|| err("a `defaults` key must be a string".into()))?;
                    let key = key.strip_prefix("override ").unwrap_or(key).trim();
                    let (absolute, group) = match key.strip_prefix('/') {
                        Some(g) => (true, g),
                        None => (false, key),
                    };
                    let shown = super::inline_yaml(&v);
                    let options = option_list(v).ok_or_else(|| {
                        err(format!("`defaults` entry `{key}` must name an option or a list of them, got {shown}"))
                    })?;
                    Default::Group { group: group.to_string(), options, absolute }
                }
                other => return Err(err(format!("unsupported `defaults` entry {}", super::inline_yaml(&other)))),
            });
        }
    }
    Ok(Parsed { defaults, body, global })
}

fn read_option(sources: &ConfigSources, group: &str, option: &str) -> Result<ConfigFile, ConfigError> {
    let rel = format!("{group}/{option}.yaml");
    let io = |e: std::io::Error| ConfigError::File { origin: rel.clone(), msg: e.to_string() };
    sources.read(&rel).map_err(io)?.ok_or_else(|| {
        let options = sources.options(group);
        ConfigError::Group {
            group: group.into(),
            option: option.into(),
            msg: format!("no config `{rel}`{}; available: {}", suggest(option, &options), options.join(", ")),
        }
    })
}

/// A rewrite of the merged tree into our keys, run before the key overrides.
pub type Dialect<'a> = dyn FnMut(&mut Value) -> Result<(), ConfigError> + 'a;

/// Composes the full config tree from the root, the `-c` files and the command line.
pub fn compose(
    sources: &ConfigSources,
    files: &[&Path],
    items: &[Item],
    dialect: &mut Dialect,
) -> Result<Value, ConfigError> {
    let files = files
        .iter()
        .map(|f| {
            let origin = f.display().to_string();
            crate::io::read_text_capped(f, crate::io::MAX_CONFIG_BYTES, "a config file")
                .map(|text| ConfigFile { origin: origin.clone(), text })
                .map_err(|e| ConfigError::File { origin, msg: e.to_string() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    compose_files(sources, &files, items, dialect)
}

/// [`compose`] with the `-c` files' texts already read.
pub fn compose_files(
    sources: &ConfigSources,
    files: &[ConfigFile],
    items: &[Item],
    dialect: &mut Dialect,
) -> Result<Value, ConfigError> {
    let root_file = sources
        .read("config.yaml")
        .map_err(|e| ConfigError::File { origin: "config.yaml".into(), msg: e.to_string() })?
        .ok_or_else(|| ConfigError::File { origin: "config.yaml".into(), msg: "root config not found".into() })?;
    let root = parse_file(&root_file)?;

    // 1. Which option each group uses: root defaults, then experiment/-c file defaults,
    //    with command-line selections winning over both.
    let mut order: Vec<String> = Vec::new();
    let mut chosen: Chosen = std::collections::HashMap::new();
    let mut self_at = None;
    for d in &root.defaults {
        match d {
            Default::SelfMarker => self_at = Some(order.len()),
            Default::Group { group, options, .. } => {
                order.push(group.clone());
                chosen.insert(group.clone(), options.clone());
            }
        }
    }
    let cli: Cli = items
        .iter()
        .filter_map(|i| match i {
            Item::Select { group, options } => Some((group.as_str(), options)),
            Item::Key(_) => None,
        })
        .collect();
    let select = |group: &str, options: Vec<String>, from_cli: bool, order: &mut Vec<String>, chosen: &mut Chosen| {
        if !from_cli && cli.contains_key(group) {
            return;
        }
        if !order.iter().any(|g| g == group) {
            order.push(group.to_string());
        }
        chosen.insert(group.to_string(), options);
    };
    for (g, o) in &cli {
        select(g, (*o).clone(), true, &mut order, &mut chosen);
    }
    // Pipeline, experiment and -c files act as global overlays, in that order; their defaults
    // re-select groups. The experiment comes from the command line, else a -c file, else the
    // root; the pipeline from the command line, a -c file, the experiment (`/pipeline: …`), or
    // the root.
    let mut files_parsed = Vec::new();
    for f in files {
        let mut p = parse_file(f)?;
        p.global = true;
        files_parsed.push(p);
    }
    let pick = |group: &str, parsed: &[&Parsed]| -> Option<Vec<String>> {
        match cli.get(group) {
            Some(o) => Some((*o).clone()),
            None => parsed.iter().rev().find_map(|p| default_option(p, group)),
        }
    };
    let file_refs: Vec<&Parsed> = files_parsed.iter().collect();
    let experiment =
        match single("experiment", pick("experiment", &file_refs).or_else(|| chosen.get("experiment").cloned()))? {
            Some(exp) => Some(parse_file(&read_option(sources, "experiment", &exp)?)?),
            None => None,
        };
    let mut with_exp: Vec<&Parsed> = experiment.iter().collect();
    with_exp.extend(file_refs);
    let pipeline = single("pipeline", pick("pipeline", &with_exp).or_else(|| chosen.get("pipeline").cloned()))?;
    let mut overlays = Vec::new();
    if let Some(p) = pipeline {
        overlays.push(parse_file(&read_option(sources, "pipeline", &p)?)?);
    }
    overlays.extend(experiment);
    overlays.extend(files_parsed);
    for o in &overlays {
        for d in &o.defaults {
            if let Default::Group { group, options, .. } = d {
                select(group, options.clone(), false, &mut order, &mut chosen);
            }
        }
    }

    // 2. Build the tree: each selected group under its package, the root body at `_self_`.
    let mut tree = Value::Mapping(Mapping::new());
    let self_at = self_at.unwrap_or(order.len());
    for (i, group) in order.iter().enumerate() {
        if i == self_at {
            merge(&mut tree, root.body.clone());
        }
        if OVERLAY_GROUPS.contains(&group.as_str()) {
            continue;
        }
        for option in chosen.get(group).into_iter().flatten() {
            load_group(sources, group, option, &cli, &mut tree, 0)?;
        }
    }
    if self_at >= order.len() {
        merge(&mut tree, root.body.clone());
    }
    for o in overlays {
        merge(&mut tree, o.body);
    }
    // Groups set to null on the command line drop their section.
    for (g, o) in &cli {
        if o.is_empty()
            && let Some(m) = tree.as_mapping_mut()
        {
            m.remove(g.replace('/', ".").as_str());
        }
    }

    dialect(&mut tree)?;
    // 3. Key overrides, in order.
    for item in items {
        if let Item::Key(o) = item {
            o.apply(&mut tree)?;
        }
    }
    Ok(tree)
}

/// Which options each group uses (empty: none).
type Chosen = std::collections::HashMap<String, Vec<String>>;
/// The command line's group selections.
type Cli<'a> = std::collections::HashMap<&'a str, &'a Vec<String>>;

/// The options a file's `defaults:` picks for `group`, if it names it (empty: null).
fn default_option(p: &Parsed, group: &str) -> Option<Vec<String>> {
    p.defaults.iter().rev().find_map(|d| match d {
        Default::Group { group: g, options, .. } if g == group => Some(options.clone()),
        _ => None,
    })
}

/// The one option of an overlay group (`experiment`, `pipeline`), which cannot be a list.
fn single(group: &str, options: Option<Vec<String>>) -> Result<Option<String>, ConfigError> {
    match options.unwrap_or_default().as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(ConfigError::Group {
            group: group.into(),
            option: format!("[{}]", many.join(",")),
            msg: format!("`{group}` takes one option, not a list"),
        }),
    }
}

/// Loads `group/option.yaml` (and its own nested defaults) into `tree` at its package.
fn load_group(
    sources: &ConfigSources,
    group: &str,
    option: &str,
    cli: &Cli,
    tree: &mut Value,
    depth: usize,
) -> Result<(), ConfigError> {
    if depth > 8 {
        return Err(ConfigError::Group {
            group: group.into(),
            option: option.into(),
            msg: "defaults nest too deep (a cycle?)".into(),
        });
    }
    let parsed = parse_file(&read_option(sources, group, option)?)?;
    let mut sub = Value::Mapping(Mapping::new());
    let mut body_done = false;
    for d in &parsed.defaults {
        match d {
            Default::SelfMarker => {
                merge(&mut sub, parsed.body.clone());
                body_done = true;
            }
            Default::Group { group: g, options, absolute, .. } => {
                let full = if *absolute { g.clone() } else { format!("{group}/{g}") };
                let chosen = cli.get(full.as_str()).copied().unwrap_or(options);
                for o in chosen {
                    // Nested groups land at their own package, relative to the root.
                    load_group(sources, &full, o, cli, tree, depth + 1)?;
                }
            }
        }
    }
    if !body_done {
        merge(&mut sub, parsed.body);
    }
    if parsed.global {
        merge(tree, sub);
    } else {
        let mut wrapped = sub;
        for seg in group.split('/').rev() {
            let mut m = Mapping::new();
            m.insert(Value::String(seg.to_string()), wrapped);
            wrapped = Value::Mapping(m);
        }
        merge(tree, wrapped);
    }
    Ok(())
}
