//! The trainer's Lightning-style options: validation every n epochs, extra evaluation rates,
//! the k best checkpoints, and early stopping that survives a resume.

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

fn rows(run: &Path, needle: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
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
    for (v, e) in &last.state.top_k {
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
