//! Loaders: IDX parsing (raw, gzip, damaged), MNIST from the shared folder, the embedded digits
//! and the adding problem.

mod common;

use std::io::Write;

use wavessm::data::mnist::{MnistConfig, permutation};
use wavessm::data::{DataConfig, DataError, Targets, idx};

fn write_mnist(dir: &std::path::Path, prefix: &str, n: usize, gzip: bool) {
    let images: Vec<u8> = (0..n * 784).map(|i| (i % 251) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for (stem, bytes) in [
        (format!("{prefix}-images-idx3-ubyte"), idx::encode(&[n, 28, 28], &images)),
        (format!("{prefix}-labels-idx1-ubyte"), idx::encode(&[n], &labels)),
    ] {
        if gzip {
            let f = std::fs::File::create(dir.join(format!("{stem}.gz"))).unwrap();
            let mut enc = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            enc.write_all(&bytes).unwrap();
            enc.finish().unwrap();
        } else {
            std::fs::write(dir.join(stem), bytes).unwrap();
        }
    }
}

fn mnist_cfg(dir: &std::path::Path) -> MnistConfig {
    serde_yaml::from_str(&format!("path: {}", dir.display())).unwrap()
}

#[test]
fn idx_raw_and_gzip_load_identically() {
    for gzip in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_mnist(dir.path(), "train", 20, gzip);
        write_mnist(dir.path(), "t10k", 5, gzip);
        let dm = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap();
        assert_eq!(dm.train.len() + dm.val.len(), 20);
        assert_eq!(dm.val.len(), 2, "10% validation split");
        assert_eq!(dm.test.len(), 5);
        assert_eq!((dm.test.seq_len, dm.test.channels), (784, 1));
        assert_eq!(dm.test.inputs.to_vec()[1], 1.0 / 255.0);
        let Targets::Classes { labels, n_classes } = &dm.test.targets else { panic!() };
        assert_eq!((labels.as_slice(), *n_classes), (&[0u32, 1, 2, 3, 4][..], 10));
    }
}

#[test]
fn permuted_mnist_applies_one_fixed_permutation() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), "train", 10, false);
    write_mnist(dir.path(), "t10k", 3, false);
    let plain = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap();
    let perm = DataConfig::Psmnist(mnist_cfg(dir.path())).load().unwrap();
    let p = permutation(784, 42);
    assert_eq!(p, permutation(784, 42), "fixed by its seed");
    assert_ne!(p, permutation(784, 43));
    for (j, &src) in p.iter().enumerate() {
        assert_eq!(perm.test.inputs.to_vec()[j], plain.test.inputs.to_vec()[src]);
    }
    // `permute` is honoured either way: on for smnist, off for psmnist.
    let on = DataConfig::Smnist(MnistConfig { permute: Some(true), ..mnist_cfg(dir.path()) }).load().unwrap();
    assert_eq!(on.test.inputs.to_vec(), perm.test.inputs.to_vec());
    let off = DataConfig::Psmnist(MnistConfig { permute: Some(false), ..mnist_cfg(dir.path()) }).load().unwrap();
    assert_eq!(off.test.inputs.to_vec(), plain.test.inputs.to_vec());
}

#[test]
fn damaged_files_are_named_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path(), "train", 10, false);
    write_mnist(dir.path(), "t10k", 3, false);
    let img = dir.path().join("train-images-idx3-ubyte");
    let bytes = std::fs::read(&img).unwrap();
    std::fs::write(&img, &bytes[..bytes.len() - 100]).unwrap();
    let e = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err();
    assert!(matches!(e, DataError::Corrupt { .. }));
    let msg = e.to_string();
    assert!(msg.contains("train-images-idx3-ubyte") && msg.contains("truncated") && msg.contains("10×28×28"), "{msg}");

    // A truncated gzip stream.
    let gz = dir.path().join("train-images-idx3-ubyte.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&bytes).unwrap();
    let z = enc.finish().unwrap();
    std::fs::write(&gz, &z[..z.len() / 2]).unwrap();
    let msg = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err().to_string();
    assert!(msg.contains("train-images-idx3-ubyte.gz") && msg.contains("gzip"), "{msg}");
    std::fs::remove_file(&gz).unwrap();

    // Wrong magic, wrong rank, label out of range.
    std::fs::write(&img, b"\x01\x02\x08\x03rest").unwrap();
    assert!(DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err().to_string().contains("bad magic"));
    std::fs::write(&img, idx::encode(&[10, 784], &vec![0; 7840])).unwrap();
    assert!(
        DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err().to_string().contains("2 dimensions; expected 3")
    );
    write_mnist(dir.path(), "train", 10, false);
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx::encode(&[3], &[1, 12, 3])).unwrap();
    let msg = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err().to_string();
    assert!(msg.contains("t10k-labels-idx1-ubyte") && msg.contains("label 12"), "{msg}");
}

#[test]
fn missing_files_say_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let msg = DataConfig::Smnist(mnist_cfg(dir.path())).load().unwrap_err().to_string();
    assert!(msg.contains("train-images-idx3-ubyte") && msg.contains("not found") && msg.contains("data.path"), "{msg}");
}

