//! OmegaConf interpolation, resolved once on the composed and overridden tree (so
//! `model.d_model=256` on the command line reaches every `${..d_model}`).
//!
//! Forms: `${a.b}` (absolute), `${.x}` (a sibling), `${..x}` (the parent's child; each extra dot
//! climbs one more level), `${oc.env:VAR}` / `${oc.env:VAR,default}`, `${now:%Y-%m-%d_%H-%M-%S}`.
//! A value that is exactly one interpolation takes the target's type (a number stays a number, a
//! mapping is copied); interpolations inside a longer string become text. Environment values and
//! defaults are read as YAML 1.2 scalars, like command-line values, so `${oc.env:BS,16}` can
//! fill an integer key. A cycle or a missing target is an error naming the chain of keys.

use std::collections::HashMap;

use serde_yaml::{Mapping, Value};

use super::{ConfigError, inline_yaml};

/// Resolves every interpolation in `root`, in place.
pub fn resolve(root: &mut Value) -> Result<(), ConfigError> {
    if !contains_interpolation(root) {
        return Ok(());
    }
    let mut r = Resolver { root, done: HashMap::new(), stack: Vec::new(), now: Now::current() };
    let resolved = r.value_at(&[])?;
    *root = resolved;
    Ok(())
}

/// A key path: mapping keys and sequence indices as text.
type Path = Vec<String>;

fn dotted(p: &[String]) -> String {
    if p.is_empty() { "<root>".into() } else { p.join(".") }
}

fn contains_interpolation(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("${"),
        Value::Mapping(m) => m.values().any(contains_interpolation),
        Value::Sequence(s) => s.iter().any(contains_interpolation),
        _ => false,
    }
}

struct Resolver<'a> {
    root: &'a Value,
    done: HashMap<Path, Value>,
    /// Keys being resolved, outermost first (a repeat is a cycle).
    stack: Vec<Path>,
    now: Now,
}

impl Resolver<'_> {
    /// The fully resolved value at `path`.
    fn value_at(&mut self, path: &[String]) -> Result<Value, ConfigError> {
        if let Some(v) = self.done.get(path) {
            return Ok(v.clone());
        }
        if let Some(start) = self.stack.iter().position(|p| p == path) {
            let mut chain: Vec<String> = self.stack[start..]
                .iter()
                .filter(|p| is_interpolation(lookup(self.root, p)))
                .map(|p| dotted(p))
                .collect();
            chain.push(dotted(path));
            return Err(ConfigError::Key {
                path: dotted(&self.stack[start]),
                msg: format!("interpolation cycle: {}", chain.join(" → ")),
            });
        }
        let raw = lookup(self.root, path).ok_or_else(|| self.missing(path))?.clone();
        self.stack.push(path.to_vec());
        let out = match raw {
            Value::String(s) if s.contains("${") => self.interpolate(&s, path),
            Value::Mapping(m) => {
                let mut out = Mapping::new();
                for (k, _) in &m {
                    let key = k.as_str().map(str::to_string).unwrap_or_else(|| inline_yaml(k));
                    let mut child = path.to_vec();
                    child.push(key);
                    let v = self.value_at(&child);
                    out.insert(k.clone(), v?);
                }
                Ok(Value::Mapping(out))
            }
            Value::Sequence(items) => (0..items.len())
                .map(|i| {
                    let mut child = path.to_vec();
                    child.push(i.to_string());
                    self.value_at(&child)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Sequence),
            other => Ok(other),
        };
        self.stack.pop();
        let out = out?;
        self.done.insert(path.to_vec(), out.clone());
        Ok(out)
    }

    /// The error for a target that does not exist, naming the chain that led to it.
    fn missing(&self, target: &[String]) -> ConfigError {
        let chain: Vec<&Path> = self.stack.iter().filter(|p| is_interpolation(lookup(self.root, p))).collect();
        let first = chain.first().map(|p| dotted(p)).unwrap_or_else(|| dotted(target));
        let mut names: Vec<String> = chain.iter().map(|p| dotted(p)).collect();
        names.push(dotted(target));
        ConfigError::Key {
            path: first,
            msg: format!("interpolation target `{}` does not exist (chain: {})", dotted(target), names.join(" → ")),
        }
    }

    /// Resolves one string holding `${…}`s; `at` is its own key.
    fn interpolate(&mut self, s: &str, at: &[String]) -> Result<Value, ConfigError> {
        let pieces = split(s).map_err(|msg| ConfigError::Key { path: dotted(at), msg })?;
        if let [Piece::Expr(e)] = pieces.as_slice() {
            return self.expr(e, at);
        }
        let mut out = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => out.push_str(&t),
                Piece::Expr(e) => match self.expr(&e, at)? {
                    Value::String(v) => out.push_str(&v),
                    v @ (Value::Number(_) | Value::Bool(_) | Value::Null) => out.push_str(&inline_yaml(&v)),
                    _ => {
                        return Err(ConfigError::Key {
                            path: dotted(at),
                            msg: format!("`${{{e}}}` is a mapping or a list and cannot be part of a string"),
                        });
                    }
                },
            }
        }
        Ok(Value::String(out))
    }

    /// Evaluates the inside of one `${…}`.
    fn expr(&mut self, e: &str, at: &[String]) -> Result<Value, ConfigError> {
        let bad = |msg: String| ConfigError::Key { path: dotted(at), msg };
        if let Some(args) = e.strip_prefix("oc.env:") {
            let (var, default) = match args.split_once(',') {
                Some((v, d)) => (v.trim(), Some(unquote(d.trim()))),
                None => (args.trim(), None),
            };
            return match (std::env::var(var), default) {
                (Ok(v), _) => Ok(super::overrides::parse_value(&v)),
                (Err(_), Some(d)) => Ok(super::overrides::parse_value(&d)),
                (Err(_), None) => Err(bad(format!(
                    "`${{{e}}}`: environment variable `{var}` is not set (give a default: `${{oc.env:{var},…}}`)"
                ))),
            };
        }
        if let Some(fmt) = e.strip_prefix("now:") {
            return self.now.format(fmt).map(Value::String).map_err(|m| bad(format!("`${{{e}}}`: {m}")));
        }
        if let Some((resolver, _)) = e.split_once(':') {
            return Err(bad(format!("`${{{e}}}`: unknown resolver `{resolver}`; supported: oc.env, now")));
        }
        let target = target_path(e, at).map_err(|m| bad(format!("`${{{e}}}`: {m}")))?;
        self.value_at(&target)
    }
}

