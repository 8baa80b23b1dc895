//! Hydra's sweep syntax for `wavessm fit -m`: every override whose value is a comma list,
//! `range(start, stop[, step])`, `choice(a, b, …)` or `glob(pattern)` (over a config group's
//! options, e.g. `experiment=glob(lra/*)`) is an axis; the runs are their Cartesian product.
//! A quoted value (`'a,b'`, `"a,b"`) is one value even with commas.

use crate::config::{ConfigError, ConfigSources};

/// One swept key and its values (as override strings).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The override's key (`model.d_model`, `experiment`, `+x`).
    pub key: String,
    /// The values, in order.
    pub values: Vec<String>,
}

/// A sweep: fixed overrides and the axes to expand.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sweep {
    /// Overrides every run gets, in command-line order.
    pub fixed: Vec<String>,
    /// The swept keys.
    pub axes: Vec<Axis>,
}

impl Sweep {
    /// Splits `tokens` into fixed overrides and axes; `sources` resolves `glob(…)` over groups.
    pub fn parse(tokens: &[String], sources: &ConfigSources) -> Result<Self, ConfigError> {
        let mut sweep = Sweep::default();
        for token in tokens {
            match parse_axis(token, sources)? {
                Some(axis) => sweep.axes.push(axis),
                None => sweep.fixed.push(token.clone()),
            }
        }
        Ok(sweep)
    }

    /// Number of runs (the product of the axes' lengths), saturating.
    pub fn len(&self) -> usize {
        self.axes.iter().fold(1usize, |n, a| n.saturating_mul(a.values.len()))
    }

    /// Whether the sweep has no runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overrides of every run: fixed ones, then one value per axis; the last axis varies
    /// fastest (as Hydra's basic sweeper).
    pub fn jobs(&self) -> Vec<Vec<String>> {
        let mut jobs = vec![self.fixed.clone()];
        for axis in &self.axes {
            jobs = jobs
                .into_iter()
                .flat_map(|job| {
                    axis.values.iter().map(move |v| {
                        let mut j = job.clone();
                        j.push(format!("{}={v}", axis.key));
                        j
                    })
                })
                .collect();
        }
        jobs
    }
}

/// The axis of one override, or `None` for a plain one.
fn parse_axis(token: &str, sources: &ConfigSources) -> Result<Option<Axis>, ConfigError> {
    let Some((key, raw)) = token.split_once('=') else { return Ok(None) };
    let bad = |why: String| ConfigError::Override { token: token.into(), why };
    let call = |name: &str| raw.strip_prefix(name).and_then(|r| r.strip_prefix('(')).and_then(|r| r.strip_suffix(')'));
    let values = if let Some(args) = call("range") {
        range(&split_top(args).map_err(bad)?).map_err(bad)?
    } else if let Some(args) = call("choice") {
        split_top(args).map_err(bad)?
    } else if let Some(pattern) = call("glob") {
        let group = key.trim_start_matches('+');
        if !sources.is_group(group) {
            return Err(bad(format!("glob(…) selects options of a config group, and `{group}` is none")));
        }
        let pat = glob::Pattern::new(pattern.trim()).map_err(|e| bad(format!("bad glob pattern: {e}")))?;
        let mut hits: Vec<String> = sources.options(group).into_iter().filter(|o| pat.matches(o)).collect();
        hits.sort();
        if hits.is_empty() {
            return Err(bad(format!("no `{group}` option matches; options: {}", sources.options(group).join(", "))));
        }
        hits
    } else {
        let parts = split_top(raw).map_err(bad)?;
        if parts.len() < 2 {
            return Ok(None);
        }
        parts
    };
    if values.iter().any(|v| v.is_empty()) {
        return Err(bad("an empty value in a sweep list".into()));
    }
    Ok(Some(Axis { key: key.to_string(), values }))
}

