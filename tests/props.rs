//! Property tests over every parser of untrusted input: generated and mutated inputs (10,000
//! per parser; `PROPTEST_CASES` changes that), and the only property is the one a user needs:
//! no panic, an `Err` or a value whose sizes agree. `fuzz/` runs the same entry points
//! unbounded under cargo-fuzz.

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::Config;
use wavessm::config::compose::{Item, classify, compose_files};
use wavessm::config::sources::ConfigFile;
use wavessm::config::{ConfigSources, Override};
use wavessm::data::inputs::Encoding;
use wavessm::data::shard::{self, Provenance};
use wavessm::data::{SeqData, Targets, aan, cifar, idx, listops, speech, ucr};
use wavessm::experiment::ExperimentConfig;
use wavessm::weights::st;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(10_000);
    Config { cases, failure_persistence: None, ..Config::default() }
}

/// A change to a valid file: positions are taken modulo the length.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    /// An extreme little- or big-endian 32-bit word.
    Word(usize, u32, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![Just(0u32), Just(1), Just(u32::MAX), Just(0x8000_0000), Just(0x7fff_ffff), any::<u32>()];
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<usize>(), word, any::<bool>()).prop_map(|(i, w, be)| Mutation::Word(i, w, be)),
    ]
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let n = b.len().max(1);
        match m {
            Mutation::Set(i, v) if !b.is_empty() => b[i % n] = *v,
            Mutation::Truncate(i) => b.truncate(i % n),
            Mutation::Insert(i, v) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, k) if !b.is_empty() => {
                let at = i % n;
                b.drain(at..(at + k).min(b.len()));
            }
            Mutation::Word(i, w, be) if b.len() >= 4 => {
                let at = i % (b.len() - 3);
                let bytes = if *be { w.to_be_bytes() } else { w.to_le_bytes() };
                b[at..at + 4].copy_from_slice(&bytes);
            }
            _ => {}
        }
    }
    b
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..4)
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(p).unwrap();
        out.extend(enc.finish().unwrap());
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_never_panics(
        rank3 in any::<bool>(),
        dims in prop::collection::vec(0usize..6, 3),
        packing in 0u8..3,
        muts in mutations(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
        use_raw in prop::bool::weighted(0.1),
    ) {
        let dims: Vec<usize> = if rank3 { dims } else { dims[..1].to_vec() };
        let valid = idx::encode(&dims, &vec![3; dims.iter().product()]);
        let bytes = match packing {
            0 => valid,
            1 => gzip(&[&valid]),
            _ => { let (a, b) = valid.split_at(valid.len() / 2); gzip(&[a, b]) }
        };
        let bytes = if use_raw { raw } else { mutate(bytes, &muts) };
        for rank in [1, 3] {
            if let Ok(x) = idx::from_bytes(&bytes, rank) {
                prop_assert_eq!(x.data.len(), x.dims.iter().product::<usize>());
                prop_assert!(x.dims.iter().all(|&d| d > 0));
            }
        }
    }

    #[test]
    fn cifar_binary_never_panics(
        labels in prop::collection::vec(0u8..12, 0..3),
        gray in any::<bool>(),
        muts in mutations(),
    ) {
        let mut bytes = Vec::new();
        for l in &labels {
            bytes.push(*l);
            bytes.extend((0..3072).map(|i| (i % 256) as u8));
        }
        let bytes = mutate(bytes, &muts);
        if let Ok((x, y)) = cifar::decode(&bytes, gray, Path::new("data_batch_1.bin")) {
            prop_assert_eq!(x.len(), y.len() * 1024 * if gray { 1 } else { 3 });
        }
    }
}

fn ts_value() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => (-1e3f64..1e3).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["nan", "NaN", "?", "inf", "-inf", "1e39", "-3.5e38", "", "x", "1,", "0x1"])
            .prop_map(str::to_string),
    ]
}

/// A row of `dims` dimensions (`a,b,c:d,e,f:label`).
fn ts_row(dims: usize) -> impl Strategy<Value = String> {
    let dim = prop::collection::vec(ts_value(), 1..5).prop_map(|v| v.join(","));
    (prop::collection::vec(dim, dims..=dims), prop::sample::select(vec!["a", "a", "b", "b", "z", ""]))
        .prop_map(|(dims, label)| format!("{}:{label}", dims.join(":")))
}

