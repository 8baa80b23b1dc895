//! Golden checks of the recurrent baselines (`lstm.json`, `gru.json`, `wave_rnn.json`; see the
//! golden README §7.1–7.3): each layer built from the file's `state_dict`.

use burn::module::Param;
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};
use wavessm::model::SeqLayer;
use wavessm::model::rnn::cell::{CellKind, CellParams};
use wavessm::model::rnn::params::param_names;
use wavessm::model::rnn::stack::{Extras, Recurrent, RnnState};
use wavessm::model::rnn::wave::{CircularConv, WaveAct, WaveCell, WaveInit, WaveRnn, wy_init};

use crate::common::{self, Golden, host, tensor};

/// Output, final state, token-by-token steps and every gradient, through the fused kernels
/// and through the per-step tensor ops.
pub fn check_recurrent(g: &Golden, kind: CellKind) {
    check_paths(g, kind);
    common::each_path(|path| run(g, kind, path));
}

/// The layer's parameter paths are the file's state_dict keys.
fn check_paths(g: &Golden, kind: CellKind) {
    let layer = load(g, kind, &common::device());
    let paths: Vec<String> = wavessm::train::optim::param_paths(&layer).into_iter().map(|(p, _)| p).collect();
    assert_eq!(paths, param_names(0, 1).to_vec(), "{}: parameter paths", g.name);
    for p in &paths {
        assert!(g.inputs.contains_key(p), "{}: `{p}` is not a key of the file", g.name);
    }
}

/// A one-layer unidirectional layer with the file's parameters (any input width).
fn load(g: &Golden, kind: CellKind, device: &Device) -> Recurrent {
    let [wi, wh, bi, bh] = param_names(0, 1);
    let cell = CellParams {
        weight_ih: Param::from_tensor(tensor::<2>(g.input(&wi), device)),
        weight_hh: Param::from_tensor(tensor::<2>(g.input(&wh), device)),
        bias_ih: Param::from_tensor(tensor::<1>(g.input(&bi), device)),
        bias_hh: Param::from_tensor(tensor::<1>(g.input(&bh), device)),
    };
    let extras = Extras { dropout: DropoutConfig::new(0.0).init(), output_linear: None };
    Recurrent { cells: vec![cell], extras, kind, bidirectional: false }
}

fn run(g: &Golden, kind: CellKind, how: &str) {
    let device = common::device().autodiff();
    let layer = load(g, kind, &device);
    let lstm = kind == CellKind::Lstm;
    let x = tensor::<3>(g.input("x"), &device).require_grad();
    let h0 = tensor::<3>(g.input("h0"), &device).require_grad();
    let c0 = lstm.then(|| tensor::<3>(g.input("c0"), &device).require_grad());
    let state = RnnState { h: h0.clone(), c: c0.clone() };
    let (out, fin) = layer.forward_state(x.clone(), Some(&state)).expect("unidirectional");
    g.check(&format!("out ({how})"), &host(out.clone()), g.output("out"));
    g.check(&format!("h_n ({how})"), &host(fin.h), g.output("h_n"));
    if let Some(c) = fin.c {
        g.check(&format!("c_n ({how})"), &host(c), g.output("c_n"));
    }
    let grads = (out * tensor::<3>(g.input("g"), &device)).sum().backward();
    let grad =
        |what: &str, t: Option<Tensor<3>>| g.check(&format!("{what} ({how})"), &host(t.expect(what)), g.output(what));
    grad("grad_x", x.grad(&grads));
    grad("grad_h0", h0.grad(&grads));
    if let Some(c0) = &c0 {
        grad("grad_c0", c0.grad(&grads));
    }
    let cell = &layer.cells[0];
    let [wi, wh, bi, bh] = param_names(0, 1).map(|n| format!("grad_{n}"));
    g.check(&wi, &host(cell.weight_ih.grad(&grads).expect("W_ih")), g.output(&wi));
    g.check(&wh, &host(cell.weight_hh.grad(&grads).expect("W_hh")), g.output(&wh));
    g.check(&bi, &host(cell.bias_ih.grad(&grads).expect("b_ih")), g.output(&bi));
    g.check(&bh, &host(cell.bias_hh.grad(&grads).expect("b_hh")), g.output(&bh));
    // Step mode from the same initial state, one token at a time.
    let [b, l, _] = x.dims();
    let mut stepper = layer.stepper(b, l).expect("unidirectional");
    layer.set_state(&mut stepper, &RnnState { h: h0.detach(), c: c0.map(Tensor::detach) }).expect("state shape");
    // Input and output widths differ here (I ≠ H), so the steps are gathered by stacking.
    let steps: Vec<Tensor<2>> = (0..l)
        .map(|t| layer.step(&mut stepper, x.clone().detach().narrow(1, t, 1).reshape([b, x.dims()[2]])).expect("step"))
        .collect();
    g.check(&format!("out_step ({how})"), &host(Tensor::stack::<3>(steps, 1)), g.output("out_step"));
    g.check(&format!("h_n_step ({how})"), &host(stepper.h.clone()), g.output("h_n_step"));
    if let Some(c) = stepper.c {
        g.check(&format!("c_n_step ({how})"), &host(c), g.output("c_n_step"));
    }
}

