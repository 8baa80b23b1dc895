//! `wavessm weights import` of PyTorch layers: the golden files' `TransformerEncoderLayer` and
//! `LSTM` state_dicts, written into a safetensors file under each layout's keys for every
//! block, give the golden outputs (see the golden README for what the files compute).

mod common;

use std::path::Path;

use burn::tensor::Device;
use common::{Golden, host, tensor};
use wavessm::config::ConfigRequest;
use wavessm::model::rnn::RnnState;
use wavessm::model::{Layer, SeqLayer, SequenceModel};
use wavessm::weights::st::{self, HostTensor};
use wavessm::weights::{self, ImportOptions, Layout, Select};

/// The model of `tokens` (two blocks, one input, three outputs), seeded.
fn model(tokens: &[String], seed: u64) -> SequenceModel {
    let cfg = ConfigRequest { tokens: tokens.to_vec(), ..Default::default() }.resolve().expect("config");
    let device = Device::flex();
    device.seed(seed);
    SequenceModel::new(&cfg.model, 1, 3, &device).expect("model")
}

/// Exports the model of `tokens` under `layout`, replaces every block's `names` by the golden
/// file's tensors (in PyTorch's layout, as a state_dict holds them) and imports the file into a
/// differently seeded model. `ours`: parameters the layout has no key for, which keep their
/// initialization.
fn import_golden(
    g: &Golden,
    tokens: &[String],
    names: &[&str],
    layout: Layout,
    ours: &[&str],
    dir: &Path,
) -> SequenceModel {
    let path = dir.join("golden.safetensors");
    let partial = !ours.is_empty();
    let (keys, _) = weights::export(&model(tokens, 1), &path, layout, None, partial).expect("export");
    let mut file = st::read(&path).expect("read");
    for name in names {
        let hits: Vec<&String> = keys.iter().filter(|k| k.ends_with(&format!(".{name}"))).collect();
        assert_eq!(hits.len(), 2, "{layout}: `{name}` once per block in {keys:?}");
        let a = g.input(name);
        for k in hits {
            assert_eq!(file[k].shape, a.shape, "{layout}: `{k}` has PyTorch's shape");
            file.insert(k.clone(), HostTensor { shape: a.shape.clone(), data: a.data.clone(), int: false });
        }
    }
    st::write(&path, &file, &[]).expect("write");
    let opts = ImportOptions { layout, dt_transform: None, select: Select::All, partial };
    let (m, report) = weights::import(model(tokens, 2), &path, &opts).expect("import");
    assert!(report.ignored.is_empty(), "{report:?}");
    assert!(report.kept.iter().all(|k| ours.iter().any(|o| k.contains(o))), "{report:?}");
    m
}

#[test]
fn transformer_encoder_layer_state_dict_gives_pytorch_outputs() {
    let _turn = common::serial(); // seeded models must not interleave
    let g = common::load(&common::golden_dir().join("transformer_layer.json"));
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::flex();
    let x = tensor::<3>(g.input("x"), &device);
    let names = [
        "self_attn.in_proj_weight",
        "self_attn.in_proj_bias",
        "self_attn.out_proj.weight",
        "self_attn.out_proj.bias",
        "linear1.weight",
        "linear1.bias",
        "linear2.weight",
        "linear2.bias",
        "norm1.weight",
        "norm1.bias",
        "norm2.weight",
        "norm2.bias",
    ];
    let variants: Vec<String> = serde_json::from_value(g.config["variants"].clone()).expect("variants");
    let norm_first: Vec<bool> = serde_json::from_value(g.config["norm_first"].clone()).expect("norm_first");
    for (variant, norm_first) in variants.iter().zip(norm_first) {
        for (mask, causal) in [("causal", true), ("nomask", false)] {
            let key = format!("out_{variant}_{mask}");
            let Some(expected) = g.outputs.get(&key) else { continue };
            let tokens = |prenorm: bool| -> Vec<String> {
                [
                    "model=transformer".to_string(),
                    format!("model.prenorm={prenorm}"),
                    format!("model.d_model={}", g.cfg_usize("d_model")),
                    "model.n_layers=2".into(),
                    format!("model.layer.n_heads={}", g.cfg_usize("nhead")),
                    format!("model.layer.ff={}", g.cfg_usize("dim_feedforward")),
                    format!("model.layer.activation={}", g.config["activation"].as_str().expect("activation")),
                    format!("model.layer.norm_first={norm_first}"),
                    format!("model.layer.causal={causal}"),
                    "model.layer.pos=none".into(),
                    "model.layer.dropout=0.0".into(),
                ]
                .to_vec()
            };
            // The example model is post-norm around the layer; the training script's is pre-norm.
            for (layout, prenorm) in [(Layout::S4Example, false), (Layout::S4Sequence, true)] {
                let m = import_golden(&g, &tokens(prenorm), &names, layout, &[], dir.path());
                for (i, block) in m.layers.iter().enumerate() {
                    let y = host(block.layer.forward(x.clone()));
                    let worst = g.check(&format!("{key} ({layout}, block {i})"), &y, expected);
                    println!("{key} {layout} block {i}: worst error / tolerance {worst:.3}");
                }
            }
        }
    }
}

#[test]
fn lstm_classifier_state_dict_gives_pytorch_states() {
    let _turn = common::serial(); // seeded models must not interleave
    let g = common::load(&common::golden_dir().join("lstm.json"));
    if g.cfg_usize("num_layers") != 1 {
        println!("lstm.json: {} layers; this check reads one", g.cfg_usize("num_layers"));
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::flex();
    let (input, hidden) = (g.cfg_usize("input_size"), g.cfg_usize("hidden_size"));
    // The block's LSTM reads the model width (= input_size) into `hidden_size` units, which our
    // `output_linear` (no PyTorch key) maps back to the width.
    let tokens: Vec<String> = [
        "model=lstm".to_string(),
        "model.prenorm=false".into(),
        format!("model.d_model={input}"),
        "model.n_layers=2".into(),
        format!("model.layer.hidden_size={hidden}"),
    ]
    .to_vec();
    let names = ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"];
    let x = tensor::<3>(g.input("x"), &device);
    let state = RnnState { h: tensor::<3>(g.input("h0"), &device), c: Some(tensor::<3>(g.input("c0"), &device)) };
    for layout in [Layout::S4Example, Layout::S4Sequence] {
        let m = import_golden(&g, &tokens, &names, layout, &["output_linear"], dir.path());
        for (i, block) in m.layers.iter().enumerate() {
            let Layer::Lstm(lstm) = &block.layer else { panic!("block {i} is an LSTM") };
            let (_, s) = lstm.forward_state(x.clone(), Some(&state)).expect("forward");
            let c = s.c.expect("an LSTM state has c");
            g.check(&format!("h_n ({layout}, block {i})"), &host(s.h), g.output("h_n"));
            g.check(&format!("c_n ({layout}, block {i})"), &host(c), g.output("c_n"));
        }
    }
}
