//! `wavessm generate`: a char-level LM samples deterministically per seed; greedy decoding by
//! conv-mode prefill + steps picks the same tokens as the full forward pass on the growing
//! text; bad requests are clear errors.

mod common;

use std::process::{Command, Output};

use burn::tensor::{Tensor, TensorData};
use common::{data_dir, serial};
use wavessm::config::ConfigRequest;
use wavessm::data::DataSpec;
use wavessm::train::checkpoint::Checkpoint;
use wavessm::train::{FitOptions, Setup, fit};

fn wavessm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wavessm")).args(args).env_remove("WAVESSM_CONFIG_DIR").output().unwrap()
}

#[test]
fn generation_is_seeded_and_greedy_steps_match_the_full_forward() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = [
        "experiment=lm/s4d-text",
        "data.level=char",
        "data.seq_len=64",
        "model.d_model=32",
        "model.n_layers=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=15",
        "trainer.limit_eval_batches=2",
        "trainer.progress_bar=never",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("data.path={}", data_dir().join("text/sotu").display()),
        format!("logger.save_dir={}", dir.path().display()),
    ])
    .collect();
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let ck = s.run.join("checkpoints/best.bpk");
    let ck_s = ck.to_str().unwrap();
    let sample = |extra: &[&str]| {
        let o = wavessm(
            &[&["generate", "--ckpt", ck_s, "--prompt", "The Congress ", "--length", "24"][..], extra].concat(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let a = sample(&["--seed", "3", "--top-k", "10", "--temperature", "0.9"]);
    assert_eq!(a, sample(&["--seed", "3", "--top-k", "10", "--temperature", "0.9"]), "same seed, same text");
    assert!(a.starts_with("The Congress ") && a.trim_end().chars().count() == 13 + 24, "{a:?}");
    let greedy = sample(&["--temperature", "0"]);

    // The same greedy text from full forward passes over the growing sequence.
    let (tok, _) = DataSpec::from_named(&cfg.data, "data").unwrap().dataset.vocabulary().unwrap().unwrap();
    let index: std::collections::HashMap<&str, u32> =
        tok.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let setup = Setup::new(&cfg, burn::tensor::Device::flex()).unwrap();
    let model = wavessm::train::fit::load_model(setup.model, Checkpoint::load(&ck).unwrap().model, &ck).unwrap();
    let mut ids: Vec<u32> = "The Congress ".chars().map(|c| index[c.to_string().as_str()]).collect();
    for _ in 0..24 {
        let x = Tensor::<3>::from_data(
            TensorData::new(ids.iter().map(|&t| t as f32).collect::<Vec<_>>(), [1, ids.len(), 1]),
            &setup.device,
        );
        let out = model.forward(x, None); // [1, L, K]
        let k = out.dims()[2];
        let last: Vec<f32> = out.narrow(1, ids.len() - 1, 1).reshape([k]).try_into_vec_as::<f32>().unwrap();
        let best = (0..k).max_by(|&i, &j| last[i].total_cmp(&last[j])).unwrap();
        ids.push(best as u32);
    }
    let full: String = ids.iter().map(|&t| tok[t as usize].as_str()).collect();
    assert_eq!(greedy.trim_end_matches('\n'), full, "prefill + steps vs full forward");

    // Per-step predictions: one row per step of every sequence.
    let csv = dir.path().join("p.csv");
    let o = wavessm(&["predict", "--ckpt", ck_s, "--split", "val", "--out", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "index,step,target,prediction,probability");
    assert_eq!((rows.len() - 1) % 64, 0, "whole sequences of 64 steps");
    assert!(
        rows[1].starts_with("0,0,") && rows[64].starts_with("0,63,") && rows[65].starts_with("1,0,"),
        "{}",
        rows[65]
    );
    let o = wavessm(&["generate", "--ckpt", ck_s, "--prompt", "日本"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("outside the model's vocabulary: \"日\", \"本\""));
    let o = wavessm(&["generate", "--ckpt", ck_s, "--top-p", "0"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--top-p"));
}

#[test]
fn generate_refuses_a_classification_checkpoint() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let tokens = vec![
        "model.n_layers=1".into(),
        "trainer.max_epochs=1".into(),
        "trainer.limit_train_batches=2".into(),
        format!("logger.save_dir={}", dir.path().display()),
    ];
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let o = wavessm(&["generate", "--ckpt", s.run.join("checkpoints/last.bpk").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("language-model checkpoint") && err.contains("classification"),
        "{err}"
    );
}

#[test]
fn generate_names_the_option_that_looks_ahead() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    for (layer, key) in [
        (&["model=transformer", "model.layer.causal=false", "model.layer.n_heads=2"][..], "model.layer.causal"),
        (&["model=lstm", "model.layer.bidirectional=true"], "model.layer.bidirectional"),
    ] {
        let tokens: Vec<String> = ["experiment=lm/s4d-text", "data.level=char", "data.seq_len=16", "model.d_model=8"]
            .iter()
            .chain(layer)
            .chain(&["model.n_layers=1", "trainer.max_epochs=1", "trainer.limit_train_batches=1"])
            .chain(&["trainer.limit_eval_batches=1", "trainer.progress_bar=never"])
            .map(|s| s.to_string())
            .chain([
                format!("data.path={}", data_dir().join("text/sotu").display()),
                format!("logger.save_dir={}", dir.path().display()),
            ])
            .collect();
        let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
        let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
        let o = wavessm(&["generate", "--ckpt", s.run.join("checkpoints/last.bpk").to_str().unwrap(), "--length", "4"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(key), "{layer:?}: {err}");
    }
}
