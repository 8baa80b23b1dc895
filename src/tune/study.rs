//! `wavessm tune`: a hyperparameter study. Trials are drawn from `search.search_space`, run on
//! the configured launcher (`search.max_concurrent` at once) and stopped early by ASHA; a
//! promoted trial resumes from its checkpoint with more epochs, never retrained. The study is a
//! journal on disk (`study.json`, rewritten atomically after every event), so
//! `wavessm tune --resume DIR` continues after a crash or `kill -9` without losing or repeating
//! a finished trial. At the end: a leaderboard and `best.yaml`, which `wavessm fit -c best.yaml`
//! runs as is.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::asha::{Asha, Next};
use super::launcher::{Job, LauncherConfig, Outcome, Running, log_tail};
use super::space::{Scheduler, SearchConfig};
use crate::config::ConfigRequest;
use crate::train::signals::Interrupt;

/// One trial of the study.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trial {
    /// Its number.
    pub index: usize,
    /// Its sampled overrides.
    pub overrides: Vec<String>,
    /// Its run folder.
    pub run: PathBuf,
    /// The rung it is (or was last) training to.
    pub rung: usize,
    /// running | paused (waiting at a rung) | done (top rung) | stopped (not promoted) | failed |
    /// interrupted.
    pub status: String,
    /// Its metric at each rung it finished.
    pub results: Vec<f64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The journal: everything needed to continue the study.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// The search.
    pub search: SearchConfig,
    /// Config files of the request.
    pub files: Vec<PathBuf>,
    /// Config folders of the request.
    pub config_dirs: Vec<PathBuf>,
    /// Overrides every trial gets.
    pub tokens: Vec<String>,
    /// Seed of the sampler.
    pub seed: u64,
    /// The metric ranked (`val/…`).
    pub metric: String,
    /// The scheduler's state.
    pub asha: Asha,
    /// The trials started so far.
    pub trials: Vec<Trial>,
}

/// A finished (or interrupted) study.
pub struct StudyResult {
    /// The study folder.
    pub dir: PathBuf,
    /// Its journal.
    pub journal: Journal,
    /// `best.yaml`, if a trial finished.
    pub best: Option<PathBuf>,
}

impl Journal {
    fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::io::write_atomic(&dir.join("study.json"), |f| std::io::Write::write_all(f, &json))?;
        Ok(())
    }

    fn request(&self, tokens: Vec<String>) -> ConfigRequest {
        ConfigRequest { config_dirs: self.config_dirs.clone(), files: self.files.clone(), tokens, ..Default::default() }
    }

    /// The `fit` of `trial` up to its rung, with every trial's `max_t` epochs (so schedules
    /// are a full run's).
    fn job(&self, trial: &Trial, dir: &Path) -> Job {
        let request = self.request(self.tokens.clone());
        let overrides = [self.tokens.clone(), trial.overrides.clone()].concat();
        let extra = [
            format!("trainer.max_epochs={}", self.search.max_t),
            "--stop-after-epochs".into(),
            self.asha.rungs[trial.rung].to_string(),
        ];
        Job::fit(&request, &overrides, &extra, dir, &format!("trial_{}", trial.index), trial.index)
    }
}

/// Starts a study from `request` (its config must have a `search:` section), or continues the
/// one in `resume`.
pub fn tune(request: &ConfigRequest, resume: Option<&Path>) -> Result<StudyResult> {
    let (dir, mut journal, launcher) = match resume {
        Some(dir) => {
            let path = dir.join("study.json");
            let text =
                std::fs::read_to_string(&path).with_context(|| format!("{}: not a study folder", path.display()))?;
            let journal: Journal =
                serde_json::from_str(&text).with_context(|| format!("{}: damaged journal", path.display()))?;
            let cfg = journal.request(journal.tokens.clone()).resolve()?;
            let launcher = LauncherConfig::from_named(&cfg.launcher, "launcher")?;
            (dir.to_path_buf(), journal, launcher)
        }
        None => start(request)?,
    };
    run(&dir, &mut journal, &launcher)?;
    let best = write_best(&dir, &journal)?;
    Ok(StudyResult { dir, journal, best })
}

