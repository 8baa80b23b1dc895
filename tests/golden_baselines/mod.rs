//! Golden checks of state-spaces/s4's recurrent baselines (`unicornn.json`, `lipschitz_rnn.json`;
//! see the golden README §7.6, §7.7): each layer built from the file's `state_dict`, run on the
//! test device through each of its paths (`common::each_path`).

// Names mirror the PyTorch state_dict keys (`DIs`, `RNNs`).
#![allow(non_snake_case)]

use burn::module::Param;
use burn::nn::{DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};
use wavessm::model::SeqLayer;
use wavessm::model::rnn::lipschitz::LipschitzRnn;
use wavessm::model::rnn::unicornn::{DenseInput, Oscillators, Unicornn};

use crate::common::{self, Golden, host, step_through, tensor};

/// A config number of the file.
fn cfg_f64(g: &Golden, k: &str) -> f64 {
    g.config.get(k).and_then(|v| v.as_f64()).unwrap_or_else(|| panic!("{}: config `{k}`", g.name))
}

/// Every parameter path of `layer` is an input of the file, and every input but `x` and `g`
/// is a parameter.
fn check_paths<M: burn::module::Module>(g: &Golden, layer: &M) {
    let mut paths: Vec<String> = wavessm::train::optim::param_paths(layer).into_iter().map(|(p, _)| p).collect();
    let mut keys: Vec<String> = g.inputs.keys().filter(|k| !["x", "g"].contains(&k.as_str())).cloned().collect();
    paths.sort();
    keys.sort();
    assert_eq!(paths, keys, "{}: parameter paths", g.name);
}

/// UnICORNN: output, final states, every gradient and token-by-token steps.
pub fn check_unicornn(g: &Golden) {
    check_paths(g, &load_unicornn(g, &common::device()));
    common::each_path(|how| run_unicornn(g, how));
}

/// The stack with the file's parameters (PyTorch `Linear` weights are [out, in]; burn's [in, out]).
fn load_unicornn(g: &Golden, device: &Device) -> Unicornn {
    let n = g.cfg_usize("n_layers");
    let dts: Vec<f64> = match g.config.get("dt") {
        Some(serde_json::Value::Array(v)) => v.iter().map(|d| d.as_f64().expect("dt")).collect(),
        _ => vec![cfg_f64(g, "dt"); n],
    };
    let alpha = cfg_f64(g, "alpha");
    let p1 = |k: String| Param::from_tensor(tensor::<1>(g.input(&k), device));
    let DIs = (0..n)
        .map(|i| DenseInput {
            fc: Linear {
                weight: Param::from_tensor(tensor::<2>(g.input(&format!("DIs.{i}.fc.weight")), device).transpose()),
                bias: Some(p1(format!("DIs.{i}.fc.bias"))),
            },
        })
        .collect();
    let RNNs = (0..n)
        .map(|i| Oscillators {
            c_: p1(format!("RNNs.{i}.c_")),
            weight_hh: p1(format!("RNNs.{i}.weight_hh")),
            dt: dts[i],
            alpha,
        })
        .collect();
    // The file is the module in eval mode: dropout is the identity.
    Unicornn { DIs, RNNs, dropout: DropoutConfig::new(0.0).init() }
}

fn run_unicornn(g: &Golden, how: &str) {
    let device = common::device().autodiff();
    let layer = load_unicornn(g, &device);
    let x = tensor::<3>(g.input("x"), &device).require_grad();
    let (out, state) = layer.forward_state(x.clone(), None).expect("causal");
    let check = |what: &str, v: Vec<f64>| g.check(&format!("{what} ({how})"), &v, g.output(what));
    check("out", host(out.clone()));
    check("hy_final", host(state.hy.clone()));
    check("hz_final", host(state.hz.clone()));
    let grads = (out * tensor::<3>(g.input("g"), &device)).sum().backward();
    check("grad_x", host(x.grad(&grads).expect("x")));
    for (i, (di, rnn)) in layer.DIs.iter().zip(&layer.RNNs).enumerate() {
        check(&format!("grad_DIs.{i}.fc.weight"), host(di.fc.weight.grad(&grads).expect("fc.weight").transpose()));
        let bias = di.fc.bias.as_ref().expect("bias");
        check(&format!("grad_DIs.{i}.fc.bias"), host(bias.grad(&grads).expect("fc.bias")));
        check(&format!("grad_RNNs.{i}.c_"), host(rnn.c_.grad(&grads).expect("c_")));
        check(&format!("grad_RNNs.{i}.weight_hh"), host(rnn.weight_hh.grad(&grads).expect("weight_hh")));
    }
    // Step mode, one token at a time through every layer; it ends in the final states.
    let layer = load_unicornn(g, &common::device());
    let x = x.detach().inner();
    let [b, l, _] = x.dims();
    let mut stepper = layer.stepper(b, l).expect("steps");
    check("out_step", step_through(&x, |xt| layer.step(&mut stepper, xt).expect("step")));
    g.check(&format!("hy_final (step mode, {how})"), &host(stepper.hy), g.output("hy_final"));
    g.check(&format!("hz_final (step mode, {how})"), &host(stepper.hz), g.output("hz_final"));
}

/// LipschitzRNN: every state, the last one (the reference's output), the gradients of
/// `Σ h_seq·g` and token-by-token steps.
pub fn check_lipschitz(g: &Golden) {
    check_paths(g, &load_lipschitz(g, &common::device()));
    common::each_path(|how| run_lipschitz(g, how));
}

fn load_lipschitz(g: &Golden, device: &Device) -> LipschitzRnn {
    let p2 = |k: &str| Param::from_tensor(tensor::<2>(g.input(k), device));
    LipschitzRnn {
        C: p2("C"),
        B: p2("B"),
        eps: cfg_f64(g, "eps"),
        beta: cfg_f64(g, "beta"),
        gamma: cfg_f64(g, "gamma"),
        alpha: cfg_f64(g, "alpha"),
    }
}

fn run_lipschitz(g: &Golden, how: &str) {
    let device = common::device().autodiff();
    let layer = load_lipschitz(g, &device);
    let x = tensor::<3>(g.input("x"), &device).require_grad();
    let (hs, last) = layer.forward_state(x.clone(), None).expect("causal");
    let check = |what: &str, v: Vec<f64>| g.check(&format!("{what} ({how})"), &v, g.output(what));
    check("h_seq", host(hs.clone()));
    check("out", host(last));
    let grads = (hs * tensor::<3>(g.input("g"), &device)).sum().backward();
    check("grad_x", host(x.grad(&grads).expect("x")));
    check("grad_C", host(layer.C.grad(&grads).expect("C")));
    check("grad_B", host(layer.B.grad(&grads).expect("B")));
    let layer = load_lipschitz(g, &common::device());
    let x: Tensor<3> = x.detach().inner();
    let [b, l, _] = x.dims();
    let mut h = layer.stepper(b, l).expect("steps");
    check("h_step", step_through(&x, |xt| layer.step(&mut h, xt).expect("step")));
}
