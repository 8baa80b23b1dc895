//! state-spaces/s4's baselines `unicornn`, `lipschitz_rnn` and `ckconv`: the fused CPU
//! recurrences equal the per-step tensor ops in value and gradient (from a nonzero state too),
//! step mode and chunked state forwarding equal the forward, CKConv is causal and refuses step
//! mode by name, parameter paths are the reference's, bad options are refused with their key,
//! and the shipped model configs resolve and train.

mod common;

use burn::tensor::{Device, Tensor};
use common::{host, max_rel, probe, randn, serial, step_through, t};
use wavessm::config::{ConfigError, ConfigRequest};
use wavessm::model::conv::{CkConvConfig, KernelInit};
use wavessm::model::rnn::unicornn::{StepSizes, UnicornnState};
use wavessm::model::rnn::{LipschitzRnnConfig, UnicornnConfig};
use wavessm::model::{LayerOptions, SeqLayer, StepError};
use wavessm::train::{FitOptions, fit};

/// Compares two lists of arrays (fused, tensor ops) to `tol`.
fn assert_close(what: &str, fused: &[Vec<f64>], generic: &[Vec<f64>], tol: f64) {
    for (i, (a, e)) in fused.iter().zip(generic).enumerate() {
        let err = max_rel(a, e);
        assert!(err < tol, "{what}, array {i}: fused vs tensor ops {err}");
    }
}

#[test]
fn unicornn_fused_matches_tensor_ops_in_value_and_gradient() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    dev.seed(21);
    let (b, l, h) = (3, 17, 5);
    let cfg = UnicornnConfig { n_layers: 2, dt: StepSizes::PerLayer(vec![0.3, 0.1]), alpha: 2.0, dropout: 0.0 };
    let layer = cfg.init(h, &dev);
    let x = t(randn(b * l * h, 1), [b, l, h], &dev).require_grad();
    let s0 = UnicornnState {
        hy: t(randn(2 * b * h, 2), [2, b, h], &dev).require_grad(),
        hz: t(randn(2 * b * h, 3), [2, b, h], &dev).require_grad(),
    };
    let run = || {
        let (y, s) = layer.forward_state(x.clone(), Some(&s0)).expect("causal");
        // The loss reads the outputs and both final states.
        let g = (probe(y.clone(), 4) + probe(s.hy.clone(), 5) + probe(s.hz.clone(), 6)).backward();
        let mut out = vec![host(y), host(s.hz), host(x.grad(&g).expect("x"))];
        out.push(host(s0.hy.grad(&g).expect("hy0")));
        out.push(host(s0.hz.grad(&g).expect("hz0")));
        for (di, rnn) in layer.DIs.iter().zip(&layer.RNNs) {
            out.push(host(di.fc.weight.grad(&g).expect("fc.weight")));
            out.push(host(rnn.c_.grad(&g).expect("c_")));
            out.push(host(rnn.weight_hh.grad(&g).expect("weight_hh")));
        }
        out
    };
    assert_close("unicornn", &run(), &wavessm::ops::with_generic_ops(run), 1e-5);
}

#[test]
fn lipschitz_fused_matches_tensor_ops_in_value_and_gradient() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    dev.seed(22);
    // Six sequences: several groups of the kernel, one of them partial.
    let (b, l, h) = (6, 13, 7);
    let cfg = LipschitzRnnConfig { eps: 0.2, alpha: 0.7, gamma: 0.05, ..LipschitzRnnConfig::default() };
    let layer = cfg.init(h, &dev);
    let x = t(randn(b * l * h, 7), [b, l, h], &dev).require_grad();
    let h0 = t(randn(b * h, 8), [b, h], &dev).require_grad();
    let run = || {
        let (y, last) = layer.forward_state(x.clone(), Some(&h0)).expect("causal");
        let g = (probe(y.clone(), 9) + probe(last, 10)).backward();
        let (c, bb) = (layer.C.grad(&g).expect("C"), layer.B.grad(&g).expect("B"));
        vec![host(y), host(x.grad(&g).expect("x")), host(h0.grad(&g).expect("h0")), host(c), host(bb)]
    };
    assert_close("lipschitz_rnn", &run(), &wavessm::ops::with_generic_ops(run), 1e-5);
}

