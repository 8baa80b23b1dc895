//! Prepared shards: `prepare` → load gives exactly the raw loader's batches (several datasets,
//! every storage type), damaged shards are errors naming the file and the fault, and shards
//! made from another config or from changed raw files are detected as stale.

mod common;

use std::path::Path;

use burn::tensor::Device;
use wavessm::data::prepared::Source;
use wavessm::data::{BatchIter, DataModule, DataSpec, Dtype, SeqData, Targets};

fn spec(yaml: &str) -> DataSpec {
    DataSpec::from_named(&serde_yaml::from_str(yaml).unwrap(), "data").unwrap()
}

fn targets_eq(a: &Targets, b: &Targets) -> bool {
    match (a, b) {
        (Targets::Classes { labels: x, n_classes: n }, Targets::Classes { labels: y, n_classes: m }) => {
            x == y && n == m
        }
        (Targets::Values { values: x, dim: d }, Targets::Values { values: y, dim: e }) => {
            d == e && x.iter().map(|v| v.to_bits()).eq(y.iter().map(|v| v.to_bits()))
        }
        (Targets::Tokens { ids: x, vocab: v, .. }, Targets::Tokens { ids: y, vocab: w, .. }) => x == y && v == w,
        _ => false,
    }
}

/// Same shapes, targets, lengths, and bit-identical batches (in odd batch sizes, so batches
/// cross sample boundaries in every way).
fn assert_same_split(raw: &SeqData, prep: &SeqData, what: &str) {
    assert_eq!(
        (raw.len(), raw.seq_len, raw.channels, raw.vocab, &raw.lengths),
        (prep.len(), prep.seq_len, prep.channels, prep.vocab, &prep.lengths),
        "{what}: shapes"
    );
    assert!(targets_eq(&raw.targets, &prep.targets), "{what}: targets");
    let dev = Device::flex();
    for idx in BatchIter::new(raw.len(), 7, true, false, 3, 0) {
        let (a, b) = (raw.batch(&idx, &dev), prep.batch(&idx, &dev));
        let bits = |t: burn::tensor::Tensor<3>| {
            t.try_into_vec_as::<f32>().unwrap().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        };
        assert_eq!(bits(a.x), bits(b.x), "{what}: batch inputs of {idx:?}");
        assert_eq!(a.lengths, b.lengths, "{what}: batch lengths");
    }
}

fn assert_same(raw: &DataModule, prep: &DataModule, what: &str) {
    assert_same_split(&raw.train, &prep.train, &format!("{what} train"));
    assert_same_split(&raw.val, &prep.val, &format!("{what} val"));
    assert_same_split(&raw.test, &prep.test, &format!("{what} test"));
}

/// Prepares `s`, loads it back through `data.prepared=always`, compares with the raw loader;
/// returns the prepared inputs' element type.
fn round_trip(yaml: &str, what: &str) -> Dtype {
    let s = spec(yaml);
    let report = s.prepare().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(report.headers.len(), 3);
    let raw = s.dataset.load().unwrap();
    let mut always = s.clone();
    always.prepared = wavessm::data::PreparedMode::Always;
    let (prep, source) = always.load().unwrap_or_else(|e| panic!("{what}: {e}"));
    let Source::Prepared(folder, enc) = source else { panic!("{what}: {source}") };
    assert_eq!(folder, report.folder);
    assert!(prep.train.inputs.as_owned().is_none(), "{what}: inputs are mapped, not copied");
    assert_same(&raw, &prep, what);
    enc.dtype
}

fn write_wav(path: &Path, samples: impl Iterator<Item = i16>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    samples.for_each(|s| w.write_sample(s).unwrap());
    w.finalize().unwrap();
}

/// Ten SC10 words × 3 clips of different lengths (so lengths vary), one val and two test clips.
fn write_speech(dir: &Path) {
    for (i, word) in ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"].iter().enumerate() {
        for k in 0..3 {
            let n = 700 + 40 * k + 10 * i;
            let f = 0.01 + 0.003 * i as f64;
            let samples =
                (0..n).map(move |t| ((t as f64 * f * std::f64::consts::TAU).sin() * 12_000.0) as i16 + (t % 7) as i16);
            write_wav(&dir.join(format!("{word}/s{i}_nohash_{k}.wav")), samples);
        }
    }
    std::fs::write(dir.join("validation_list.txt"), "yes/s0_nohash_1.wav\nno/s1_nohash_1.wav\n").unwrap();
    std::fs::write(dir.join("testing_list.txt"), "yes/s0_nohash_2.wav\nno/s1_nohash_2.wav\n").unwrap();
}