/// A new study folder and journal from the request.
fn start(request: &ConfigRequest) -> Result<(PathBuf, Journal, LauncherConfig)> {
    let cfg = request.resolve()?;
    let search =
        cfg.search.clone().context("no `search:` section: pick one with hparams_search=<name> or a -c file")?;
    search.validate()?;
    let metric = search.metric.clone().unwrap_or_else(|| cfg.trainer.monitor.clone());
    let mode = search.mode.unwrap_or(cfg.trainer.mode);
    let asha = match search.scheduler {
        Scheduler::Asha => Asha::new(search.grace_period, search.max_t, search.reduction_factor, mode),
        Scheduler::Fifo => Asha::fifo(search.max_t, mode),
    };
    let launcher = LauncherConfig::from_named(&cfg.launcher, "launcher")?;
    let journal = Journal {
        search,
        files: request.files.clone(),
        config_dirs: request.config_dirs.clone(),
        tokens: request.tokens.clone(),
        seed: cfg.seed,
        metric,
        asha,
        trials: Vec::new(),
    };
    // A key that does not exist fails here, with the config error's suggestion.
    let first = journal.search.trial(0, journal.seed)?;
    journal.request([journal.tokens.clone(), first].concat()).resolve().context("the search space")?;
    let base = cfg.logger.save_dir.join("tune");
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let stamp = super::multirun::utc_stamp(crate::train::status::now() as i64);
    let dir = (0..)
        .map(|n| base.join(if n == 0 { stamp.clone() } else { format!("{stamp}_{n}") }))
        .find(|d| std::fs::create_dir(d).is_ok())
        .expect("a free folder");
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    journal.save(&dir)?;
    eprintln!(
        "tune: study in {} (rungs {:?} epochs, {} trials)",
        dir.display(),
        journal.asha.rungs,
        journal.search.n_trials
    );
    Ok((dir, journal, launcher))
}

/// The scheduling loop: fill free slots (promotions first, then new trials), collect results.
fn run(dir: &Path, j: &mut Journal, launcher: &LauncherConfig) -> Result<()> {
    let interrupt = Interrupt::install();
    let mut running: Vec<(usize, Box<dyn Running>)> = Vec::new();
    // Trials a crash left running continue from their checkpoints.
    for i in 0..j.trials.len() {
        if matches!(j.trials[i].status.as_str(), "running" | "interrupted") {
            // A trial process that outlived a killed study still owns its run: wait for it.
            let t0 = std::time::Instant::now();
            while crate::train::status::locked(&j.trials[i].run) && t0.elapsed() < Duration::from_secs(3600) {
                std::thread::sleep(Duration::from_millis(200));
            }
            running.push((i, launcher.launcher().submit(&j.job(&j.trials[i], dir), dir)?));
            j.trials[i].status = "running".into();
        }
    }
    let capacity = j.search.capacity();
    loop {
        while !interrupt.requested() && running.len() < j.search.max_concurrent {
            let i = match j.asha.get_job() {
                Next::Promote { trial, rung } => {
                    j.trials[trial].rung = rung;
                    trial
                }
                Next::Start if j.trials.len() < capacity => {
                    let i = j.trials.len();
                    let overrides = j.search.trial(i, j.seed)?;
                    j.request([j.tokens.clone(), overrides.clone()].concat())
                        .resolve()
                        .with_context(|| format!("trial {i}"))?;
                    let run = dir.join(format!("trial_{i}/version_0"));
                    j.trials.push(Trial {
                        index: i,
                        overrides,
                        run,
                        rung: 0,
                        status: "running".into(),
                        results: vec![],
                        error: None,
                    });
                    i
                }
                Next::Start => break,
            };
            j.trials[i].status = "running".into();
            running.push((i, launcher.launcher().submit(&j.job(&j.trials[i], dir), dir)?));
            j.save(dir)?;
        }
        if running.is_empty() {
            break;
        }
        if interrupt.requested() {
            for (_, r) in &mut running {
                r.interrupt();
            }
        }
        let mut still = Vec::new();
        for (i, mut r) in running {
            match r.poll()? {
                None => still.push((i, r)),
                Some(outcome) => finish(dir, j, i, outcome)?,
            }
        }
        running = still;
        std::thread::sleep(Duration::from_millis(50));
    }
    // Trials left at a rung below the top were stopped early by ASHA.
    for t in &mut j.trials {
        if t.status == "paused" {
            t.status = "stopped".into();
        }
    }
    j.save(dir)
}