#[test]
fn real_mnist_from_the_shared_folder() {
    let dir = common::data_dir().join("mnist");
    if !dir.join("train-images-idx3-ubyte.gz").is_file() {
        println!("SKIP real MNIST: {} not found (set WAVESSM_DATA_DIR)", dir.display());
        return;
    }
    let mut cfg = mnist_cfg(&dir);
    cfg.limit_train = Some(1000);
    let dm = DataConfig::Smnist(cfg).load().unwrap();
    assert_eq!(dm.train.len() + dm.val.len(), 1000);
    assert_eq!(dm.test.len(), 10_000);
    let Targets::Classes { labels, .. } = &dm.test.targets else { panic!() };
    // The canonical test set starts with 7, 2, 1, 0, 4.
    assert_eq!(&labels[..5], &[7, 2, 1, 0, 4]);
    let mean = dm.test.inputs.to_vec().iter().map(|v| *v as f64).sum::<f64>() / dm.test.inputs.len() as f64;
    assert!((mean - 0.1325).abs() < 0.002, "MNIST mean intensity {mean}");
}

#[test]
fn embedded_digits_and_adding_problem() {
    let dm = DataConfig::from_named(&serde_yaml::from_str("_name_: digits").unwrap(), "data").unwrap().load().unwrap();
    assert_eq!(dm.train.len() + dm.val.len() + dm.test.len(), 1797);
    assert_eq!((dm.train.seq_len, dm.train.channels), (64, 1));
    assert!(dm.train.inputs.to_vec().iter().all(|v| (0.0..=1.0).contains(v)));

    let dm = DataConfig::from_named(
        &serde_yaml::from_str("{_name_: adding, seq_len: 50, n_train: 20, n_val: 5, n_test: 5}").unwrap(),
        "data",
    )
    .unwrap()
    .load()
    .unwrap();
    let Targets::Values { values, dim } = &dm.train.targets else { panic!() };
    assert_eq!(*dim, 1);
    for (i, target) in values.iter().enumerate() {
        let row = &dm.train.inputs.to_vec()[i * 100..(i + 1) * 100];
        let marked: Vec<f32> = (0..50).filter(|t| row[2 * t + 1] == 1.0).map(|t| row[2 * t]).collect();
        assert_eq!(marked.len(), 2, "exactly two markers");
        assert!((marked[0] + marked[1] - target).abs() < 1e-6);
    }
}

fn named(yaml: &str) -> wavessm::config::Named {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn ucr_archives_univariate_multivariate_and_variable_length() {
    let root = common::data_dir().join("ucr");
    if !root.join("JapaneseVowels").is_dir() {
        println!("SKIP UCR: {} not found (set WAVESSM_DATA_DIR)", root.display());
        return;
    }
    let load = |name: &str| {
        DataConfig::from_named(&named(&format!("{{_name_: ucr, name: {name}, path: {}}}", root.display())), "data")
            .unwrap()
            .load()
            .unwrap()
    };
    let dm = load("ArrowHead");
    assert_eq!((dm.train.len() + dm.val.len(), dm.test.len()), (36, 175));
    assert_eq!((dm.test.seq_len, dm.test.channels, dm.test.lengths.is_none()), (251, 1, true));
    assert_eq!(dm.target_kind(), wavessm::data::TargetKind::Classes(3));

    let dm = load("BasicMotions");
    assert_eq!((dm.train.seq_len, dm.train.channels), (100, 6));
    assert_eq!(dm.target_kind(), wavessm::data::TargetKind::Classes(4));

    let dm = load("JapaneseVowels");
    assert_eq!((dm.train.len() + dm.val.len(), dm.test.len(), dm.test.channels), (270, 370, 12));
    let lens = dm.test.lengths.as_ref().expect("variable length");
    assert!(lens.iter().all(|&n| (7..=dm.test.seq_len).contains(&n)) && lens.iter().any(|&n| n < dm.test.seq_len));
    // Padding is zero beyond each length.
    let (l, d) = (dm.test.seq_len, dm.test.channels);
    let i = lens.iter().position(|&n| n < l).unwrap();
    assert!(dm.test.inputs.to_vec()[(i * l + lens[i]) * d..(i + 1) * l * d].iter().all(|v| *v == 0.0));
}

#[test]
fn malformed_ts_files_name_file_and_line() {
    use wavessm::data::ucr::parse_ts;
    let p = std::path::Path::new("X_TRAIN.ts");
    let head = "# comment\n@problemName X\n@classLabel true a b\n@data\n";
    assert!(parse_ts(&format!("{head}1,2,3:a\n4,5,6:b\n"), p).is_ok());
    let e = parse_ts(&format!("{head}1,2,3:a\n4,5,6:c\n"), p).unwrap_err().to_string();
    assert!(e.contains("X_TRAIN.ts") && e.contains("line 6") && e.contains("label `c`"), "{e}");
    let e = parse_ts(&format!("{head}1,2,3:a\n4,x,6:b\n"), p).unwrap_err().to_string();
    assert!(e.contains("line 6") && e.contains("`x`"), "{e}");
    let e = parse_ts(&format!("{head}1,2:3,4:a\n4,5:b\n"), p).unwrap_err().to_string();
    assert!(e.contains("line 6") && e.contains("1 dimensions, expected 2"), "{e}");
    let e = parse_ts(&format!("{head}1,?,3:a\n"), p).unwrap_err().to_string();
    assert!(e.contains("missing value"), "{e}");
    let e = parse_ts("@data\n1,2:a\n", p).unwrap_err().to_string();
    assert!(e.contains("before `@classLabel`"), "{e}");
}

#[test]
fn text_folders_become_byte_tokens_with_lengths() {
    let dir = tempfile::tempdir().unwrap();
    for (split, label, name, text) in [
        ("train", "neg", "1.txt", "bad"),
        ("train", "neg", "2.txt", "awful film"),
        ("train", "pos", "1.txt", "a great movie, longer than max_len"),
        ("test", "pos", "9.txt", "ok"),
    ] {
        let d = dir.path().join(split).join(label);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), text).unwrap();
    }
    let cfg = named(&format!("{{_name_: text_folder, path: {}, max_len: 8, val_split: 0.0}}", dir.path().display()));
    let dm = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.test.len(), dm.vocab()), (3, 1, Some(257)));
    let Targets::Classes { labels, n_classes } = &dm.test.targets else { panic!() };
    assert_eq!((labels.as_slice(), *n_classes), (&[1u32][..], 2), "classes are the sorted folder names");
    assert_eq!(&dm.test.inputs.to_vec()[..3], &[b'o' as f32 + 1.0, b'k' as f32 + 1.0, 0.0]);
    assert_eq!(dm.test.lengths.as_deref(), Some(&[2usize][..]));
    let mut lens = dm.train.lengths.clone().unwrap();
    lens.sort();
    assert_eq!(lens, vec![3, 8, 8], "truncated to max_len");

    std::fs::create_dir_all(dir.path().join("test/unknown")).unwrap();
    std::fs::write(dir.path().join("test/unknown/x.txt"), "?").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("unknown") && e.contains("not among the training classes"), "{e}");
}

