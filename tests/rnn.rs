//! The recurrent baselines (`lstm`, `gru`, `rnn`): the fused CPU recurrences equal the
//! per-step tensor ops in value and gradient, step mode and chunked state forwarding equal
//! the whole-sequence forward, parameter paths are PyTorch's, and bad options are refused
//! with their key.

mod common;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use common::{host, max_rel, probe, randn, serial, step_through, t};
use wavessm::model::rnn::wave::{WaveAct, WaveInit};
use wavessm::model::rnn::{
    GruConfig, HiddenInit, LstmConfig, Nonlinearity, Recurrent, RnnConfig, WaveRnnConfig, WrnnConfig,
};
use wavessm::model::{Classifier, ClassifierOptions, LayerOptions, SeqLayer, StepError};

/// The four layer kinds with `num_layers` layers (bidirectional or not) for width `h`.
fn layers(num_layers: usize, bidirectional: bool, h: usize, device: &Device) -> Vec<(&'static str, Recurrent)> {
    let lstm = LstmConfig { num_layers, bidirectional, ..LstmConfig::default() };
    let gru = GruConfig { num_layers, bidirectional, ..GruConfig::default() };
    let rnn = |nonlinearity| RnnConfig { nonlinearity, num_layers, bidirectional, ..RnnConfig::default() };
    vec![
        ("lstm", lstm.init(h, device)),
        ("gru", gru.init(h, device)),
        ("rnn tanh", rnn(Nonlinearity::Tanh).init(h, device)),
        ("rnn relu", rnn(Nonlinearity::Relu).init(h, device)),
    ]
}

/// Output, input gradient and every parameter's gradient of `Σ y·w` (fixed random `w`).
fn value_and_grads(layer: &Recurrent, x: &Tensor<3>) -> Vec<Vec<f64>> {
    let y = layer.forward(x.clone());
    let mut out = vec![host(y.clone())];
    let g = probe(y, 11).backward();
    out.push(host(x.grad(&g).expect("x gradient")));
    for c in &layer.cells {
        out.push(host(c.weight_ih.grad(&g).expect("W_ih gradient")));
        out.push(host(c.weight_hh.grad(&g).expect("W_hh gradient")));
        out.push(host(c.bias_ih.grad(&g).expect("b_ih gradient")));
        out.push(host(c.bias_hh.grad(&g).expect("b_hh gradient")));
    }
    out
}

#[test]
fn fused_recurrences_match_tensor_ops_in_value_and_gradient() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    dev.seed(3);
    let (b, l, h) = (3, 11, 6);
    let x = t(randn(b * l * h, 1), [b, l, h], &dev).require_grad();
    for bidirectional in [false, true] {
        for (name, layer) in layers(2, bidirectional, h, &dev) {
            let fused = value_and_grads(&layer, &x);
            let generic = wavessm::ops::with_generic_ops(|| value_and_grads(&layer, &x));
            for (i, (a, e)) in fused.iter().zip(&generic).enumerate() {
                let err = max_rel(a, e);
                assert!(err < 1e-5, "{name} (bidirectional {bidirectional}), array {i}: fused vs tensor ops {err}");
            }
        }
    }
}

#[test]
fn step_mode_and_chunked_forwarding_equal_forward() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(4);
    let (b, l, h) = (2, 9, 4);
    let x = t(randn(b * l * h, 2), [b, l, h], &dev);
    let mut all = layers(2, false, h, &dev);
    // A width that needs the output projection.
    all.push(("lstm hidden_size 3", LstmConfig { hidden_size: Some(3), ..LstmConfig::default() }.init(h, &dev)));
    for (name, layer) in all {
        let y = host(layer.forward(x.clone()));
        let mut stepper = layer.stepper(b, l).expect("unidirectional layers step");
        let stepped = step_through(&x, |xt| layer.step(&mut stepper, xt).expect("step"));
        assert!(max_rel(&stepped, &y) < 1e-5, "{name}: step mode vs forward {}", max_rel(&stepped, &y));
        // Two chunks, the second from the state the first ends in; that state equals step mode's.
        let m = l / 2 + 1;
        let (y1, s1) = layer.forward_state(x.clone().narrow(1, 0, m), None).expect("chunk 1");
        let (y2, s2) = layer.forward_state(x.clone().narrow(1, m, l - m), Some(&s1)).expect("chunk 2");
        let chunked = host(Tensor::cat(vec![y1, y2], 1));
        assert!(max_rel(&chunked, &y) < 1e-5, "{name}: chunked vs forward {}", max_rel(&chunked, &y));
        assert!(max_rel(&host(s2.h.clone()), &host(stepper.h.clone())) < 1e-5, "{name}: final h");
        if let (Some(c2), Some(cs)) = (s2.c.clone(), stepper.c.clone()) {
            assert!(max_rel(&host(c2), &host(cs)) < 1e-5, "{name}: final c");
        }
        // Step mode continued from a forwarded state (a prompt, then generation).
        common::check_steps_after_state(&layer, &x, &s1, &y, m, name);
    }
}

