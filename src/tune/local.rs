//! `launcher=local`: `jobs` processes at once on this machine, each given an equal share of the
//! cores (`RAYON_NUM_THREADS`). Ctrl-C is passed on to the running jobs, which finish their
//! step and checkpoint; no new job starts.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::launcher::{Job, Launch, Outcome, Running};
use crate::train::signals::Interrupt;

fn one() -> usize {
    1
}
fn thousand() -> usize {
    1000
}

/// Options of the local launcher.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// Jobs run at once.
    #[serde(default = "one")]
    pub jobs: usize,
    /// Threads per job (null: the cores divided by `jobs`).
    #[serde(default)]
    pub threads_per_job: Option<usize>,
    /// Retries of a failed job (each resumes from its last checkpoint).
    #[serde(default)]
    pub max_retries: usize,
    /// Sweeps larger than this need `--yes`.
    #[serde(default = "thousand")]
    pub max_runs: usize,
}

impl LocalConfig {
    fn threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.threads_per_job.unwrap_or((cores / self.jobs.max(1)).max(1))
    }
}

impl LocalConfig {
    /// Starts `job` as a child process with its share of the threads.
    fn spawn(&self, job: &Job) -> Result<Child> {
        let exe = std::env::current_exe().context("locating the wavessm binary")?;
        let log = std::fs::File::create(&job.log).with_context(|| format!("creating {}", job.log.display()))?;
        Command::new(&exe)
            .args(&job.args)
            .env("RAYON_NUM_THREADS", self.threads().to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting job {}", job.index))
    }
}

/// A child process running one job.
struct LocalRun {
    child: Child,
    interrupted: bool,
}

impl Running for LocalRun {
    fn poll(&mut self) -> Result<Option<Outcome>> {
        Ok(self.child.try_wait()?.map(|status| match (status.success(), self.interrupted) {
            (true, false) => Outcome::Done,
            (true, true) => Outcome::Interrupted,
            (false, _) => Outcome::Failed(format!("exited with {status}")),
        }))
    }

    fn interrupt(&mut self) {
        // SAFETY: signalling our own child process by pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        self.interrupted = true;
    }
}

impl Launch for LocalConfig {
    fn submit(&self, job: &Job, _sweep: &std::path::Path) -> Result<Box<dyn Running>> {
        Ok(Box::new(LocalRun { child: self.spawn(job)?, interrupted: false }))
    }

    fn launch(&self, jobs: &[Job], _sweep: &std::path::Path, interrupt: &Interrupt) -> Result<Vec<Outcome>> {
        let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
        let mut running: Vec<(usize, Child)> = Vec::new();
        let mut next = 0;
        let mut forwarded = false;
        loop {
            while !interrupt.requested() && running.len() < self.jobs.max(1) && next < jobs.len() {
                running.push((next, self.spawn(&jobs[next])?));
                next += 1;
            }
            if interrupt.requested() && !forwarded {
                for (_, child) in &running {
                    // SAFETY: signalling our own child process by pid.
                    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
                }
                forwarded = true;
            }
            let mut still = Vec::new();
            for (i, mut child) in running.drain(..) {
                match child.try_wait()? {
                    Some(status) if status.success() => {
                        outcomes[i] = Some(if forwarded { Outcome::Interrupted } else { Outcome::Done })
                    }
                    Some(status) => outcomes[i] = Some(Outcome::Failed(format!("exited with {status}"))),
                    None => still.push((i, child)),
                }
            }
            running = still;
            if running.is_empty() && (next >= jobs.len() || interrupt.requested()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(outcomes.into_iter().map(|o| o.unwrap_or(Outcome::Interrupted)).collect())
    }

    fn max_retries(&self) -> usize {
        self.max_retries
    }

    fn max_runs(&self) -> usize {
        self.max_runs
    }
}