/// Step mode, chunked forwarding and steps resumed from a forwarded state against `forward`.
fn check_modes<L: SeqLayer>(name: &str, layer: &L, x: &Tensor<3>, same: impl Fn(&L::State, &L::Stepper) -> bool) {
    let [b, l, _] = x.dims();
    let y = host(layer.forward(x.clone()));
    let mut stepper = layer.stepper(b, l).expect("steps");
    let stepped = step_through(x, |xt| layer.step(&mut stepper, xt).expect("step"));
    assert!(max_rel(&stepped, &y) < 1e-5, "{name}: step mode vs forward {}", max_rel(&stepped, &y));
    let m = l / 2 + 1;
    let (y1, s1) = layer.forward_state(x.clone().narrow(1, 0, m), None).expect("chunk 1");
    let (y2, s2) = layer.forward_state(x.clone().narrow(1, m, l - m), Some(&s1)).expect("chunk 2");
    let chunked = host(Tensor::cat(vec![y1, y2], 1));
    assert!(max_rel(&chunked, &y) < 1e-5, "{name}: chunked vs forward {}", max_rel(&chunked, &y));
    assert!(same(&s2, &stepper), "{name}: the final state of chunks and of steps");
    common::check_steps_after_state(layer, x, &s1, &y, m, name);
}

#[test]
fn step_mode_and_chunked_forwarding_equal_forward() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(23);
    let (b, l, h) = (2, 9, 4);
    let x = t(randn(b * l * h, 11), [b, l, h], &dev);
    let close = |a: Tensor<3>, b: Tensor<3>| max_rel(&host(a), &host(b)) < 1e-5;
    let uni = UnicornnConfig { n_layers: 2, dt: StepSizes::One(0.4), ..UnicornnConfig::default() }.init(h, &dev);
    check_modes("unicornn", &uni, &x, |s, st| close(s.hy.clone(), st.hy.clone()) && close(s.hz.clone(), st.hz.clone()));
    let lip = LipschitzRnnConfig { eps: 0.3, ..LipschitzRnnConfig::default() }.init(h, &dev);
    check_modes("lipschitz_rnn", &lip, &x, |s, st| max_rel(&host(s.clone()), &host(st.clone())) < 1e-5);
    // Dropout over time is one mask per sequence and channel, in training only.
    let train = Device::flex().autodiff();
    let cfg = UnicornnConfig { dropout: 0.5, ..UnicornnConfig::default() };
    let layer = cfg.init(h, &train);
    let y = host(layer.forward(t(randn(b * l * h, 12), [b, l, h], &train)));
    for bi in 0..b {
        for j in 0..h {
            let zeros = (0..l).filter(|ti| y[(bi * l + ti) * h + j] == 0.0).count();
            assert!(zeros == 0 || zeros == l, "sequence {bi} channel {j}: dropped at {zeros} of {l} steps");
        }
    }
}

#[test]
fn ckconv_is_causal_matches_a_direct_convolution_and_has_no_step_mode() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(24);
    let (b, l, h) = (2, 12, 3);
    let cfg = CkConvConfig { l_max: Some(l), ..CkConvConfig::default() };
    let layer = cfg.init(h, &dev);
    let x = t(randn(b * l * h, 13), [b, l, h], &dev);
    let k = layer.kernel(h, l); // [O, I, L]
    let (xs, ks) = (host(x.clone()), host(k.clone()));
    let y = host(wavessm::model::conv::CkConv::convolve(x.clone(), k));
    let mut direct = vec![0.0; b * l * h];
    for bi in 0..b {
        for ti in 0..l {
            for o in 0..h {
                direct[(bi * l + ti) * h + o] = (0..h)
                    .flat_map(|i| (0..=ti).map(move |j| (i, j)))
                    .map(|(i, j)| ks[(o * h + i) * l + j] * xs[(bi * l + ti - j) * h + i])
                    .sum();
            }
        }
    }
    assert!(max_rel(&y, &direct) < 1e-4, "FFT vs direct convolution {}", max_rel(&y, &direct));
    // A prefix's outputs are the prefix of the outputs (the kernel depends on the lag only).
    let full = host(layer.forward(x.clone()));
    let m = 5;
    let prefix = host(layer.forward(x.clone().narrow(1, 0, m)));
    let head: Vec<f64> = (0..b).flat_map(|bi| full[bi * l * h..(bi * l + m) * h].to_vec()).collect();
    assert!(max_rel(&prefix, &head) < 1e-5, "causal: prefix vs full {}", max_rel(&prefix, &head));
    match layer.stepper(b, l) {
        Err(e @ StepError::NoRecurrentForm { .. }) => assert!(e.to_string().contains("ckconv"), "{e}"),
        other => panic!("ckconv has no step mode, got {other:?}"),
    }
    assert!(matches!(layer.forward_state(x, None), Err(StepError::NoRecurrentForm { layer: "ckconv", .. })));
}

