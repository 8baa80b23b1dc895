//! The trainer's Lightning-style options: validation every n epochs and within epochs, extra
//! evaluation rates, the k best checkpoints, early stopping that survives a resume, and a
//! mid-epoch validation's checkpoint that resumes bit for bit.

mod common;

use std::path::Path;

use common::serial;
use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::train::checkpoint::Checkpoint;
use wavessm::train::{FitOptions, fit};

fn config(save_dir: &Path, extra: &[&str]) -> ExperimentConfig {
    let mut tokens: Vec<String> = [
        "model.d_model=16",
        "model.n_layers=1",
        "model.layer.d_state=8",
        "loader.batch_size=32",
        "trainer.limit_train_batches=6",
        "trainer.progress_bar=never",
        "scheduler.warmup_steps=0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.push(format!("logger.save_dir={}", save_dir.display()));
    tokens.extend(extra.iter().map(|s| s.to_string()));
    ConfigRequest { tokens, ..Default::default() }.resolve().unwrap()
}

use common::csv_rows as rows;

/// (step, epoch) of each validation row of `metric`.
fn val_points(run: &Path, metric: &str) -> Vec<(usize, usize)> {
    let field = |l: &str, i: usize| l.split(',').nth(i).unwrap().parse().unwrap();
    rows(run, &format!(",val,{metric},")).iter().map(|l| (field(l, 0), field(l, 1))).collect()
}

#[test]
fn validation_interval_eval_rates_and_top_k() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "trainer.max_epochs=5",
        "trainer.check_val_every_n_epoch=2",
        "trainer.eval_rates=[2]",
        "checkpoint.save_top_k=2",
    ];
    let s = fit(&config(dir.path(), &extra), &FitOptions { quiet: true, ..Default::default() }).unwrap();
    // Validated after epochs 2, 4 and the last (5): epoch indices 1, 3, 4.
    let epochs: Vec<String> =
        rows(&s.run, ",val,loss,").iter().map(|l| l.split(',').nth(1).unwrap().to_string()).collect();
    assert_eq!(epochs, ["1", "3", "4"]);
    assert_eq!(rows(&s.run, ",val,accuracy@rate2,").len(), 3, "the extra rate is logged beside rate 1");
    let top: Vec<String> = std::fs::read_dir(s.run.join("checkpoints/top"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top.len(), 2, "{top:?}");
    let last = Checkpoint::load(&s.run.join("checkpoints/last.bpk")).unwrap();
    assert_eq!(last.state.top_k.len(), 2);
    assert!(last.state.top_k[0].0 >= last.state.top_k[1].0, "best first");
    for (v, e, _) in &last.state.top_k {
        assert!(top.iter().any(|f| f.starts_with(&format!("epoch={}-val_accuracy={v:.4}", e + 1))), "{top:?}");
    }
}

#[test]
fn early_stopping_stops_a_stalled_run_and_counts_across_a_resume() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    // Nothing counts as a change with a huge min_delta: patience 2 stops after epoch 3.
    let extra = [
        "trainer.max_epochs=10",
        "trainer.early_stopping.min_delta=100",
        "trainer.early_stopping.patience=2",
        "trainer.early_stopping.monitor=val/loss",
        "trainer.early_stopping.mode=min",
    ];
    let cfg = config(dir.path(), &extra);
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    assert_eq!(s.epochs, 3);
    assert!(s.finished && s.test.is_some(), "an early stop ends the run and tests it");
    // Stopped after 2 epochs, then resumed: the count goes on from the checkpoint.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = config(dir2.path(), &extra);
    let first = fit(&cfg2, &FitOptions { quiet: true, stop_after_epochs: Some(2), ..Default::default() }).unwrap();
    let resumed = fit(&cfg2, &FitOptions { quiet: true, resume: Some(first.run), ..Default::default() }).unwrap();
    assert_eq!(resumed.epochs, 3);
}