fn ts_line() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => (0usize..4).prop_flat_map(ts_row),
        1 => prop::sample::select(vec!["@data", "@classLabel true a b", "@classLabel false", "@classLabel true"])
            .prop_map(str::to_string),
        1 => prop_oneof![Just("0".to_string()), Just("18446744073709551616".to_string()), (0u64..5).prop_map(|d| d.to_string())]
            .prop_map(|d| format!("@dimensions {d}")),
        1 => prop::sample::select(vec!["@timestamps true", "# comment", "", "@univariate false"]).prop_map(str::to_string),
        1 => ".{0,20}",
    ]
}

/// A `.ts` file: mostly a well-formed header and rows of one width, with junk lines mixed in.
fn ts_file() -> impl Strategy<Value = String> {
    let wellformed = (1usize..3).prop_flat_map(|d| {
        (
            Just(d),
            any::<bool>(),
            prop::collection::vec(ts_row(d), 1..6),
            prop::collection::vec((any::<usize>(), ts_line()), 0..2),
        )
    });
    prop_oneof![
        4 => wellformed.prop_map(|(d, declare, rows, junk)| {
            let mut lines = vec!["@problemName p".to_string(), "@classLabel true a b".to_string()];
            if declare {
                lines.push(format!("@dimensions {d}"));
            }
            lines.push("@data".into());
            lines.extend(rows);
            for (at, j) in junk {
                let at = at % (lines.len() + 1);
                lines.insert(at, j);
            }
            lines.join("\n")
        }),
        1 => prop::collection::vec(ts_line(), 0..10).prop_map(|l| l.join("\n")),
    ]
}

fn listops_line() -> impl Strategy<Value = String> {
    let tok = prop::sample::select(vec!["(", ")", "]", "[MAX", "[MIN", "[MED", "[SM", "7", "0", "X", "[FOO", "12", ""]);
    let target = prop::sample::select(vec!["0", "9", "10", "-1", "nan", "1e39", "x", ""]);
    prop_oneof![
        5 => (prop::collection::vec(tok, 0..12), target).prop_map(|(t, y)| format!("{}\t{y}", t.join(" "))),
        1 => ".{0,20}",
    ]
}

