//! Recurrent mode of every layer through the `Layer` API: step mode equals conv mode on random
//! configs of each kind, conv-mode state forwarding equals stepping (outputs and final state,
//! chunk by chunk), a whole model steps like its forward, and bad requests are errors.

mod common;

use burn::tensor::{Device, Tensor};
use common::{host, max_rel, randn, serial, step_through, t};
use wavessm::config::Named;
use wavessm::model::{Layer, LayerConfig, LayerState, SequenceModel, SsmState, StepError};

/// A layer from its registry entry as YAML (`{_name_: s4d, ...}`), seeded.
fn layer(yaml: &str, h: usize, seed: u64) -> Layer {
    let named: Named = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let cfg = LayerConfig::from_named(&named, "model.layer").unwrap_or_else(|e| panic!("{yaml}: {e}"));
    cfg.validate("model.layer").unwrap_or_else(|e| panic!("{yaml}: {e}"));
    let dev = Device::flex();
    dev.seed(seed);
    cfg.init(h, &dev)
}

/// Steps through `u` [B, L, H] from `state` (None: zero) with a stepper for length `l_kernel`.
/// Returns (outputs [B, L, H], the final state).
fn step_all(layer: &Layer, u: &Tensor<3>, state: Option<&LayerState>, l_kernel: usize) -> (Vec<f64>, LayerState) {
    let mut stepper = layer.stepper(u.dims()[0], l_kernel).expect("has a step form");
    if let Some(s) = state {
        layer.set_state(&mut stepper, s).expect("state shape");
    }
    let out = step_through(u, |ut| layer.step(&mut stepper, ut).expect("step"));
    (out, layer.state(&stepper).expect("stepped state"))
}

/// The SSM state inside a layer state (every layer here is an SSM).
fn ssm(s: &LayerState) -> &SsmState {
    match s {
        LayerState::S4d(s) | LayerState::Dss(s) | LayerState::S4(s) | LayerState::LiquidS4(s) => s,
        #[allow(unreachable_patterns)]
        _ => panic!("not an SSM state: {s:?}"),
    }
}

/// Both parts of a state, for comparisons.
fn flat(s: &LayerState) -> Vec<f64> {
    let s = ssm(s);
    host(s.re.clone()).into_iter().chain(host(s.im.clone())).collect()
}

/// Random small configs of every layer kind: (YAML, whether the kernel depends on its length).
fn configs(seed: u64) -> Vec<(String, bool)> {
    let r = |k: u64, n: usize| (randn(1, seed * 37 + k)[0].abs() * n as f32) as usize;
    let n = 2 * (1 + r(1, 4));
    let act = if seed.is_multiple_of(2) { "gelu" } else { "id" };
    let ch = 1 + r(2, 2);
    let common = format!("d_state: {n}, activation: {act}, dt_min: 0.01, dt_max: 0.2");
    let lambda = if seed.is_multiple_of(2) { "hippo_skew_pos_imag" } else { "randn" };
    vec![
        (format!("{{_name_: s4d, disc: zoh, init: lin, {common}}}"), false),
        (format!("{{_name_: s4d, disc: bilinear, init: inv, {common}}}"), false),
        (format!("{{_name_: s4d, disc: dss, init: legs, {common}}}"), true),
        (format!("{{_name_: dss, version: exp, channels: {ch}, lambda_init: {lambda}, {common}}}"), false),
        (format!("{{_name_: dss, version: softmax, channels: {ch}, lambda_init: {lambda}, {common}}}"), true),
        (format!("{{_name_: s4, mode: nplr, channels: {ch}, l_max: 64, {common}}}"), false),
        (format!("{{_name_: s4, mode: diag, init: inv, channels: {ch}, {common}}}"), false),
        (format!("{{_name_: s4, mode: diag, init: lin, disc: bilinear, real_transform: none, {common}}}"), false),
        (format!("{{_name_: s4, mode: diag, init: legs, disc: dss, channels: {ch}, {common}}}"), true),
    ]
}