#[test]
fn spam_corpus_from_the_shared_folder() {
    let root = common::data_dir().join("text/spam");
    if !root.join("train").is_dir() {
        println!("SKIP spam: {} not found (set WAVESSM_DATA_DIR)", root.display());
        return;
    }
    let cfg = named(&format!("{{_name_: text_folder, path: {}, max_len: 1024}}", root.display()));
    let dm = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap();
    assert_eq!(dm.train.len() + dm.val.len() + dm.test.len(), 6046);
    assert_eq!(dm.target_kind(), wavessm::data::TargetKind::Classes(2));
}

#[test]
fn cifar_binary_records_rgb_and_grayscale() {
    let dir = tempfile::tempdir().unwrap();
    let record = |label: u8, seed: u8| {
        let mut r = vec![label];
        r.extend((0..3072).map(|i| ((i as u32 * 7 + seed as u32) % 256) as u8));
        r
    };
    let nested = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir_all(&nested).unwrap();
    for k in 1..=5u8 {
        let bytes: Vec<u8> = (0..4).flat_map(|i| record((k + i) % 10, k * 10 + i)).collect();
        std::fs::write(nested.join(format!("data_batch_{k}.bin")), bytes).unwrap();
    }
    std::fs::write(nested.join("test_batch.bin"), [record(3, 1), record(9, 2)].concat()).unwrap();
    let load = |extra: &str| {
        let cfg = named(&format!("{{_name_: scifar, path: {}, {extra}}}", dir.path().display()));
        DataConfig::from_named(&cfg, "data").unwrap().load()
    };
    let dm = load("normalize: false, val_split: 0.0").unwrap();
    assert_eq!((dm.train.len(), dm.test.len(), dm.test.seq_len, dm.test.channels), (20, 2, 1024, 3));
    // Pixel p of the test image 0: (R, G, B) = bytes p, 1024 + p, 2048 + p of the record.
    let px = |i: u32| ((i * 7 + 1) % 256) as f32 / 255.0;
    assert_eq!(&dm.test.inputs.to_vec()[3..6], &[px(1), px(1025), px(2049)]);
    let Targets::Classes { labels, .. } = &dm.test.targets else { panic!() };
    assert_eq!(labels, &vec![3, 9]);

    let dm = load("grayscale: true, normalize: false").unwrap();
    assert_eq!(dm.test.channels, 1);
    assert!((dm.test.inputs.to_vec()[1] - (0.2989 * px(1) + 0.5870 * px(1025) + 0.1140 * px(2049))).abs() < 1e-6);
    let dm = load("").unwrap();
    let mean = dm.train.inputs.to_vec().iter().chain(&dm.val.inputs.to_vec()).map(|v| *v as f64).sum::<f64>()
        / (20.0 * 3072.0);
    assert!(mean.abs() < 1e-4, "normalized with training statistics: mean {mean}");

    // A truncated file and a bad label are named.
    std::fs::write(nested.join("test_batch.bin"), &record(3, 1)[..3000]).unwrap();
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("3000 bytes"), "{e}");
    std::fs::write(nested.join("test_batch.bin"), record(12, 1)).unwrap();
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("record 0: label 12"), "{e}");
    std::fs::remove_file(nested.join("data_batch_3.bin")).unwrap();
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("data_batch_3.bin") && e.contains("not found"), "{e}");
}

