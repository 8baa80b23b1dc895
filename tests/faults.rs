//! What survives what: a mid-epoch interruption resumes bit for bit, a diverging run never
//! overwrites its good checkpoint, a run folder has one owner, a torn metrics row is repaired,
//! a finished run is not tested twice, and an evaluation without batches is never scored 0.

mod common;

use std::path::Path;

use common::serial;
use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::train::checkpoint::Checkpoint;
use wavessm::train::run::{MetricsCsv, ResumePoint, RunDir};
use wavessm::train::{FitOptions, fit};

fn config(save_dir: &Path, extra: &[&str]) -> ExperimentConfig {
    let mut tokens: Vec<String> = [
        "model.d_model=16",
        "model.n_layers=2",
        "model.layer.d_state=8",
        "loader.batch_size=16",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=12",
        "trainer.progress_bar=never",
        "scheduler.warmup_steps=0",
        "optimizer.lr=0.01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.push(format!("logger.save_dir={}", save_dir.display()));
    tokens.extend(extra.iter().map(|s| s.to_string()));
    ConfigRequest { tokens, ..Default::default() }.resolve().unwrap()
}

fn opts(resume: Option<&Path>) -> FitOptions {
    FitOptions { resume: resume.map(Path::to_path_buf), quiet: true, ..Default::default() }
}

#[test]
fn a_mid_epoch_interruption_resumes_bit_for_bit() {
    let _turn = serial();
    let extra = ["model.dropout=0.1", "trainer.accumulate_grad_batches=2"];
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = fit(&config(a.path(), &extra), &opts(None)).unwrap();
    let cfg = config(b.path(), &extra);
    // 6 optimizer steps per epoch: stop in the middle of the first.
    let stopped = fit(&cfg, &FitOptions { stop_after_steps: Some(4), ..opts(None) }).unwrap();
    assert_eq!((stopped.epochs, stopped.steps), (0, 4));
    let ck = Checkpoint::load(&stopped.run.join("checkpoints/last.bpk")).unwrap();
    assert_eq!((ck.state.epoch, ck.state.batch), (0, 8), "mid-epoch checkpoint after 8 batches");
    let resumed = fit(&cfg, &opts(Some(&stopped.run))).unwrap();
    assert_eq!((resumed.epochs, resumed.steps), (full.epochs, full.steps));
    assert_eq!(resumed.val, full.val);
    assert_eq!(resumed.test, full.test);
    assert!(common::last_params(&cfg, &resumed.run) == common::last_params(&cfg, &full.run), "identical parameters");
}

#[test]
fn a_diverging_run_keeps_its_last_good_checkpoint() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    let s = fit(&cfg, &FitOptions { stop_after_epochs: Some(1), ..opts(None) }).unwrap();
    let last = s.run.join("checkpoints/last.bpk");
    let good = std::fs::read(&last).unwrap();
    // An absurd learning rate makes the next epoch non-finite.
    for (policy, word) in [("stop", "stopped"), ("skip_batch", "stopped"), ("rollback", "stopped")] {
        let bad = config(
            dir.path(),
            &["optimizer.lr=1e30", &format!("trainer.on_nonfinite={policy}"), "trainer.max_rollbacks=1"],
        );
        let e = format!("{:#}", fit(&bad, &opts(Some(&s.run))).unwrap_err());
        assert!(e.contains(word) && e.contains("last.bpk"), "{policy}: {e}");
        assert!(e.contains("step") || e.contains("epoch"), "{policy}: {e}");
        assert_eq!(std::fs::read(&last).unwrap(), good, "{policy}: last.bpk untouched");
        Checkpoint::load(&last).unwrap();
    }
}

#[test]
fn a_run_folder_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = RunDir::create(dir.path(), "x").unwrap();
    std::fs::write(first.config_path(), "seed: 0\n").unwrap();
    std::fs::write(first.root.join("checkpoints/last.bpk.tmp.999.0"), b"left by a crash").unwrap();
    first.lock().unwrap();
    assert!(!first.root.join("checkpoints/last.bpk.tmp.999.0").exists(), "stale temp removed");
    let mut second = RunDir::open(&first.root).unwrap();
    let e = second.lock().unwrap_err().to_string();
    assert!(e.contains(&format!("run in use by pid {}", std::process::id())), "{e}");
    drop(first);
    second.lock().expect("free once the owner is gone");
}

#[test]
fn a_torn_metrics_row_is_dropped_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("metrics.csv");
    std::fs::write(&p, "step,epoch,split,name,value\n1,0,train,loss,0.5\n2,0,train,lo").unwrap();
    let mut csv = MetricsCsv::open(&p, None).unwrap();
    csv.row(2, 0, "train", "loss", 0.25).unwrap();
    drop(csv);
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "step,epoch,split,name,value\n1,0,train,loss,0.5\n2,0,train,loss,0.25\n"
    );
    // Killed after an epoch's rows but before its checkpoint, which was written mid-epoch at the
    // same step: resuming drops that epoch's end rows (it is validated again), keeps the steps.
    // A mid-epoch validation at step 20 that the checkpoint includes keeps its rows.
    let rows = "step,epoch,split,name,value\n20,2,val,loss,0.65\n24,2,train,loss_step,0.5\n24,2,train,loss,0.6\n24,2,val,loss,0.7\n16,1,val,loss,0.8\n";
    for (mid_val_step, kept) in [(None, ""), (Some(20), "20,2,val,loss,0.65\n")] {
        std::fs::write(&p, rows).unwrap();
        drop(MetricsCsv::open(&p, Some(ResumePoint { step: 24, epoch: 2, mid_val_step })).unwrap());
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            format!("step,epoch,split,name,value\n{kept}24,2,train,loss_step,0.5\n16,1,val,loss,0.8\n")
        );
    }
}

#[test]
fn finished_runs_are_tested_once_and_empty_evaluations_are_refused() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["trainer.max_epochs=1"]);
    let s = fit(&cfg, &opts(None)).unwrap();
    assert!(s.test.is_some());
    let again = fit(&cfg, &opts(Some(&s.run))).unwrap();
    assert!(again.test.is_none(), "a finished run is not tested again");
    let csv = std::fs::read_to_string(s.run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().filter(|l| l.contains(",test,loss,")).count(), 1);
    let e = format!("{:#}", fit(&config(dir.path(), &["trainer.limit_eval_batches=0"]), &opts(None)).unwrap_err());
    assert!(e.contains("no") && e.contains("validation"), "{e}");
}

#[test]
fn nonsense_trainer_options_name_their_key() {
    for (tok, key) in [
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
        ("trainer.rollback_lr_factor=2", "trainer.rollback_lr_factor"),
        ("checkpoint.every_n_steps=0", "checkpoint.every_n_steps"),
        ("checkpoint.save_top_k=0", "checkpoint.save_top_k"),
        ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch"),
        ("trainer.eval_rates=[0]", "trainer.eval_rates"),
        ("trainer.on_nonfinite=ignore", "trainer.on_nonfinite"),
    ] {
        let e = ConfigRequest { tokens: vec![tok.into()], ..Default::default() }.resolve().unwrap_err().to_string();
        assert!(e.contains(key), "{tok}: {e}");
    }
}