fn aan_line() -> impl Strategy<Value = String> {
    let label = prop::sample::select(vec!["0", "1", "0", "1", "1.0", "2", "nan", "inf", "1e39", "-0", ""]);
    let width = prop_oneof![4 => Just(4usize), 1 => 0usize..6];
    (label, width.prop_flat_map(|w| prop::collection::vec(".{0,12}", w..=w))).prop_map(|(l, cols)| {
        let mut all = vec![l.to_string()];
        all.extend(cols);
        all.join("\t")
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ucr_ts_never_panics(text in ts_file()) {
        if let Ok(f) = ucr::parse_ts(&text, Path::new("X_TRAIN.ts")) {
            prop_assert!(f.dims >= 1 && !f.series.is_empty());
            for (row, class) in &f.series {
                prop_assert!(row.len() % f.dims == 0 && *class < f.classes.len());
                prop_assert!(row.iter().all(|v| v.is_finite()));
            }
        }
    }

    #[test]
    fn lra_tsv_never_panics(
        header in prop::sample::select(vec!["Source\tTarget", "Source Target", ""]),
        lines in prop::collection::vec(listops_line(), 0..6),
        pairs in prop::collection::vec(aan_line(), 0..6),
        max_len in prop_oneof![1usize..32, Just(1usize << 60)],
    ) {
        let text = format!("{header}\n{}", lines.join("\n"));
        if let Ok((d, _)) = listops::parse_tsv(&text, Path::new("basic_train.tsv"), max_len) {
            prop_assert_eq!(d.inputs.len(), d.len() * max_len);
        }
        if let Ok(d) = aan::parse_pairs(&pairs.join("\n"), Path::new("new_aan_pairs.train.tsv"), max_len) {
            prop_assert_eq!(d.inputs.len(), d.len() * max_len * 2);
        }
    }

    #[test]
    fn wav_headers_never_panic(
        channels in 1u16..3,
        rate in prop::sample::select(vec![16_000u32, 8_000]),
        bits in prop::sample::select(vec![16u16, 8, 24]),
        samples in prop::collection::vec(any::<i16>(), 0..40),
        muts in mutations(),
    ) {
        let spec = hound::WavSpec { channels, sample_rate: rate, bits_per_sample: bits, sample_format: hound::SampleFormat::Int };
        let mut cur = Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
            for s in samples.iter().take(samples.len() / channels as usize * channels as usize) {
                let v = (*s as i32) >> (16 - bits.min(16));
                w.write_sample(v).unwrap();
            }
            w.finalize().unwrap();
        }
        let bytes = mutate(cur.into_inner(), &muts);
        if let Ok(x) = speech::decode_wav(Cursor::new(bytes), 16) {
            prop_assert!(x.len() <= 16 && x.iter().all(|v| (-1.0..1.0).contains(v)));
        }
    }
}

/// Valid shards to mutate: dense f32 values, token ids with lengths, i16 audio.
fn shards() -> &'static [Vec<u8>] {
    static SHARDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SHARDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let prov = Provenance {
            dataset: "ucr".into(),
            config: serde_json::json!({"_name_": "ucr"}),
            config_hash: "0".into(),
            sources: "generated".into(),
        };
        let splits = [
            (
                SeqData {
                    inputs: vec![0.5, -1.0, 2.0, 0.25, 3.0, 1.5].into(),
                    seq_len: 3,
                    channels: 1,
                    targets: Targets::Values { values: vec![1.0, -2.0], dim: 1 },
                    lengths: Some(vec![3, 2]),
                    vocab: None,
                },
                Encoding::F32,
            ),
            (
                SeqData {
                    inputs: vec![1.0, 2.0, 0.0, 3.0, 3.0, 1.0, 2.0, 0.0].into(),
                    seq_len: 2,
                    channels: 2,
                    targets: Targets::Classes { labels: vec![0, 1], n_classes: 2 },
                    lengths: Some(vec![2, 1, 1, 2]),
                    vocab: Some(4),
                },
                Encoding::for_vocab(4),
            ),
            (
                SeqData {
                    inputs: vec![0.5, -0.25, 0.0, 1.0 / 32768.0].into(),
                    seq_len: 2,
                    channels: 1,
                    targets: Targets::Tokens { ids: vec![1, 2, 0, u32::MAX], vocab: 3 },
                    lengths: None,
                    vocab: None,
                },
                wavessm::data::inputs::Encoding { dtype: wavessm::data::Dtype::I16, divisor: 32768.0 },
            ),
        ];
        splits
            .iter()
            .enumerate()
            .map(|(i, (d, enc))| {
                let p = dir.path().join(format!("{i}.wsd"));
                shard::write_split(&p, &prov, "train", d, *enc).unwrap();
                let bytes = std::fs::read(&p).unwrap();
                assert!(shard::parse(&bytes, &p).is_ok(), "valid shard {i}");
                bytes
            })
            .collect()
    })
}

fn crc(b: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(b);
    c.sum()
}

/// Sets `field` (a dotted path) of a shard's JSON header to `value`, then re-signs the header
/// and, when `fix` is set, every section it points at, so the edit reaches the field checks.
fn edit_shard(bytes: &[u8], field: &str, value: serde_json::Value, fix: bool) -> Vec<u8> {
    let at = u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize;
    let len = u64::from_le_bytes(bytes[24..32].try_into().unwrap()) as usize;
    let mut h: serde_json::Value = serde_json::from_slice(&bytes[at..at + len]).unwrap();
    let mut slot = &mut h;
    for part in field.split('.') {
        if !slot.is_object() {
            break;
        }
        slot = slot.as_object_mut().unwrap().entry(part).or_insert(serde_json::Value::Null);
    }
    *slot = value;
    let mut out = bytes[..at].to_vec();
    if fix {
        for s in ["inputs", "targets", "lengths"] {
            let (Some(off), Some(n)) = (h[s]["offset"].as_u64(), h[s]["bytes"].as_u64()) else { continue };
            if let Some(end) = off.checked_add(n).filter(|&e| e <= at as u64) {
                h[s]["crc32"] = crc(&out[off as usize..end as usize]).into();
            }
        }
    }
    let json = serde_json::to_vec(&h).unwrap();
    out.extend(&json);
    out[12..16].copy_from_slice(&crc(&json).to_le_bytes());
    out[24..32].copy_from_slice(&(json.len() as u64).to_le_bytes());
    out
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(2),
            json!(3),
            json!(64),
            json!(4294967296u64),
            json!(9223372036854775808u64),
            json!(u64::MAX),
            json!(-1),
            json!(1.5),
            json!(null),
            json!("x"),
            json!("val"),
            json!("u8"),
            json!("f32"),
            json!("tokens"),
            json!(f64::MAX),
        ]),
        any::<u64>().prop_map(|v| json!(v)),
    ]
}

