//! Hostile input (issue 13): one regression test per defect class an outside probe found.
//! Bad input never panics, hangs or aborts; every error names the file and field, or the
//! config key.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use wavessm::config::{ConfigError, ConfigRequest};
use wavessm::data::inputs::Encoding;
use wavessm::data::{DataConfig, DataSpec, SeqData, Targets, idx, listops, shard, ucr};
use wavessm::model::SequenceModel;
use wavessm::weights::st;

mod common;

fn resolve(tokens: &[&str]) -> Result<wavessm::experiment::ExperimentConfig, ConfigError> {
    ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }.resolve()
}

/// The config error of `tokens`, which must name `key`.
fn key_error(tokens: &[&str], key: &str) {
    match resolve(tokens) {
        Err(ConfigError::Key { path, msg }) => assert_eq!(path, key, "{tokens:?}: {msg}"),
        other => panic!("{tokens:?}: expected an error naming `{key}`, got {other:?}"),
    }
}

fn mnist_dir(dir: &Path, side: usize) {
    for (prefix, n) in [("train", 10), ("t10k", 3)] {
        let images = vec![7u8; n * side * side];
        let labels: Vec<u8> = (0..n as u8).collect();
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), idx::encode(&[n, side, side], &images))
            .unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), idx::encode(&[n], &labels)).unwrap();
    }
}

fn mnist(dir: &Path, permuted: bool) -> Result<wavessm::data::DataModule, wavessm::data::DataError> {
    let cfg = serde_yaml::from_str(&format!("path: {}", dir.display())).unwrap();
    if permuted { DataConfig::Psmnist(cfg) } else { DataConfig::Smnist(cfg) }.load()
}

#[test]
fn data_headers_overflowing_zero_or_of_the_wrong_size_name_file_and_field() {
    // Sizes whose product overflows, and a zero dimension.
    let huge = idx::encode(&[u32::MAX as usize; 3], &[1, 2, 3]);
    assert!(idx::parse(&huge, 3).unwrap_err().contains("exceed"), "overflow");
    let msg = idx::parse(&idx::encode(&[0, 28, 28], &[]), 3).unwrap_err();
    assert!(msg.contains("dimension 0 (images) is 0"), "{msg}");
    // Permuted MNIST needs 28×28 images: 10×10 ones used to index out of bounds.
    let dir = tempfile::tempdir().unwrap();
    mnist_dir(dir.path(), 10);
    let msg = mnist(dir.path(), true).unwrap_err().to_string();
    assert!(msg.contains("train-images-idx3-ubyte") && msg.contains("rows×columns are 10×10"), "{msg}");
    assert_eq!(mnist(dir.path(), false).unwrap().train.seq_len, 100, "plain sMNIST takes any one size");
    // Test images of another size than the training images.
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx::encode(&[3, 5, 5], &[0; 75])).unwrap();
    let msg = mnist(dir.path(), false).unwrap_err().to_string();
    assert!(msg.contains("t10k-images-idx3-ubyte") && msg.contains("rows×columns"), "{msg}");
}

