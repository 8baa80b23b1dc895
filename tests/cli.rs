//! The `wavessm` binary end to end: printing configs, error exits, fit → test → predict →
//! resume on a tiny model, and the bench output format.

use std::path::Path;
use std::process::{Command, Output};

mod common;

fn wavessm(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(args)
        .current_dir(dir)
        .env_remove("WAVESSM_CONFIG_DIR")
        .output()
        .expect("run wavessm")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn print_config_resolves_defaults_experiments_and_both_dialects() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "--print-config"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let cfg: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(cfg["name"], serde_yaml::Value::from("digits-s4d"));
    assert_eq!(cfg["model"]["layer"]["_name_"], serde_yaml::Value::from("s4d"));
    assert!(!dir.path().join("runs").exists(), "printing runs nothing");

    let o = wavessm(
        dir.path(),
        &["fit", "experiment=smnist/s4d", "model.n_layers=2", "--trainer.max_epochs", "7", "--print-config"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let cfg: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(cfg["model"]["n_layers"], serde_yaml::Value::from(2));
    assert_eq!(cfg["trainer"]["max_epochs"], serde_yaml::Value::from(7));
    assert_eq!(cfg["data"]["_name_"], serde_yaml::Value::from("smnist"));

    // LightningCLI `-c` with a file that has its own defaults list.
    let exp = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/experiment/smnist/s4d.yaml");
    let o = wavessm(dir.path(), &["fit", "-c", exp.to_str().unwrap(), "--data.path=../mnist", "--print_config"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("path: ../mnist") && out.contains("name: smnist-s4d"), "{out}");
}

#[test]
fn bad_input_exits_non_zero_with_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "trainer.max_epoch=3"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("`trainer.max_epoch`: unknown key; did you mean `max_epochs`?"), "{err}");

    let o = wavessm(dir.path(), &["fit", "data=smnist", "data.path=nowhere"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(err.contains("nowhere/train-images-idx3-ubyte") && err.contains("not found"), "{err}");

    let o = wavessm(dir.path(), &["test", "--ckpt", "missing.bpk"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("missing.bpk"));
}

#[test]
fn help_lists_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["fit", "--help"]);
    let (out, _) = text(&o);
    for opt in
        ["--config", "--config-dir", "--print-config", "--resume", "--stop-after-epochs", "OVERRIDES", "key.sub=value"]
    {
        assert!(out.contains(opt), "fit --help lacks {opt}:\n{out}");
    }
    let o = wavessm(dir.path(), &["--help"]);
    let (out, _) = text(&o);
    for cmd in ["fit", "validate", "test", "predict", "bench"] {
        assert!(out.contains(cmd), "{out}");
    }
}

#[test]
fn fit_test_predict_and_resume_a_tiny_run() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = [
        "model.d_model=8",
        "model.n_layers=1",
        "model.layer.d_state=8",
        "trainer.limit_train_batches=3",
        "trainer.progress_bar=never",
    ];
    let mut args = vec!["fit", "trainer.max_epochs=2", "--stop-after-epochs", "1"];
    args.extend(tiny);
    let o = wavessm(dir.path(), &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("epoch 1/2") && out.contains("stopped"), "{out}");
    let run = dir.path().join("runs/digits-s4d/version_0");
    assert!(run.join("checkpoints/last.bpk").is_file() && run.join("metrics.csv").is_file());

    let o = wavessm(dir.path(), &["fit", "--resume", run.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("epoch 2/2")
            && !out.contains("epoch 1/2")
            && out.contains("fit done")
            && out.contains("test/accuracy="),
        "{out}"
    );

    let best = run.join("checkpoints/best.bpk");
    let o = wavessm(dir.path(), &["test", "--ckpt", best.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("test/accuracy=") && out.contains("359 sequences"), "{out}");
    let o = wavessm(dir.path(), &["test", "--ckpt", best.to_str().unwrap(), "--rate", "2"]);
    let (out2, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_ne!(out, out2, "rate 2 changes the model's outputs (test/loss)");
    let o = wavessm(dir.path(), &["test", "--ckpt", best.to_str().unwrap(), "--rate", "0"]);
    assert!(!o.status.success() && text(&o).1.contains("--rate"));
    let o = wavessm(dir.path(), &["validate", "--ckpt", best.to_str().unwrap(), "loader.batch_size=7"]);
    assert!(o.status.success() && text(&o).0.contains("val/loss="), "{:?}", text(&o));

    let csv = dir.path().join("pred.csv");
    let o = wavessm(dir.path(), &["predict", "--ckpt", best.to_str().unwrap(), "--out", csv.to_str().unwrap()]);
    assert!(o.status.success(), "{:?}", text(&o));
    let rows: Vec<String> = std::fs::read_to_string(&csv).unwrap().lines().map(String::from).collect();
    assert_eq!(rows[0], "index,target,prediction,probability");
    assert_eq!(rows.len(), 1 + 359);
    let fields: Vec<&str> = rows[1].split(',').collect();
    let p: f64 = fields[3].parse().unwrap();
    assert!(fields[2].parse::<u32>().unwrap() < 10 && (0.1..=1.0).contains(&p), "{}", rows[1]);
}

#[test]
fn bench_prints_the_comparable_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["bench", "step", "--steps", "1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out.trim();
    assert!(line.starts_with("step median_ms=") && line.contains(" tokens_per_s="), "{line}");
}

#[test]
fn bench_length_and_fit_print_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    // The sweep's first length only, with the smallest batch.
    let o = wavessm(dir.path(), &["bench", "length", "--max-len", "1024", "--batch", "1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out.trim();
    assert!(line.starts_with("length seq_len=1024 batch=1 ms=") && line.contains(" growth=- cpu_s="), "{line}");
    // Two short lengths after a warm-up each: the second line has a growth.
    let args = ["bench", "length", "--min-len", "16", "--max-len", "64", "--batch", "1", "--warmup"];
    let o = wavessm(dir.path(), &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("length ")).collect();
    assert!(lines.len() == 2 && lines[1].starts_with("length seq_len=64 ") && !lines[1].contains("growth=-"), "{out}");
    let o = wavessm(dir.path(), &["bench", "length", "--min-len", "4096", "--max-len", "1024"]);
    let (_, err) = text(&o);
    assert!(!o.status.success() && err.contains("--min-len (4096) is above --max-len (1024)"), "{err}");
    // The fit bench on a few MNIST images (its overrides win over the fixed setup).
    let mnist = common::data_dir().join("mnist");
    let path = format!("data.path={}", mnist.display());
    let o = wavessm(dir.path(), &["bench", "fit", &path, "data.limit_train=20", "data.limit_test=8"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out.trim();
    assert!(line.starts_with("fit train_samples_per_s=") && line.contains(" train=18 eval=8 "), "{line}");
}

#[test]
fn generated_listops_trains_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(
        dir.path(),
        &[
            "data",
            "generate",
            "listops",
            "--out",
            "lo",
            "--train",
            "200",
            "--val",
            "20",
            "--test",
            "20",
            "--min-length",
            "20",
            "--max-length",
            "120",
        ],
    );
    assert!(o.status.success(), "{:?}", text(&o));
    let o = wavessm(
        dir.path(),
        &[
            "fit",
            "data=listops",
            "data.path=lo",
            "data.max_len=128",
            "model.d_model=16",
            "model.n_layers=1",
            "trainer.max_epochs=1",
            "trainer.progress_bar=never",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("fit done") && out.contains("test/accuracy="), "{out}");
}

#[test]
fn data_prepare_then_fit_and_bench_data_read_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    let o = wavessm(dir.path(), &["data", "prepare", "digits", "data.prepared_dir=prep"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("prepared digits") && out.contains("train.wsd: ") && out.contains("inputs f32"), "{out}");

    let tiny = ["model.d_model=8", "model.n_layers=1", "model.layer.d_state=8", "trainer.progress_bar=never"];
    let mut args = vec!["fit", "data.prepared_dir=prep", "data.prepared=always", "trainer.max_epochs=1"];
    args.extend(tiny);
    let o = wavessm(dir.path(), &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("data: digits from prepared shards in prep/digits-"), "{err}");
    assert!(out.contains("fit done"), "{out}");

    let mut args = vec!["bench", "data", "--steps", "1", "data.prepared_dir=prep"];
    args.extend(tiny);
    let o = wavessm(dir.path(), &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let line = out.trim();
    assert!(
        line.starts_with("data loader_samples_per_s=")
            && line.contains(" model_samples_per_s=")
            && line.contains(" ratio=")
            && line.contains("source=prepared/f32"),
        "{line}"
    );

    // Nothing prepared there: `bench data` measures prepared data only and says how to get it.
    let o = wavessm(dir.path(), &["bench", "data", "data.prepared_dir=elsewhere"]);
    let (_, err) = text(&o);
    assert!(!o.status.success() && err.contains("no prepared shards") && err.contains("data prepare"), "{err}");
    let o = wavessm(dir.path(), &["bench", "s4d", "model.d_model=8"]);
    assert!(!o.status.success() && text(&o).1.contains("`bench data`, `fit` and `length` only"));
}

#[test]
fn generated_pathfinder_trains_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["data", "generate", "pathfinder", "--out", "pf", "--resolution", "32", "--n", "48", "--seed", "5"];
    let o = wavessm(dir.path(), &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("wrote 48 32×32 images"), "{out}");
    assert!(dir.path().join("pf/curv_contour_length_14/metadata/0.npy").is_file());
    let o = wavessm(
        dir.path(),
        &[
            "fit",
            "data=pathfinder32",
            "data.path=pf",
            "model.d_model=8",
            "model.n_layers=1",
            "model.layer.d_state=8",
            "trainer.max_epochs=1",
            "trainer.progress_bar=never",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("38 train / 5 val / 5 test sequences of length 1024") && out.contains("fit done"), "{out}");
}

#[test]
fn d4l_flags_map_to_config_keys() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("train.yaml"), "_name_: adding\nseq_len: 50\nn_train: 64\n").unwrap();
    std::fs::write(p.join("val.yaml"), "_name_: adding\nn_val: 16\n").unwrap();
    std::fs::write(p.join("model.yaml"), "d_model: 8\nn_layers: 1\nlayer: {_name_: s4d, d_state: 4}\n").unwrap();
    std::fs::write(p.join("trainer.yaml"), "max_epochs: 3\nmonitor: val/mse\nmode: min\n").unwrap();
    let args = [
        "fit",
        "task=regression",
        "--data_train",
        "train.yaml",
        "--data_val",
        "val.yaml",
        "--subsample_size",
        "40",
        "--experiment_name",
        "pcm",
        "--project_name",
        "d4l",
        "--model_cfg",
        "model.yaml",
        "--trainer_cfg",
        "trainer.yaml",
        "--print-config",
        "--tags",
        "mnist,baseline",
        "v2",
    ];
    let o = wavessm(p, &args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let cfg: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
    let v = |x: &str| serde_yaml::from_str::<serde_yaml::Value>(x).unwrap();
    assert_eq!(cfg["data"]["_name_"], v("adding"));
    assert_eq!(
        (&cfg["data"]["seq_len"], &cfg["data"]["n_train"], &cfg["data"]["n_val"]),
        (&v("50"), &v("64"), &v("16"))
    );
    assert_eq!(cfg["loader"]["subsample"], v("40"));
    assert_eq!(cfg["name"], v("pcm"));
    assert_eq!(cfg["logger"]["name"], v("d4l"));
    assert_eq!(cfg["tags"], v("[mnist, baseline, v2]"));
    assert_eq!((&cfg["model"]["d_model"], &cfg["model"]["layer"]["d_state"]), (&v("8"), &v("4")));
    assert_eq!((&cfg["trainer"]["max_epochs"], &cfg["trainer"]["monitor"]), (&v("3"), &v("val/mse")));

    // Training and validation come from one dataset; another one is refused by name.
    std::fs::write(p.join("val.yaml"), "_name_: copying\n").unwrap();
    let (_, err) = text(&wavessm(p, &args));
    assert!(err.contains("data._name_") && err.contains("`copying`") && err.contains("`adding`"), "{err}");
    let (_, err) = text(&wavessm(p, &["fit", "--print-config", "--tags", "a", "trainer.max_epochs=2"]));
    assert!(err.contains("looks like an override"), "{err}");
}
