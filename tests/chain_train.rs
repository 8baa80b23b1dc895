//! Chains in training: the shipped `experiment=smnist/s4-vae` trains on real MNIST and its
//! reconstruction loss falls; `fit --init-from` starts a new run from another run's weights
//! (all of them, or with `--partial` the matching subset), refusing mismatched shapes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::Module;
use burn::tensor::Device;
use common::serial;
use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::train::checkpoint::Checkpoint;
use wavessm::train::fit::load_model;
use wavessm::train::init_from::init_from;
use wavessm::train::{FitOptions, Setup, fit};

fn resolve(tokens: &[String]) -> ExperimentConfig {
    ConfigRequest { tokens: tokens.to_vec(), ..Default::default() }.resolve().unwrap()
}

fn quiet() -> FitOptions {
    FitOptions { quiet: true, ..Default::default() }
}

#[test]
fn s4_vae_trains_and_its_reconstruction_falls() {
    let _turn = serial();
    let mnist = common::data_dir().join("mnist");
    if !mnist.join("train-images-idx3-ubyte.gz").is_file() {
        println!("SKIP s4-vae: {} not found (set WAVESSM_DATA_DIR)", mnist.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = [
        "experiment=smnist/s4-vae".to_string(),
        format!("data.path={}", mnist.display()),
        "+data.limit_train=600".into(),
        "loader.batch_size=16".into(),
        "model.links.encoder.d_model=16".into(),
        "model.links.decoder.d_model=16".into(),
        "trainer.max_epochs=3".into(),
        "trainer.limit_train_batches=8".into(),
        "trainer.limit_eval_batches=2".into(),
        "trainer.test_after_fit=false".into(),
        "trainer.progress_bar=never".into(),
        "logger=[csv]".into(),
        format!("logger.save_dir={}", dir.path().display()),
    ]
    .into();
    let cfg = resolve(&tokens);
    let s = fit(&cfg, &quiet()).unwrap();
    let recon: Vec<f64> = s.train_history.iter().map(|m| m["train/loss/recon"]).collect();
    let kl: Vec<f64> = s.train_history.iter().map(|m| m["train/loss/kl"]).collect();
    println!("s4-vae: train/loss/recon per epoch {recon:?}, kl {kl:?}, val {:?}", s.val);
    assert!(recon[2] < recon[0] * 0.8, "reconstruction {recon:?}");
    assert!(kl.iter().all(|k| k.is_finite() && *k >= 0.0), "{kl:?}");
    assert!(s.val.contains_key("val/loss/recon") && s.val.contains_key("val/loss/kl"), "{:?}", s.val);
    let csv = std::fs::read_to_string(s.run.join("metrics.csv")).unwrap();
    assert!(csv.contains(",train,loss/recon,") && csv.contains(",val,loss/kl,"), "{csv}");
    // Validation runs the chain's `reconstruct`, `encode` and `generate` commands for its figures.
    for kind in ["reconstruction", "codes", "samples"] {
        let png = std::fs::read(s.run.join(format!("figures/val_{kind}_epoch3.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{kind}");
    }
    // The encoder and the decoder are their own optimizer groups, each with its schedule.
    let optim = wavessm::train::optim::Optim::new(&cfg).unwrap();
    let names: Vec<&str> = optim.groups.iter().map(|g| g.name.as_str()).collect();
    assert!(names.ends_with(&["optimizers.0:encoder", "optimizers.1:decoder"]), "{names:?}");
}

/// A chain on the embedded digits: a linear encoder, a one-block S4D body and `extra`.
fn chain_tokens(save_dir: &Path, enc_width: usize, extra_links: &str) -> Vec<String> {
    let body = "{_name_: sequence, layer: {_name_: s4d, d_state: 4}, d_model: 8, n_layers: 1}";
    vec![
        "model._name_=chain".into(),
        format!("+model.links={{enc: {{_name_: linear, d_output: {enc_width}}}, body: {body}{extra_links}}}"),
        "+model.commands={forward: [{link: enc}, {link: body}]}".into(),
        "loader.batch_size=32".into(),
        "trainer.max_epochs=1".into(),
        "trainer.limit_train_batches=4".into(),
        "trainer.limit_eval_batches=2".into(),
        "trainer.test_after_fit=false".into(),
        "trainer.progress_bar=never".into(),
        "logger=[csv]".into(),
        format!("logger.save_dir={}", save_dir.display()),
    ]
}

/// Every parameter's values by path.
fn params(m: &impl Module) -> Vec<(String, Vec<f32>)> {
    common::named_params(m).into_iter().map(|(path, _, v)| (path, v)).collect()
}

fn fresh(cfg: &ExperimentConfig) -> wavessm::model::Model {
    Setup::new(cfg, Device::flex()).unwrap().model
}

/// Trains the source run; returns its folder and its best model's parameters.
fn source_run(dir: &Path) -> (PathBuf, Vec<(String, Vec<f32>)>) {
    let cfg = resolve(&chain_tokens(dir, 8, ""));
    let run = fit(&cfg, &quiet()).unwrap().run;
    let best = run.join("checkpoints/best.bpk");
    let trained = load_model(fresh(&cfg), Checkpoint::load(&best).unwrap().model, &best).unwrap();
    (run, params(&trained))
}

#[test]
fn init_from_loads_every_weight_by_path() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (run, trained) = source_run(dir.path());
    let cfg = resolve(&chain_tokens(dir.path(), 8, ""));
    let before = params(&fresh(&cfg));
    assert_ne!(before, trained, "training moved the weights");
    let (m, report) = init_from(fresh(&cfg), &run, false).unwrap();
    assert_eq!(params(&m), trained);
    assert_eq!(report.loaded.len(), trained.len());
    assert!(report.kept.is_empty() && report.skipped.is_empty(), "{report}");
    assert!(report.path.ends_with("checkpoints/best.bpk"), "{}", report.path.display());

    // A new run folder, fresh optimizer: the fine-tuning run starts at step 0.
    let opts = FitOptions { init_from: Some(run.clone()), ..quiet() };
    let s = fit(&cfg, &opts).unwrap();
    assert_ne!(s.run, run);
    assert_eq!((s.epochs, s.steps), (1, 4));
}

#[test]
fn partial_init_loads_the_matching_subset_and_reports_the_rest() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (run, trained) = source_run(dir.path());
    // One more link than the source: refused without --partial, loaded around with it.
    let extra = ", probe: {_name_: linear, d_input: 8, d_output: 2}";
    let cfg = resolve(&chain_tokens(dir.path(), 8, extra));
    let e = init_from(fresh(&cfg), &run, false).unwrap_err().to_string();
    assert!(e.contains("probe.weight") && e.contains("--partial"), "{e}");
    let (m, report) = init_from(fresh(&cfg), &run, true).unwrap();
    assert_eq!(report.kept, ["probe.bias", "probe.weight"]);
    assert!(report.skipped.is_empty() && report.loaded.len() == trained.len(), "{report}");
    let got: Vec<_> = params(&m).into_iter().filter(|(p, _)| !p.starts_with("probe.")).collect();
    assert_eq!(got, trained);
    // A checkpoint key the model lacks is skipped and named.
    let src = resolve(&chain_tokens(dir.path(), 8, extra));
    let with_probe = fit(&src, &quiet()).unwrap().run;
    let (_, report) = init_from(fresh(&resolve(&chain_tokens(dir.path(), 8, ""))), &with_probe, true).unwrap();
    assert_eq!(report.skipped, ["probe.bias", "probe.weight"]);
    assert!(report.to_string().contains("skipped (not in this model): probe.bias, probe.weight"), "{report}");
}

#[test]
fn mismatched_shapes_are_errors_naming_the_key() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = source_run(dir.path());
    let cfg = resolve(&chain_tokens(dir.path(), 6, ""));
    for partial in [false, true] {
        let e = init_from(fresh(&cfg), &run, partial).unwrap_err().to_string();
        // enc's width feeds body's input projection: the first mismatched key is named.
        let key = ["`enc.weight`", "`enc.bias`", "`body.encoder.weight`"].iter().find(|k| e.contains(*k));
        assert!(key.is_some() && e.contains("in the checkpoint") && e.contains("in this model"), "{e}");
        assert!(e.contains("8") && e.contains("6"), "{e}");
    }
}

#[test]
fn the_fit_flags_start_a_new_run_from_weights() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let (run, _) = source_run(dir.path());
    let extra = ", probe: {_name_: linear, d_input: 8, d_output: 2}";
    let run_s = run.display().to_string();
    let wavessm = |flags: &[&str]| {
        let mut args = vec!["fit"];
        args.extend(flags);
        let tokens = chain_tokens(dir.path(), 8, extra);
        Command::new(env!("CARGO_BIN_EXE_wavessm"))
            .args(&args)
            .args(&tokens)
            .current_dir(dir.path())
            .env_remove("WAVESSM_CONFIG_DIR")
            .output()
            .unwrap()
    };
    let o = wavessm(&["--init-from", &run_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("probe.weight") && err.contains("--partial"), "{err}");
    let o = wavessm(&["--init-from", &run_s, "--partial"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{err}");
    assert!(out.contains("kept at initialization (not in the checkpoint): probe.bias, probe.weight"), "{out}");
    let o = wavessm(&["--partial"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--init-from"));
    let o = wavessm(&["--init-from", &run_s, "--resume", &run_s]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--resume"));
}

#[test]
fn a_chain_with_its_own_optimizers_and_loss_resumes_bit_for_bit() {
    // SGD for the encoder, Adam with an epoch-wise step schedule for the body, and a loss
    // manager whose cross-entropy weight warms up: a mid-epoch checkpoint restores them all.
    let _turn = serial();
    let extra = [
        "+model.optimizers=[{links: [enc], optimizer_name: sgd, kwargs: {lr: 0.05, momentum: 0.9}}, \
         {links: [body], optimizer_name: adam, kwargs: {lr: 0.003}, lr_scheduler: {schedulers: \
         [{name: step, kwargs: {step_size: 1, gamma: 0.5}}], out_cfg_kwargs: {interval: epoch}}}]",
        "+model.loss=[{name: ce, _name_: cross_entropy, input: body, target: y, \
         schedule: {_name_: constant, warmup_steps: 3}}]",
        "trainer.max_epochs=2",
        "trainer.monitor=val/loss/ce",
        "trainer.mode=min",
    ];
    let tokens = |dir: &Path| {
        let mut t = chain_tokens(dir, 8, "");
        t.extend(extra.iter().map(|s| s.to_string()));
        t
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cfg = resolve(&tokens(b.path()));
    let full = fit(&resolve(&tokens(a.path())), &quiet()).unwrap();
    assert_eq!(full.steps, 8);
    let stopped = fit(&cfg, &FitOptions { stop_after_steps: Some(5), ..quiet() }).unwrap();
    assert_eq!(stopped.steps, 5);
    let resumed = fit(&cfg, &FitOptions { resume: Some(stopped.run.clone()), ..quiet() }).unwrap();
    assert_eq!((resumed.epochs, resumed.steps), (full.epochs, full.steps));
    assert_eq!(resumed.val, full.val);
    let trained = |run: &Path| {
        let last = run.join("checkpoints/last.bpk");
        params(&load_model(fresh(&cfg), Checkpoint::load(&last).unwrap().model, &last).unwrap())
    };
    assert!(trained(&resumed.run) == trained(&full.run), "identical parameters");
    assert!(full.val.contains_key("val/loss/ce"), "{:?}", full.val);
}

#[test]
fn a_frozen_link_keeps_its_weights_through_training() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut tokens = chain_tokens(dir.path(), 8, "");
    tokens[1] = tokens[1].replace("d_output: 8}", "d_output: 8, freeze: true}");
    tokens.push("+model.optimizers=[{links: [body], optimizer_name: adam, kwargs: {lr: 0.01}}]".into());
    let cfg = resolve(&tokens);
    let after = |opts: FitOptions| {
        let run = fit(&cfg, &opts).unwrap().run;
        let last = run.join("checkpoints/last.bpk");
        params(&load_model(fresh(&cfg), Checkpoint::load(&last).unwrap().model, &last).unwrap())
    };
    // One step and four steps from the same initialization.
    let init = after(FitOptions { stop_after_steps: Some(1), ..quiet() });
    let trained = after(quiet());
    let part = |ps: &[(String, Vec<f32>)], link: &str| {
        ps.iter().filter(|(p, _)| p.starts_with(link)).cloned().collect::<Vec<_>>()
    };
    assert_eq!(part(&trained, "enc."), part(&init, "enc."), "the frozen encoder did not move");
    assert_ne!(part(&trained, "body."), part(&init, "body."), "the body trained");
}