#[test]
fn non_finite_values_in_data_files_name_file_and_line() {
    let path = Path::new("Probe_TRAIN.ts");
    for bad in ["1e39", "inf", "nan", "-Infinity"] {
        let text = format!("@problemName p\n@classLabel true a b\n@data\n1.0,2.0:a\n3.0,{bad}:b\n");
        let msg = ucr::parse_ts(&text, path).unwrap_err().to_string();
        assert!(msg.contains("Probe_TRAIN.ts") && msg.contains("line 5") && msg.contains(bad), "{bad}: {msg}");
    }
    // A row without values used to index an empty list.
    let msg = ucr::parse_ts("@classLabel true a\n@data\na\n", path).unwrap_err().to_string();
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn sizes_are_estimated_before_allocating() {
    // 2 rows padded to 2^60 tokens each: refused before the buffer is reserved.
    let text = "Source\tTarget\n( [MAX 2 9 ] )\t9\n( [MIN 2 9 ] )\t2\n";
    let msg = listops::parse_tsv(text, Path::new("basic_train.tsv"), 1 << 60).unwrap_err().to_string();
    assert!(msg.contains("basic_train.tsv") && msg.contains("2 sequences padded"), "{msg}");
    // Generated datasets: sizes from the config, checked before the buffers are made.
    for (yaml, key) in [
        ("{_name_: adding, n_train: 1000000000000000}", "data.n_train"),
        ("{_name_: copying, n_train: 100000000000, memorize: 1000000}", "data.n_train"),
        ("{_name_: copying, vocab: 4294967296}", "data.vocab"),
        ("{_name_: induction_heads, seq_len: 9223372036854775807}", "data.seq_len"),
        ("{_name_: associative_recall, pairs: 2, keys: 18446744073709551615, values: 2}", "data.keys"),
    ] {
        let d = DataConfig::from_named(&serde_yaml::from_str(yaml).unwrap(), "data").unwrap();
        let msg = d.load().unwrap_err().to_string();
        assert!(msg.contains(key), "{yaml}: {msg}");
    }
}

fn listops_files(dir: &Path) {
    let rows = ["( ( [MAX 2 ) 9 ) ] )\t9", "( ( [MIN 2 ) 9 ) ] )\t2", "( ( [SM 2 ) 3 ) ] )\t5"];
    for split in ["train", "val", "test"] {
        std::fs::write(dir.join(format!("basic_{split}.tsv")), format!("Source\tTarget\n{}\n", rows.join("\n")))
            .unwrap();
    }
}

#[test]
fn shard_headers_that_disagree_with_the_config_name_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    listops_files(dir.path());
    let named = serde_yaml::from_str(&format!("{{_name_: listops, path: {}, max_len: 16}}", dir.path().display()));
    let spec = DataSpec::from_named(&named.unwrap(), "data").unwrap();
    let folder = spec.prepare().unwrap().folder;
    assert!(spec.load().is_ok());
    let train = shard::split_path(&folder, "train");
    let saved = std::fs::read(&train).unwrap();

    // The validation shard copied over the training one: it is the wrong split.
    std::fs::copy(shard::split_path(&folder, "val"), &train).unwrap();
    let msg = spec.load().unwrap_err().to_string();
    assert!(msg.contains("train.wsd") && msg.contains("`split`"), "{msg}");

    // A well-formed shard of the same config whose sequences are 8 tokens, not max_len 16.
    std::fs::write(&train, &saved).unwrap();
    let prov = shard::read_header(&train).unwrap().provenance;
    let short = SeqData {
        inputs: vec![1.0; 3 * 8].into(),
        seq_len: 8,
        channels: 1,
        targets: Targets::Classes { labels: vec![1, 2, 3], n_classes: 10 },
        lengths: Some(vec![8; 3]),
        vocab: Some(listops::VOCAB_SIZE),
    };
    shard::write_split(&train, &prov, "train", &short, Encoding::for_vocab(listops::VOCAB_SIZE)).unwrap();
    let msg = spec.load().unwrap_err().to_string();
    assert!(msg.contains("train.wsd") && msg.contains("`seq_len` is 8") && msg.contains("data.max_len"), "{msg}");
}

/// Runs the binary with `args`; fails the test if it has not exited within 30 s.
fn run_bounded(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("`wavessm {}` hangs", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.yaml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["fit", "-c", "/dev/zero", "--print-config"],
        vec!["fit", "-c", fifo, "--print-config"],
        vec!["validate", "--ckpt", "/dev/zero"],
        vec!["test", "--ckpt", fifo],
        vec!["weights", "import", "/dev/zero", "--layout", "s4-example"],
    ] {
        let (code, err) = run_bounded(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
}

#[test]
fn generators_that_cannot_finish_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let base = listops::GenerateOptions { train: 5, val: 1, test: 1, ..Default::default() };
    // Depth-1 trees are one digit: none is ever longer than 500 tokens.
    let shallow = listops::GenerateOptions { max_depth: 1, ..base.clone() };
    let msg = listops::generate(&shallow, dir.path()).unwrap_err().to_string();
    assert!(msg.contains("in a row") && msg.contains("500"), "{msg}");
    // 0.25 × 51 children per node on average: trees grow without bound.
    let wild = listops::GenerateOptions { max_depth: 1000, max_args: 100, ..base };
    let msg = listops::generate(&wild, dir.path()).unwrap_err().to_string();
    assert!(msg.contains("--max-depth 1000"), "{msg}");
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    mnist_dir(dir.path(), 28);
    let p = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&p).unwrap();
    let mut gz = Vec::new();
    for part in bytes.chunks(bytes.len() / 3 + 1) {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(part).unwrap();
        gz.extend(enc.finish().unwrap());
    }
    std::fs::remove_file(&p).unwrap();
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gz).unwrap();
    let dm = mnist(dir.path(), false).unwrap();
    assert_eq!(dm.train.len() + dm.val.len(), 10);
}

fn tiny_model() -> SequenceModel {
    let cfg = resolve(&["model.d_model=4", "model.n_layers=1", "model.layer.d_state=4"]).unwrap();
    let device = Device::flex();
    SequenceModel::new(&cfg.model, 1, 3, &device).unwrap()
}