#[test]
fn bidirectional_layers_have_no_step_mode_and_bad_inputs_are_errors() {
    let dev = Device::flex();
    let (b, l, h) = (2, 5, 4);
    let x = t(randn(b * l * h, 5), [b, l, h], &dev);
    for (name, layer) in layers(1, true, h, &dev) {
        assert_eq!(layer.forward(x.clone()).dims(), [b, l, h], "{name}: bidirectional keeps the width");
        let e = layer.stepper(b, l).expect_err("no step mode");
        let named = e.to_string().contains("model.layer.bidirectional");
        assert!(matches!(e, StepError::NoRecurrentForm { .. }) && named, "{name}: stepper: {e}");
        assert!(matches!(layer.forward_state(x.clone(), None), Err(StepError::NoRecurrentForm { .. })), "{name}");
    }
    // An empty sequence is no error: no outputs, the state unchanged.
    for (name, layer) in layers(2, false, h, &dev) {
        let (y, s) = layer.forward_state(Tensor::zeros([b, 0, h], &dev), None).expect("empty input");
        assert_eq!((y.dims(), s.h.dims()), ([b, 0, h], [2, b, h]), "{name}");
    }
    let lstm = LstmConfig { num_layers: 2, ..LstmConfig::default() }.init(h, &dev);
    let mut s = lstm.stepper(b, l).expect("stepper");
    assert!(matches!(lstm.step(&mut s, Tensor::zeros([b, h + 1], &dev)), Err(StepError::Shape { .. })));
    assert!(matches!(lstm.forward_state(Tensor::zeros([b, l, h - 1], &dev), None), Err(StepError::Shape { .. })));
    let gru_state = GruConfig::default().init(h, &dev).stepper(b, l).expect("stepper");
    assert!(matches!(lstm.forward_state(x, Some(&gru_state)), Err(StepError::Shape { .. })));
}

#[test]
fn parameter_paths_are_pytorch_state_dict_keys() {
    let dev = Device::flex();
    let layer = LstmConfig { num_layers: 2, bidirectional: true, ..LstmConfig::default() }.init(8, &dev);
    let paths: Vec<String> = wavessm::train::optim::param_paths(&layer).into_iter().map(|(p, _)| p).collect();
    let mut expected = vec![];
    for suffix in ["l0", "l0_reverse", "l1", "l1_reverse"] {
        for n in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] {
            expected.push(format!("{n}_{suffix}"));
        }
    }
    assert_eq!(paths, expected);
    // Layer 0 reads H inputs, layer 1 both directions' H/2 outputs; gates stack along rows.
    assert_eq!(layer.cells[0].weight_ih.dims(), [16, 8]);
    assert_eq!(layer.cells[2].weight_ih.dims(), [16, 8]);
    assert_eq!(layer.cells[3].weight_hh.dims(), [16, 4]);
    let rnn = RnnConfig { hidden_size: Some(5), ..RnnConfig::default() }.init(8, &dev);
    let paths: Vec<String> = wavessm::train::optim::param_paths(&rnn).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths[4..], ["output_linear.weight".to_string(), "output_linear.bias".to_string()]);
}

#[test]
fn weights_survive_a_save_and_load() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(6);
    let cfg = GruConfig { num_layers: 2, ..GruConfig::default() };
    let a = cfg.init(4, &dev);
    let b = cfg.init(4, &dev);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gru.bpk");
    a.clone().save_file(&path).expect("save");
    let b = b.load_file(&path);
    let x = t(randn(2 * 3 * 4, 7), [2, 3, 4], &dev);
    assert_eq!(host(a.forward(x.clone())), host(b.forward(x)));
}