#[test]
fn speech_commands_layout_splits_and_bad_wavs() {
    let root = common::data_dir().join("speech-synth");
    if root.join("validation_list.txt").is_file() {
        let load = |classes: &str| {
            let cfg = named(&format!("{{_name_: speech_commands, path: {}, classes: {classes}}}", root.display()));
            DataConfig::from_named(&cfg, "data").unwrap().load().unwrap()
        };
        let all = load("all");
        assert_eq!(all.train.len() + all.val.len() + all.test.len(), 1480);
        assert_eq!(all.target_kind(), wavessm::data::TargetKind::Classes(20));
        let val_lines = std::fs::read_to_string(root.join("validation_list.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        assert_eq!(all.val.len(), val_lines, "validation split is the official list");
        let sc10 = load("sc10");
        assert_eq!(sc10.target_kind(), wavessm::data::TargetKind::Classes(10));
        assert!(sc10.train.len() < all.train.len());
        assert_eq!(sc10.train.seq_len, 16_000);
        let cfg = named(&format!("{{_name_: speech_commands, path: {}, classes: sc35}}", root.display()));
        let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
        assert!(e.contains("backward") && e.contains("class"), "synth data has no `backward` folder: {e}");
    } else {
        println!("SKIP speech-synth: {} not found (set WAVESSM_DATA_DIR)", root.display());
    }

    // A tiny tree with one damaged and one wrong-rate file.
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, rate: u32, n: usize| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..n {
            w.write_sample(((i % 100) as i16 - 50) * 100).unwrap();
        }
        w.finalize().unwrap();
    };
    for (i, word) in ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"].iter().enumerate() {
        for k in 0..3 {
            write(&format!("{word}/s{i}_nohash_{k}.wav"), 16_000, 800 + 10 * k);
        }
    }
    std::fs::write(dir.path().join("validation_list.txt"), "yes/s0_nohash_1.wav\n").unwrap();
    std::fs::write(dir.path().join("testing_list.txt"), "yes/s0_nohash_2.wav\nno/s1_nohash_2.wav\n").unwrap();
    let cfg = |skip: bool| {
        named(&format!(
            "{{_name_: speech_commands, path: {}, seq_len: 1000, skip_corrupt: {skip}}}",
            dir.path().display()
        ))
    };
    let dm = DataConfig::from_named(&cfg(false), "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.test.len()), (27, 1, 2));
    assert_eq!(dm.test.lengths.as_deref(), Some(&[820usize, 820][..]));
    assert_eq!(dm.test.inputs.to_vec()[1], -49.0 * 100.0 / 32768.0);
    let half =
        named(&format!("{{_name_: speech_commands, path: {}, seq_len: 1000, resolution: 2}}", dir.path().display()));
    let dm2 = DataConfig::from_named(&half, "data").unwrap().load().unwrap();
    assert_eq!((dm2.test.seq_len, dm2.test.inputs.to_vec()[1]), (500, -48.0 * 100.0 / 32768.0), "every second sample");
    assert_eq!(dm2.test.lengths.as_deref(), Some(&[410usize, 410][..]));
    write("up/s2_nohash_9.wav", 8_000, 800);
    let e = DataConfig::from_named(&cfg(false), "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("s2_nohash_9.wav") && e.contains("8000 Hz"), "{e}");
    let bytes = std::fs::read(dir.path().join("up/s2_nohash_0.wav")).unwrap();
    std::fs::write(dir.path().join("up/s2_nohash_0.wav"), &bytes[..20]).unwrap();
    let dm = DataConfig::from_named(&cfg(true), "data").unwrap().load().unwrap();
    assert_eq!(dm.train.len(), 26, "two bad files skipped, the rest kept");
}

/// Evaluates a ListOps source string with a stack, independently of the generator's tree.
fn eval_listops(src: &str) -> u32 {
    let mut stack: Vec<(String, Vec<u32>)> = vec![("top".into(), vec![])];
    for tok in src.split_whitespace().filter(|t| *t != "(" && *t != ")") {
        match tok {
            "]" => {
                let (op, mut args) = stack.pop().unwrap();
                args.sort_unstable();
                let n = args.len();
                let v = match op.as_str() {
                    "[MIN" => args[0],
                    "[MAX" => args[n - 1],
                    "[SM" => args.iter().sum::<u32>() % 10,
                    "[MED" => {
                        if n % 2 == 1 {
                            args[n / 2]
                        } else {
                            (args[n / 2 - 1] + args[n / 2]) / 2
                        }
                    }
                    other => panic!("operator {other}"),
                };
                stack.last_mut().unwrap().1.push(v);
            }
            t if t.starts_with('[') => stack.push((t.to_string(), vec![])),
            d => stack.last_mut().unwrap().1.push(d.parse().unwrap()),
        }
    }
    assert_eq!(stack.len(), 1, "balanced");
    stack[0].1[0]
}

#[test]
fn listops_generator_labels_lengths_and_loader() {
    use wavessm::data::listops::{GenerateOptions, generate};
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        train: 300,
        val: 30,
        test: 30,
        min_length: 40,
        max_length: 300,
        seed: 7,
        ..Default::default()
    };
    generate(&opts, dir.path()).unwrap();
    let mut seen = std::collections::HashSet::new();
    for name in ["train", "val", "test"] {
        let text = std::fs::read_to_string(dir.path().join(format!("basic_{name}.tsv"))).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("Source\tTarget"));
        for line in lines {
            let (src, target) = line.split_once('\t').unwrap();
            assert_eq!(eval_listops(src), target.parse::<u32>().unwrap(), "label of {src}");
            let tokens = src.split_whitespace().filter(|t| *t != "(" && *t != ")").count();
            assert!(tokens > 40 && tokens < 300, "length {tokens}");
            assert!(seen.insert(src.to_string()), "duplicate example");
        }
    }
    assert_eq!(seen.len(), 360);

    let cfg = named(&format!("{{_name_: listops, path: {}, max_len: 256}}", dir.path().display()));
    let dm = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.test.len(), dm.vocab()), (300, 30, 30, Some(18)));
    let lens = dm.train.lengths.as_ref().unwrap();
    assert!(lens.iter().all(|&n| n <= 256) && lens.contains(&256), "long ones truncated");

    // Damaged files.
    let p = dir.path().join("basic_val.tsv");
    std::fs::write(&p, "Source\tTarget\n( [MAX 1 2 ] )\t3\n( [FOO 1 ] )\t1\n").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("basic_val.tsv") && e.contains("line 3") && e.contains("`[FOO`"), "{e}");
    std::fs::write(&p, "Source\tTarget\n( [MAX 1 2 ] )\t12\n").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("`12`"), "{e}");
    std::fs::write(&p, "src,tgt\n").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("header"), "{e}");
}