/// Records how trial `i`'s run to its rung ended.
fn finish(dir: &Path, j: &mut Journal, i: usize, outcome: Outcome) -> Result<()> {
    let rung = j.trials[i].rung;
    let t = &mut j.trials[i];
    match outcome {
        Outcome::Done => {
            let v = metric_at(&t.run, &j.metric, j.asha.rungs[rung]).unwrap_or(f64::NAN);
            t.results.push(v);
            j.asha.report(i, rung, v);
            t.status = if rung + 1 == j.asha.rungs.len() { "done" } else { "paused" }.into();
        }
        Outcome::Interrupted => t.status = "interrupted".into(),
        Outcome::Failed(why) => {
            j.asha.report(i, rung, f64::NAN);
            t.status = "failed".into();
            t.error = Some(format!("{why}\n{}", log_tail(&dir.join(format!("trial_{i}.log")), 8)));
        }
    }
    j.save(dir)
}

/// The run's validation `metric` at epoch `epochs` (the last logged at or before it).
fn metric_at(run: &Path, metric: &str, epochs: usize) -> Option<f64> {
    let (split, name) = metric.split_once('/')?;
    let csv = crate::io::read_text_capped(&run.join("metrics.csv"), crate::io::MAX_DATA_BYTES, "metrics.csv").ok()?;
    csv.lines()
        .skip(1)
        .filter_map(crate::train::run::MetricRow::parse)
        .filter(|r| r.split == split && r.name == name && r.epoch < epochs)
        .max_by_key(|r| r.epoch)
        .map(|r| r.value)
}

/// The trials ranked: highest rung first, then by the metric there.
pub fn leaderboard(j: &Journal) -> Vec<&Trial> {
    let mut ts: Vec<&Trial> = j.trials.iter().filter(|t| t.results.last().is_some_and(|v| v.is_finite())).collect();
    ts.sort_by(|a, b| {
        let (ra, rb) = (a.results.len(), b.results.len());
        let (va, vb) = (*a.results.last().expect("ranked"), *b.results.last().expect("ranked"));
        rb.cmp(&ra).then(if j.asha.maximize { vb.total_cmp(&va) } else { va.total_cmp(&vb) })
    });
    ts
}

/// `best.yaml`: the best trial's resolved config, with the full `max_t` epochs and without the
/// study's run folder, so `wavessm fit -c best.yaml` trains it as is.
fn write_best(dir: &Path, j: &Journal) -> Result<Option<PathBuf>> {
    let Some(best) = leaderboard(j).into_iter().next() else { return Ok(None) };
    let path = best.run.join("config.yaml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut cfg: serde_yaml::Value = serde_yaml::from_str(&text)?;
    let Some(map) = cfg.as_mapping_mut() else { bail!("{}: not a mapping", path.display()) };
    for key in ["logger", "name", "search"] {
        map.remove(key);
    }
    if let Some(t) = map.get_mut("trainer").and_then(|t| t.as_mapping_mut()) {
        t.insert("max_epochs".into(), (j.search.max_t as u64).into());
    }
    let out = dir.join("best.yaml");
    let body = format!(
        "# Best trial of the study {} (trial {}: {}), {} = {}\n{}",
        dir.display(),
        best.index,
        best.overrides.join(" "),
        j.metric,
        best.results.last().expect("ranked"),
        serde_yaml::to_string(&cfg)?
    );
    crate::io::write_atomic(&out, |f| std::io::Write::write_all(f, body.as_bytes()))?;
    Ok(Some(out))
}
