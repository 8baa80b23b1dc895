//! `wavessm tune`: a real small ASHA study on the embedded default (8 trials, 3 rungs, early
//! stopping in the journal, best.yaml that `fit -c` runs), a study that survives `kill -9` and
//! resumes without repeating a finished trial, the same study through a real Slurm, and bad
//! search spaces.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const STUDY: &[&str] = &[
    "tune",
    "hparams_search=digits_asha",
    "search.n_trials=8",
    "search.max_t=4",
    "search.reduction_factor=2",
    "model.n_layers=1",
    "trainer.limit_train_batches=8",
];

fn wavessm(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wavessm"));
    c.args(args).current_dir(dir).env_remove("WAVESSM_CONFIG_DIR");
    c
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn study_dir(dir: &Path) -> PathBuf {
    let studies: Vec<PathBuf> = std::fs::read_dir(dir.join("runs/tune")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(studies.len(), 1);
    studies[0].clone()
}

fn journal(study: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(study.join("study.json")).unwrap()).unwrap()
}

/// Every trial ended (done or stopped early), each index once, and the rungs were respected.
fn check_finished(j: &serde_json::Value, n: usize) {
    let trials = j["trials"].as_array().unwrap();
    assert_eq!(trials.len(), n);
    let rungs: Vec<u64> = j["asha"]["rungs"].as_array().unwrap().iter().map(|r| r.as_u64().unwrap()).collect();
    assert_eq!(rungs, [1, 2, 4]);
    for (i, t) in trials.iter().enumerate() {
        assert_eq!(t["index"].as_u64(), Some(i as u64));
        let status = t["status"].as_str().unwrap();
        let results = t["results"].as_array().unwrap().len();
        match status {
            "done" => assert_eq!(results, 3, "{t}"),
            "stopped" => assert!((1..3).contains(&results), "{t}"),
            other => panic!("trial {i} ended {other}: {t}"),
        }
    }
    let stopped = trials.iter().filter(|t| t["status"] == "stopped").count();
    let top = trials.iter().filter(|t| t["status"] == "done").count();
    assert!(stopped >= 4 && top >= 1, "ASHA stopped {stopped}, finished {top}");
}

#[test]
fn a_small_asha_study_stops_trials_early_and_writes_a_runnable_best() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(wavessm(dir.path(), STUDY).output().unwrap());
    assert!(out.contains("study: 8 trials") && out.contains("best:"), "{out}");
    let study = study_dir(dir.path());
    let j = journal(&study);
    check_finished(&j, 8);
    // A promoted trial continued its run (one run folder, epochs = the top rung).
    let done = j["trials"].as_array().unwrap().iter().find(|t| t["status"] == "done").unwrap();
    let run = PathBuf::from(done["run"].as_str().unwrap());
    assert!(!run.with_file_name("version_1").exists(), "not retrained");
    let val_rows =
        std::fs::read_to_string(run.join("metrics.csv")).unwrap().lines().filter(|l| l.contains(",val,loss,")).count();
    assert_eq!(val_rows, 4);
    let best = ok(wavessm(dir.path(), &["fit", "-c", study.join("best.yaml").to_str().unwrap(), "--print-config"])
        .output()
        .unwrap());
    let cfg: serde_yaml::Value = serde_yaml::from_str(&best).unwrap();
    assert_eq!(cfg["trainer"]["max_epochs"], 4);
    let d_model = format!("model.d_model={}", cfg["model"]["d_model"].as_u64().unwrap());
    let first = &journal(&study)["trials"];
    assert!(first.as_array().unwrap().iter().any(|t| t["overrides"].as_array().unwrap().iter().any(|o| o == &d_model)));
}

#[test]
fn a_killed_study_resumes_without_repeating_finished_trials() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = wavessm(dir.path(), STUDY).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Wait until some trials finished, then kill -9 the study (its trials die with it or finish).
    let t0 = std::time::Instant::now();
    loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let done = dir.path().join("runs/tune").read_dir().ok().and_then(|mut d| d.next()).and_then(|e| {
            let j = std::fs::read_to_string(e.ok()?.path().join("study.json")).ok()?;
            Some(j.matches("\"paused\"").count() + j.matches("\"done\"").count())
        });
        if done.unwrap_or(0) >= 2 || t0.elapsed().as_secs() > 60 {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let study = study_dir(dir.path());
    let before = journal(&study);
    let finished: Vec<(u64, usize)> = before["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["index"].as_u64().unwrap(), t["results"].as_array().unwrap().len()))
        .collect();
    ok(wavessm(dir.path(), &["tune", "--resume", study.to_str().unwrap()]).output().unwrap());
    let after = journal(&study);
    check_finished(&after, 8);
    for (i, n) in finished {
        let t = &after["trials"][i as usize];
        assert_eq!(
            &t["results"].as_array().unwrap()[..n],
            &before["trials"][i as usize]["results"].as_array().unwrap()[..n],
            "trial {i} kept its results"
        );
    }
}

#[test]
fn bad_search_spaces_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, words) in [
        ("search.search_space.model.d_modl=choice(8,16)", &["model.d_modl", "did you mean `d_model`"][..]),
        ("search.search_space.optimizer.lr=uniform(1,0)", &["search.search_space.optimizer.lr", "low < high"][..]),
        ("search.reduction_factor=1", &["search.reduction_factor"][..]),
    ] {
        let o = wavessm(dir.path(), &[STUDY, &[extra]].concat()).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && words.iter().all(|w| err.contains(w)), "{extra}: {err}");
    }
    let o = wavessm(dir.path(), &["tune"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("hparams_search"));
}

#[test]
fn a_study_runs_on_slurm() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh");
    let up = Command::new("sinfo").arg("-h").output().map(|o| o.status.success()).unwrap_or(false)
        || Command::new("bash").arg(&script).arg("start").output().map(|o| o.status.success()).unwrap_or(false);
    if !up {
        assert!(std::env::var_os("CI").is_none(), "CI must run the Slurm tests");
        eprintln!("skipped: no Slurm cluster could be started here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out =
        ok(wavessm(dir.path(), &[STUDY, &["launcher=slurm", "launcher.poll_interval=0.2"]].concat()).output().unwrap());
    assert!(out.contains("study: 8 trials"), "{out}");
    let study = study_dir(dir.path());
    check_finished(&journal(&study), 8);
    assert!(study.join("slurm/job_0.sh").is_file(), "each trial step is an sbatch job");
}