#[test]
fn pathfinder_pngs_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("curv_contour_length_14");
    let write_png = |rel: &str, side: u32, seed: u8| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(&p).unwrap()), side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let data: Vec<u8> = (0..side * side).map(|i| (i as u8).wrapping_mul(3).wrapping_add(seed)).collect();
        enc.write_header().unwrap().write_image_data(&data).unwrap();
    };
    let mut meta = String::new();
    for i in 0..20u8 {
        write_png(&format!("imgs/0/sample_{i}.png"), 32, i);
        meta.push_str(&format!("imgs/0 sample_{i}.png 0 {} 2 14\n", i % 2));
    }
    std::fs::create_dir_all(root.join("metadata")).unwrap();
    std::fs::write(root.join("metadata/0.npy"), &meta).unwrap();
    let cfg = |extra: &str| {
        named(&format!("{{_name_: pathfinder, path: {}, resolution: 32, {extra}}}", dir.path().display()))
    };
    let load = |extra: &str| DataConfig::from_named(&cfg(extra), "data").unwrap().load();
    let dm = load("").unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.test.len()), (16, 2, 2));
    assert_eq!((dm.train.seq_len, dm.train.channels), (1024, 1));
    let all = load("val_split: 0.0, test_split: 0.0").unwrap();
    // Sample 3 (label 1) sits somewhere in the shuffled train split; find it by its pixels.
    let first =
        |i: u8| (0..1024u32).map(|p| (p as u8).wrapping_mul(3).wrapping_add(i) as f32 / 255.0).collect::<Vec<_>>();
    let pos = all.train.inputs.to_vec().chunks(1024).position(|c| c == first(3).as_slice()).expect("sample 3 loaded");
    let Targets::Classes { labels, .. } = &all.train.targets else { panic!() };
    assert_eq!(labels[pos], 1);

    // Damaged image, wrong size, bad metadata line: errors name the file; skip_corrupt counts them.
    std::fs::write(root.join("imgs/0/sample_5.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("sample_5.png") && e.contains("PNG"), "{e}");
    write_png("imgs/0/sample_5.png", 16, 5);
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("sample_5.png") && e.contains("16×16 pixels, expected 32×32"), "{e}");
    write_png("imgs/0/sample_5.png", 32, 5);
    std::fs::write(root.join("metadata/0.npy"), format!("{meta}imgs/0 sample_0.png 0\n")).unwrap();
    let e = load("").unwrap_err().to_string();
    assert!(e.contains("0.npy") && e.contains("line 21"), "{e}");
    write_png("imgs/0/sample_5.png", 16, 5);
    let dm = load("skip_corrupt: true, val_split: 0.0, test_split: 0.0").unwrap();
    assert_eq!(dm.train.len(), 19, "the wrong-size image and the bad line are skipped");
}

#[test]
fn imdb_layout_ignores_unsup() {
    let dir = tempfile::tempdir().unwrap();
    for (split, label) in [("train", "neg"), ("train", "pos"), ("train", "unsup"), ("test", "neg"), ("test", "pos")] {
        let d = dir.path().join(split).join(label);
        std::fs::create_dir_all(&d).unwrap();
        for i in 0..3 {
            std::fs::write(d.join(format!("{i}_7.txt")), format!("{label} review {i}")).unwrap();
        }
    }
    let cfg = named(&format!("{{_name_: imdb, path: {}, max_len: 64, val_split: 0.0}}", dir.path().display()));
    let dm = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.test.len()), (6, 6), "unsup is not a class");
    assert_eq!(dm.target_kind(), wavessm::data::TargetKind::Classes(2));
    std::fs::remove_dir_all(dir.path().join("train/pos")).unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("train/pos") && e.contains("class `pos`"), "{e}");
}

#[test]
fn lm_text_vocab_windows_and_next_tokens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wiki.train.tokens"), "the cat sat\n\nthe dog sat on the mat\n").unwrap();
    std::fs::write(dir.path().join("wiki.valid.tokens"), "the bird sat on the cat\n").unwrap();
    std::fs::write(dir.path().join("wiki.test.tokens"), "a cat sat\n").unwrap();
    let cfg = |extra: &str| named(&format!("{{_name_: wikitext103, path: {}, {extra}}}", dir.path().display()));
    let dm = DataConfig::from_named(&cfg("seq_len: 3"), "data").unwrap().load().unwrap();
    // Vocabulary: <unk>, <eos>, then by frequency: the(3) sat(2), then cat dog mat on (1 each, by word).
    assert_eq!(dm.vocab(), Some(8));
    // Train stream: the cat sat <eos> the dog sat on the mat <eos> = 11 tokens -> 3 windows of 3.
    let ids: Vec<u32> = dm.train.inputs.to_vec().iter().map(|v| *v as u32).collect();
    assert_eq!(ids, vec![2, 4, 3, 1, 2, 5, 3, 7, 2]);
    let Targets::Tokens { ids: next, vocab } = &dm.train.targets else { panic!() };
    assert_eq!((next.as_slice(), *vocab), (&[4, 3, 1, 2, 5, 3, 7, 2, 6][..], 8));
    // Unknown words map to <unk>.
    let val: Vec<u32> = dm.val.inputs.to_vec().iter().map(|v| *v as u32).collect();
    assert_eq!(val[..3], [2, 0, 3]);
    // A capped vocabulary keeps the most frequent words.
    let dm = DataConfig::from_named(&cfg("seq_len: 3, max_vocab: 4"), "data").unwrap().load().unwrap();
    assert_eq!(dm.vocab(), Some(4));
    assert!(dm.train.inputs.to_vec().iter().all(|v| *v < 4.0));
    let e = DataConfig::from_named(&cfg("seq_len: 100"), "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("wiki.train.tokens") && e.contains("fewer than one window"), "{e}");
}

