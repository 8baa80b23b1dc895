//! `launcher=slurm`: the sweep as one `sbatch` job array. The job script is written into the
//! sweep folder (`slurm/job.sh`, readable and resubmittable by hand); each array task runs one
//! job's `wavessm fit` and writes its exit status to `slurm/status/<i>`. Jobs are tracked
//! through those files and `squeue`; Ctrl-C cancels the array (`scancel`, SIGTERM first so
//! running fits checkpoint). The binary and the sweep folder must be on a filesystem the nodes
//! share.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::launcher::{Job, Launch, Outcome, Running};
use crate::train::signals::Interrupt;

fn thousand() -> usize {
    1000
}
fn two() -> f64 {
    2.0
}
fn one() -> usize {
    1
}

/// Options of the Slurm launcher (each maps to an `#SBATCH` line).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// `--partition`.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--time` (e.g. `01:00:00`).
    #[serde(default)]
    pub time: Option<String>,
    /// `--cpus-per-task`.
    #[serde(default = "one")]
    pub cpus_per_task: usize,
    /// `--gpus-per-task`.
    #[serde(default)]
    pub gpus_per_task: Option<usize>,
    /// `--mem` (e.g. `8G`).
    #[serde(default)]
    pub mem: Option<String>,
    /// Array tasks running at once (`%N` of `--array`; null: no limit).
    #[serde(default)]
    pub array_parallelism: Option<usize>,
    /// `--account`.
    #[serde(default)]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default)]
    pub qos: Option<String>,
    /// Extra `#SBATCH` lines, as written after `#SBATCH `.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Retries of a failed or timed-out job (each resumes from its last checkpoint).
    #[serde(default)]
    pub max_retries: usize,
    /// Sweeps larger than this need `--yes`.
    #[serde(default = "thousand")]
    pub max_runs: usize,
    /// Seconds between polls of the queue.
    #[serde(default = "two")]
    pub poll_interval: f64,
}

impl SlurmConfig {
    /// The job script for array `indices` of the sweep in `sweep`.
    pub fn script(&self, sweep: &Path, indices: &[usize], exe: &Path) -> String {
        let mut s = String::from("#!/bin/bash\n");
        let name = sweep.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let list: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
        let par = self.array_parallelism.map(|p| format!("%{p}")).unwrap_or_default();
        let mut line = |l: String| s.push_str(&format!("#SBATCH {l}\n"));
        line(format!("--job-name=wavessm-{name}"));
        line(format!("--array={}{par}", list.join(",")));
        line(format!("--output={}/job_%a.log", sweep.display()));
        line(format!("--cpus-per-task={}", self.cpus_per_task));
        let opt = |flag: &str, v: &Option<String>| v.as_ref().map(|v| format!("--{flag}={v}"));
        for l in [
            opt("partition", &self.partition),
            opt("time", &self.time),
            opt("mem", &self.mem),
            opt("account", &self.account),
            opt("qos", &self.qos),
            self.gpus_per_task.map(|g| format!("--gpus-per-task={g}")),
        ]
        .into_iter()
        .flatten()
        {
            line(l);
        }
        for l in &self.extra {
            line(l.clone());
        }
        let dir = sweep.join("slurm");
        s.push_str(&format!(
            "\nset -u\ni=$SLURM_ARRAY_TASK_ID\nexport RAYON_NUM_THREADS=$SLURM_CPUS_PER_TASK\n\
             mapfile -t args < '{args}'/$i.args\n'{exe}' \"${{args[@]}}\"\nstatus=$?\n\
             echo $status > '{st}'/$i.tmp && mv '{st}'/$i.tmp '{st}'/$i\nexit $status\n",
            args = dir.join("args").display(),
            exe = exe.display(),
            st = dir.join("status").display(),
        ));
        s
    }
}

