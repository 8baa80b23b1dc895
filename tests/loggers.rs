//! The loggers, read by their own tools: TensorBoard's `EventAccumulator` reads the event files,
//! a real `mlflow server` (sqlite backend) receives a run, and a dead or silent tracking server
//! neither fails nor slows a fit. The Python tools come from the virtualenv at `$WAVESSM_PYTHON`
//! (default `~/.cache/wavessm-venv/bin/python`, made by `.ci/run`); without it these tests skip
//! with a message, except under `CI`, where they fail.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::serial;
use serde_json::Value;
use wavessm::config::ConfigRequest;
use wavessm::experiment::ExperimentConfig;
use wavessm::train::callback::{FitEnd, FitStart, FitStatus};
use wavessm::train::callbacks::tensorboard::TensorBoard;
use wavessm::train::callbacks::tfevents::{self, EventWriter, Kind};
use wavessm::train::checkpoint::TrainerState;
use wavessm::train::run::RunDir;
use wavessm::train::{FitOptions, fit};

fn config(save_dir: &Path, extra: &[&str]) -> ExperimentConfig {
    let mut tokens: Vec<String> = [
        "model.d_model=8",
        "model.n_layers=1",
        "model.layer.d_state=4",
        "loader.batch_size=32",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "trainer.limit_eval_batches=2",
        "trainer.log_every_n_steps=1",
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

fn quiet() -> FitOptions {
    FitOptions { quiet: true, ..Default::default() }
}

/// The virtualenv's Python with `module` importable; `None` (skip) outside CI, a failure in CI.
fn python_with(module: &str) -> Option<PathBuf> {
    let py = std::env::var_os("WAVESSM_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wavessm-venv/bin/python")
    });
    let ok = Command::new(&py).args(["-c", &format!("import {module}")]).output().is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let why = format!("{} cannot import `{module}` (set WAVESSM_PYTHON; .ci/run makes the virtualenv)", py.display());
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// A tiny PNG (RGB, 5×3).
fn png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 5, 3);
        enc.set_color(png::ColorType::Rgb);
        enc.write_header().unwrap().write_image_data(&[128; 45]).unwrap();
    }
    out
}