#[test]
fn validation_within_epochs_follows_lightning() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let quiet = FitOptions { quiet: true, ..Default::default() };
    // 6 batches per epoch. Every 2 batches: the third check is the epoch's end.
    let s = fit(&config(dir.path(), &["trainer.max_epochs=2", "trainer.val_check_interval=2"]), &quiet).unwrap();
    assert_eq!(val_points(&s.run, "loss"), [(2, 0), (4, 0), (6, 0), (8, 1), (10, 1), (12, 1)]);
    // Half an epoch is 3 batches.
    let s = fit(&config(dir.path(), &["trainer.max_epochs=2", "trainer.val_check_interval=0.5"]), &quiet).unwrap();
    assert_eq!(val_points(&s.run, "loss"), [(3, 0), (6, 0), (9, 1), (12, 1)]);
    // Every 4 batches in every second epoch: batch 4 of epoch 2, not its end (6 is no multiple
    // of 4), nothing in epoch 1 or 3, except that the last epoch always validates at its end.
    let extra = ["trainer.max_epochs=3", "trainer.val_check_interval=4", "trainer.check_val_every_n_epoch=2"];
    let s = fit(&config(dir.path(), &extra), &quiet).unwrap();
    assert_eq!(val_points(&s.run, "loss"), [(10, 1), (18, 2)]);
    // More batches than an epoch has is refused, naming the key.
    let e = fit(&config(dir.path(), &["trainer.val_check_interval=7"]), &quiet).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("trainer.val_check_interval") && msg.contains("6 training batches"), "{msg}");
}

#[test]
fn a_mid_epoch_validation_checkpoint_resumes_bit_for_bit() {
    // Dropout, accumulation, a plateau schedule fed by every validation, and the top k all
    // carry state across the interruption.
    let _turn = serial();
    let extra = [
        "trainer.max_epochs=2",
        "trainer.val_check_interval=2",
        "model.dropout=0.1",
        "trainer.accumulate_grad_batches=2",
        "scheduler=plateau",
        "scheduler.patience=0",
        "scheduler.factor=0.5",
        "checkpoint.save_top_k=2",
    ];
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let quiet = FitOptions { quiet: true, ..Default::default() };
    let full = fit(&config(a.path(), &extra), &quiet).unwrap();
    // 3 optimizer steps per epoch, validated after each: stop after the second, within epoch 1.
    let cfg = config(b.path(), &extra);
    let stopped = fit(&cfg, &FitOptions { stop_after_steps: Some(2), ..quiet.clone() }).unwrap();
    let ck = Checkpoint::load(&stopped.run.join("checkpoints/last.bpk")).unwrap();
    assert_eq!((ck.state.epoch, ck.state.batch, ck.state.mid_val_step), (0, 4, Some(2)));
    let resumed = fit(&cfg, &FitOptions { resume: Some(stopped.run.clone()), ..quiet }).unwrap();
    assert_eq!((resumed.epochs, resumed.steps), (full.epochs, full.steps));
    assert_eq!((&resumed.val, &resumed.test, resumed.best), (&full.val, &full.test, full.best));
    assert!(common::last_params(&cfg, &resumed.run) == common::last_params(&cfg, &full.run), "identical parameters");
    // Each validation row once, the same as the uninterrupted run's.
    assert_eq!(val_points(&resumed.run, "loss").iter().map(|p| p.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6]);
    assert_eq!(rows(&resumed.run, ",val,"), rows(&full.run, ",val,"));
    let last = Checkpoint::load(&resumed.run.join("checkpoints/last.bpk")).unwrap();
    let full_last = Checkpoint::load(&full.run.join("checkpoints/last.bpk")).unwrap();
    assert_eq!(last.state.top_k, full_last.state.top_k);
    let top: Vec<String> = std::fs::read_dir(resumed.run.join("checkpoints/top"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top.len(), 2, "{top:?}");
    for (v, e, step) in &last.state.top_k {
        let step = step.map(|s| format!("step={s}-")).unwrap_or_default();
        let name = format!("epoch={}-{step}val_accuracy={v:.4}.bpk", e + 1);
        assert!(top.contains(&name), "{name} in {top:?}");
    }
}

#[test]
fn early_stopping_at_a_mid_epoch_validation_ends_the_fit() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "trainer.max_epochs=3",
        "trainer.val_check_interval=2",
        "trainer.early_stopping.min_delta=100",
        "trainer.early_stopping.patience=1",
    ];
    let cfg = config(dir.path(), &extra);
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    // Validated at steps 2 (the first value) and 4 (no change by 100: stop), within epoch 1.
    assert_eq!((s.epochs, s.steps), (0, 4));
    assert!(s.finished && s.test.is_some(), "{s:?}");
    let again = fit(&cfg, &FitOptions { quiet: true, resume: Some(s.run.clone()), ..Default::default() }).unwrap();
    assert_eq!((again.steps, again.finished), (4, true), "a resumed stopped run stays stopped");
    assert_eq!(rows(&s.run, ",test,loss,").len(), 1, "tested once");
}