#[test]
fn synthetic_recall_tasks_have_recomputable_labels() {
    let dm = DataConfig::from_named(
        &named("{_name_: associative_recall, pairs: 4, keys: 6, values: 5, n_train: 50, n_val: 5, n_test: 5}"),
        "data",
    )
    .unwrap()
    .load()
    .unwrap();
    assert_eq!((dm.train.seq_len, dm.vocab()), (9, Some(12)));
    let Targets::Classes { labels, n_classes } = &dm.train.targets else { panic!() };
    assert_eq!(*n_classes, 5);
    for (row, label) in dm.train.inputs.to_vec().chunks(9).zip(labels) {
        let q = row[8];
        let keys: Vec<f32> = row[..8].iter().step_by(2).copied().collect();
        assert_eq!(keys.iter().filter(|k| **k == q).count(), 1, "the query is one of the distinct keys");
        let at = row[..8].iter().step_by(2).position(|k| *k == q).unwrap();
        assert_eq!(row[2 * at + 1] as u32 - 7, *label, "value ids start after the 6 keys");
    }

    let dm = DataConfig::from_named(
        &named("{_name_: induction_heads, seq_len: 20, vocab: 5, n_train: 50, n_val: 5, n_test: 5}"),
        "data",
    )
    .unwrap()
    .load()
    .unwrap();
    assert_eq!((dm.train.seq_len, dm.vocab()), (20, Some(7)));
    let Targets::Classes { labels, .. } = &dm.train.targets else { panic!() };
    for (row, label) in dm.train.inputs.to_vec().chunks(20).zip(labels) {
        assert_eq!(row[19], 6.0, "ends with the trigger");
        let first = row[..18].iter().position(|t| *t == 6.0).expect("an earlier trigger");
        assert_eq!(row[first + 1] as u32 - 1, *label);
    }
    let e = DataConfig::from_named(&named("{_name_: associative_recall, pairs: 5, keys: 3}"), "data")
        .unwrap()
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("keys ≥ pairs"), "{e}");
}

fn write_aan(dir: &std::path::Path, n: usize) {
    for split in ["train", "eval", "test"] {
        let rows: String = (0..n)
            .map(|i| {
                let label = i % 2;
                let t1 = format!("paper {i} on state spaces {}", "x".repeat(i % 7));
                let t2 = if label == 1 { format!("cites paper {i}") } else { format!("unrelated {i}") };
                format!("{label}\tid{i}a\tid{i}b\t{t1}\t{t2}\n")
            })
            .collect();
        std::fs::write(dir.join(format!("new_aan_pairs.{split}.tsv")), rows).unwrap();
    }
}

#[test]
fn aan_pairs_two_documents_per_sample() {
    let dir = tempfile::tempdir().unwrap();
    write_aan(dir.path(), 6);
    let cfg = named(&format!("{{_name_: aan, path: {}, max_len: 16}}", dir.path().display()));
    let dm = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.test.len(), dm.train.channels), (6, 6, 6, 2));
    assert!(dm.train.is_pairs());
    // Sample 1: document 1 then document 2 interleaved per step, bytes + 1.
    let row = &dm.train.inputs.to_vec()[32..64];
    assert_eq!((row[0], row[1]), (b'p' as f32 + 1.0, b'c' as f32 + 1.0));
    assert_eq!(&dm.train.lengths.as_ref().unwrap()[2..4], &[16, 13], "document lengths of sample 1");
    let sub = dm.train.subset(&[1]);
    assert_eq!(sub.lengths.as_deref(), Some(&[16usize, 13][..]), "both lengths travel with the sample");

    std::fs::write(dir.path().join("new_aan_pairs.eval.tsv"), "2\ta\tb\tx\ty\n").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("new_aan_pairs.eval.tsv") && e.contains("line 1") && e.contains("`2`"), "{e}");
    std::fs::write(dir.path().join("new_aan_pairs.eval.tsv"), "1\ta\tb\n").unwrap();
    let e = DataConfig::from_named(&cfg, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("3 tab-separated columns"), "{e}");
}

/// The group of every lit pixel (dark pixels: `usize::MAX`), lit pixels up to `radius` apart
/// joined; returns the groups and how many there are.
fn groups(px: &[f32], side: usize, radius: usize) -> (Vec<usize>, usize) {
    let r = radius as i64;
    let mut group = vec![usize::MAX; px.len()];
    let mut n = 0;
    for start in 0..px.len() {
        if px[start] == 0.0 || group[start] != usize::MAX {
            continue;
        }
        group[start] = n;
        let mut stack = vec![start];
        while let Some(i) = stack.pop() {
            let (y, x) = ((i / side) as i64, (i % side) as i64);
            for (dy, dx) in (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))) {
                let (ny, nx) = (y + dy, x + dx);
                if dy * dy + dx * dx > r * r || ny < 0 || nx < 0 || ny >= side as i64 || nx >= side as i64 {
                    continue;
                }
                let j = ny as usize * side + nx as usize;
                if px[j] > 0.0 && group[j] == usize::MAX {
                    group[j] = n;
                    stack.push(j);
                }
            }
        }
        n += 1;
    }
    (group, n)
}

