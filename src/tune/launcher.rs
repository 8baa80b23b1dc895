//! Launchers run a sweep's jobs (`launcher=local|slurm`): one file each plus a registry line.
//! A job is a `wavessm fit` command line; a launcher starts jobs, waits for them, and reports
//! how each ended.

use std::path::PathBuf;

use anyhow::Result;

use super::{local, slurm};
use crate::train::signals::Interrupt;

/// Declares the launchers, one line each, with the registry and the delegation.
macro_rules! launchers {
    ($($name:literal => $Variant:ident($Cfg:ty)),+ $(,)?) => {
        crate::registry! {
            /// Launchers selectable as `launcher` (one line per launcher).
            pub enum LauncherConfig ("launcher") { $($name => $Variant($Cfg)),+ }
        }

        impl LauncherConfig {
            /// The launcher.
            pub fn launcher(&self) -> &dyn Launch {
                match self { $(LauncherConfig::$Variant(c) => c),+ }
            }
        }
    };
}

launchers! {
    "local" => Local(local::LocalConfig),
    "slurm" => Slurm(slurm::SlurmConfig),
}

/// One `wavessm fit` to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Position in the sweep.
    pub index: usize,
    /// Arguments after the program name (`fit …`).
    pub args: Vec<String>,
    /// Where its output goes.
    pub log: PathBuf,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Exit status 0.
    Done,
    /// Stopped by Ctrl-C (it wrote a checkpoint).
    Interrupted,
    /// A non-zero exit, a signal, a time-out or a cancellation, with the reason.
    Failed(String),
}

/// What every launcher does.
pub trait Launch {
    /// Runs `jobs` (all of them unless interrupted) and returns each job's outcome, in the
    /// order of `jobs`. `sweep` is the sweep folder for scripts and bookkeeping.
    fn launch(&self, jobs: &[Job], sweep: &std::path::Path, interrupt: &Interrupt) -> Result<Vec<Outcome>>;

    /// Retries of a failed job (each resumes from its last checkpoint).
    fn max_retries(&self) -> usize;

    /// Sweeps larger than this need `--yes`.
    fn max_runs(&self) -> usize;
}

/// The last `n` lines of a log file, for failure reports.
pub fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
