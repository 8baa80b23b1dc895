//! Sweeps (`wavessm fit -m`): the Cartesian product on the local launcher, a failing run that
//! is retried and reported without stopping the others, the `--yes` gate, and the same sweep
//! through a real Slurm (`scripts/slurm-local.sh`; in CI it must run).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SMALL: &[&str] = &["model.n_layers=1", "trainer.max_epochs=2", "trainer.limit_train_batches=4"];

fn wavessm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(args)
        .args(SMALL)
        .current_dir(dir)
        .env_remove("WAVESSM_CONFIG_DIR")
        .output()
        .expect("run wavessm")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The single sweep folder under `dir/runs/multirun`, and its sweep.yaml.
fn sweep(dir: &Path) -> (PathBuf, serde_yaml::Value) {
    let base = dir.join("runs/multirun");
    let sweeps: Vec<PathBuf> = std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    let y = serde_yaml::from_str(&std::fs::read_to_string(sweeps[0].join("sweep.yaml")).unwrap()).unwrap();
    (sweeps[0].clone(), y)
}

#[test]
fn a_local_sweep_runs_the_product_and_ranks_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "-m", "model.d_model=8,16", "seed=range(0,2)", "launcher.jobs=2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("sweep: 4 runs, 4 done, 0 failed"), "{out}");
    let table: Vec<&str> = out.lines().take_while(|l| !l.starts_with("sweep:")).collect();
    assert_eq!(table.len(), 5, "header + 4 runs:\n{out}");
    assert!(table[0].contains("model.d_model") && table[0].contains("seed"), "swept keys are columns: {}", table[0]);
    let (dir, y) = sweep(dir.path());
    assert_eq!(y["params"]["model.d_model"], serde_yaml::from_str::<serde_yaml::Value>("['8', '16']").unwrap());
    let jobs = y["jobs"].as_sequence().unwrap();
    assert_eq!(jobs.len(), 4);
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["status"], "done");
        assert!(dir.join(format!("job_{i}/version_0/checkpoints/last.bpk")).is_file());
    }
    let last: Vec<&str> = jobs[3]["overrides"].as_sequence().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(last.ends_with(&["model.d_model=16", "seed=1"]), "the last axis varies fastest: {last:?}");
}

#[test]
fn a_failing_run_is_retried_and_reported_without_stopping_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "-m", "optimizer.lr=0.01,1e30", "launcher.max_retries=1"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "the sweep reports its failure: {out}");
    assert!(out.contains("2 runs, 1 done, 1 failed"), "{out}");
    assert!(err.contains("run 1 failed after 2 attempt(s)") && err.contains("loss became"), "{err}");
    let (_, y) = sweep(dir.path());
    assert_eq!((y["jobs"][0]["status"].as_str(), y["jobs"][1]["attempts"].as_u64()), (Some("done"), Some(2)));
}

#[test]
fn large_sweeps_ask_for_yes_and_bad_sweeps_are_refused_before_any_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "-m", "seed=range(0,3)", "launcher.max_runs=2"]);
    assert!(!o.status.success() && text(&o).1.contains("--yes"), "{}", text(&o).1);
    let o = wavessm(dir.path(), &["fit", "-m", "model.d_model=8,0"]);
    let err = text(&o).1;
    assert!(!o.status.success() && err.contains("run 1 of the sweep") && err.contains("model.d_model"), "{err}");
    assert!(!dir.path().join("runs/multirun").exists(), "nothing ran");
    let o = wavessm(dir.path(), &["fit", "-m", "model.d_model=8,16", "launcher.nope=1"]);
    assert!(text(&o).1.contains("launcher.nope"), "{}", text(&o).1);
}

/// Whether a Slurm cluster answers here (starting the single-node one if needed).
fn slurm_up() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh");
    let ok = |o: std::io::Result<Output>| o.map(|o| o.status.success()).unwrap_or(false);
    if ok(Command::new("sinfo").arg("-h").output()) {
        return Ok(());
    }
    let o = Command::new("bash").arg(&script).arg("start").output().map_err(|e| e.to_string())?;
    if o.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&o.stderr).into_owned()) }
}

#[test]
fn the_same_sweep_runs_as_a_slurm_job_array() {
    if let Err(why) = slurm_up() {
        assert!(std::env::var_os("CI").is_none(), "CI must run the Slurm tests: {why}");
        eprintln!("skipped: no Slurm cluster could be started here: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(
        dir.path(),
        &[
            "fit",
            "-m",
            "model.d_model=8,16",
            "launcher=slurm",
            "launcher.poll_interval=0.2",
            "launcher.cpus_per_task=1",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(err.contains("submitted array job") && out.contains("2 runs, 2 done"), "{out}\n{err}");
    let (sweep, _) = sweep(dir.path());
    let script = std::fs::read_to_string(sweep.join("slurm/job.sh")).unwrap();
    assert!(script.contains("#SBATCH --array=0,1") && script.contains("#SBATCH --cpus-per-task=1"), "{script}");
    // Without sbatch on PATH the error says so.
    let o = Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(["fit", "-m", "seed=0,1", "launcher=slurm"])
        .args(SMALL)
        .current_dir(dir.path())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(text(&o).1.contains("`sbatch` could not be run"), "{}", text(&o).1);
}
