//! `wavessm tune`: runs (or continues) a study and prints its leaderboard and `best.yaml`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::ConfigArgs;
use super::commands::request;
use crate::tune::study::{leaderboard, tune};

/// Options of `tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// Config sources and overrides (the search: `hparams_search=<name>` or `-c search.yaml`).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Continue the study in STUDY_DIR after a crash or Ctrl-C.
    #[arg(long, value_name = "STUDY_DIR")]
    pub resume: Option<PathBuf>,
}

/// Runs the command.
pub fn run(a: &TuneArgs) -> Result<()> {
    let result = tune(&request(&a.config), a.resume.as_deref())?;
    let j = &result.journal;
    println!("{:<6} {:<11} {:<7} {:>12}  overrides", "trial", "status", "epochs", j.metric);
    for t in leaderboard(j) {
        let epochs = j.asha.rungs[t.results.len() - 1];
        println!(
            "{:<6} {:<11} {:<7} {:>12.4}  {}",
            t.index,
            t.status,
            epochs,
            t.results.last().expect("ranked"),
            t.overrides.join(" ")
        );
    }
    for t in j.trials.iter().filter(|t| t.status == "failed") {
        eprintln!("trial {} failed: {}", t.index, t.error.as_deref().unwrap_or(""));
    }
    let stopped = j.trials.iter().filter(|t| t.status == "stopped").count();
    println!(
        "study: {} trials, {} reached {} epochs, {stopped} stopped early; {}",
        j.trials.len(),
        j.trials.iter().filter(|t| t.status == "done").count(),
        j.search.max_t,
        result.dir.join("study.json").display()
    );
    if let Some(best) = &result.best {
        println!("best: {} (wavessm fit -c {})", best.display(), best.display());
    }
    Ok(())
}
