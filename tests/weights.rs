//! PyTorch state_dict import/export (`wavessm::weights`): round trips, the reference key
//! sets, and errors that name the key.

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::{Device, Distribution, Tensor};
use wavessm::config::ConfigRequest;
use wavessm::model::{Layer, SequenceModel};
use wavessm::weights::st::{self, HostTensor};
use wavessm::weights::{self, ImportOptions, Layout, Select};

mod common;

/// A tiny model: H=4, N=4 (d_state), 2 blocks, d_input=1, d_output=3, post-norm LayerNorm.
fn model(layer: &[&str], extra: &[&str], seed: u64) -> SequenceModel {
    let mut tokens: Vec<String> =
        ["model.d_model=4", "model.n_layers=2", "model.prenorm=false", "model.ff=0", "model.layer.d_state=4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    tokens.extend(layer.iter().chain(extra).map(|s| s.to_string()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let device = Device::flex();
    device.seed(seed);
    SequenceModel::new(&cfg.model, 1, 3, &device).unwrap()
}

fn opts(layout: Layout) -> ImportOptions {
    ImportOptions { layout, dt_transform: None, select: Select::All, partial: false }
}

fn max_diff(a: &SequenceModel, b: &SequenceModel, l: usize) -> f32 {
    let device = Device::flex();
    device.seed(7);
    let x = Tensor::<3>::random([2, l, 1], Distribution::Normal(0.0, 1.0), &device);
    let (ya, yb) = (a.forward(x.clone(), None), b.forward(x, None));
    (ya - yb).abs().max().into_scalar::<f32>()
}

const S4D: &[&str] = &["model=s4d"];
const S4: &[&str] = &["model=s4", "model.layer.l_max=8"];
const S4_BI2: &[&str] =
    &["model=s4", "model.layer.l_max=8", "model.layer.channels=2", "model.layer.bidirectional=true"];
const LIQUID: &[&str] = &["model=liquid_s4", "model.layer.l_max=8"];
const DSS: &[&str] = &["model=dss"];

fn export(m: &SequenceModel, path: &Path, layout: Layout) -> Vec<String> {
    weights::export(m, path, layout, None, false).unwrap().0
}

#[test]
fn export_then_import_reproduces_outputs() {
    let _turn = common::serial(); // burn's RNG is process-wide: seeded models must not interleave
    let dir = tempfile::tempdir().unwrap();
    for (layer, layout, tol) in [
        (S4D, Layout::S4Example, 0.0),
        (S4, Layout::S4Example, 0.0),
        (S4_BI2, Layout::S4Example, 0.0),
        (LIQUID, Layout::S4Example, 0.0),
        (DSS, Layout::S4Example, 0.0),
        (DSS, Layout::S4Sequence, 0.0),
        // softplus inv_dt round trips through f32 with rounding.
        (S4, Layout::S4Sequence, 1e-5),
    ] {
        let extra: &[&str] = if layout == Layout::S4Sequence { &["model.prenorm=true"] } else { &[] };
        let (a, b) = (model(layer, extra, 1), model(layer, extra, 2));
        assert!(max_diff(&a, &b, 8) > 1e-3, "{layer:?}: differently seeded models must differ");
        let path = dir.path().join("m.safetensors");
        export(&a, &path, layout);
        let (b, report) = weights::import(b, &path, &opts(layout)).unwrap();
        assert!(report.kept.is_empty() && report.ignored.is_empty(), "{report:?}");
        let d = max_diff(&a, &b, 8);
        assert!(d <= tol, "{layer:?} {layout}: outputs differ by {d}");
    }
}

#[test]
fn s4_c_tilde_is_rebased_to_our_kernel_length() {
    let _turn = common::serial(); // burn's RNG is process-wide: seeded models must not interleave
    // The file's C̃ is for length 8 (its `l_kernel` buffer); the importing model uses 16.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = model(S4, &[], 1);
    export(&a, &path, Layout::S4Example);
    let b = model(&["model=s4", "model.layer.l_max=16"], &[], 2);
    let (b, _) = weights::import(b, &path, &opts(Layout::S4Example)).unwrap();
    let d = max_diff(&a, &b, 8);
    assert!(d < 1e-4, "rebased C̃ changes outputs by {d}");
    // Without the rebase the kernels differ: read the same file claiming C̃ is for length 16.
    let mut file = st::read(&path).unwrap();
    for (k, t) in file.iter_mut() {
        if k.ends_with("l_kernel") {
            t.data = vec![16.0];
        }
    }
    st::write(&path, &file, &[]).unwrap();
    let c = model(&["model=s4", "model.layer.l_max=16"], &[], 2);
    let (c, _) = weights::import(c, &path, &opts(Layout::S4Example)).unwrap();
    let dc = max_diff(&a, &c, 8);
    assert!(dc > 1e-3, "the l_kernel buffer must matter: {dc} (rebased {d})");
}

/// Reference keys and shapes for the tiny config of [`model`], printed by running the reference
/// code with torch 2.15 (`scripts/torch_reference.py keys` on state-spaces/s4 `models/s4/s4.py`,
/// `models/s4/s4d.py` and ag1988/dss `standalone/dss.py`), so that this test needs no torch.
fn reference(layer: &str) -> Vec<(String, Vec<usize>)> {
    let per_layer: &[(&str, &[usize])] = match layer {
        "s4d" => &[
            ("D", &[4]),
            ("kernel.C", &[4, 2, 2]),
            ("kernel.log_dt", &[4]),
            ("kernel.log_A_real", &[4, 2]),
            ("kernel.A_imag", &[4, 2]),
            ("output_linear.0.weight", &[8, 4, 1]),
            ("output_linear.0.bias", &[8]),
        ],
        "s4" => &[
            ("layer.D", &[1, 4]),
            ("layer.kernel.inv_dt", &[4, 1]),
            ("layer.kernel.C", &[1, 4, 2, 2]),
            ("layer.kernel.B", &[1, 4, 2, 2]),
            ("layer.kernel.A_real", &[4, 2]),
            ("layer.kernel.A_imag", &[4, 2]),
            ("layer.kernel.P", &[1, 4, 2, 2]),
            ("layer.kernel.l_kernel", &[]),
            ("output_linear.0.weight", &[8, 4]),
            ("output_linear.0.bias", &[8]),
        ],
        // channels=2, bidirectional: C has 2·2 output channels, D one row per channel.
        "s4-bi2" => &[
            ("layer.D", &[2, 4]),
            ("layer.kernel.inv_dt", &[4, 1]),
            ("layer.kernel.C", &[4, 4, 2, 2]),
            ("layer.kernel.B", &[1, 4, 2, 2]),
            ("layer.kernel.A_real", &[4, 2]),
            ("layer.kernel.A_imag", &[4, 2]),
            ("layer.kernel.P", &[1, 4, 2, 2]),
            ("layer.kernel.l_kernel", &[]),
            ("output_linear.0.weight", &[8, 8]),
            ("output_linear.0.bias", &[8]),
        ],
        "dss" => &[
            ("D", &[1, 4]),
            ("kernel.log_dt", &[4, 2]),
            ("kernel.Lambda", &[4, 2]),
            ("kernel.W", &[1, 4, 4, 2]),
            ("output_linear.weight", &[4, 4]),
            ("output_linear.bias", &[4, 1]),
        ],
        _ => unreachable!(),
    };
    let mut keys: Vec<(String, Vec<usize>)> = vec![
        ("encoder.weight".into(), vec![4, 1]),
        ("encoder.bias".into(), vec![4]),
        ("decoder.weight".into(), vec![3, 4]),
        ("decoder.bias".into(), vec![3]),
    ];
    for i in 0..2 {
        keys.extend(per_layer.iter().map(|(k, s)| (format!("s4_layers.{i}.{k}"), s.to_vec())));
        keys.push((format!("norms.{i}.weight"), vec![4]));
        keys.push((format!("norms.{i}.bias"), vec![4]));
    }
    keys.sort();
    keys
}

/// The Lightning module of state-spaces/s4's train.py around SequenceModel (prenorm), S4 layers.
fn reference_sequence_s4() -> Vec<(String, Vec<usize>)> {
    let mut keys: Vec<(String, Vec<usize>)> = vec![
        ("encoder.0.weight".into(), vec![4, 1]),
        ("encoder.0.bias".into(), vec![4]),
        ("model.norm.norm.weight".into(), vec![4]),
        ("model.norm.norm.bias".into(), vec![4]),
        ("decoder.0.output_transform.weight".into(), vec![3, 4]),
        ("decoder.0.output_transform.bias".into(), vec![3]),
    ];
    for (k, s) in reference("s4") {
        if let Some(rest) = k.strip_prefix("s4_layers.") {
            keys.push((format!("model.layers.{rest}"), s));
        } else if let Some(rest) = k.strip_prefix("norms.") {
            let (i, p) = rest.split_once('.').unwrap();
            keys.push((format!("model.layers.{i}.norm.norm.{p}"), s));
        }
    }
    keys.iter_mut().for_each(|(k, _)| {
        // s4_layers.{i}.layer.* is model.layers.{i}.layer.layer.* (S4Block inside the block).
        if let Some(rest) = k.strip_prefix("model.layers.")
            && !rest.contains(".norm.")
        {
            let (i, p) = rest.split_once('.').unwrap();
            *k = format!("model.layers.{i}.layer.{p}");
        }
    });
    keys.sort();
    keys
}

fn file_keys(path: &Path) -> Vec<(String, Vec<usize>)> {
    st::read(path).unwrap().into_iter().map(|(k, t)| (k, t.shape)).collect()
}

#[test]
fn exported_keys_equal_the_reference_state_dict() {
    let _turn = common::serial(); // burn's RNG is process-wide: seeded models must not interleave
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    for (layer, name) in [(S4D, "s4d"), (S4, "s4"), (S4_BI2, "s4-bi2"), (LIQUID, "s4"), (DSS, "dss")] {
        export(&model(layer, &[], 1), &path, Layout::S4Example);
        assert_eq!(file_keys(&path), reference(name), "{name}");
    }
    export(&model(S4, &["model.prenorm=true"], 1), &path, Layout::S4Sequence);
    assert_eq!(file_keys(&path), reference_sequence_s4());
}

/// Block `i`'s S4D kernel for length 8, [H, L].
fn s4d_kernel(m: &SequenceModel, i: usize) -> Tensor<2> {
    match &m.layers[i].layer {
        Layer::S4d(l) => l.kernel.forward(8),
        _ => unreachable!("an s4d model"),
    }
}

fn edited(path: &Path, edit: impl FnOnce(&mut BTreeMap<String, HostTensor>)) {
    let mut file = st::read(path).unwrap();
    edit(&mut file);
    st::write(path, &file, &[]).unwrap();
}

#[test]
fn bad_files_are_reported_by_key() {
    let _turn = common::serial(); // burn's RNG is process-wide: seeded models must not interleave
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ref.safetensors");
    let a = model(S4D, &[], 1);
    let fresh = || model(S4D, &[], 2);
    let import = |o: ImportOptions| weights::import(fresh(), &path, &o).map_err(|e| e.to_string());

    // s4d.py's `log_A_real` means exp: another real_transform has no reference tensor.
    let soft = model(S4D, &["model.layer.real_transform=softplus"], 1);
    let err = weights::export(&soft, &path, Layout::S4Example, None, false).unwrap_err().to_string();
    assert!(err.contains("real_transform") && err.contains("Softplus"), "{err}");

    export(&a, &path, Layout::S4Example);
    edited(&path, |f| {
        f.remove("s4_layers.1.kernel.log_dt");
        f.insert("s4_layers.0.kernel.B".into(), HostTensor { shape: vec![2], data: vec![0.0; 2], int: false });
    });
    let err = import(opts(Layout::S4Example)).unwrap_err();
    assert!(err.contains("ref.safetensors"), "{err}");
    assert!(err.contains("missing 1 key: s4_layers.1.kernel.log_dt"), "{err}");
    assert!(err.contains("unexpected 1 key: s4_layers.0.kernel.B"), "{err}");
    // Partial: the rest loads, the missing parameter keeps its initialization.
    let (_, r) = import(ImportOptions { partial: true, ..opts(Layout::S4Example) }).unwrap();
    assert_eq!(r.kept, ["layers.1.layer.S4d.kernel.log_dt"]);
    assert_eq!(r.ignored, ["s4_layers.0.kernel.B"]);

    export(&a, &path, Layout::S4Example);
    edited(&path, |f| f.get_mut("s4_layers.0.output_linear.0.weight").unwrap().shape = vec![4, 8, 1]);
    let err = import(ImportOptions { partial: true, ..opts(Layout::S4Example) }).unwrap_err();
    assert!(err.contains("`s4_layers.0.output_linear.0.weight`: expected [8, 4, 1], found [4, 8, 1]"), "{err}");

    // SSM weights only: a file with nothing but kernels and D loads into a model whose other
    // weights stay as they were.
    export(&a, &path, Layout::S4Example);
    edited(&path, |f| f.retain(|k, _| k.contains(".kernel.") || k.ends_with(".D")));
    let b = fresh();
    // Parameters initialize lazily: read the decoder before the import draws anything else.
    let before = b.decoder.as_ref().expect("a decoder").weight.val();
    let (b, r) = weights::import(b, &path, &ImportOptions { select: Select::Ssm, ..opts(Layout::S4Example) }).unwrap();
    assert_eq!(r.loaded.len(), 2 * 5, "{:?}", r.loaded);
    assert!(r.kept.iter().any(|k| k == "decoder.weight"), "{:?}", r.kept);
    let diff = |x: Tensor<2>, y: Tensor<2>| (x - y).abs().max().into_scalar::<f32>();
    assert_eq!(
        diff(b.decoder.as_ref().expect("a decoder").weight.val(), before),
        0.0,
        "decoder keeps its initialization"
    );
    assert_eq!(diff(s4d_kernel(&b, 1), s4d_kernel(&a, 1)), 0.0, "the SSM comes from the file");

    // A model the layout cannot name (a feed-forward sub-block) fails on export, naming it.
    let ff = model(S4D, &["model.ff=2"], 1);
    let err = weights::export(&ff, &path, Layout::S4Example, None, false).unwrap_err().to_string();
    assert!(err.contains("layers.0.ff.linear1.weight") && err.contains("--partial"), "{err}");

    // Not a safetensors file.
    std::fs::write(&path, b"not a tensor file").unwrap();
    let err = import(opts(Layout::S4Example)).unwrap_err();
    assert!(err.contains("ref.safetensors") && err.contains("not a safetensors file"), "{err}");
}

/// Manual check against PyTorch (not run in CI, which has no torch): checkpoints of the
/// reference example model written by `scripts/torch_reference.py example … LAYER DIR` load into
/// ours and give the reference's outputs. Run with
/// `WAVESSM_TORCH_REF=DIR cargo test --release --test weights -- --ignored --nocapture`.
#[test]
#[ignore = "needs files written by scripts/torch_reference.py (PyTorch)"]
fn reference_checkpoints_give_reference_outputs() {
    let _turn = common::serial(); // burn's RNG is process-wide: seeded models must not interleave
    let dir = std::path::PathBuf::from(std::env::var("WAVESSM_TORCH_REF").expect("set WAVESSM_TORCH_REF"));
    // H=8, N=4, 2 blocks, d_input=2, d_output=3, L=8, as the script.
    let cases: &[(&str, &[&str])] = &[
        ("s4d", &["model=s4d"]),
        ("s4", &["model=s4", "model.layer.l_max=8"]),
        ("s4", &["model=s4", "model.layer.l_max=16"]),
        ("s4-fresh", &["model=s4", "model.layer.l_max=8"]),
        ("s4-diag", &["model=s4", "model.layer.mode=diag", "model.layer.init=lin"]),
        ("s4-bi2", &["model=s4", "model.layer.l_max=8", "model.layer.channels=2", "model.layer.bidirectional=true"]),
        ("dss", &["model=dss"]),
    ];
    for (kind, layer) in cases {
        let sub = dir.join(kind);
        if !sub.is_dir() {
            println!("{kind}: no {}", sub.display());
            continue;
        }
        let mut tokens: Vec<String> =
            ["model.d_model=8", "model.n_layers=2", "model.prenorm=false", "model.layer.d_state=4", "model.pool=mean"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        tokens.extend(layer.iter().map(|s| s.to_string()));
        let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
        let device = Device::flex();
        let m = SequenceModel::new(&cfg.model, 2, 3, &device).unwrap();
        let (m, _) = weights::import(m, &sub.join("model.safetensors"), &opts(Layout::S4Example)).unwrap();
        let io = st::read(&sub.join("io.safetensors")).unwrap();
        let (x, y) = (&io["x"], &io["y"]);
        let xs: Vec<f32> = x.data.iter().map(|v| *v as f32).collect();
        let x = Tensor::<1>::from_floats(xs.as_slice(), &device).reshape([x.shape[0], x.shape[1], x.shape[2]]);
        let out = m.forward(x, None).try_into_vec_as::<f64>().unwrap();
        let d = out.iter().zip(&y.data).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        println!("{kind} ({}): max |ours - torch| = {d:.2e}", layer.join(" "));
        assert!(d < 1e-4, "{kind}: {d}");
        // Export gives back the reference's file where no C̃ was re-based.
        if !layer.contains(&"model.layer.l_max=16") && *kind != "s4-fresh" {
            let back = sub.join("back.safetensors");
            export(&m, &back, Layout::S4Example);
            let (src, out) = (st::read(&sub.join("model.safetensors")).unwrap(), st::read(&back).unwrap());
            assert_eq!(src.keys().collect::<Vec<_>>(), out.keys().collect::<Vec<_>>(), "{kind}");
            for (k, t) in &src {
                assert_eq!(t.shape, out[k].shape, "{k}");
                let d = t.data.iter().zip(&out[k].data).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert_eq!(d, 0.0, "{kind}: `{k}` differs by {d} after import and export");
            }
        }
    }
}