#[test]
fn step_mode_equals_conv_mode_for_every_layer_kind() {
    let _turn = serial();
    for seed in 0..4u64 {
        let r = |k: u64, n: usize| (randn(1, seed * 41 + k)[0].abs() * n as f32) as usize;
        let (b, h, l) = (1 + r(1, 2), 1 + r(2, 3), 3 + r(3, 40));
        for (yaml, _) in configs(seed) {
            let layer = layer(&yaml, h, seed);
            let u = t(randn(b * l * h, 100 + seed), [b, l, h], &Device::flex());
            let conv = host(layer.forward(u.clone()));
            let (step, _) = step_all(&layer, &u, None, l);
            let err = max_rel(&step, &conv);
            assert!(err < 1e-4, "seed {seed} {yaml} B={b} H={h} L={l}: step vs conv {err}");
        }
    }
}

#[test]
fn forward_state_from_zero_is_forward_and_ends_in_the_stepped_state() {
    let _turn = serial();
    for seed in 0..3u64 {
        let (b, h, l) = (2, 3, 9 + 7 * seed as usize);
        for (yaml, _) in configs(seed) {
            let layer = layer(&yaml, h, seed);
            let u = t(randn(b * l * h, 200 + seed), [b, l, h], &Device::flex());
            let (y, last) = layer.forward_state(u.clone(), None).expect("causal layer");
            let conv = host(layer.forward(u.clone()));
            let err = max_rel(&host(y), &conv);
            assert!(err < 1e-5, "seed {seed} {yaml}: forward_state(None) vs forward {err}");
            let (_, stepped) = step_all(&layer, &u, None, l);
            assert_eq!(ssm(&last).dims(), ssm(&stepped).dims(), "{yaml}");
            let err = max_rel(&flat(&last), &flat(&stepped));
            assert!(err < 1e-4, "seed {seed} {yaml}: final state, conv vs step {err}");
        }
    }
}

/// Two chunks chained through `forward_state` give `forward` on the whole sequence and the
/// stepped final state; stepping on from the first chunk's state gives the second chunk.
#[test]
fn chunks_chained_through_forward_state_equal_the_whole_sequence() {
    let _turn = serial();
    for seed in 0..3u64 {
        let r = |k: u64, n: usize| (randn(1, seed * 43 + k)[0].abs() * n as f32) as usize;
        let (b, h, l) = (1 + r(1, 2), 1 + r(2, 3), 12 + r(3, 30));
        let m = (1 + r(4, l - 2)).min(l - 1); // first chunk 1..L-1 steps
        for (yaml, length_dependent) in configs(seed) {
            let layer = layer(&yaml, h, seed);
            let u = t(randn(b * l * h, 300 + seed), [b, l, h], &Device::flex());
            let (u1, u2) = (u.clone().narrow(1, 0, m), u.clone().narrow(1, m, l - m));
            let (y1, s1) = layer.forward_state(u1.clone(), None).expect("causal layer");
            let (y2, s2) = layer.forward_state(u2.clone(), Some(&s1)).expect("causal layer");
            // The second chunk from the first one's state equals stepping it from that state.
            let (step2, stepped2) = step_all(&layer, &u2, Some(&s1), l - m);
            let err = max_rel(&host(y2.clone()), &step2);
            assert!(err < 1e-4, "seed {seed} {yaml} L={l} m={m}: chunk 2, conv vs step from a state {err}");
            let err = max_rel(&flat(&s2), &flat(&stepped2));
            assert!(err < 1e-4, "seed {seed} {yaml} L={l} m={m}: chunk 2 final state, conv vs step {err}");
            if length_dependent {
                continue; // Its chunks are kernels of other lengths than the whole sequence's.
            }
            let whole = host(layer.forward(u.clone()));
            let chained = host(Tensor::cat(vec![y1, y2], 1));
            let err = max_rel(&chained, &whole);
            assert!(err < 1e-4, "seed {seed} {yaml} L={l} m={m}: chained chunks vs forward {err}");
            let (_, stepped) = step_all(&layer, &u, None, l);
            let err = max_rel(&flat(&s2), &flat(&stepped));
            assert!(err < 1e-4, "seed {seed} {yaml} L={l} m={m}: chained final state vs {l} steps {err}");
        }
    }
}