#[test]
fn bad_options_are_refused_with_their_key() {
    let key = |r: Result<(), wavessm::config::ConfigError>| match r {
        Err(wavessm::config::ConfigError::Key { path, .. }) => path,
        other => panic!("expected a key error, got {other:?}"),
    };
    let p = "model.layer";
    assert_eq!(key(LstmConfig { num_layers: 0, ..LstmConfig::default() }.validate(p)), "model.layer.num_layers");
    assert_eq!(key(GruConfig { dropout: 1.0, ..GruConfig::default() }.validate(p)), "model.layer.dropout");
    assert_eq!(key(RnnConfig { hidden_size: Some(0), ..RnnConfig::default() }.validate(p)), "model.layer.hidden_size");
    let bi = LstmConfig { bidirectional: true, ..LstmConfig::default() };
    assert_eq!(key(bi.check_width(p, 7)), "model.layer.bidirectional");
    assert!(bi.check_width(p, 8).is_ok());
    let unknown = serde_yaml::from_str::<LstmConfig>("{num_layer: 2}").expect_err("unknown key");
    assert!(unknown.to_string().contains("num_layer"), "{unknown}");
    let relu: RnnConfig = serde_yaml::from_str("{nonlinearity: relu}").expect("relu");
    assert_eq!(relu.nonlinearity, Nonlinearity::Relu);
}

#[test]
fn wave_rnn_fused_steps_chunks_and_options() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    dev.seed(8);
    let (b, l, h) = (3, 10, 4);
    let x = t(randn(b * l * h, 9), [b, l, h], &dev).require_grad();
    for act in [WaveAct::Tanh, WaveAct::Relu, WaveAct::Identity] {
        let cfg = WaveRnnConfig { n_hid: Some(5), n_ch: 2, ksize: 3, init: WaveInit::Rand, act, solo_init: false };
        let layer = cfg.init(h, &dev);
        let run = || {
            let y = layer.forward(x.clone());
            let g = probe(y.clone(), 12).backward();
            let w = &layer.cell.Wy.weight;
            vec![host(y), host(x.grad(&g).expect("x")), host(w.grad(&g).expect("Wy"))]
        };
        let (fused, generic) = (run(), wavessm::ops::with_generic_ops(run));
        for (i, (a, e)) in fused.iter().zip(&generic).enumerate() {
            assert!(max_rel(a, e) < 1e-5, "{act:?}, array {i}: fused vs tensor ops {}", max_rel(a, e));
        }
        let xd = x.clone().detach();
        let y = host(layer.forward(xd.clone()));
        let mut s = layer.stepper(b, l).expect("steps");
        let stepped = step_through(&xd, |xt| layer.step(&mut s, xt).expect("step"));
        assert!(max_rel(&stepped, &y) < 1e-5, "{act:?}: step mode vs forward");
        let (y1, s1) = layer.forward_state(xd.clone().narrow(1, 0, 4), None).expect("chunk 1");
        let (y2, _) = layer.forward_state(xd.clone().narrow(1, 4, l - 4), Some(&s1)).expect("chunk 2");
        assert!(max_rel(&host(Tensor::cat(vec![y1, y2], 1)), &y) < 1e-5, "{act:?}: chunked vs forward");
        let (empty, s) = layer.forward_state(Tensor::zeros([b, 0, h], &dev), Some(&s1)).expect("empty input");
        assert_eq!((empty.dims(), host(s)), ([b, 0, h], host(s1)), "{act:?}: an empty chunk keeps the state");
    }
    // `eye` starts as the identity recurrence, `fwd` as a shift toward lower index.
    let eye = WaveRnnConfig { init: WaveInit::Eye, act: WaveAct::Identity, ..WaveRnnConfig::default() }.init(6, &dev);
    let ring = t(randn(6, 13), [1, 6], &dev);
    assert_eq!(host(eye.circulant().matmul(ring.clone().transpose())), host(ring.clone().transpose()));
    let fwd = WaveRnnConfig::default().init(6, &dev);
    let shifted = host(fwd.circulant().matmul(ring.clone().transpose()));
    let r = host(ring);
    assert_eq!(shifted, (0..6).map(|i| r[(i + 1) % 6]).collect::<Vec<_>>());
    let even = WaveRnnConfig { ksize: 4, ..WaveRnnConfig::default() }.validate("model.layer");
    assert!(matches!(even, Err(wavessm::config::ConfigError::Key { path, .. }) if path == "model.layer.ksize"));
}