/// Whether the two markers lie in one group of lit pixels (gaps up to `radius` bridged).
fn markers_linked(px: &[f32], side: usize, m: [(usize, usize); 2], radius: usize) -> bool {
    let (group, _) = groups(px, side, radius);
    let (a, b) = (group[m[0].0 * side + m[0].1], group[m[1].0 * side + m[1].1]);
    assert!(a != usize::MAX && b != usize::MAX, "marker centers are lit");
    a == b
}

#[test]
fn pathfinder_generator_labels_are_marker_connectivity() {
    use wavessm::data::pathfinder_gen::{PathfinderParams, generate_sample};
    for (side, n) in [(32, 300), (64, 60), (128, 20)] {
        let p = PathfinderParams::lra(side, 14).unwrap();
        let (mut positives, mut contours) = (0, 0);
        for i in 0..n {
            let s = generate_sample(&p, 7, i).unwrap();
            assert_eq!(s.pixels.len(), side * side);
            let px: Vec<f32> = s.pixels.iter().map(|&v| v as f32 / 255.0).collect();
            let r = PathfinderParams::link_radius(s.margin);
            assert_eq!(markers_linked(&px, side, s.markers, r), s.label == 1, "{side}px image {i}");
            positives += s.label as usize;
            contours += groups(&px, side, r).1;
        }
        let frac = positives as f64 / n as f64;
        assert!((0.3..=0.7).contains(&frac), "{side}px: {positives}/{n} positive");
        // Two targets plus distractors, each apart from everything else.
        let mean = contours as f64 / n as f64;
        assert!(mean > 4.0, "{side}px: {mean} separate contours per image");
    }
    assert!(PathfinderParams::lra(48, 14).unwrap_err().to_string().contains("32, 64, 128 or 256"));
}

#[test]
fn pathfinder_generator_writes_the_official_layout() {
    use wavessm::data::pathfinder::{GenerateOptions, generate};
    use wavessm::data::pathfinder_gen::{PathfinderParams, generate_sample};
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions { resolution: 32, n: 40, contour_length: 14, per_folder: 16, seed: 3 };
    let (root, positives) = generate(&opts, dir.path()).unwrap();
    assert!(root.ends_with("curv_contour_length_14"));
    let meta = std::fs::read_to_string(root.join("metadata/2.npy")).unwrap();
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(lines.len(), 8, "16 + 16 + 8 images");
    assert!(lines[7].starts_with("imgs/2 sample_7.png 7 "), "{}", lines[7]);
    assert!(root.join("imgs/2/sample_7.png").is_file() && !root.join("imgs/2/sample_8.png").exists());

    let cfg = format!("{{_name_: pathfinder, path: {}, val_split: 0.0, test_split: 0.0}}", dir.path().display());
    let dm = DataConfig::from_named(&named(&cfg), "data").unwrap().load().unwrap();
    let Targets::Classes { labels, .. } = &dm.train.targets else { panic!() };
    assert_eq!((labels.len(), labels.iter().sum::<u32>() as usize), (40, positives));
    assert!((10..=30).contains(&positives), "{positives}/40 positive");
    // Each loaded image is a regenerated one (found by its pixels), with its label, and its
    // markers are joined exactly when the label says so.
    let p = PathfinderParams::lra(32, 14).unwrap();
    let samples: Vec<_> = (0..40).map(|i| generate_sample(&p, 3, i).unwrap()).collect();
    for (row, label) in dm.train.inputs.to_vec().chunks(1024).zip(labels) {
        let bytes: Vec<u8> = row.iter().map(|v| (v * 255.0).round() as u8).collect();
        let s = samples.iter().find(|s| s.pixels == bytes).expect("a generated image");
        assert_eq!(s.label as u32, *label);
        assert_eq!(markers_linked(row, 32, s.markers, PathfinderParams::link_radius(s.margin)), *label == 1);
    }

    // The seed fixes every byte; another seed gives other images.
    let again = tempfile::tempdir().unwrap();
    generate(&opts, again.path()).unwrap();
    let other = tempfile::tempdir().unwrap();
    generate(&GenerateOptions { seed: 4, ..opts.clone() }, other.path()).unwrap();
    let read = |d: &std::path::Path, f: &str| std::fs::read(d.join("curv_contour_length_14").join(f)).unwrap();
    for f in ["imgs/1/sample_3.png", "metadata/0.npy"] {
        assert_eq!(read(dir.path(), f), read(again.path(), f));
    }
    assert_ne!(read(dir.path(), "imgs/1/sample_3.png"), read(other.path(), "imgs/1/sample_3.png"));
    let e = generate(&GenerateOptions { resolution: 48, ..opts }, other.path()).unwrap_err().to_string();
    assert!(e.contains("resolution") && e.contains("48"), "{e}");
}

