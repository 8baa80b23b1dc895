//! Fault injection: `kill -9` a training process at pseudo-random moments, over short trials;
//! after each, the run's checkpoints load, `best` is the epoch `last` says, and resuming to the
//! end leaves one validation row per epoch in `metrics.csv`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wavessm::train::checkpoint::Checkpoint;

const ARGS: &[&str] = &[
    "fit",
    "model.d_model=16",
    "model.n_layers=1",
    "model.layer.d_state=8",
    "loader.batch_size=32",
    "trainer.max_epochs=60",
    "trainer.limit_train_batches=8",
    "checkpoint.every_n_steps=3",
    "trainer.progress_bar=never",
    "trainer.log_every_n_steps=1",
];

fn wavessm(dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wavessm"));
    c.args(ARGS)
        .args(extra)
        .current_dir(dir)
        .env_remove("WAVESSM_CONFIG_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The checkpoints that exist load, and `best.bpk` holds the epoch `last` names.
fn consistent(run: &Path) {
    let last = run.join("checkpoints/last.bpk");
    if !last.exists() {
        return;
    }
    let l = Checkpoint::load(&last).unwrap_or_else(|e| panic!("{e}"));
    if let Some((v, e)) = l.state.best
        && l.state.batch == 0
        && l.state.epoch == e + 1
    {
        let b = Checkpoint::load(&run.join("checkpoints/best.bpk")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((b.state.epoch, b.state.best), (e + 1, Some((v, e))), "best.bpk vs last.bpk");
    }
}

#[test]
fn killed_runs_resume_with_consistent_checkpoints_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut interrupted = 0;
    for trial in 0..6 {
        let name = format!("name=kill{trial}");
        let mut child = wavessm(dir.path(), &[&name]).spawn().expect("start wavessm");
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 900));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let run = dir.path().join(format!("runs/kill{trial}/version_0"));
        if !run.join("config.yaml").exists() {
            continue; // killed before the run folder existed
        }
        consistent(&run);
        if !run.join("checkpoints/last.bpk").exists() {
            continue; // killed before the first checkpoint: nothing to resume
        }
        let before = Checkpoint::load(&run.join("checkpoints/last.bpk")).unwrap();
        interrupted += usize::from(before.state.epoch < 60);
        let out = wavessm(dir.path(), &[&name, "--resume", run.to_str().unwrap()]).output().expect("resume");
        assert!(out.status.success(), "trial {trial}: {}", String::from_utf8_lossy(&out.stderr));
        consistent(&run);
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert!(csv.ends_with('\n'));
        let val: Vec<&str> = csv.lines().filter(|l| l.contains(",val,loss,")).collect();
        assert_eq!(val.len(), 60, "trial {trial}: one val row per epoch");
        assert_eq!(csv.lines().filter(|l| l.contains(",test,loss,")).count(), 1, "trial {trial}");
        let steps: Vec<usize> = csv
            .lines()
            .skip(1)
            .filter(|l| l.contains(",loss_step,"))
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        let mut dedup = steps.clone();
        dedup.dedup();
        assert_eq!(steps, dedup, "trial {trial}: each step logged once");
    }
    assert!(interrupted >= 3, "only {interrupted} trials were killed mid-run: lengthen the runs");
}