/// The FFT convolution's gradients (input and kernel) equal those of a direct convolution by
/// shifted matrix products.
#[test]
fn ckconv_fft_convolution_has_the_direct_convolutions_gradients() {
    let _turn = serial();
    let dev = Device::flex().autodiff();
    let (b, l, h) = (2, 9, 3);
    let x = t(randn(b * l * h, 15), [b, l, h], &dev).require_grad();
    let k = t(randn(h * h * l, 16), [h, h, l], &dev).require_grad();
    let direct = |x: Tensor<3>, k: Tensor<3>| {
        // y[:, t] = Σ_j x[:, t - j]·K[:, :, j]ᵀ, the shifted input zero-padded in front.
        (0..l)
            .map(|j| {
                let shifted = Tensor::cat(vec![Tensor::zeros([b, j, h], &dev), x.clone()], 1).narrow(1, 0, l); // [B, L, I]
                let kj = k.clone().narrow(2, j, 1).reshape([h, h]).transpose(); // [I, O]
                shifted.matmul(kj.unsqueeze::<3>())
            })
            .reduce(|a, c| a + c)
            .expect("l > 0")
    };
    let run = |fft: bool| {
        let y = if fft {
            wavessm::model::conv::CkConv::convolve(x.clone(), k.clone())
        } else {
            direct(x.clone(), k.clone())
        };
        let g = probe(y.clone(), 17).backward();
        vec![host(y), host(x.grad(&g).expect("x")), host(k.grad(&g).expect("kernel"))]
    };
    assert_close("ckconv convolution", &run(true), &run(false), 1e-4);
}

/// The SIREN init (the default) and PyTorch's `Conv1d` init (what the reference's
/// `weight_norm` leaves), `g = ‖v‖`, and no biases by default.
#[test]
fn ckconv_kernel_network_inits() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(25);
    let (h, hid) = (3, 32);
    let hidden_v = |init| {
        let layer = CkConvConfig { init, bias: true, ..CkConvConfig::default() }.init(h, &dev);
        let net = layer.Kernel.kernel_net[4].as_ref().expect("slot 4");
        let (v, g) = (host(net.weight_v.val()), host(net.weight_g.val()));
        for (row, g) in v.chunks(hid).zip(&g) {
            let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - g).abs() < 1e-5 * norm, "g = ‖v‖: {g} vs {norm}");
        }
        v.iter().fold(0f64, |m, x| m.max(x.abs()))
    };
    let siren = (6.0 / hid as f64).sqrt() / CkConvConfig::default().omega_0;
    let torch = 1.0 / (hid as f64).sqrt();
    let (s, t) = (hidden_v(KernelInit::Siren), hidden_v(KernelInit::Torch));
    assert!(s <= siren && s > 0.5 * siren, "siren: largest |v| {s}, bound {siren}");
    assert!(t <= torch && t > 0.5 * torch, "torch: largest |v| {t}, bound {torch}");
    assert_eq!(CkConvConfig::default().init, KernelInit::Siren);
    let plain = CkConvConfig::default().init(h, &dev);
    assert!(plain.bias.is_none() && plain.Kernel.kernel_net[8].as_ref().is_some_and(|n| n.bias.is_none()));
}

