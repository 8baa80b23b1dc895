//! `transformer_layer.json` (see the golden README, §7.4): `TransformerEncoderLayer` pre- and
//! post-norm, causal and unmasked, gradients, and prefix-by-prefix stepping.

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use wavessm::model::attention::pos::PosKind;
use wavessm::model::attention::transformer::Activation;
use wavessm::model::attention::{Transformer, TransformerConfig};
use wavessm::model::{LayerOptions, SeqLayer};

use crate::common::{self, Golden, host, tensor};

/// Parameters with a gradient checked, as the file names them.
const PARAMS: [&str; 12] = [
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

/// The file's layer; `Linear` weights are stored transposed.
fn layer(g: &Golden, norm_first: bool, causal: bool, device: &Device) -> Transformer {
    let activation = match g.config.get("activation").and_then(|v| v.as_str()) {
        Some("relu") => Activation::Relu,
        _ => Activation::Gelu,
    };
    let cfg = TransformerConfig {
        n_heads: g.cfg_usize("nhead"),
        causal,
        norm_first,
        ff: Some(g.cfg_usize("dim_feedforward")),
        dropout: 0.0,
        activation,
        pos: PosKind::None,
        max_len: None,
    };
    let mut m = cfg.init(g.cfg_usize("d_model"), device);
    let p1 = |k: &str| Param::from_tensor(tensor::<1>(g.input(k), device));
    let lin = |k: &str| Param::from_tensor(tensor::<2>(g.input(k), device).transpose());
    m.self_attn.in_proj_weight = Param::from_tensor(tensor::<2>(g.input("self_attn.in_proj_weight"), device));
    m.self_attn.in_proj_bias = p1("self_attn.in_proj_bias");
    m.self_attn.out_proj.weight = lin("self_attn.out_proj.weight");
    m.self_attn.out_proj.bias = Some(p1("self_attn.out_proj.bias"));
    m.linear1.weight = lin("linear1.weight");
    m.linear1.bias = Some(p1("linear1.bias"));
    m.linear2.weight = lin("linear2.weight");
    m.linear2.bias = Some(p1("linear2.bias"));
    m.norm1.weight = p1("norm1.weight");
    m.norm1.bias = p1("norm1.bias");
    m.norm2.weight = p1("norm2.weight");
    m.norm2.bias = p1("norm2.bias");
    m
}

/// Gradients of the parameters in [`PARAMS`] order, in PyTorch's layout.
fn param_grads(m: &Transformer, grads: &burn::tensor::Gradients) -> Vec<Vec<f64>> {
    let g1 = |p: &Param<Tensor<1>>| host(p.grad(grads).expect("gradient"));
    let g2t = |p: &Param<Tensor<2>>| host(p.grad(grads).expect("gradient").transpose());
    let b = |p: &Option<Param<Tensor<1>>>| g1(p.as_ref().expect("bias"));
    vec![
        host(m.self_attn.in_proj_weight.grad(grads).expect("gradient")),
        g1(&m.self_attn.in_proj_bias),
        g2t(&m.self_attn.out_proj.weight),
        b(&m.self_attn.out_proj.bias),
        g2t(&m.linear1.weight),
        b(&m.linear1.bias),
        g2t(&m.linear2.weight),
        b(&m.linear2.bias),
        g1(&m.norm1.weight),
        g1(&m.norm1.bias),
        g1(&m.norm2.weight),
        g1(&m.norm2.bias),
    ]
}

/// Every output of one variant (`prenorm` or `postnorm`), keyed as in the file.
fn variant(g: &Golden, name: &str, norm_first: bool) -> Vec<(String, Vec<f64>)> {
    let device = common::device().autodiff();
    let mut res = Vec::new();
    for (mask, causal) in [("causal", true), ("nomask", false)] {
        let m = layer(g, norm_first, causal, &device);
        let x = tensor::<3>(g.input("x"), &device).require_grad();
        let out = m.forward(x.clone());
        let grads = (out.clone() * tensor::<3>(g.input("g"), &device)).sum().backward();
        res.push((format!("out_{name}_{mask}"), host(out)));
        res.push((format!("grad_{name}_{mask}_x"), host(x.grad(&grads).expect("gradient"))));
        for (key, v) in PARAMS.iter().zip(param_grads(&m, &grads)) {
            res.push((format!("grad_{name}_{mask}_{key}"), v));
        }
    }
    let m = layer(g, norm_first, true, &device);
    let x = tensor::<3>(g.input("x"), &device);
    let [b, l, _] = x.dims();
    let mut s = m.stepper(b, l).expect("stepper");
    res.push((format!("out_{name}_step"), common::step_through(&x, |xt| m.step(&mut s, xt).expect("step"))));
    // A prompt through conv mode, then steps from its cache: the same outputs.
    let p = l / 2;
    let (y0, state) = m.forward_state(x.clone().narrow(1, 0, p), None).expect("prefill");
    let mut s = m.stepper(b, l).expect("stepper");
    m.set_state(&mut s, &state).expect("set_state");
    let rest = common::step_through(&x.narrow(1, p, l - p), |xt| m.step(&mut s, xt).expect("step"));
    let (y0, h) = (host(y0.clone()), y0.dims()[2]);
    let mut joined = Vec::with_capacity(b * l * h);
    for bi in 0..b {
        joined.extend_from_slice(&y0[bi * p * h..][..p * h]);
        joined.extend_from_slice(&rest[bi * (l - p) * h..][..(l - p) * h]);
    }
    res.push((format!("out_{name}_step"), joined));
    res
}

/// Checks both variants on the fused and the tensor-op paths.
pub fn check(g: &Golden) {
    let run =
        || [("prenorm", true), ("postnorm", false)].iter().flat_map(|&(n, nf)| variant(g, n, nf)).collect::<Vec<_>>();
    for (path, results) in common::on_paths(run) {
        let worst =
            results.iter().map(|(key, v)| g.check(&format!("{key} ({path})"), v, g.output(key))).fold(0.0, f64::max);
        println!("{} ({path}): worst |diff| / tol = {worst:.3}", g.name);
    }
}
