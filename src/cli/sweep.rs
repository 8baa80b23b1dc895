//! `wavessm fit -m …`: runs the sweep, then ranks its runs in one table (the `runs` table of
//! the sweep folder) and reports failed runs with the tail of their logs.

use anyhow::{Result, bail};

use super::runs::{Format, render};
use crate::config::ConfigRequest;
use crate::train::run_info::{RunInfo, find_runs, lower_is_better};
use crate::tune::multirun::multirun;

/// Runs a sweep and prints its summary.
pub fn run(request: &ConfigRequest, yes: bool, resume: bool) -> Result<()> {
    if resume {
        bail!("--resume continues one run; a sweep's failed runs are retried by launcher.max_retries");
    }
    let result = multirun(request, yes)?;
    let mut runs: Vec<RunInfo> = find_runs(&result.dir).iter().filter_map(|d| RunInfo::read(d).ok()).collect();
    runs.sort_by(|a, b| {
        let key = |r: &RunInfo| r.best.map(|(v, _)| if lower_is_better(&r.monitor) { v } else { -v });
        key(a).unwrap_or(f64::INFINITY).total_cmp(&key(b).unwrap_or(f64::INFINITY))
    });
    if !runs.is_empty() {
        print!("{}", render(&runs, Format::Table));
    }
    let failed: Vec<_> = result.jobs.iter().filter(|j| j.status == "failed").collect();
    for j in &failed {
        eprintln!(
            "run {} failed after {} attempt(s) ({}):\n{}",
            j.index,
            j.attempts,
            j.overrides.join(" "),
            j.error.as_deref().unwrap_or("")
        );
    }
    let interrupted = result.jobs.iter().filter(|j| j.status == "interrupted" || j.status == "pending").count();
    println!(
        "sweep: {} runs, {} done, {} failed, {} interrupted; {}",
        result.jobs.len(),
        result.jobs.iter().filter(|j| j.status == "done").count(),
        failed.len(),
        interrupted,
        result.dir.join("sweep.yaml").display()
    );
    if !failed.is_empty() {
        bail!("{} of {} runs failed", failed.len(), result.jobs.len());
    }
    Ok(())
}