#[test]
fn parameter_paths_are_the_reference_state_dict_keys() {
    let dev = Device::flex();
    let paths = |names: Vec<(String, burn::module::ParamId)>| names.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    let uni = UnicornnConfig { n_layers: 2, ..UnicornnConfig::default() }.init(4, &dev);
    let p = paths(wavessm::train::optim::param_paths(&uni));
    for k in ["DIs.1.fc.weight", "DIs.1.fc.bias", "RNNs.0.c_", "RNNs.1.weight_hh"] {
        assert!(p.contains(&k.to_string()), "unicornn: {k} in {p:?}");
    }
    let lip = LipschitzRnnConfig::default().init(4, &dev);
    assert_eq!(paths(wavessm::train::optim::param_paths(&lip)), ["C", "B"]);
    let ck = CkConvConfig { bias: true, ..CkConvConfig::default() }.init(4, &dev);
    let mut p = paths(wavessm::train::optim::param_paths(&ck));
    p.sort();
    let mut expected = vec!["bias".to_string()];
    for slot in [0, 4, 8] {
        for n in ["weight_g", "weight_v", "bias"] {
            expected.push(format!("Kernel.kernel_net.{slot}.{n}"));
        }
    }
    expected.sort();
    assert_eq!(p, expected);
}

#[test]
fn bad_options_are_refused_with_their_key() {
    let key = |r: Result<(), ConfigError>| match r {
        Err(ConfigError::Key { path, .. }) => path,
        other => panic!("expected a key error, got {other:?}"),
    };
    let p = "model.layer";
    let uni = UnicornnConfig::default();
    assert_eq!(key(UnicornnConfig { n_layers: 0, ..uni.clone() }.validate(p)), "model.layer.n_layers");
    let short = UnicornnConfig { n_layers: 2, dt: StepSizes::PerLayer(vec![0.1]), ..uni.clone() };
    assert_eq!(key(short.validate(p)), "model.layer.dt");
    assert_eq!(key(UnicornnConfig { dt: StepSizes::One(-1.0), ..uni.clone() }.validate(p)), "model.layer.dt");
    assert_eq!(key(UnicornnConfig { alpha: f64::NAN, ..uni.clone() }.validate(p)), "model.layer.alpha");
    assert_eq!(key(UnicornnConfig { dropout: 1.0, ..uni }.validate(p)), "model.layer.dropout");
    let lip = LipschitzRnnConfig::default();
    assert_eq!(key(LipschitzRnnConfig { eps: 0.0, ..lip.clone() }.validate(p)), "model.layer.eps");
    assert_eq!(key(LipschitzRnnConfig { beta: 1.5, ..lip.clone() }.validate(p)), "model.layer.beta");
    assert_eq!(key(LipschitzRnnConfig { gamma: -1.0, ..lip.clone() }.validate(p)), "model.layer.gamma");
    assert_eq!(key(LipschitzRnnConfig { init_std: 0.0, ..lip }.validate(p)), "model.layer.init_std");
    let ck = CkConvConfig::default();
    let hidden = CkConvConfig { kernelnet_hidden_channels: 0, ..ck.clone() };
    assert_eq!(key(hidden.validate(p)), "model.layer.kernelnet_hidden_channels");
    assert_eq!(key(CkConvConfig { omega_0: 0.0, ..ck.clone() }.validate(p)), "model.layer.omega_0");
    assert_eq!(key(CkConvConfig { weight_dropout: 1.0, ..ck.clone() }.validate(p)), "model.layer.weight_dropout");
    assert_eq!(key(CkConvConfig { l_max: Some(0), ..ck }.validate(p)), "model.layer.l_max");
    let list: UnicornnConfig = serde_yaml::from_str("{n_layers: 2, dt: [0.1, 0.2]}").expect("a list of dt");
    assert_eq!(list.dt, StepSizes::PerLayer(vec![0.1, 0.2]));
    assert!(
        serde_yaml::from_str::<UnicornnConfig>("{drop: 0.1}").expect_err("unknown key").to_string().contains("drop")
    );
}