#[test]
fn pytorch_weights_round_trip() {
    use wavessm::weights::{self, ImportOptions, Layout, Select};
    let _turn = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let build = |model: &str, seed: u64| {
        let tokens = [model, "model.d_model=4", "model.n_layers=2", "model.layer.num_layers=2"];
        let tokens = tokens.iter().map(|s| s.to_string()).collect();
        let cfg = wavessm::config::ConfigRequest { tokens, ..Default::default() }.resolve().expect("config");
        let dev = Device::flex();
        dev.seed(seed);
        wavessm::model::SequenceModel::new(&cfg.model, 1, 3, &dev).expect("model")
    };
    let x = t(randn(2 * 6, 14), [2, 6, 1], &Device::flex());
    for model in ["model=lstm", "model=gru", "model=rnn"] {
        for layout in [Layout::S4Example, Layout::S4Sequence] {
            let (a, b) = (build(model, 1), build(model, 2));
            let path = dir.path().join("m.safetensors");
            let keys = weights::export(&a, &path, layout, None, false).expect("export").0;
            let prefix = if layout == Layout::S4Sequence { "model.layers.1.layer" } else { "s4_layers.1" };
            assert!(keys.contains(&format!("{prefix}.weight_hh_l1")), "{model} {layout}: {keys:?}");
            let opts = ImportOptions { layout, dt_transform: None, select: Select::All, partial: false };
            let (b, report) = weights::import(b, &path, &opts).expect("import");
            assert!(report.kept.is_empty() && report.ignored.is_empty(), "{report:?}");
            let (ya, yb) = (host(a.forward(x.clone(), None)), host(b.forward(x.clone(), None)));
            assert_eq!(ya, yb, "{model} {layout}: outputs after the round trip");
        }
    }
}

#[test]
fn dropout_acts_between_layers_in_training_only() {
    let _turn = serial();
    let cfg = LstmConfig { num_layers: 2, dropout: 0.5, ..LstmConfig::default() };
    let (b, l, h) = (2, 5, 4);
    let train = Device::flex().autodiff();
    train.seed(15);
    let layer = cfg.init(h, &train);
    let x = t(randn(b * l * h, 16), [b, l, h], &train);
    let (y1, y2) = (host(layer.forward(x.clone())), host(layer.forward(x.clone())));
    assert!(max_rel(&y1, &y2) > 1e-3, "two training passes draw different masks");
    let eval = layer.valid();
    let x = x.inner();
    assert_eq!(host(eval.forward(x.clone())), host(eval.forward(x)), "no dropout in evaluation");
}

#[test]
fn wrnn_decodes_the_last_state_and_can_train_the_decoder_alone() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    dev.seed(17);
    let (b, l, d, k) = (3, 9, 2, 4);
    let cfg = WrnnConfig { n_hid: 6, n_ch: 2, ..WrnnConfig::default() };
    let m = cfg.init(d, k, &dev).expect("model");
    let paths: Vec<String> = wavessm::train::optim::param_paths(&m).into_iter().map(|(p, _)| p).collect();
    let expected =
        ["cell.Wx.weight", "cell.Wx.bias", "cell.Wy.weight", "cell.Wy.bias", "readout.weight", "readout.bias"];
    assert_eq!(paths, expected, "the reference's state_dict keys");
    // solo_init: every input enters position 0 of each channel with weight 1, nothing else.
    let wx = host(m.cell.Wx.weight.val()); // [D, C·n]
    let ones: Vec<usize> = (0..wx.len()).filter(|&i| wx[i] != 0.0).collect();
    assert_eq!(ones, [0, 6, 12, 18], "{wx:?}");
    assert!(ones.iter().all(|&i| wx[i] == 1.0));

    // The decoder of the state after each sample's last valid step, stepped by hand.
    let x = t(randn(b * l * d, 18).iter().map(|v| v.abs()).collect(), [b, l, d], &dev);
    let lengths = [l, 4, 0];
    let y = host(m.forward(x.clone(), Some(&lengths))); // [B, 1, K]
    for (i, &n) in lengths.iter().enumerate() {
        let mut h = Tensor::<2>::zeros([1, 12], &dev);
        for s in 0..n {
            h = m.cell.step(x.clone().narrow(0, i, 1).narrow(1, s, 1).reshape([1, d]), h, cfg.act);
        }
        let expect = host(m.readout.forward(h));
        assert!(max_rel(&y[i * k..(i + 1) * k], &expect) < 1e-5, "sample {i} (length {n})");
    }
    assert_eq!(host(m.forward(x.clone(), None))[..k], y[..k], "no lengths reads the last step");

    // freeze_rnn + freeze_encoder: only the decoder gets gradients.
    let frozen = WrnnConfig { freeze_rnn: true, freeze_encoder: true, ..cfg.clone() }.init(d, k, &dev).expect("model");
    let g = probe(frozen.forward(x.clone(), None), 19).backward();
    assert!(frozen.readout.weight.grad(&g).is_some(), "the decoder trains");
    assert!(frozen.cell.Wx.weight.grad(&g).is_none() && frozen.cell.Wy.weight.grad(&g).is_none(), "the cell is frozen");
    let g = probe(m.forward(x, None), 19).backward();
    assert!(m.cell.Wy.weight.grad(&g).is_some(), "unfrozen by default");

    let even = WrnnConfig { ksize: 2, ..WrnnConfig::default() }.validate("model.options");
    assert!(matches!(even, Err(wavessm::config::ConfigError::Key { path, .. }) if path == "model.options.ksize"));
}

