//! `wavessm fit -m …`: expands the sweep, checks every run's config before starting any, makes
//! the sweep folder (`<logger.save_dir>/multirun/<UTC time>/` with `sweep.yaml` and one run
//! folder per job), runs the jobs on the configured launcher, and retries failed ones from
//! their last checkpoint up to `launcher.max_retries` times.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::launcher::{Job, LauncherConfig, Outcome, log_tail};
use super::sweep::Sweep;
use crate::config::{ConfigRequest, ConfigSources};
use crate::train::signals::Interrupt;

/// How each job of a sweep ended.
#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    /// Position in the sweep.
    pub index: usize,
    /// Its overrides.
    pub overrides: Vec<String>,
    /// Its run folder.
    pub run: PathBuf,
    /// done | interrupted | failed | pending.
    pub status: String,
    /// Launches (1 + retries).
    pub attempts: usize,
    /// Why it failed, with the tail of its log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `sweep.yaml`: the sweep as asked and how each job ended.
#[derive(Debug, Clone, Serialize)]
struct SweepRecord<'a> {
    command: &'a str,
    config_files: Vec<String>,
    config_dirs: Vec<String>,
    fixed: &'a [String],
    params: std::collections::BTreeMap<&'a str, &'a [String]>,
    launcher: crate::config::Named,
    jobs: &'a [JobRecord],
}

/// A finished (or interrupted) sweep.
pub struct MultirunResult {
    /// The sweep folder.
    pub dir: PathBuf,
    /// Every job.
    pub jobs: Vec<JobRecord>,
}

/// Runs the sweep `request.tokens` describes; `yes` allows more than `launcher.max_runs` runs.
pub fn multirun(request: &ConfigRequest, yes: bool) -> Result<MultirunResult> {
    let sources = ConfigSources::new(request.config_dirs.clone());
    let sweep = Sweep::parse(&request.tokens, &sources)?;
    let overrides = sweep.jobs();
    // Every run's config is checked before any starts.
    let mut configs = Vec::with_capacity(overrides.len());
    for (i, tokens) in overrides.iter().enumerate() {
        let cfg = ConfigRequest { tokens: tokens.clone(), ..request.clone() }
            .resolve()
            .with_context(|| format!("run {i} of the sweep ({})", tokens.join(" ")))?;
        configs.push(cfg);
    }
    let first = configs.first().context("the sweep has no runs")?;
    let launcher = LauncherConfig::from_named(&first.launcher, "launcher")?;
    let max = launcher.launcher().max_runs();
    if overrides.len() > max && !yes {
        bail!("the sweep has {} runs, more than launcher.max_runs = {max}; add --yes to launch them", overrides.len());
    }
    let dir = sweep_dir(&first.logger.save_dir)?;
    let mut jobs: Vec<JobRecord> = overrides
        .iter()
        .enumerate()
        .map(|(i, o)| JobRecord {
            index: i,
            overrides: o.clone(),
            run: dir.join(format!("job_{i}")).join("version_0"),
            status: "pending".into(),
            attempts: 0,
            error: None,
        })
        .collect();
    let record = |jobs: &[JobRecord]| -> Result<()> {
        let rec = SweepRecord {
            command: "fit",
            config_files: request.files.iter().map(|p| p.display().to_string()).collect(),
            config_dirs: request.config_dirs.iter().map(|p| p.display().to_string()).collect(),
            fixed: &sweep.fixed,
            params: sweep.axes.iter().map(|a| (a.key.as_str(), a.values.as_slice())).collect(),
            launcher: launcher.to_named(),
            jobs,
        };
        let yaml = serde_yaml::to_string(&rec)?;
        crate::io::write_atomic(&dir.join("sweep.yaml"), |f| std::io::Write::write_all(f, yaml.as_bytes()))?;
        Ok(())
    };
    record(&jobs)?;
    eprintln!("multirun: {} runs in {}", jobs.len(), dir.display());
    let interrupt = Interrupt::install();
    let retries = launcher.launcher().max_retries();
    for attempt in 0..=retries {
        let todo: Vec<Job> = jobs
            .iter()
            .filter(|j| j.status == "pending" || (j.status == "failed" && attempt > 0))
            .map(|j| Job::fit(request, &j.overrides, &[], &dir, &format!("job_{}", j.index), j.index))
            .collect();
        if todo.is_empty() || interrupt.requested() {
            break;
        }
        let outcomes = launcher.launcher().launch(&todo, &dir, &interrupt)?;
        for (job, outcome) in todo.iter().zip(outcomes) {
            let rec = &mut jobs[job.index];
            rec.attempts += 1;
            (rec.status, rec.error) = match outcome {
                Outcome::Done => ("done".into(), None),
                Outcome::Interrupted => ("interrupted".into(), None),
                Outcome::Failed(why) => ("failed".into(), Some(format!("{why}\n{}", log_tail(&job.log, 8)))),
            };
        }
        record(&jobs)?;
    }
    Ok(MultirunResult { dir, jobs })
}

/// A new `<save_dir>/multirun/<YYYY-MM-DD_HH-MM-SS>[_n]` folder.
fn sweep_dir(save_dir: &Path) -> Result<PathBuf> {
    let base = save_dir.join("multirun");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let stamp = utc_stamp(crate::train::status::now() as i64);
    for n in 0.. {
        let dir = base.join(if n == 0 { stamp.clone() } else { format!("{stamp}_{n}") });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(std::fs::canonicalize(&dir).unwrap_or(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    unreachable!()
}

/// `YYYY-MM-DD_HH-MM-SS` in UTC for Unix seconds `t` (civil-from-days, proleptic Gregorian).
pub fn utc_stamp(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}_{:02}-{:02}-{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamps() {
        assert_eq!(super::utc_stamp(0), "1970-01-01_00-00-00");
        assert_eq!(super::utc_stamp(1_796_000_000), "2026-11-30_00-53-20");
        assert_eq!(super::utc_stamp(951_782_400), "2000-02-29_00-00-00");
    }
}