/// Runs a Slurm command, naming it and its stderr on failure.
fn slurm(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        anyhow::anyhow!("`{cmd}` could not be run ({e}): is Slurm installed and on PATH? (launcher=slurm)")
    })?;
    if !out.status.success() {
        bail!("`{cmd} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl SlurmConfig {
    /// Writes the jobs' argument files and the array script `slurm/<script>` for them; returns
    /// the script's path.
    fn prepare(&self, jobs: &[Job], sweep: &Path, script: &str) -> Result<std::path::PathBuf> {
        let exe = std::env::current_exe().context("locating the wavessm binary")?;
        let dir = sweep.join("slurm");
        for sub in ["args", "status"] {
            std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        for job in jobs {
            if job.args.iter().any(|a| a.contains('\n')) {
                bail!("job {}: an argument contains a newline", job.index);
            }
            let _ = std::fs::remove_file(dir.join("status").join(job.index.to_string()));
            std::fs::write(dir.join("args").join(format!("{}.args", job.index)), job.args.join("\n") + "\n")?;
        }
        let indices: Vec<usize> = jobs.iter().map(|j| j.index).collect();
        let path = dir.join(script);
        let text = self.script(sweep, &indices, &exe);
        crate::io::write_atomic(&path, |f| std::io::Write::write_all(f, text.as_bytes()))?;
        Ok(path)
    }
}

/// Submits a script; returns the job id.
fn sbatch(script: &Path) -> Result<String> {
    let id = slurm("sbatch", &["--parsable", &script.to_string_lossy()])?;
    Ok(id.trim().split(';').next().unwrap_or("").to_string())
}

/// Whether job `id` still has tasks in the queue.
fn queued(id: &str) -> bool {
    slurm("squeue", &["-h", "-j", id, "-o", "%i"]).map(|s| !s.trim().is_empty()).unwrap_or(false)
}

/// The exit status task `i` wrote, if it has.
fn exit_status(sweep: &Path, i: usize) -> Option<i32> {
    std::fs::read_to_string(sweep.join("slurm/status").join(i.to_string())).ok().and_then(|s| s.trim().parse().ok())
}

/// How a task ended from its status file (None: it wrote none).
fn outcome(status: Option<i32>, cancelled: bool) -> Outcome {
    match status {
        Some(0) if cancelled => Outcome::Interrupted,
        Some(0) => Outcome::Done,
        Some(code) => Outcome::Failed(format!("exited with status {code}")),
        None if cancelled => Outcome::Interrupted,
        None => Outcome::Failed("no exit status: the task timed out, was cancelled or its node failed".into()),
    }
}

/// One submitted task.
struct SlurmRun {
    id: String,
    index: usize,
    sweep: std::path::PathBuf,
    cancelled: bool,
}

impl Running for SlurmRun {
    fn poll(&mut self) -> Result<Option<Outcome>> {
        if let Some(s) = exit_status(&self.sweep, self.index) {
            return Ok(Some(outcome(Some(s), self.cancelled)));
        }
        Ok((!queued(&self.id)).then(|| outcome(exit_status(&self.sweep, self.index), self.cancelled)))
    }

    fn interrupt(&mut self) {
        let _ = slurm("scancel", &["--signal=TERM", "--full", &self.id]);
        let _ = slurm("scancel", &["--state=PENDING", &self.id]);
        self.cancelled = true;
    }
}

impl Launch for SlurmConfig {
    fn submit(&self, job: &Job, sweep: &Path) -> Result<Box<dyn Running>> {
        let script = self.prepare(std::slice::from_ref(job), sweep, &format!("job_{}.sh", job.index))?;
        let id = sbatch(&script)?;
        Ok(Box::new(SlurmRun { id, index: job.index, sweep: sweep.to_path_buf(), cancelled: false }))
    }

    fn launch(&self, jobs: &[Job], sweep: &Path, interrupt: &Interrupt) -> Result<Vec<Outcome>> {
        let script = self.prepare(jobs, sweep, "job.sh")?;
        let id = sbatch(&script)?;
        eprintln!("slurm: submitted array job {id} ({} tasks); script {}", jobs.len(), script.display());
        let indices: Vec<usize> = jobs.iter().map(|j| j.index).collect();
        let mut cancelled: Option<Instant> = None;
        loop {
            std::thread::sleep(Duration::from_secs_f64(self.poll_interval.clamp(0.05, 60.0)));
            if interrupt.requested() && cancelled.is_none() {
                eprintln!("slurm: cancelling array job {id} (running fits checkpoint on SIGTERM)");
                let _ = slurm("scancel", &["--signal=TERM", "--full", &id]);
                let _ = slurm("scancel", &["--state=PENDING", &id]);
                cancelled = Some(Instant::now());
            }
            let still = queued(&id);
            let all_done = indices.iter().all(|&i| exit_status(sweep, i).is_some());
            if all_done || !still || cancelled.is_some_and(|t| t.elapsed() > Duration::from_secs(120)) {
                if still {
                    let _ = slurm("scancel", &[&id]);
                }
                break;
            }
        }
        Ok(indices.iter().map(|&i| outcome(exit_status(sweep, i), cancelled.is_some())).collect())
    }

    fn max_retries(&self) -> usize {
        self.max_retries
    }

    fn max_runs(&self) -> usize {
        self.max_runs
    }
}