#[test]
fn imported_weights_are_finite_and_their_keys_unique_and_export_is_reproducible() {
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let model = tiny_model();
    wavessm::weights::export(&model, &path, wavessm::weights::Layout::S4Example, None, false).unwrap();
    let mut map = st::read(&path).unwrap();

    // Byte-reproducible: the same tensors always give the same file.
    let first = std::fs::read(&path).unwrap();
    for _ in 0..8 {
        wavessm::weights::export(&model, &path, wavessm::weights::Layout::S4Example, None, false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), first, "export is not byte-reproducible");
    }

    // A NaN weight: an error naming its key.
    let key = map.keys().find(|k| k.contains("decoder")).unwrap().clone();
    map.get_mut(&key).unwrap().data[0] = f64::NAN;
    st::write(&path, &map, &[]).unwrap();
    let opts = wavessm::weights::ImportOptions {
        layout: wavessm::weights::Layout::S4Example,
        dt_transform: None,
        select: wavessm::weights::Select::All,
        partial: false,
    };
    let msg = wavessm::weights::import(tiny_model(), &path, &opts).unwrap_err().to_string();
    assert!(msg.contains(&key) && msg.contains("finite"), "{msg}");

    // A key twice in the header (same offsets, so the safetensors crate alone accepts it).
    let entry = r#"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#;
    let header = format!(r#"{{"a":{entry},"a":{entry}}}"#);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(1f32.to_le_bytes());
    let msg = st::parse(&bytes).unwrap_err();
    assert!(msg.contains("`a` appears twice"), "{msg}");
}

#[test]
fn run_names_are_one_path_component() {
    for (token, key) in [
        ("name=../../x", "name"),
        ("name=/tmp/x", "name"),
        ("name=a/b", "name"),
        ("name=..", "name"),
        ("logger.name=../x", "logger.name"),
        ("logger.name=\"a\\tb\"", "logger.name"),
        ("logger.name=\"\"", "logger.name"),
    ] {
        key_error(&[token], key);
    }
    assert_eq!(resolve(&["name=my-run_2"]).unwrap().name, "my-run_2");
}

#[test]
fn absurd_model_sizes_are_refused_before_allocating() {
    key_error(&["model.d_model=100000000"], "model.d_model");
    key_error(&["model.n_layers=1000000"], "model.n_layers");
    key_error(&["model.layer.d_state=4294967296"], "model.layer.d_state");
    key_error(&["model=dss", "model.layer.channels=100000"], "model.layer.channels");
    key_error(&["model.layer.dt_max=.inf"], "model.layer.dt_max");
    key_error(&["model.layer.dt_min=.nan"], "model.layer.dt_min");
    key_error(&["model.layer.dt_min=0.01", "model.layer.dt_max=0.01"], "model.layer.dt_max");
    key_error(&["model=s4", "model.layer.dt_min=1e300", "model.layer.dt_max=1e300"], "model.layer.dt_max");
    key_error(&["model.dropout=.nan"], "model.dropout");
    // In range key by key, but ~10^14 bytes together: refused with the estimate.
    let cfg = resolve(&["model.d_model=65536", "model.n_layers=4096"]).unwrap();
    let err = SequenceModel::new(&cfg.model, 1, 10, &Device::flex()).unwrap_err().to_string();
    if wavessm::io::mem_available().is_some() {
        assert!(err.contains("`model`") && err.contains("memory available"), "{err}");
    }
}

#[test]
fn nonsense_hyperparameters_name_their_key() {
    for (tokens, key) in [
        (vec!["optimizer.lr=-0.01"], "optimizer.lr"),
        (vec!["optimizer.lr=.nan"], "optimizer.lr"),
        (vec!["optimizer.weight_decay=-0.1"], "optimizer.weight_decay"),
        (vec!["optimizer.eps=0"], "optimizer.eps"),
        (vec!["optimizer.betas=[0.9, 1.5]"], "optimizer.betas.1"),
        (vec!["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val"),
        (vec!["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps"),
        (vec!["task.label_smoothing=1.0"], "task.label_smoothing"),
        (vec!["task.label_smoothing=-0.1"], "task.label_smoothing"),
        (vec!["scheduler=plateau", "scheduler.factor=.nan"], "scheduler.factor"),
        (vec!["scheduler=plateau", "scheduler.factor=1.5"], "scheduler.factor"),
        (vec!["scheduler.min_lr_ratio=.inf"], "scheduler.min_lr_ratio"),
        (vec!["loader.eval_batch_size=0"], "loader.eval_batch_size"),
        (vec!["loader.batch_size=0"], "loader.batch_size"),
        (vec!["trainer.val_check_interval=0"], "trainer.val_check_interval"),
        (vec!["trainer.val_check_interval=1.5"], "trainer.val_check_interval"),
        (vec!["trainer.val_check_interval=-1"], "trainer.val_check_interval"),
        (vec!["trainer.val_check_interval=.nan"], "trainer.val_check_interval"),
        (vec!["trainer.val_figures_every_n_epochs=0"], "trainer.val_figures_every_n_epochs"),
    ] {
        key_error(&tokens, key);
    }
}
