//! Fault injection: `kill -9` a training process at pseudo-random moments, over short trials;
//! after each, the run's checkpoints load, `best` is the epoch `last` says, and resuming to the
//! end leaves one validation row per validation in `metrics.csv` (per epoch, or also within
//! epochs with `trainer.val_check_interval`).

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

/// The checkpoints that exist load, and when `last.bpk` was written by the validation that set
/// the best, `best.bpk` is that checkpoint too.
fn consistent(run: &Path) {
    let last = run.join("checkpoints/last.bpk");
    if !last.exists() {
        return;
    }
    let l = Checkpoint::load(&last).unwrap_or_else(|e| panic!("{e}"));
    let Some((_, e)) = l.state.best else { return };
    let set_best = match l.state.best_step {
        Some(step) => l.state.step == step,
        None => l.state.batch == 0 && l.state.epoch == e + 1,
    };
    if set_best {
        let b = Checkpoint::load(&run.join("checkpoints/best.bpk")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (b.state.step, b.state.epoch, b.state.best),
            (l.state.step, l.state.epoch, l.state.best),
            "best.bpk vs last.bpk"
        );
    }
}

#[test]
fn killed_runs_resume_with_consistent_checkpoints_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut interrupted = 0;
    for trial in 0..6 {
        let name = format!("name=kill{trial}");
        // Odd trials also validate (and checkpoint) within epochs: after batches 3 and 6 of 8,
        // and at the last epoch's end.
        let (interval, per_run) = if trial % 2 == 1 {
            ("trainer.val_check_interval=3", 2 * 60 + 1)
        } else {
            ("trainer.log_every_n_steps=1", 60)
        };
        let mut child = wavessm(dir.path(), &[&name, interval]).spawn().expect("start wavessm");
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
        let out = wavessm(dir.path(), &[&name, interval, "--resume", run.to_str().unwrap()]).output().expect("resume");
        assert!(out.status.success(), "trial {trial}: {}", String::from_utf8_lossy(&out.stderr));
        consistent(&run);
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        assert!(csv.ends_with('\n'));
        let val: Vec<usize> = csv
            .lines()
            .filter(|l| l.contains(",val,loss,"))
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(val.len(), per_run, "trial {trial}: one val row per validation");
        assert!(val.windows(2).all(|w| w[0] < w[1]), "trial {trial}: each validation's step once: {val:?}");
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
