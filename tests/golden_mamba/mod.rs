//! The Mamba golden files: the selective scan (`mamba_selective_scan`) and the whole block
//! (`mamba_block`), each through the fused CPU kernel and through generic tensor ops.

use burn::module::Param;
use burn::tensor::{Device, Tensor};
use wavessm::model::ssm::mamba::{DtRank, Mamba, MambaConfig};
use wavessm::model::ssm::selective::{ScanArgs, selective_scan};
use wavessm::model::{LayerOptions, SeqLayer};

use crate::common::{self, Golden, host, tensor};

/// A [B, X, L] array of the file as a [B, L, X] leaf.
fn blx(g: &Golden, key: &str, device: &Device) -> Tensor<3> {
    tensor::<3>(g.input(key), device).swap_dims(1, 2).require_grad()
}

/// Host values of a [B, L, X] tensor in the file's [B, X, L] order.
fn host_bxl(t: Tensor<3>) -> Vec<f64> {
    host(t.swap_dims(1, 2))
}

/// `selective_scan_ref` with `z`, `D`, `delta_bias` and softplus: output, last state and the
/// gradients of `Σ out·g`.
pub fn check_scan(g: &Golden) {
    let run = || {
        let device = common::device().autodiff();
        let leaf1 = |k: &str| tensor::<1>(g.input(k), &device).require_grad();
        let s = ScanArgs {
            u: blx(g, "u", &device),
            delta: blx(g, "delta", &device),
            a: tensor::<2>(g.input("A"), &device).require_grad(),
            b: blx(g, "B", &device),
            c: blx(g, "C", &device),
            d: Some(leaf1("D")),
            z: Some(blx(g, "z", &device)),
            delta_bias: Some(leaf1("delta_bias")),
            delta_softplus: g.config.get("delta_softplus").and_then(|v| v.as_bool()).unwrap_or(true),
            h0: None,
        };
        let (out, last) = selective_scan(s.clone());
        let cot = tensor::<3>(g.input("g"), &device).swap_dims(1, 2); // [B, L, D]
        let grads = (out.clone() * cot).sum().backward();
        let grad3 = |t: &Tensor<3>| host_bxl(t.grad(&grads).expect("gradient"));
        let grad1 = |t: &Option<Tensor<1>>| host(t.as_ref().unwrap().grad(&grads).expect("gradient"));
        vec![
            ("out", host_bxl(out)),
            ("last_state", host(last)),
            ("grad_u", grad3(&s.u)),
            ("grad_delta", grad3(&s.delta)),
            ("grad_A", host(s.a.grad(&grads).expect("gradient"))),
            ("grad_B", grad3(&s.b)),
            ("grad_C", grad3(&s.c)),
            ("grad_D", grad1(&s.d)),
            ("grad_z", grad3(s.z.as_ref().unwrap())),
            ("grad_delta_bias", grad1(&s.delta_bias)),
        ]
    };
    check_both(g, run);
}

/// A PyTorch `Linear` weight [out, in] as burn's [in, out].
fn linear_weight(g: &Golden, key: &str, device: &Device) -> Param<Tensor<2>> {
    Param::from_tensor(tensor::<2>(g.input(key), device).transpose())
}

/// The block with the file's parameters.
fn block(g: &Golden, device: &Device) -> Mamba {
    let dt_rank = match g.config.get("dt_rank") {
        Some(v) if v.as_str() == Some("auto") => DtRank::Auto,
        Some(v) => DtRank::Fixed(v.as_u64().expect("dt_rank: `auto` or an integer") as usize),
        None => DtRank::Auto,
    };
    let flag = |k: &str, default: bool| g.config.get(k).and_then(|v| v.as_bool()).unwrap_or(default);
    let cfg = MambaConfig {
        d_state: g.cfg_usize("d_state"),
        d_conv: g.cfg_usize("d_conv"),
        expand: g.cfg_usize("expand"),
        dt_rank,
        conv_bias: flag("conv_bias", true),
        bias: flag("bias", false),
        ..MambaConfig::default()
    };
    let mut m = cfg.init(g.cfg_usize("d_model"), device);
    let p1 = |k: &str| Param::from_tensor(tensor::<1>(g.input(k), device));
    m.in_proj.weight = linear_weight(g, "in_proj.weight", device);
    m.conv1d.weight = Param::from_tensor(tensor::<3>(g.input("conv1d.weight"), device));
    m.conv1d.bias = g.inputs.contains_key("conv1d.bias").then(|| p1("conv1d.bias"));
    m.x_proj.weight = linear_weight(g, "x_proj.weight", device);
    m.dt_proj.weight = linear_weight(g, "dt_proj.weight", device);
    m.dt_proj.bias = Some(p1("dt_proj.bias"));
    m.A_log = Param::from_tensor(tensor::<2>(g.input("A_log"), device));
    m.D = p1("D");
    m.out_proj.weight = linear_weight(g, "out_proj.weight", device);
    m
}