/// Trains the embedded default with `tokens` for `epochs` (None: the config's); returns the
/// test accuracy.
fn train(tokens: &[&str], epochs: Option<usize>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut tokens: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
    tokens.extend(epochs.map(|e| format!("trainer.max_epochs={e}")));
    tokens.push("trainer.progress_bar=never".into());
    tokens.push(format!("logger.save_dir={}", dir.path().display()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    s.test.expect("tested after fit")["test/accuracy"]
}

/// `wavessm fit model.layer=<name>`: the root config (the embedded digits, its backbone and
/// optimizer) with the layer's defaults, to at least 0.85 test accuracy. Serial: burn's CPU
/// RNG is global, so fits side by side would draw each other's numbers.
fn learns_the_embedded_default(name: &str) {
    let _turn = serial();
    let start = std::time::Instant::now();
    let acc = train(&[&format!("model.layer={name}")], None);
    eprintln!("{name}: test accuracy {acc:.4} ({:.1} s)", start.elapsed().as_secs_f64());
    assert!(acc >= 0.85, "{name}: test accuracy {acc:.4} < 0.85");
}

/// One test per registered layer (`LayerConfig::NAMES`, checked below), so each reports alone.
/// All of them take about 8 CPU-minutes on a quiet machine; ckconv, mamba, mamba2 and the
/// transformer are the slow ones (60–100 CPU-s each).
macro_rules! every_layer_learns {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                learns_the_embedded_default($name);
            }
        )*

        #[test]
        fn every_registered_layer_has_a_learning_test() {
            let mut tested = vec![$($name),*];
            let mut names = wavessm::model::LayerConfig::NAMES.to_vec();
            tested.sort_unstable();
            names.sort_unstable();
            assert_eq!(tested, names, "one line per registered layer in every_layer_learns!");
        }
    };
}

every_layer_learns! {
    s4d_learns_the_embedded_default => "s4d",
    dss_learns_the_embedded_default => "dss",
    s4_learns_the_embedded_default => "s4",
    liquid_s4_learns_the_embedded_default => "liquid_s4",
    lstm_learns_the_embedded_default => "lstm",
    gru_learns_the_embedded_default => "gru",
    rnn_learns_the_embedded_default => "rnn",
    wave_rnn_learns_the_embedded_default => "wave_rnn",
    unicornn_learns_the_embedded_default => "unicornn",
    lipschitz_rnn_learns_the_embedded_default => "lipschitz_rnn",
    ckconv_learns_the_embedded_default => "ckconv",
    mamba_learns_the_embedded_default => "mamba",
    mamba2_learns_the_embedded_default => "mamba2",
    transformer_learns_the_embedded_default => "transformer",
}

#[test]
fn shipped_model_configs_resolve_and_train() {
    let _turn = serial();
    // The seeds' `model=ckconv` and `model=unicornn`, small enough for a couple of steps.
    for model in ["model=ckconv", "model=unicornn", "model=lipschitz_rnn"] {
        let acc = train(&[model, "model.d_model=8", "trainer.limit_train_batches=2"], Some(1));
        assert!((0.0..=1.0).contains(&acc), "{model}: accuracy {acc}");
    }
}

#[test]
fn pytorch_weights_round_trip() {
    use wavessm::weights::{self, ImportOptions, Layout, Select};
    let _turn = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let build = |model: &str, seed: u64| {
        let tokens = [model, "model.d_model=4", "model.n_layers=2"];
        let tokens = tokens.iter().map(|s| s.to_string()).collect();
        let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().expect("config");
        let dev = Device::flex();
        dev.seed(seed);
        wavessm::model::SequenceModel::new(&cfg.model, 1, 3, &dev).expect("model")
    };
    let x = t(randn(2 * 6, 14), [2, 6, 1], &Device::flex());
    for (model, key) in [
        ("model=unicornn", "DIs.1.fc.weight"),
        ("model=lipschitz_rnn", "B"),
        ("model=ckconv", "Kernel.kernel_net.8.weight_v"),
    ] {
        let (a, b) = (build(model, 1), build(model, 2));
        let path = dir.path().join("m.safetensors");
        let keys = weights::export(&a, &path, Layout::S4Sequence, None, false).expect("export").0;
        assert!(keys.contains(&format!("model.layers.1.layer.{key}")), "{model}: {keys:?}");
        let opts =
            ImportOptions { layout: Layout::S4Sequence, dt_transform: None, select: Select::All, partial: false };
        let (b, report) = weights::import(b, &path, &opts).expect("import");
        assert!(report.kept.is_empty() && report.ignored.is_empty(), "{model}: {report:?}");
        assert_eq!(host(a.forward(x.clone(), None)), host(b.forward(x.clone(), None)), "{model}: outputs");
    }
}
