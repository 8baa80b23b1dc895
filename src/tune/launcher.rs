//! Launchers run a sweep's jobs (`launcher=local|slurm`): one file each plus a registry line.
//! A job is a `wavessm fit` command line; a launcher starts jobs, waits for them, and reports
//! how each ended.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{local, slurm};
use crate::config::ConfigRequest;
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

impl Job {
    /// The `wavessm fit` of run `name` (number `index`) under `dir`: the request's config
    /// files, folders and `overrides`, then `extra` (e.g. `--stop-after-epochs 3`). When an
    /// earlier attempt left a checkpoint in `run` it resumes from it instead (its saved config
    /// already holds the request).
    pub fn fit(
        request: &ConfigRequest,
        overrides: &[String],
        extra: &[String],
        dir: &Path,
        name: &str,
        index: usize,
    ) -> Self {
        let run = dir.join(name).join("version_0");
        let resume = run.join("checkpoints/last.bpk").is_file();
        let mut args = vec!["fit".to_string()];
        if !resume {
            for f in &request.files {
                args.extend(["-c".into(), f.display().to_string()]);
            }
            for d in &request.config_dirs {
                args.extend(["--config-dir".into(), d.display().to_string()]);
            }
            // D4L's section files, in order (a second `data` file is `--data_val`).
            let mut data_seen = false;
            for (section, f) in &request.section_files {
                let flag = match section.as_str() {
                    "data" if !data_seen => "--data_train",
                    "data" => "--data_val",
                    "model" => "--model_cfg",
                    _ => "--trainer_cfg",
                };
                data_seen |= section == "data";
                args.extend([flag.to_string(), f.display().to_string()]);
            }
            args.extend(overrides.iter().cloned());
        }
        args.push(format!("logger.save_dir={}", dir.display()));
        args.push(format!("logger.name={name}"));
        args.push("trainer.progress_bar=never".into());
        args.extend(extra.iter().cloned());
        if resume {
            args.extend(["--resume".into(), run.display().to_string()]);
        }
        Job { index, args, log: dir.join(format!("{name}.log")) }
    }
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

    /// Starts one job without waiting (for schedulers that decide as jobs finish, as ASHA).
    fn submit(&self, job: &Job, sweep: &std::path::Path) -> Result<Box<dyn Running>>;

    /// Retries of a failed job (each resumes from its last checkpoint).
    fn max_retries(&self) -> usize;

    /// Sweeps larger than this need `--yes`.
    fn max_runs(&self) -> usize;

    /// Checks the options' ranges, naming `launcher.<key>`.
    fn validate(&self) -> Result<(), crate::config::ConfigError>;
}

/// A range error of `launcher.<key>`.
pub fn bad(key: &str, msg: impl Into<String>) -> crate::config::ConfigError {
    crate::config::ConfigError::Key { path: format!("launcher.{key}"), msg: msg.into() }
}

/// A submitted job.
pub trait Running {
    /// How it ended, once it has.
    fn poll(&mut self) -> Result<Option<Outcome>>;
    /// Asks it to stop (it checkpoints first).
    fn interrupt(&mut self);
}

/// The last `n` lines of a log file, for failure reports.
pub fn log_tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