#[test]
fn prepared_batches_equal_raw_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("prepared");
    let pd = out.display();

    // Embedded digits: generated, so it needs an explicit prepared folder.
    round_trip(&format!("{{_name_: digits, prepared_dir: {pd}}}"), "digits");
    // Regression targets (f32 values) and f32 inputs.
    assert_eq!(
        round_trip(
            &format!("{{_name_: adding, seq_len: 30, n_train: 20, n_val: 5, n_test: 6, prepared_dir: {pd}}}"),
            "adding"
        ),
        Dtype::F32
    );

    // A byte-level text folder: u16 tokens (vocabulary 257) with lengths.
    let text = tmp.path().join("text");
    for (split, label, name, body) in [
        ("train", "ham", "1.txt", "meeting at noon"),
        ("train", "ham", "2.txt", "lunch?"),
        ("train", "spam", "1.txt", "WIN A PRIZE NOW!!! click here, more than max_len bytes"),
        ("train", "spam", "2.txt", "cheap pills"),
        ("test", "ham", "3.txt", "see you"),
        ("test", "spam", "3.txt", "free €€€"),
    ] {
        std::fs::create_dir_all(text.join(split).join(label)).unwrap();
        std::fs::write(text.join(split).join(label).join(name), body).unwrap();
    }
    let dt =
        round_trip(&format!("{{_name_: text_folder, path: {}, max_len: 24, val_split: 0.25}}", text.display()), "text");
    assert_eq!(dt, Dtype::U16);
    assert!(text.join("prepared").is_dir(), "stored under the dataset folder by default");

    // Language modeling: per-step token targets, u8 token inputs.
    let wt = tmp.path().join("wt");
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::write(wt.join("wiki.train.tokens"), "the cat sat\n\nthe dog sat on the mat\n".repeat(3)).unwrap();
    std::fs::write(wt.join("wiki.valid.tokens"), "the bird sat on the cat\n").unwrap();
    std::fs::write(wt.join("wiki.test.tokens"), "a cat sat on a dog\n").unwrap();
    let dt = round_trip(&format!("{{_name_: wikitext103, path: {}, seq_len: 3}}", wt.display()), "wikitext103");
    assert_eq!(dt, Dtype::U8);

    // Raw speech: i16 samples, varying lengths; MFCC features: f32.
    let sc = tmp.path().join("sc");
    write_speech(&sc);
    let dt = round_trip(&format!("{{_name_: speech_commands, path: {}, seq_len: 1000}}", sc.display()), "speech raw");
    assert_eq!(dt, Dtype::I16);
    let dt = round_trip(
        &format!("{{_name_: speech_commands, path: {}, seq_len: 1000, resolution: 3}}", sc.display()),
        "speech 1/3",
    );
    assert_eq!(dt, Dtype::I16);
    let dt = round_trip(
        &format!("{{_name_: speech_commands, path: {}, seq_len: 1000, features: mfcc}}", sc.display()),
        "speech mfcc",
    );
    assert_eq!(dt, Dtype::F32);
    let n_prepared = std::fs::read_dir(sc.join("prepared")).unwrap().count();
    assert_eq!(n_prepared, 3, "one folder per config, side by side");
}

#[test]
fn speech_synth_from_the_shared_folder() {
    let root = common::data_dir().join("speech-synth");
    if !root.join("validation_list.txt").is_file() {
        println!("SKIP speech-synth: {} not found (set WAVESSM_DATA_DIR)", root.display());
        return;
    }
    // The shared folder stays read-only: the shards go to a temp folder.
    let tmp = tempfile::tempdir().unwrap();
    let dt = round_trip(
        &format!(
            "{{_name_: speech_commands, path: {}, classes: all, prepared_dir: {}}}",
            root.display(),
            tmp.path().display()
        ),
        "speech-synth",
    );
    assert_eq!(dt, Dtype::I16);
    let (dm, _) = spec(&format!(
        "{{_name_: speech_commands, path: {}, classes: all, prepared_dir: {}, prepared: always}}",
        root.display(),
        tmp.path().display()
    ))
    .load()
    .unwrap();
    assert_eq!(dm.train.len() + dm.val.len() + dm.test.len(), 1480);
}