#[test]
fn rnn_weight_hh_is_orthogonal_identity_or_pytorchs() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(31);
    let h = 6;
    let weights = |init_hh| {
        let rnn = RnnConfig { init_hh, num_layers: 2, ..RnnConfig::default() }.init(h, &dev);
        rnn.cells.iter().map(|c| host(c.weight_hh.val())).collect::<Vec<_>>()
    };
    let gram = |w: &[f64], i: usize, j: usize| (0..h).map(|k| w[i * h + k] * w[j * h + k]).sum::<f64>();
    let orth = weights(HiddenInit::Orthogonal);
    for w in &orth {
        for (i, j) in (0..h).flat_map(|i| (0..h).map(move |j| (i, j))) {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((gram(w, i, j) - want).abs() < 1e-5, "W·Wᵀ[{i}, {j}] = {}", gram(w, i, j));
        }
    }
    assert!(max_rel(&orth[0], &orth[1]) > 0.1, "each layer draws its own matrix");
    let eye: Vec<f64> = (0..h * h).map(|k| if k % (h + 1) == 0 { 1.0 } else { 0.0 }).collect();
    assert!(weights(HiddenInit::Identity).iter().all(|w| *w == eye));
    let k = 1.0 / (h as f64).sqrt();
    assert!(weights(HiddenInit::Torch).iter().flatten().all(|v| v.abs() <= k));
    assert_eq!(RnnConfig::default().init_hh, HiddenInit::Orthogonal);
    let parse = |y: &str| serde_yaml::from_str::<RnnConfig>(y).map(|c| c.init_hh);
    assert_eq!(parse("{init_hh: torch}").expect("a known init"), HiddenInit::Torch);
    assert!(parse("{init_hh: ortho}").is_err(), "unknown inits are refused");
}

#[test]
fn rnn_lr_groups_every_cell_tensor_and_is_range_checked() {
    let dev = Device::flex();
    let cfg = RnnConfig { num_layers: 2, bidirectional: true, ..RnnConfig::default() };
    let groups = cfg.param_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].key, groups[0].lr), ("rnn", Some(0.001)));
    let layer = cfg.init(8, &dev);
    let cell_paths: Vec<String> =
        common::named_params(&layer).into_iter().map(|(p, ..)| p).filter(|p| !p.contains("output_linear")).collect();
    assert_eq!(cell_paths.len(), 16, "{cell_paths:?}");
    for p in &cell_paths {
        assert!(common::in_groups(&groups, p), "{p} not in the group");
    }
    assert_eq!(groups[0].names.len(), cell_paths.len());
    common::assert_key_error(
        RnnConfig { lr: Some(-1.0), ..RnnConfig::default() }.validate("model.layer"),
        "model.layer.lr",
    );
    assert!(RnnConfig { lr: None, ..RnnConfig::default() }.param_groups()[0].is_default());
}