/// `Mamba(use_fast_path=False)`: forward, the gradients of `Σ out·g` for the input and all nine
/// parameters, token-by-token steps, and a prefill in conv mode followed by steps.
pub fn check_block(g: &Golden) {
    let run = || {
        let device = common::device().autodiff();
        let m = block(g, &device);
        let x = tensor::<3>(g.input("x"), &device).require_grad();
        let out = m.forward(x.clone());
        let grads = (out.clone() * tensor::<3>(g.input("g"), &device)).sum().backward();
        let gw = |p: &Param<Tensor<2>>| host(p.grad(&grads).expect("gradient").transpose());
        let mut res = vec![
            ("out", host(out)),
            ("grad_x", host(x.grad(&grads).expect("gradient"))),
            ("grad_in_proj.weight", gw(&m.in_proj.weight)),
            ("grad_conv1d.weight", host(m.conv1d.weight.grad(&grads).expect("gradient"))),
            ("grad_x_proj.weight", gw(&m.x_proj.weight)),
            ("grad_dt_proj.weight", gw(&m.dt_proj.weight)),
            ("grad_dt_proj.bias", host(m.dt_proj.bias.as_ref().unwrap().grad(&grads).expect("gradient"))),
            ("grad_A_log", host(m.A_log.grad(&grads).expect("gradient"))),
            ("grad_D", host(m.D.grad(&grads).expect("gradient"))),
            ("grad_out_proj.weight", gw(&m.out_proj.weight)),
        ];
        if let Some(bias) = &m.conv1d.bias {
            res.push(("grad_conv1d.bias", host(bias.grad(&grads).expect("gradient"))));
        }
        // Step mode from zero states.
        let x = x.detach();
        let [b, l, _] = x.dims();
        let mut s = m.stepper(b, l).expect("stepper");
        res.push(("out_step", common::step_through(&x, |xt| m.step(&mut s, xt).expect("step"))));
        res.push(("conv_state", host(s.conv.clone())));
        res.push(("ssm_state", host(s.ssm.clone())));
        // Prefill in conv mode, then steps.
        let p = g.cfg_usize("prefill").min(l);
        let (y0, state) = m.forward_state(x.clone().narrow(1, 0, p), None).expect("prefill");
        res.push(("prefill_conv_state", host(state.conv.clone())));
        res.push(("prefill_ssm_state", host(state.ssm.clone())));
        let mut s = m.stepper(b, l).expect("stepper");
        m.set_state(&mut s, &state).expect("set_state");
        let rest = common::step_through(&x.clone().narrow(1, p, l - p), |xt| m.step(&mut s, xt).expect("step"));
        let h = y0.dims()[2];
        let y0 = host(y0);
        let mut joined = Vec::with_capacity(b * l * h);
        for bi in 0..b {
            joined.extend_from_slice(&y0[bi * p * h..][..p * h]);
            joined.extend_from_slice(&rest[bi * (l - p) * h..][..(l - p) * h]);
        }
        res.push(("out_prefill_step", joined));
        res
    };
    check_both(g, run);
}

/// Checks every output of `run` through the kernels (fused on the CPU, CubeCL on wgpu) and
/// through tensor ops; prints the worst error relative to the tolerance.
fn check_both(g: &Golden, run: impl Fn() -> Vec<(&'static str, Vec<f64>)>) {
    for (path, results) in common::on_kernel_paths(&run) {
        let worst =
            results.iter().map(|(key, v)| g.check(&format!("{key} ({path})"), v, g.output(key))).fold(0.0, f64::max);
        println!("{} ({path}): worst |diff| / tol = {worst:.3}", g.name);
    }
}
