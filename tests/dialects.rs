//! The other seeds' config dialects: LightningCLI `class_path` / `init_args` files (Wave SSM)
//! run as is, and class paths resolve through each registry's alias table.

use std::path::{Path, PathBuf};

use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::train::{FitOptions, fit};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(name)
}

fn with_file(text: &str, tokens: &[&str]) -> Result<ExperimentConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("c.yaml");
    std::fs::write(&f, text).unwrap();
    ConfigRequest { files: vec![f], tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
        .resolve()
        .map_err(|e| e.to_string())
}

fn wave_ssm(save_dir: &Path) -> ExperimentConfig {
    ConfigRequest {
        files: vec![fixture("wave_ssm.yaml")],
        tokens: vec![format!("logger.save_dir={}", save_dir.display())],
        ..Default::default()
    }
    .resolve()
    .unwrap()
}

#[test]
fn a_wave_ssm_file_maps_onto_our_sections() {
    let c = wave_ssm(Path::new("x"));
    assert_eq!(
        (c.task.name.as_str(), c.model.layer.name.as_str(), c.data.name.as_str()),
        ("classification", "s4d", "digits")
    );
    assert_eq!((c.model.d_model, c.model.n_layers, c.seed), (16, 2, 7), "backbone keys and seed_everything");
    assert_eq!(
        c.model.layer.options["d_state"],
        serde_yaml::Value::from(8),
        "the network's other keys go to the layer"
    );
    assert_eq!(c.loader.batch_size, 16);
    assert_eq!(c.logger.name.as_deref(), Some("wave-ssm"));
    assert_eq!(c.logger.save_dir, PathBuf::from("x"), "the command line wins over the file");
    assert_eq!((c.trainer.max_epochs, c.trainer.limit_train_batches), (2, Some(6)));
    assert_eq!(c.trainer.progress_bar, wavessm::train::ProgressMode::Never);
    assert_eq!(c.trainer.monitor, "val/accuracy");
    assert_eq!(c.optimizer.name, wavessm::train::config::OptimizerName::Adamw);
    assert_eq!((c.optimizer.lr, c.optimizer.weight_decay), (0.01, 0.01));
    assert_eq!(c.scheduler.name, "step");
    assert_eq!(c.scheduler.options["step_size"], serde_yaml::Value::from(4));
    // The printed config is ours: no class paths left.
    let yaml = c.to_yaml();
    assert!(!yaml.contains("class_path") && !yaml.contains("init_args"), "{yaml}");
}

#[test]
fn a_wave_ssm_file_runs_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wave_ssm(dir.path());
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    assert_eq!(s.epochs, 2);
    assert!(s.run.starts_with(dir.path().join("wave-ssm")), "{}", s.run.display());
    assert!(s.run.join("checkpoints/best.bpk").exists());
}

#[test]
fn unknown_class_paths_name_themselves_and_the_registry() {
    let e = with_file("optimizer:\n  class_path: torch.optim.LBFGS\n  init_args: {lr: 1}\n", &[]).unwrap_err();
    assert!(
        e.contains("`optimizer.class_path`")
            && e.contains("torch.optim.LBFGS")
            && e.contains("adam, adamw, sgd, rmsprop, adagrad, lion"),
        "{e}"
    );
    let e = with_file("model:\n  class_path: my.Task\n", &[]).unwrap_err();
    assert!(
        e.contains("`model.class_path`") && e.contains("`my.Task`") && e.contains("classification, regression, lm"),
        "{e}"
    );
    let e = with_file(
        "model:\n  class_path: wavesAI.task.ClassificationTask\n  init_args:\n    network: {class_path: wavesAI.model.FancyNet}\n",
        &[],
    )
    .unwrap_err();
    assert!(e.contains("`model.init_args.network.class_path`") && e.contains("registered layers: s4d"), "{e}");
    let e = with_file("trainer:\n  logger: {class_path: lightning.pytorch.loggers.WandbLogger}\n", &[]).unwrap_err();
    assert!(e.contains("`trainer.logger.0.class_path`") && e.contains("tensorboard"), "{e}");
    let e = with_file("loader:\n  class_path: x.Y\n", &[]).unwrap_err();
    assert!(e.contains("`loader.class_path`") && e.contains("is read under"), "{e}");
}

#[test]
fn torch_optimizers_and_schedulers_by_class_path() {
    let c = with_file(
        "optimizer:\n  class_path: torch.optim.SGD\n  init_args: {lr: 0.1, momentum: 0.9, nesterov: true}\n\
         lr_scheduler:\n  class_path: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts\n  init_args: {T_0: 10, T_mult: 2}\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        (c.optimizer.name, c.optimizer.momentum, c.optimizer.nesterov),
        (wavessm::train::config::OptimizerName::Sgd, 0.9, true)
    );
    assert_eq!(c.scheduler.name, "cosine_restarts");
    assert_eq!(c.scheduler.options["cycle_steps"], serde_yaml::Value::from(10));
    assert_eq!(c.scheduler.options["cycle_mul"], serde_yaml::Value::from(2.0));
    // A TensorBoard logger becomes `logger.tensorboard` (and needs the TensorBoard backend).
    let e = with_file(
        "trainer:\n  logger: {class_path: lightning.pytorch.loggers.TensorBoardLogger, init_args: {save_dir: tb}}\n",
        &[],
    );
    match e {
        Ok(c) => assert_eq!(c.logger.save_dir, PathBuf::from("tb")),
        Err(e) => assert!(e.contains("logger.tensorboard"), "{e}"),
    }
}

#[test]
fn backbone_and_loader_key_lists_match_the_option_structs() {
    let c = ConfigRequest::default().resolve().unwrap();
    let keys = |v: serde_yaml::Value| -> Vec<String> {
        v.as_mapping().unwrap().keys().map(|k| k.as_str().unwrap().to_string()).collect()
    };
    let mut model = keys(serde_yaml::to_value(&c.model).unwrap());
    model.retain(|k| k != "layer");
    assert_eq!(model, wavessm::experiment::MODEL_KEYS.to_vec());
    assert_eq!(keys(serde_yaml::to_value(&c.loader).unwrap()), wavessm::experiment::LOADER_KEYS.to_vec());
}

#[test]
fn lightning_devices_and_precision_meet_ours() {
    let devices = |text: &str| with_file(text, &[]).map(|c| c.trainer.devices);
    assert_eq!(devices("trainer:\n  devices: 1\n"), Ok(None), "one device: the default");
    assert_eq!(devices("trainer:\n  devices: auto\n"), Ok(None));
    assert_eq!(devices("trainer:\n  devices: [0]\n"), Ok(Some(vec![0])), "a list of indices is ours");
    let e = devices("trainer:\n  devices: 2\n").unwrap_err();
    assert!(e.contains("trainer.devices") && e.contains("one device"), "{e}");
    let precision = |text: &str| with_file(text, &[]).map(|c| c.trainer.precision.to_string());
    assert_eq!(precision("trainer:\n  precision: 32-true\n"), Ok("32".into()));
    assert_eq!(precision("trainer:\n  precision: bf16-mixed\n"), Ok("bf16-mixed".into()));
    let e = precision("trainer:\n  precision: 64\n").unwrap_err();
    assert!(e.contains("trainer.precision"), "{e}");
}