/// The wave RNN (`wave_rnn.json`, golden README §7.3): the `fwd`/`eye` inits, the hidden-state
/// sequence, the readout of the last state and every gradient of `Σ h_seq·g + Σ y·g_out`,
/// through the fused kernel and the per-step tensor ops; step mode's states equal `h_seq`.
pub fn check_wave_rnn(g: &Golden) {
    let (n_ch, ksize) = (g.cfg_usize("n_ch"), g.cfg_usize("ksize"));
    for (init, key) in [(WaveInit::Fwd, "Wy_weight_init_fwd"), (WaveInit::Eye, "Wy_weight_init_eye")] {
        let w: Vec<f64> = wy_init(init, n_ch, ksize).into_iter().map(f64::from).collect();
        g.check(key, &w, g.output(key));
    }
    let layer = load_wave(g, &common::device());
    let paths: Vec<String> = wavessm::train::optim::param_paths(&layer).into_iter().map(|(p, _)| p).collect();
    for p in &paths {
        assert!(g.inputs.contains_key(p), "{}: `{p}` is not a key of the file", g.name);
    }
    common::each_path(|path| run_wave(g, path));
}

/// The layer with the file's parameters (PyTorch `Linear` weights are [out, in]; burn's [in, out]).
fn load_wave(g: &Golden, device: &Device) -> WaveRnn {
    let act = match g.config.get("act").and_then(|v| v.as_str()) {
        Some("tanh") => WaveAct::Tanh,
        Some("relu") => WaveAct::Relu,
        Some("ident") | Some("identity") => WaveAct::Identity,
        other => panic!("{}: act {other:?}", g.name),
    };
    let linear = |key: &str| Linear {
        weight: Param::from_tensor(tensor::<2>(g.input(&format!("{key}.weight")), device).transpose()),
        bias: Some(Param::from_tensor(tensor::<1>(g.input(&format!("{key}.bias")), device))),
    };
    let wy = CircularConv {
        weight: Param::from_tensor(tensor::<3>(g.input("cell.Wy.weight"), device)),
        bias: Param::from_tensor(tensor::<1>(g.input("cell.Wy.bias"), device)),
    };
    WaveRnn { cell: WaveCell { Wx: linear("cell.Wx"), Wy: wy }, readout: linear("readout"), act }
}

#[allow(non_snake_case)]
fn run_wave(g: &Golden, how: &str) {
    let device = common::device().autodiff();
    let layer = load_wave(g, &device);
    let x = tensor::<3>(g.input("x"), &device).require_grad(); // [L, B, In], time-major
    let [l, b, _] = x.dims();
    let hs = layer.hidden_states(x.clone().swap_dims(0, 1), None).swap_dims(0, 1); // [L, B, C·n]
    let n = hs.dims()[2];
    g.check(&format!("h_seq ({how})"), &host(hs.clone()), g.output("h_seq"));
    let last = hs.clone().narrow(0, l - 1, 1).reshape([b, n]);
    g.check(&format!("h_final ({how})"), &host(last.clone()), g.output("h_final"));
    let y = layer.readout.forward(last);
    g.check(&format!("y ({how})"), &host(y.clone()), g.output("y"));
    let gs = tensor::<4>(g.input("g"), &device).reshape([l, b, n]);
    let loss = (hs * gs).sum() + (y * tensor::<2>(g.input("g_out"), &device)).sum();
    let grads = loss.backward();
    let check = |what: &str, v: Vec<f64>| g.check(&format!("{what} ({how})"), &v, g.output(what));
    check("grad_x", host(x.grad(&grads).expect("x")));
    let (Wx, Wy, ro) = (&layer.cell.Wx, &layer.cell.Wy, &layer.readout);
    check("grad_cell.Wx.weight", host(Wx.weight.grad(&grads).expect("Wx").transpose()));
    check("grad_cell.Wx.bias", host(Wx.bias.as_ref().expect("bias").grad(&grads).expect("bx")));
    check("grad_cell.Wy.weight", host(Wy.weight.grad(&grads).expect("Wy")));
    check("grad_cell.Wy.bias", host(Wy.bias.grad(&grads).expect("bWy")));
    check("grad_readout.weight", host(ro.weight.grad(&grads).expect("readout").transpose()));
    check("grad_readout.bias", host(ro.bias.as_ref().expect("bias").grad(&grads).expect("readout bias")));
    // Step mode: the state after each token is that step's row of h_seq.
    let layer = load_wave(g, &common::device());
    let x = x.detach().inner(); // [L, B, In]
    let mut h = layer.stepper(b, l).expect("steps");
    let states: Vec<Tensor<2>> = (0..l)
        .map(|t| {
            layer.step(&mut h, x.clone().narrow(0, t, 1).reshape([b, x.dims()[2]])).expect("step");
            layer.state(&h).expect("state")
        })
        .collect();
    g.check(&format!("h_seq (step mode, {how})"), &host(Tensor::stack::<3>(states, 0)), g.output("h_seq"));
}
