//! `wavessm runs [DIR…]`: one row per run (status, progress, time, best and test metrics, and
//! the config keys that differ between the listed runs); `wavessm runs diff A B`: the config
//! difference of two runs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand, ValueEnum};

use crate::train::run_info::{RunInfo, differing_keys, find_runs, lower_is_better};

/// Options of `runs`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RunsArgs {
    /// `diff A B`.
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// Run folders, or folders searched for runs (default: `runs`).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Sort by a column: a metric (`val/accuracy` sorts by the best monitored value,
    /// `test/accuracy` by the test metric; losses ascending, others descending), `epochs`,
    /// `steps`, `time` or `name`.
    #[arg(long)]
    pub sort: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The config difference of two runs.
    Diff {
        /// First run folder.
        a: PathBuf,
        /// Second run folder.
        b: PathBuf,
    },
}

/// Output formats of `runs`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// A Markdown table.
    Md,
    /// Comma-separated values.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Runs the command.
pub fn run(a: &RunsArgs) -> Result<()> {
    if let Some(RunsCommand::Diff { a, b }) = &a.command {
        print!("{}", diff(&RunInfo::read(a)?, &RunInfo::read(b)?));
        return Ok(());
    }
    let roots = if a.dirs.is_empty() { vec![PathBuf::from("runs")] } else { a.dirs.clone() };
    let mut runs = Vec::new();
    for root in &roots {
        if !root.is_dir() {
            bail!("{}: no such folder", root.display());
        }
        for dir in find_runs(root) {
            runs.push(RunInfo::read(&dir)?);
        }
    }
    if runs.is_empty() {
        bail!(
            "no runs (folders with a config.yaml) under {}",
            roots.iter().map(|r| r.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(key) = &a.sort {
        sort(&mut runs, key)?;
    }
    print!("{}", render(&runs, a.format));
    Ok(())
}

/// Sorts runs by a column, best first.
fn sort(runs: &mut [RunInfo], key: &str) -> Result<()> {
    let value = |r: &RunInfo| -> Option<f64> {
        match key {
            "epochs" => Some(r.epochs as f64),
            "steps" => Some(r.steps as f64),
            "time" => r.wall_time,
            k if k == r.monitor => r.best.map(|b| b.0),
            k => r.test.get(k).copied(),
        }
    };
    if key == "name" {
        runs.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        return Ok(());
    }
    if runs.iter().all(|r| value(r).is_none()) {
        bail!(
            "--sort {key}: no run has that column (use the monitored metric, a test/… metric, epochs, steps, time or name)"
        );
    }
    let asc = lower_is_better(key) && key != "epochs" && key != "steps";
    runs.sort_by(|a, b| match (value(a), value(b)) {
        (Some(x), Some(y)) => {
            if asc {
                x.total_cmp(&y)
            } else {
                y.total_cmp(&x)
            }
        }
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    Ok(())
}

/// The rows as (header, cells).
fn table(runs: &[RunInfo]) -> (Vec<String>, Vec<Vec<String>>) {
    let keys = differing_keys(runs);
    let mut tests: Vec<&String> = runs.iter().flat_map(|r| r.test.keys()).collect();
    tests.sort();
    tests.dedup();
    let monitors: Vec<&str> = {
        let mut m: Vec<&str> = runs.iter().map(|r| r.monitor.as_str()).collect();
        m.dedup();
        m
    };
    let best_col = if monitors.len() == 1 { format!("best {}", monitors[0]) } else { "best (monitor)".into() };
    let mut header: Vec<String> =
        ["name", "version", "status", "epochs", "steps", "time"].iter().map(|s| s.to_string()).collect();
    header.push(best_col);
    header.extend(tests.iter().map(|t| t.to_string()));
    header.extend(keys.iter().cloned());
    let rows = runs
        .iter()
        .map(|r| {
            let mut row = vec![
                r.name.clone(),
                r.version.clone(),
                r.status.clone(),
                r.epochs.to_string(),
                r.steps.to_string(),
                r.wall_time.map(|t| format!("{t:.1}s")).unwrap_or_else(|| "-".into()),
                r.best.map(|(v, e)| format!("{v:.4} (epoch {e})")).unwrap_or_else(|| "-".into()),
            ];
            row.extend(tests.iter().map(|t| r.test.get(*t).map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())));
            row.extend(keys.iter().map(|k| r.config.get(k).cloned().unwrap_or_else(|| "-".into())));
            row
        })
        .collect();
    (header, rows)
}

/// The runs in one of the formats.
pub fn render(runs: &[RunInfo], format: Format) -> String {
    let (header, rows) = table(runs);
    match format {
        Format::Table => {
            let widths: Vec<usize> = (0..header.len())
                .map(|i| {
                    rows.iter().map(|r| r[i].chars().count()).chain([header[i].chars().count()]).max().unwrap_or(0)
                })
                .collect();
            let line = |cells: &[String]| -> String {
                let s: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
                s.join("  ").trim_end().to_string() + "\n"
            };
            std::iter::once(line(&header)).chain(rows.iter().map(|r| line(r))).collect()
        }
        Format::Md => {
            let line = |cells: &[String]| {
                format!("| {} |\n", cells.iter().map(|c| c.replace('|', "\\|")).collect::<Vec<_>>().join(" | "))
            };
            let sep = format!("|{}\n", "---|".repeat(header.len()));
            std::iter::once(line(&header)).chain([sep]).chain(rows.iter().map(|r| line(r))).collect()
        }
        Format::Csv => {
            let quote = |c: &String| {
                if c.contains([',', '"', '\n']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.clone() }
            };
            let line = |cells: &[String]| cells.iter().map(quote).collect::<Vec<_>>().join(",") + "\n";
            std::iter::once(line(&header)).chain(rows.iter().map(|r| line(r))).collect()
        }
        Format::Json => {
            let typed = |c: &String| match c.parse::<f64>() {
                Ok(v) if v.is_finite() => serde_json::json!(v),
                _ => serde_json::json!(c),
            };
            let objs: Vec<BTreeMap<&str, serde_json::Value>> =
                rows.iter().map(|r| header.iter().map(String::as_str).zip(r.iter().map(typed)).collect()).collect();
            serde_json::to_string_pretty(&objs).expect("strings serialize") + "\n"
        }
    }
}

/// `key: a -> b` for every config key that differs (`<absent>` where one run lacks it).
pub fn diff(a: &RunInfo, b: &RunInfo) -> String {
    let mut keys: Vec<&String> = a.config.keys().chain(b.config.keys()).collect();
    keys.sort();
    keys.dedup();
    let absent = "<absent>".to_string();
    let lines: String = keys
        .into_iter()
        .filter(|k| a.config.get(*k) != b.config.get(*k))
        .map(|k| format!("{k}: {} -> {}\n", a.config.get(k).unwrap_or(&absent), b.config.get(k).unwrap_or(&absent)))
        .collect();
    if lines.is_empty() { format!("{} and {}: same config\n", a.dir.display(), b.dir.display()) } else { lines }
}