const SHARD_FIELDS: &[&str] = &[
    "n",
    "seq_len",
    "channels",
    "vocab",
    "split",
    "encoding.dtype",
    "encoding.divisor",
    "inputs.offset",
    "inputs.bytes",
    "targets.offset",
    "targets.bytes",
    "lengths",
    "lengths.offset",
    "lengths.bytes",
    "targets_kind.kind",
    "targets_kind.n_classes",
    "targets_kind.dim",
    "targets_kind.vocab",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn shard_headers_never_panic(
        which in 0usize..3,
        edits in prop::collection::vec((prop::sample::select(SHARD_FIELDS), json_value()), 0..3),
        fix in any::<bool>(),
        muts in mutations(),
    ) {
        let mut bytes = shards()[which].clone();
        for (field, value) in edits {
            bytes = edit_shard(&bytes, field, value, fix);
        }
        let bytes = mutate(bytes, &muts);
        if let Ok((h, d)) = shard::parse(&bytes, Path::new("train.wsd")) {
            prop_assert_eq!(d.inputs.to_vec().len(), h.n * h.seq_len * h.channels);
            prop_assert_eq!(d.len(), h.n);
        }
    }
}

/// A valid safetensors file of small f32 tensors, as bytes.
fn safetensors_bytes(shapes: &[Vec<usize>]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let tensors = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = s.iter().product();
            (format!("t{i}"), st::HostTensor { shape: s.clone(), data: vec![0.5; n], int: i % 3 == 2 })
        })
        .collect();
    st::write(&path, &tensors, &[("wavessm_layout", "s4-example".into())]).unwrap();
    std::fs::read(&path).unwrap()
}

fn valid_safetensors() -> &'static [Vec<u8>] {
    static FILES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FILES.get_or_init(|| {
        [vec![vec![2, 3]], vec![vec![], vec![4], vec![1, 2, 2]], vec![vec![0, 5], vec![3]]]
            .iter()
            .map(|s| safetensors_bytes(s))
            .collect()
    })
}

/// A header from generated entries (`dtype`, `shape`, `data_offsets` each possibly absurd),
/// keys possibly repeated, over `data` bytes.
/// A generated header entry: dtype index, name, shape, data offsets.
type Entry = (u8, String, Vec<u64>, (u64, u64));