#[test]
fn a_causal_model_steps_like_its_forward() {
    let _turn = serial();
    let (b, d, l, k) = (2, 3, 11, 4);
    for (seed, layer_yaml, norm, prenorm, ff) in [
        (1, "{_name_: s4d, d_state: 8}", "layer", true, 2),
        (2, "{_name_: dss, version: softmax, channels: 2, d_state: 4}", "layer", false, 0),
        (3, "{_name_: s4, d_state: 6, channels: 2, l_max: 16}", "none", true, 1),
        (4, "{_name_: lstm, num_layers: 2}", "layer", false, 0),
        (5, "{_name_: gru, hidden_size: 3}", "none", true, 1),
        (6, "{_name_: rnn, nonlinearity: relu}", "layer", true, 0),
        (7, "{_name_: wave_rnn, n_ch: 2, n_hid: 4}", "layer", false, 0),
    ] {
        let yaml = format!(
            "{{d_model: 5, n_layers: 2, norm: {norm}, prenorm: {prenorm}, ff: {ff}, pool: none, layer: {layer_yaml}}}"
        );
        let cfg: wavessm::model::ModelConfig = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let dev = Device::flex();
        dev.seed(seed);
        let model = SequenceModel::new(&cfg, d, k, &dev).expect("model");
        let x = t(randn(b * l * d, 400 + seed), [b, l, d], &dev);
        let full = host(model.forward(x.clone(), None)); // [B, L, K]
        let mut stepper = model.stepper(b, l).expect("causal model");
        let mut stepped = vec![0.0; b * l * k];
        for ti in 0..l {
            let y = host(model.step(&mut stepper, x.clone().narrow(1, ti, 1).reshape([b, d])).expect("step"));
            for bi in 0..b {
                stepped[(bi * l + ti) * k..][..k].copy_from_slice(&y[bi * k..][..k]);
            }
        }
        let err = max_rel(&stepped, &full);
        assert!(err < 1e-4, "{yaml}: model step vs forward {err}");
        let e = model.step(&mut stepper, Tensor::zeros([b, d + 1], &dev)).unwrap_err();
        assert!(matches!(e, StepError::Shape { .. }), "{e}");
    }
}

#[test]
fn layers_without_a_causal_recurrence_and_bad_shapes_are_errors() {
    let _turn = serial();
    let dev = Device::flex();
    let u = t(randn(2 * 6 * 3, 5), [2, 6, 3], &dev);
    for (yaml, word) in [
        ("{_name_: s4, d_state: 4, l_max: 8, bidirectional: true}", "bidirectional"),
        ("{_name_: liquid_s4, d_state: 4, l_max: 8}", "liquid"),
    ] {
        let layer = layer(yaml, 3, 1);
        let e = layer.stepper(2, 6).unwrap_err().to_string();
        assert!(e.contains(word), "{yaml}: {e}");
        let e = layer.forward_state(u.clone(), None).unwrap_err().to_string();
        assert!(e.contains(word), "{yaml}: {e}");
    }
    let layer = layer("{_name_: s4d, d_state: 4}", 3, 1);
    assert_eq!(layer.stepper(2, 0).unwrap_err(), StepError::ZeroLength);
    let mut s = layer.stepper(2, 6).expect("stepper");
    let e = layer.step(&mut s, Tensor::zeros([3, 3], &dev)).unwrap_err().to_string();
    assert!(e.contains("[B, H]") && e.contains("[2, 3]") && e.contains("[3, 3]"), "{e}");
    let wrong = LayerState::S4d(SsmState::zeros([2, 3, 5], &dev));
    let e = layer.forward_state(u.clone(), Some(&wrong)).unwrap_err().to_string();
    assert!(e.contains("initial state") && e.contains("[2, 3, 2]"), "{e}");
    assert!(layer.set_state(&mut s, &wrong).is_err(), "state of another size");
    let other = LayerState::Dss(SsmState::zeros([2, 3, 2], &dev));
    let e = layer.forward_state(u.clone(), Some(&other)).unwrap_err().to_string();
    assert!(e.contains("another kind of layer"), "{e}");
    let e = layer.forward_state(t(randn(24, 6), [2, 6, 2], &dev), None).unwrap_err().to_string();
    assert!(e.contains("layer input"), "{e}");
}