#[test]
fn tensorboard_events_are_read_by_tensorboard() {
    let _turn = serial();
    let Some(py) = python_with("tensorboard") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &["logger.tensorboard.log_every_n_epochs=1", "wandb.project=proj"]);
    let s = fit(&cfg, &quiet()).unwrap();

    // Images come from whoever makes figures; log one into the same run, as a resumed process.
    let run = RunDir::open(&s.run).unwrap();
    let mut tb = TensorBoard::from_config(&cfg).unwrap().unwrap();
    let start = FitStart { cfg: &cfg, run: &run, num_params: 1, step: s.steps, resumed: true };
    tb.on_fit_start(&start).unwrap();
    tb.on_image("val/figure", &png(), s.steps).unwrap();
    tb.on_text("val/sample", "a generated sample", s.steps).unwrap();
    let state = TrainerState::fresh(vec![], String::new());
    let state = TrainerState { step: s.steps, ..state };
    tb.on_fit_end(&FitEnd { run: &run, state: &state, test: None, status: FitStatus::Finished }).unwrap();

    let out = Command::new(&py).arg("scripts/read_tensorboard.py").arg(s.run.join("tb")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reader failed: {stderr}");
    assert!(!stderr.contains("DataLoss") && !stderr.contains("CRC"), "{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    // Scalars: every step's loss and gradient norm, each epoch's metrics, lr per group, throughput.
    let scalars = seen["scalars"].as_object().unwrap();
    let steps = |tag: &str| -> Vec<u64> {
        scalars
            .get(tag)
            .unwrap_or_else(|| panic!("no scalar {tag} in {:?}", scalars.keys()))
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_u64().unwrap())
            .collect()
    };
    assert_eq!(steps("train/loss_step"), (1..=s.steps as u64).collect::<Vec<_>>());
    assert_eq!(steps("train/grad_norm").len(), s.steps);
    for tag in ["train/loss", "val/accuracy", "val/loss", "train/samples_per_sec", "epoch"] {
        assert_eq!(steps(tag), vec![3, 6], "{tag}");
    }
    assert!(scalars.keys().any(|k| k.starts_with("train/lr/")), "{:?}", scalars.keys());
    let test = s.test.as_ref().unwrap();
    let logged = scalars["test/accuracy"][0][1].as_f64().unwrap();
    assert!((logged - test["test/accuracy"]).abs() < 1e-6, "{logged} vs {test:?}");

    // Text: the resolved config and the run's metadata.
    let text = &seen["text"];
    let saved = std::fs::read_to_string(s.run.join("config.yaml")).unwrap();
    assert!(text["config"].as_str().unwrap().contains(saved.trim_end()), "{}", text["config"]);
    assert!(text["run"].as_str().unwrap().contains("wandb.project=proj"), "{}", text["run"]);

    // HParams: the flattened config against the metrics.
    let hp = &seen["hparams"];
    let exp = &hp["_hparams_/experiment"]["experiment"];
    let names: Vec<&str> = exp["hparamInfos"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"model.d_model") && names.contains(&"wandb.project"), "{names:?}");
    let metrics: Vec<&str> =
        exp["metricInfos"].as_array().unwrap().iter().map(|m| m["name"]["tag"].as_str().unwrap()).collect();
    assert!(metrics.contains(&"val/accuracy") && metrics.contains(&"test/accuracy"), "{metrics:?}");
    let start = &hp["_hparams_/session_start_info"]["sessionStartInfo"]["hparams"];
    // (protobuf's JSON form writes `google.protobuf.Value`s as plain JSON values)
    assert_eq!(start["model.d_model"].as_f64(), Some(8.0), "{start}");
    assert_eq!(start["model.layer._name_"].as_str(), Some("s4d"));
    assert_eq!(start["trainer.test_after_fit"].as_bool(), Some(true));
    assert_eq!(start["optimizer.betas"].as_str(), Some("[0.9,0.999]"));
    assert_eq!(hp["_hparams_/session_end_info"]["sessionEndInfo"]["status"].as_str(), Some("STATUS_SUCCESS"));

    // Histograms every epoch, each counting every value of its parameter.
    let histograms = seen["histograms"].as_object().unwrap();
    assert!(!histograms.is_empty());
    for (tag, h) in histograms {
        assert!(tag.starts_with("params/"), "{tag}");
        assert_eq!(h["steps"], serde_json::json!([3, 6]), "{tag}");
        assert_eq!(h["num"], h["counted"], "{tag}");
        assert!(h["min"].as_f64() <= h["max"].as_f64(), "{tag}");
    }
    assert_eq!(seen["images"]["val/figure"]["width"], 5);
    assert_eq!(seen["images"]["val/figure"]["height"], 3);
    assert_eq!(seen["images"]["val/figure"]["step"].as_u64(), Some(s.steps as u64));
    assert_eq!(text["val/sample"].as_str(), Some("a generated sample"));

    // The fit's own validation figure, every epoch: the PNG under figures/ is the image logged.
    let cm = &seen["images"]["val/confusion_matrix"];
    let file = std::fs::read(s.run.join("figures/val_confusion_matrix_epoch2.png")).unwrap();
    assert!(s.run.join("figures/val_confusion_matrix_epoch1.png").is_file());
    assert_eq!((cm["step"].as_u64(), cm["bytes"].as_u64()), (Some(6), Some(file.len() as u64)), "{cm}");
    let info = png::Decoder::new(std::io::Cursor::new(&file)).read_info().unwrap().info().clone();
    assert_eq!((cm["width"].as_u64(), cm["height"].as_u64()), (Some(info.width as u64), Some(info.height as u64)));
    assert!(info.width >= 400 && info.height >= 400, "{}×{}", info.width, info.height);
}