fn header_file(entries: &[Entry], data: usize, repeat: bool) -> Vec<u8> {
    let dtypes = ["F32", "F64", "BF16", "I64", "I32", "U8", "BOOL", "F16", "X"];
    let mut items: Vec<String> = entries
        .iter()
        .map(|(d, name, shape, (a, b))| {
            format!(
                r#""{name}":{{"dtype":"{}","shape":{shape:?},"data_offsets":[{a},{b}]}}"#,
                dtypes[*d as usize % dtypes.len()]
            )
        })
        .collect();
    if repeat && let Some(first) = items.first().cloned() {
        items.push(first);
    }
    let header = format!("{{{}}}", items.join(","));
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header.as_bytes());
    out.extend(vec![0x3fu8; data]);
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn safetensors_headers_never_panic(
        which in 0usize..3,
        muts in mutations(),
        entries in prop::collection::vec(
            (
                any::<u8>(),
                prop::sample::select(vec!["a", "b", "__metadata__", "c.d"]).prop_map(str::to_string),
                prop::collection::vec(prop_oneof![0u64..5, Just(u64::MAX), Just(1 << 32)], 0..3),
                (prop_oneof![0u64..64, Just(u64::MAX)], prop_oneof![0u64..64, Just(u64::MAX)]),
            ),
            0..4,
        ),
        data in 0usize..64,
        repeat in any::<bool>(),
        generated in any::<bool>(),
    ) {
        let bytes = if generated {
            mutate(header_file(&entries, data, repeat), &muts)
        } else {
            mutate(valid_safetensors()[which].clone(), &muts)
        };
        if let Ok(map) = st::parse(&bytes) {
            for t in map.values() {
                prop_assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
                prop_assert!(t.data.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// The composed default tree, once.
fn base_tree() -> &'static serde_yaml::Value {
    static TREE: OnceLock<serde_yaml::Value> = OnceLock::new();
    TREE.get_or_init(|| wavessm::config::ConfigRequest::default().compose().unwrap())
}

const KEYS: &[&str] = &[
    "name",
    "seed",
    "model.d_model",
    "model.n_layers",
    "model.dropout",
    "model.ff",
    "model.layer.d_state",
    "model.layer.dt_min",
    "model.layer.dt_max",
    "model.layer.lr",
    "model.layer._name_",
    "data.val_split",
    "loader.batch_size",
    "loader.eval_batch_size",
    "optimizer.lr",
    "optimizer.weight_decay",
    "optimizer.betas",
    "optimizer.eps",
    "optimizer.groups",
    "scheduler.warmup_steps",
    "scheduler.min_lr_ratio",
    "scheduler.factor",
    "scheduler._name_",
    "task.label_smoothing",
    "trainer.max_epochs",
    "trainer.gradient_clip_val",
    "trainer.log_every_n_steps",
    "logger.name",
    "model",
    "data",
    "model.layer.x",
];

fn yaml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "1",
            "0",
            "-1",
            ".nan",
            ".inf",
            "-.inf",
            "1e400",
            "18446744073709551616",
            "[1, 2]",
            "{a: 1}",
            "null",
            "''",
            "s4d",
            "plateau",
            "true",
            "../x",
            "/abs",
            "[0.9, 1.5]",
            "0.5",
            "64",
            "2e9",
            "{_name_: s4}",
            "[{params: x, lr: -1}]",
            "\"a\\tb\"",
        ])
        .prop_map(str::to_string),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        "[ -~]{0,12}",
    ]
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (prop::sample::select(vec!["", "+", "++", "~"]), prop::sample::select(KEYS), yaml_value())
            .prop_map(|(p, k, v)| format!("{p}{k}={v}")),
        1 => prop::sample::select(KEYS).prop_map(|k| format!("~{k}")),
        1 => "[ -~]{0,24}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_overrides_never_panic(tokens in prop::collection::vec(token(), 1..4)) {
        let sources = ConfigSources::embedded_only();
        let mut tree = base_tree().clone();
        for t in &tokens {
            let _ = Override::parse_hydra(t);
            if let Ok(Some(Item::Key(o))) = classify(&sources, t) {
                let _ = o.apply(&mut tree);
            }
        }
        if let Ok(cfg) = ExperimentConfig::from_value(tree) {
            prop_assert!(cfg.loader.batch_size >= 1 && cfg.optimizer.lr >= 0.0);
            let _ = cfg.to_yaml();
        }
    }
}

fn yaml_file() -> impl Strategy<Value = String> {
    let entry = (prop::sample::select(KEYS), yaml_value()).prop_map(|(k, v)| {
        // A dotted key becomes nested blocks.
        let parts: Vec<&str> = k.split('.').collect();
        let mut s = String::new();
        for (i, p) in parts.iter().enumerate() {
            s.push_str(&"  ".repeat(i));
            s.push_str(p);
            s.push(':');
            s.push(if i + 1 == parts.len() { ' ' } else { '\n' });
        }
        s + &v
    });
    let defaults = prop::collection::vec(
        (
            prop::sample::select(vec!["model", "data", "/pipeline", "override /model", "scheduler", "x"]),
            prop::sample::select(vec!["s4", "s4d", "digits", "nope", "null", "plateau"]),
        ),
        0..3,
    )
    .prop_map(|d| {
        if d.is_empty() {
            String::new()
        } else {
            format!("defaults:\n{}", d.iter().map(|(g, o)| format!("  - {g}: {o}\n")).collect::<String>())
        }
    });
    prop_oneof![
        5 => (defaults, prop::collection::vec(entry, 0..5)).prop_map(|(d, e)| format!("{d}{}\n", e.join("\n"))),
        1 => "[ -~\n]{0,60}",
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yaml_files_never_panic(text in yaml_file()) {
        let sources = ConfigSources::embedded_only();
        let file = ConfigFile { origin: "probe.yaml".into(), text };
        if let Ok(tree) = compose_files(&sources, &[file], &[], &mut |_| Ok(())) {
            let _ = ExperimentConfig::from_value(tree);
        }
    }
}