fn is_interpolation(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::String(s)) if s.contains("${"))
}

/// The absolute key path an interpolation at `at` refers to.
fn target_path(e: &str, at: &[String]) -> Result<Path, String> {
    let e = e.trim();
    let dots = e.len() - e.trim_start_matches('.').len();
    let rest = &e[dots..];
    if rest.is_empty() || rest.split('.').any(str::is_empty) {
        return Err("not a key path".into());
    }
    let mut base: Path = Vec::new();
    if dots > 0 {
        // `.x`: the node holding this key; each further dot is one level up.
        let up = dots; // the key itself, then dots-1 more levels
        if up > at.len() {
            return Err(format!("climbs {} levels above `{}`, past the root", dots - 1, dotted(at)));
        }
        base = at[..at.len() - up].to_vec();
    }
    base.extend(rest.split('.').map(str::to_string));
    Ok(base)
}

/// The value at a key path (numeric segments index sequences).
fn lookup<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path {
        cur = match cur {
            Value::Mapping(m) => m.get(seg.as_str())?,
            Value::Sequence(s) => s.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// A piece of an interpolated string.
#[derive(Debug, PartialEq)]
enum Piece {
    Text(String),
    Expr(String),
}

/// Splits a string into text and `${…}` expressions (`\${` is a literal `${`).
fn split(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('\\') {
            text.push_str(&rest[..i - 1]);
            text.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        text.push_str(&rest[..i]);
        let body = &rest[i + 2..];
        let end = body.find('}').ok_or_else(|| format!("unclosed `${{` in {s:?}"))?;
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Expr(body[..end].to_string()));
        rest = &body[end + 1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    s.to_string()
}

/// One local timestamp shared by every `${now:…}` of a resolution.
struct Now {
    tm: libc::tm,
}

impl Now {
    fn current() -> Self {
        let t: libc::time_t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as libc::time_t)
            .unwrap_or(0);
        // SAFETY: `localtime_r` writes into the zeroed `tm` we own and reads only `t`.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        unsafe { libc::localtime_r(&t, &mut tm) };
        Self { tm }
    }

    /// strftime's common subset: `%Y %y %m %d %H %M %S %j %%`.
    fn format(&self, fmt: &str) -> Result<String, String> {
        let t = &self.tm;
        let mut out = String::new();
        let mut chars = fmt.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('Y') => out.push_str(&format!("{:04}", t.tm_year + 1900)),
                Some('y') => out.push_str(&format!("{:02}", (t.tm_year + 1900) % 100)),
                Some('m') => out.push_str(&format!("{:02}", t.tm_mon + 1)),
                Some('d') => out.push_str(&format!("{:02}", t.tm_mday)),
                Some('H') => out.push_str(&format!("{:02}", t.tm_hour)),
                Some('M') => out.push_str(&format!("{:02}", t.tm_min)),
                Some('S') => out.push_str(&format!("{:02}", t.tm_sec)),
                Some('j') => out.push_str(&format!("{:03}", t.tm_yday + 1)),
                Some('%') => out.push('%'),
                Some(o) => return Err(format!("unsupported format `%{o}`; supported: %Y %y %m %d %H %M %S %j %%")),
                None => return Err("format ends with `%`".into()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(y: &str) -> Result<Value, String> {
        let mut v: Value = serde_yaml::from_str(y).unwrap();
        resolve(&mut v).map_err(|e| e.to_string())?;
        Ok(v)
    }

    fn at<'a>(v: &'a Value, p: &str) -> &'a Value {
        super::super::overrides::get(v, p).unwrap_or_else(|| panic!("no {p}"))
    }

    #[test]
    fn absolute_relative_and_typed() {
        let v = run("model:\n  d_model: 8\n  layer:\n    n_ssm: ${..d_model}\n    h: ${.n_ssm}\n    name: s4-${model.d_model}\n  copy: ${model.layer}\nlr: ${optimizer.lr}\noptimizer: {lr: 0.5}\nl: ['${lr}', x]")
            .unwrap();
        assert_eq!(at(&v, "model.layer.n_ssm"), &Value::from(8));
        assert_eq!(at(&v, "model.layer.h"), &Value::from(8));
        assert_eq!(at(&v, "model.layer.name"), &Value::from("s4-8"));
        assert_eq!(at(&v, "model.copy.n_ssm"), &Value::from(8), "a mapping target is copied, resolved");
        assert_eq!(at(&v, "lr"), &Value::from(0.5));
        assert_eq!(at(&v, "l.0"), &Value::from(0.5));
    }

    #[test]
    fn env_and_now() {
        // A variable no test environment sets.
        let v =
            run("a: ${oc.env:WAVESSM_TEST_UNSET_VAR,16}\nb: x${oc.env:WAVESSM_TEST_UNSET_VAR,'y'}\nc: ${oc.env:PATH}")
                .unwrap();
        assert_eq!(at(&v, "a"), &Value::from(16));
        assert_eq!(at(&v, "b"), &Value::from("xy"));
        assert_eq!(at(&v, "c"), &Value::from(std::env::var("PATH").unwrap()));
        let e = run("a: ${oc.env:WAVESSM_TEST_UNSET_VAR}").unwrap_err();
        assert!(e.contains("`a`") && e.contains("WAVESSM_TEST_UNSET_VAR") && e.contains("not set"), "{e}");
        let v = run("name: run_${now:%Y-%m-%d_%H-%M-%S}").unwrap();
        let s = at(&v, "name").as_str().unwrap();
        let re = regex::Regex::new(r"^run_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d$").unwrap();
        assert!(re.is_match(s), "{s}");
        assert!(run("n: ${now:%Q}").unwrap_err().contains("unsupported format `%Q`"));
        assert!(run("n: ${foo:bar}").unwrap_err().contains("unknown resolver `foo`"));
    }

    #[test]
    fn cycles_and_missing_targets_name_the_chain() {
        let e = run("a: ${b}\nb: ${c.d}\nc: {d: '${a}'}").unwrap_err();
        assert!(e.contains("interpolation cycle: a → b → c.d → a"), "{e}");
        let e = run("a: ${b}\nb: ${model.d_modle}\nmodel: {d_model: 1}").unwrap_err();
        assert!(
            e.contains("`a`") && e.contains("`model.d_modle` does not exist") && e.contains("a → b → model.d_modle"),
            "{e}"
        );
        let e = run("x: {y: '${...z}'}").unwrap_err();
        assert!(e.contains("past the root"), "{e}");
        let e = run("x: a${m}\nm: {k: 1}").unwrap_err();
        assert!(e.contains("cannot be part of a string"), "{e}");
        assert!(run("x: ${a").unwrap_err().contains("unclosed"));
    }

    #[test]
    fn escaped_and_plain_values_stay() {
        let v = run("a: \\${b}\nb: 1").unwrap();
        assert_eq!(at(&v, "a"), &Value::from("${b}"));
        let v = run("a: {b: [1, 2]}").unwrap();
        assert_eq!(at(&v, "a.b.1"), &Value::from(2));
    }
}