/// An `mlflow server` on a free loopback port, stopped (with its workers) when dropped.
struct MlflowServer {
    child: Child,
    url: String,
}

impl MlflowServer {
    fn start(py: &Path, dir: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(py)
            .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port", &port.to_string(), "--workers", "1"])
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()))
            .arg("--artifacts-destination")
            .arg(dir.join("artifacts"))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("server.log")).unwrap()))
            .process_group(0)
            .spawn()
            .unwrap();
        let server = MlflowServer { child, url: format!("http://127.0.0.1:{port}") };
        let t0 = Instant::now();
        while get(&format!("{}/health", server.url)).is_none() {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            assert!(t0.elapsed() < Duration::from_secs(90), "mlflow server did not start:\n{log}");
            std::thread::sleep(Duration::from_millis(300));
        }
        server
    }

    fn api(&self, endpoint: &str) -> Value {
        let text = get(&format!("{}/api/2.0/mlflow/{endpoint}", self.url)).unwrap_or_else(|| panic!("{endpoint}"));
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The server runs workers in its process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The body of a successful GET.
fn get(url: &str) -> Option<String> {
    let mut r = ureq::get(url).call().ok()?;
    r.body_mut().read_to_string().ok()
}

#[test]
fn mlflow_server_receives_the_run() {
    let _turn = serial();
    let Some(py) = python_with("mlflow") else { return };
    let dir = tempfile::tempdir().unwrap();
    let server = MlflowServer::start(&py, dir.path());
    let uri = format!("logger.mlflow.tracking_uri={}", server.url);
    let extra = ["logger=[csv,mlflow]", &uri, "logger.mlflow.tags={team: ssm}", "wandb.project=proj"];
    let cfg = config(&dir.path().join("runs"), &extra);

    // Stopped after an epoch: KILLED; resumed: the same run, FINISHED.
    let stopped = fit(&cfg, &FitOptions { stop_after_epochs: Some(1), ..quiet() }).unwrap();
    let id = std::fs::read_to_string(stopped.run.join("mlflow_run_id")).unwrap();
    let run = |id: &str| server.api(&format!("runs/get?run_id={id}"))["run"].clone();
    assert_eq!(run(&id)["info"]["status"], "KILLED");
    let s = fit(&cfg, &FitOptions { resume: Some(stopped.run.clone()), ..quiet() }).unwrap();
    assert_eq!(std::fs::read_to_string(s.run.join("mlflow_run_id")).unwrap(), id);

    let r = run(&id);
    assert_eq!(r["info"]["status"], "FINISHED", "{r}");
    assert_eq!(r["info"]["run_name"], "digits-s4d/version_0");
    let pairs = |v: &Value| -> Vec<(String, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| (p["key"].as_str().unwrap().to_string(), p["value"].as_str().unwrap().to_string()))
            .collect()
    };
    let params = pairs(&r["data"]["params"]);
    assert!(params.contains(&("model.d_model".into(), "8".into())), "{params:?}");
    assert!(params.contains(&("trainer.max_epochs".into(), "2".into())), "{params:?}");
    let tags = pairs(&r["data"]["tags"]);
    assert!(tags.contains(&("team".into(), "ssm".into())) && tags.contains(&("wandb.project".into(), "proj".into())));
    let best = tags.iter().find(|(k, _)| k == "wavessm.best_checkpoint").expect("best checkpoint tag");
    assert!(best.1.ends_with("checkpoints/best.bpk") && Path::new(&best.1).is_file(), "{best:?}");
    let latest: Vec<String> =
        r["data"]["metrics"].as_array().unwrap().iter().map(|m| m["key"].as_str().unwrap().to_string()).collect();
    for k in ["val/accuracy", "test/accuracy", "train/loss", "train/samples_per_sec"] {
        assert!(latest.iter().any(|l| l == k), "{k} not in {latest:?}");
    }
    let history = server.api(&format!("metrics/get-history?run_id={id}&metric_key=train/loss_step"));
    let mut steps: Vec<u64> =
        history["metrics"].as_array().unwrap().iter().map(|m| m["step"].as_u64().unwrap()).collect();
    steps.sort();
    assert_eq!(steps, (1..=s.steps as u64).collect::<Vec<_>>(), "every logged step once");

    let listed = server.api(&format!("artifacts/list?run_id={id}"));
    let files: Vec<&str> = listed["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"config.yaml") && files.contains(&"metrics.csv"), "{files:?}");
    let uri = r["info"]["artifact_uri"].as_str().unwrap();
    let path = uri.trim_start_matches("mlflow-artifacts:/");
    let uploaded = get(&format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/config.yaml", server.url)).unwrap();
    assert_eq!(uploaded, std::fs::read_to_string(s.run.join("config.yaml")).unwrap());

    // A fit that errors ends its run FAILED.
    let bad = [&extra[..], &["trainer.early_stopping={patience: 1, monitor: val/nope}"]].concat();
    let e = fit(&config(&dir.path().join("runs"), &bad), &quiet()).unwrap_err();
    assert!(e.to_string().contains("val/nope"), "{e}");
    let failed = std::fs::read_to_string(s.run.with_file_name("version_1").join("mlflow_run_id")).unwrap();
    assert_eq!(run(&failed)["info"]["status"], "FAILED");
}

#[test]
fn a_dead_or_silent_tracking_server_neither_fails_nor_slows_the_fit() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    fit(&config(dir.path(), &["logger=csv"]), &quiet()).unwrap();
    let baseline = t0.elapsed();

    // Nothing listens on `closed`; `silent` accepts connections and never answers.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    for port in [closed, silent.local_addr().unwrap().port()] {
        let uri = format!("logger.mlflow.tracking_uri=http://127.0.0.1:{port}");
        let cfg = config(dir.path(), &["logger=[csv,mlflow]", &uri, "logger.mlflow.flush_timeout_s=1"]);
        let t0 = Instant::now();
        let s = fit(&cfg, &quiet()).unwrap();
        let took = t0.elapsed();
        assert!(s.test.is_some() && s.run.join("metrics.csv").is_file());
        // At most the flush limit on top of the plain fit, with room for a busy machine.
        let limit = baseline * 2 + Duration::from_secs(4);
        assert!(took < limit, "port {port}: {took:?} vs {baseline:?} without mlflow");
    }
}

