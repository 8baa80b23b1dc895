//! `wavessm plot RUN… [--metrics val/accuracy,train/loss] [--out curves.png]`: learning
//! curves of one or many runs on shared axes, labelled by the config keys that differ.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::train::figures::{Curves, learning_curves};
use crate::train::run_info::{RunInfo, differing_keys, find_runs};

/// Options of `plot`.
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Run folders, or folders searched for runs.
    #[arg(value_name = "RUN", required = true)]
    pub runs: Vec<PathBuf>,
    /// Metrics to plot, comma-separated `split/name` (default: every validation metric and
    /// train/loss).
    #[arg(long, value_delimiter = ',')]
    pub metrics: Vec<String>,
    /// Output file, `.png` or `.svg`.
    #[arg(long, default_value = "curves.png")]
    pub out: PathBuf,
}

/// Runs the command.
pub fn run(a: &PlotArgs) -> Result<()> {
    let mut infos = Vec::new();
    for root in &a.runs {
        let found = find_runs(root);
        if found.is_empty() {
            bail!("{}: no run folder (with a config.yaml) there", root.display());
        }
        for dir in found {
            infos.push(RunInfo::read(&dir)?);
        }
    }
    let keys = differing_keys(&infos);
    let curves: Vec<Curves> = infos
        .iter()
        .map(|r| {
            let label = if keys.is_empty() {
                format!("{}/{}", r.name, r.version)
            } else {
                keys.iter()
                    .map(|k| format!("{k}={}", r.config.get(k).map_or("-", String::as_str)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            Curves::read(&r.dir, label)
        })
        .collect::<Result<_>>()?;
    let metrics = if a.metrics.is_empty() {
        let mut m: Vec<String> =
            curves.iter().flat_map(|c| c.series.keys()).filter(|k| k.starts_with("val/")).cloned().collect();
        m.sort();
        m.dedup();
        m.push("train/loss".into());
        m
    } else {
        a.metrics.clone()
    };
    learning_curves(&curves, &metrics, &a.out)?;
    println!("wrote {} ({} runs, {})", a.out.display(), curves.len(), metrics.join(", "));
    Ok(())
}