/// A prepared digits folder in a temp dir; returns (spec, train shard path).
fn prepared_digits(tmp: &Path) -> (DataSpec, std::path::PathBuf) {
    let s = spec(&format!("{{_name_: digits, prepared_dir: {}, prepared: always}}", tmp.display()));
    let report = s.prepare().unwrap();
    (s, report.folder.join("train.wsd"))
}

#[test]
fn damaged_shards_name_the_file_and_the_fault() {
    let tmp = tempfile::tempdir().unwrap();
    let (s, train) = prepared_digits(tmp.path());
    let good = std::fs::read(&train).unwrap();
    let err = |bytes: &[u8]| {
        std::fs::write(&train, bytes).unwrap();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("train.wsd"), "{e}");
        // `auto` does not fall back silently either: a damaged shard is an error.
        let mut auto = s.clone();
        auto.prepared = wavessm::data::PreparedMode::Auto;
        assert_eq!(auto.load().unwrap_err().to_string(), e);
        e
    };
    let mut flipped = good.clone();
    flipped[100] ^= 0x40; // inside the inputs
    assert!(err(&flipped).contains("inputs fail their checksum"));
    assert!(err(&good[..good.len() / 2]).contains("truncated"));
    assert!(err(&good[..20]).contains("truncated"));
    let mut magic = good.clone();
    magic[0] = b'X';
    assert!(err(&magic).contains("bad magic"));
    let mut version = good.clone();
    version[8] = 9;
    let e = err(&version);
    assert!(e.contains("format version 9") && e.contains("data prepare"), "{e}");
    let mut header = good.clone();
    let n = header.len();
    header[n - 5] ^= 0x01; // inside the JSON header at the end
    assert!(err(&header).contains("header fails its checksum"));
    std::fs::write(&train, &good).unwrap();
    s.load().unwrap();
}

#[test]
fn stale_shards_are_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("text");
    for (split, label) in [("train", "a"), ("train", "b"), ("test", "a"), ("test", "b")] {
        std::fs::create_dir_all(text.join(split).join(label)).unwrap();
        std::fs::write(text.join(split).join(label).join("1.txt"), format!("{split} {label}")).unwrap();
        std::fs::write(text.join(split).join(label).join("2.txt"), format!("{label} {split} 2")).unwrap();
    }
    let yaml = |extra: &str| format!("{{_name_: text_folder, path: {}, val_split: 0.5{extra}}}", text.display());
    spec(&yaml(", max_len: 16")).prepare().unwrap();
    let (_, source) = spec(&yaml(", max_len: 16")).load().unwrap();
    assert!(matches!(source, Source::Prepared(..)), "{source}");

    // Another config: auto reads the raw files and says why; always refuses.
    let (_, source) = spec(&yaml(", max_len: 8")).load().unwrap();
    let Source::Raw(why) = &source else { panic!("{source}") };
    assert!(why.contains("other configs") && why.contains("max_len: 16 → 8"), "{why}");
    let e = spec(&yaml(", max_len: 8, prepared: always")).load().unwrap_err().to_string();
    assert!(e.contains("prepared=always") && e.contains("max_len: 16 → 8") && e.contains("data prepare"), "{e}");
    let (_, source) = spec(&yaml(", max_len: 16, prepared: never")).load().unwrap();
    assert!(matches!(source, Source::Raw(_)), "never reads raw files");

    // A raw file added after preparing makes the shards stale.
    std::fs::write(text.join("train/b/3.txt"), "new").unwrap();
    let (dm, source) = spec(&yaml(", max_len: 16")).load().unwrap();
    let Source::Raw(why) = &source else { panic!("{source}") };
    assert!(why.contains("stale") && why.contains("raw files changed"), "{why}");
    assert_eq!(dm.train.len() + dm.val.len(), 5, "the raw loader sees the new file");
    let e = spec(&yaml(", max_len: 16, prepared: always")).load().unwrap_err().to_string();
    assert!(e.contains("stale"), "{e}");
    spec(&yaml(", max_len: 16")).prepare().unwrap();
    let (dm, source) = spec(&yaml(", max_len: 16")).load().unwrap();
    assert!(matches!(source, Source::Prepared(..)) && dm.train.len() + dm.val.len() == 5, "{source}");

    // Generated data has no folder of its own.
    let e = spec("{_name_: adding, n_train: 4, n_val: 2, n_test: 2}").prepare().unwrap_err().to_string();
    assert!(e.contains("`adding`") && e.contains("prepared_dir"), "{e}");
}