#[test]
fn a_resumed_run_replaces_what_the_crashed_process_logged_after_its_checkpoint() {
    let _turn = serial();
    let Some(py) = python_with("tensorboard") else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &[]);
    let stopped = fit(&cfg, &FitOptions { stop_after_steps: Some(4), ..quiet() }).unwrap();
    assert_eq!(stopped.steps, 4);
    // What a process killed after step 4's checkpoint may have left: steps it never saved.
    let mut w = EventWriter::create(&stopped.run.join("tb")).unwrap();
    for step in 5..=6 {
        let v = tfevents::Value { tag: "train/loss_step".into(), metadata: None, kind: Some(Kind::SimpleValue(999.0)) };
        w.summary(step, vec![v]).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    let s = fit(&cfg, &FitOptions { resume: Some(stopped.run.clone()), ..quiet() }).unwrap();

    let out = Command::new(&py).arg("scripts/read_tensorboard.py").arg(s.run.join("tb")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = seen["scalars"]["train/loss_step"].as_array().unwrap();
    let steps: Vec<u64> = points.iter().map(|p| p[0].as_u64().unwrap()).collect();
    assert_eq!(steps, (1..=s.steps as u64).collect::<Vec<_>>(), "each step once");
    assert!(points.iter().all(|p| p[1].as_f64().unwrap() < 999.0), "{points:?}");
}