/// Splits on commas outside quotes and brackets; strips the quotes of quoted items.
fn split_top(s: &str) -> Result<Vec<String>, String> {
    let (mut out, mut cur, mut depth, mut quote) = (Vec::new(), String::new(), 0i32, None::<char>);
    let mut quoted = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                quoted = true;
            }
            (None, '[' | '{' | '(') => {
                depth += 1;
                cur.push(c);
            }
            (None, ']' | '}' | ')') => {
                depth -= 1;
                cur.push(c);
            }
            (None, ',') if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_string());
            }
            (None, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err("unclosed quote".into());
    }
    if depth != 0 {
        return Err("unbalanced brackets".into());
    }
    out.push(cur.trim().to_string());
    if quoted && out.len() == 1 {
        // A single quoted value keeps its quotes for the YAML parser (a string).
        return Ok(vec![format!("'{}'", out[0].replace('\'', "''"))]);
    }
    Ok(out)
}

/// `range(start, stop[, step])` as Python's: integers when all arguments are, else floats.
fn range(args: &[String]) -> Result<Vec<String>, String> {
    if !(2..=3).contains(&args.len()) {
        return Err("range takes (start, stop) or (start, stop, step)".into());
    }
    if let Ok(ints) = args.iter().map(|a| a.parse::<i64>()).collect::<Result<Vec<_>, _>>() {
        let (a, b, s) = (ints[0], ints[1], ints.get(2).copied().unwrap_or(1));
        if s == 0 {
            return Err("range step must not be 0".into());
        }
        let n = if (s > 0 && b > a) || (s < 0 && b < a) { ((b - a).abs() + s.abs() - 1) / s.abs() } else { 0 };
        if n > 100_000 {
            return Err(format!("range has {n} values; at most 100000"));
        }
        return Ok((0..n).map(|i| (a + i * s).to_string()).collect());
    }
    let f = args
        .iter()
        .map(|a| a.parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| "range takes numbers".to_string())?;
    let (a, b, s) = (f[0], f[1], f.get(2).copied().unwrap_or(1.0));
    if !(a.is_finite() && b.is_finite() && s.is_finite()) || s == 0.0 {
        return Err("range needs finite numbers and a non-zero step".into());
    }
    let n = ((b - a) / s).ceil().max(0.0);
    if n > 100_000.0 {
        return Err(format!("range has {n} values; at most 100000"));
    }
    Ok((0..n as usize).map(|i| format!("{}", a + i as f64 * s)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(tokens: &[&str]) -> Result<Sweep, ConfigError> {
        Sweep::parse(&tokens.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &ConfigSources::embedded_only())
    }

    #[test]
    fn axes_expand_to_the_cartesian_product() {
        let s =
            sweep(&["model.d_model=64,128", "seed=0,1,2", "optimizer.lr=1e-3,3e-3", "trainer.max_epochs=1"]).unwrap();
        assert_eq!(s.len(), 12);
        let jobs = s.jobs();
        assert_eq!(jobs.len(), 12);
        assert_eq!(jobs[0], ["trainer.max_epochs=1", "model.d_model=64", "seed=0", "optimizer.lr=1e-3"]);
        assert_eq!(jobs[11], ["trainer.max_epochs=1", "model.d_model=128", "seed=2", "optimizer.lr=3e-3"]);
    }

    #[test]
    fn range_choice_glob_and_quotes() {
        let s = sweep(&["seed=range(0,3)", "x=range(0.5, 1.5, 0.5)", "model=choice(s4d, dss)"]).unwrap();
        assert_eq!(s.axes[0].values, ["0", "1", "2"]);
        assert_eq!(s.axes[1].values, ["0.5", "1"]);
        assert_eq!(s.axes[2].values, ["s4d", "dss"]);
        let g = sweep(&["experiment=glob(lra/s4-*)"]).unwrap();
        assert!(g.axes[0].values.len() >= 6 && g.axes[0].values.iter().all(|v| v.starts_with("lra/s4-")), "{g:?}");
        let q = sweep(&["name='a,b'", "tags=[1,2]"]).unwrap();
        assert!(q.axes.is_empty(), "{q:?}");
        assert_eq!(q.fixed, ["name='a,b'", "tags=[1,2]"]);
        let e = sweep(&["seed=range(0,5,0)"]).unwrap_err().to_string();
        assert!(e.contains("step"), "{e}");
        let e = sweep(&["data.path=glob(*)"]).unwrap_err().to_string();
        assert!(e.contains("config group"), "{e}");
        assert!(sweep(&["x='a"]).unwrap_err().to_string().contains("unclosed quote"));
    }
}