#[test]
fn copying_tasks_score_only_the_recall_steps() {
    use wavessm::data::{BatchTargets, IGNORE_INDEX};
    let load = |name: &str| {
        let cfg =
            named(&format!("{{_name_: {name}, vocab: 5, memorize: 4, delay: 12, n_train: 40, n_val: 4, n_test: 4}}"));
        DataConfig::from_named(&cfg, "data").unwrap().load().unwrap()
    };
    let (l, marker) = (20, 6.0);
    for (name, selective) in [("copying", false), ("selective_copying", true)] {
        let dm = load(name);
        assert_eq!(
            (dm.train.seq_len, dm.vocab(), dm.target_kind()),
            (l, Some(7), wavessm::data::TargetKind::Tokens(7))
        );
        let Targets::Tokens { ids, .. } = &dm.train.targets else { panic!() };
        let mut moved = false;
        for (row, target) in dm.train.inputs.to_vec().chunks(l).zip(ids.chunks(l)) {
            // The answer, recomputed from the inputs: the data tokens before the markers, in order.
            let tokens: Vec<u32> = row[..16].iter().filter(|v| **v != 0.0).map(|v| *v as u32).collect();
            assert_eq!(tokens.len(), 4, "{name}: {row:?}");
            assert!(tokens.iter().all(|t| (1..=5).contains(t)));
            assert!(row[16..].iter().all(|v| *v == marker), "{name}: markers last");
            assert_eq!(&target[16..], tokens.as_slice());
            assert!(target[..16].iter().all(|t| *t == IGNORE_INDEX), "{name}: only recall steps are scored");
            moved |= row[..4].contains(&0.0);
            if !selective {
                assert!(row[..4].iter().all(|v| *v != 0.0) && row[4..16].iter().all(|v| *v == 0.0));
            }
        }
        assert_eq!(moved, selective, "{name}: selective copying scatters the tokens");
        // Batches carry -1 for unscored steps.
        let b = dm.train.batch(&[0], &burn::tensor::Device::flex());
        let BatchTargets::Classes(y) = b.y else { panic!() };
        let y: Vec<i64> = y.try_into_vec_as::<i64>().unwrap();
        assert_eq!((y.len(), y.iter().filter(|v| **v == -1).count()), (l, 16));
    }
    let e = DataConfig::from_named(&named("{_name_: copying, vocab: 1}"), "data").unwrap().load().unwrap_err();
    assert!(e.to_string().contains("data.vocab"), "{e}");
}

#[test]
fn imdb_char_vocabulary_from_training_documents() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &[u8]| {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("train/neg/0_1.txt", b"aaab");
    write("train/neg/1_2.txt", b"abc");
    write("train/pos/0_9.txt", "bbb\u{e9}".as_bytes());
    write("train/unsup/0_0.txt", b"zzzzzzzz");
    write("test/neg/0_3.txt", b"az?");
    write("test/pos/0_8.txt", "\u{e9}b".as_bytes());
    let load = |extra: &str| {
        let cfg = format!("{{_name_: imdb, path: {}, tokenizer: char, {extra}}}", dir.path().display());
        DataConfig::from_named(&named(&cfg), "data").unwrap().load()
    };
    let ids = |data: &wavessm::data::SeqData, i: usize| -> Vec<u32> {
        let n = data.lengths.as_ref().unwrap()[i];
        data.inputs.to_vec()[i * data.seq_len..i * data.seq_len + n].iter().map(|v| *v as u32).collect()
    };
    // Counts a 4, b 5, c 1, é 1 (unsup is no class): <pad> 0, <unk> 1, <eos> 2, b 3, a 4.
    let dm = load("val_split: 0.0, min_freq: 2, append_eos: true, max_len: 16").unwrap();
    assert_eq!(dm.vocab(), Some(5));
    let mut train: Vec<Vec<u32>> = (0..3).map(|i| ids(&dm.train, i)).collect();
    train.sort();
    assert_eq!(train, vec![vec![3, 3, 3, 1, 2], vec![4, 3, 1, 2], vec![4, 4, 4, 3, 2]]);
    assert_eq!(
        (ids(&dm.test, 0), ids(&dm.test, 1)),
        (vec![4, 1, 1, 2], vec![1, 3, 2]),
        "test-only characters are <unk>"
    );
    assert_eq!(dm.test.inputs.to_vec()[4..16], [0.0; 12], "<pad> is 0");
    // Truncation happens before counting (a 4 and b 4 tie, so a first), and <bos> comes before <eos>.
    let dm = load("val_split: 0.0, min_freq: 2, append_bos: true, append_eos: true, max_len: 5").unwrap();
    assert_eq!(dm.vocab(), Some(6));
    assert_eq!(ids(&dm.test, 0), vec![2, 4, 1, 1, 3]);
    assert_eq!(ids(&dm.test, 1), vec![2, 1, 5, 3]);
    // Validation documents do not shape the vocabulary: the one validation document's own
    // character (x, y or z) is <unk> there, the shared ones are not.
    let other = tempfile::tempdir().unwrap();
    for (rel, text) in
        [("train/neg/0.txt", "xa"), ("train/neg/1.txt", "yab"), ("train/pos/0.txt", "zabb"), ("test/pos/0.txt", "a")]
    {
        std::fs::create_dir_all(other.path().join(rel).parent().unwrap()).unwrap();
        std::fs::write(other.path().join(rel), text).unwrap();
    }
    let cfg =
        format!("{{_name_: imdb, path: {}, tokenizer: char, min_freq: 1, val_split: 0.34}}", other.path().display());
    let dm = DataConfig::from_named(&named(&cfg), "data").unwrap().load().unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.vocab()), (2, 1, Some(2 + 2 + 2)), "<pad> <unk> a b and two of x y z");
    let val = ids(&dm.val, 0);
    assert_eq!(val[0], 1, "{val:?}");
    assert!(val[1..].iter().all(|t| *t > 1) && (0..2).all(|i| !ids(&dm.train, i).contains(&1)));

    let e = DataConfig::from_named(
        &named(&format!("{{_name_: imdb, path: {}, append_eos: true}}", dir.path().display())),
        "data",
    )
    .unwrap()
    .load()
    .unwrap_err()
    .to_string();
    assert!(e.contains("`data.append_eos` needs `data.tokenizer: char`"), "{e}");
    write("train/pos/1_7.txt", b"\xff\xfe bad");
    let e = load("val_split: 0.0").unwrap_err().to_string();
    assert!(e.contains("1_7.txt") && e.contains("UTF-8"), "{e}");
}
