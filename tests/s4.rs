//! S4 (DPLR) and Liquid-S4: the fused Cauchy kernel against tensor ops (values and gradients),
//! finite-difference gradients of the layer, step mode against conv mode on random configs,
//! and the config checks.

mod common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use common::{check_directional, dot, host, max_rel, probe, randn, serial, step_s4, t};
use wavessm::model::ssm::dplr::{cauchy_tensor_ops, dplr_kernel};
use wavessm::model::ssm::s4::{S4, S4Config};
use wavessm::model::{LayerOptions, SeqLayer};

fn cfg(yaml: &str) -> S4Config {
    serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
}

#[test]
fn fused_cauchy_matches_tensor_ops_in_value_and_gradient() {
    let dev = Device::flex().autodiff();
    let (m, h, n2) = (4, 3, 5);
    for l in [16, 64] {
        let leaf3 = |seed, s: [usize; 3]| t(randn(m * h * n2, seed), s, &dev).require_grad();
        let (vr, vi) = (leaf3(1, [m, h, n2]), leaf3(2, [m, h, n2]));
        let dr = t(randn(h * n2, 3).iter().map(|v| -0.01 - 0.05 * v.abs()).collect(), [h, n2], &dev).require_grad();
        let di = t(randn(h * n2, 4).iter().map(|v| -v.abs()).collect(), [h, n2], &dev).require_grad();
        let run = |fused: bool| {
            let r = if fused {
                wavessm::ops::cauchy(vr.clone(), vi.clone(), dr.clone(), di.clone(), l)
            } else {
                cauchy_tensor_ops((vr.clone(), vi.clone()), (dr.clone(), di.clone()), l)
            };
            let value = host(r.clone());
            let g = probe(r, 5).backward();
            let grads = [
                host(vr.grad(&g).unwrap()),
                host(vi.grad(&g).unwrap()),
                host(dr.grad(&g).unwrap()),
                host(di.grad(&g).unwrap()),
            ];
            (value, grads)
        };
        let (v1, g1) = run(true);
        let (v2, g2) = run(false);
        assert!(max_rel(&v1, &v2) < 1e-5, "L={l} values: {}", max_rel(&v1, &v2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_rel(a, b) < 1e-4, "L={l} gradient {i}: {}", max_rel(a, b));
        }
    }
}

/// The DPLR kernel with `P = 0` is a diagonal bilinear kernel with `C = C̃ (I - dA^L)^{-T}`; with
/// `P = 0` and `L` long enough for `dA^L ≈ 0`, it is the S4D bilinear kernel with `C = C̃`.
#[test]
fn dplr_kernel_without_low_rank_part_is_the_diagonal_bilinear_kernel() {
    use wavessm::model::ssm::diagonal::{Disc, kernel};
    let dev = Device::flex();
    let (c, h, n2, l) = (1, 2, 4, 256);
    let dt = t(vec![0.5, 0.8], [h], &dev);
    let w = (
        t(vec![-0.5; h * n2], [h, n2], &dev),
        t(randn(h * n2, 7).iter().map(|v| -v.abs() * 3.0).collect(), [h, n2], &dev),
    );
    let p = (Tensor::zeros([h, n2], &dev), Tensor::zeros([h, n2], &dev));
    let b = (t(randn(h * n2, 8), [h, n2], &dev), t(randn(h * n2, 9), [h, n2], &dev));
    let cc = (t(randn(c * h * n2, 10), [c, h, n2], &dev), t(randn(c * h * n2, 11), [c, h, n2], &dev));
    let k1 = host(dplr_kernel(dt.clone(), w.clone(), p, b.clone(), cc.clone(), l));
    let k2 = host(kernel(Disc::Bilinear, dt, w, Some(b), cc, l));
    assert!(max_rel(&k1, &k2) < 1e-4, "{}", max_rel(&k1, &k2));
}

#[test]
fn s4_step_mode_equals_conv_mode_on_random_configs() {
    let _turn = serial();
    for seed in 0..8u64 {
        let r = |k: u64, n: usize| (randn(1, seed * 31 + k)[0].abs() * n as f32) as usize;
        let (b, l) = (1 + r(1, 2), 5 + r(3, 40));
        // Some kernels are built for a shorter length than they run at (l_max < L): conv mode
        // then uses a longer FFT with the same C̃, and step mode must follow it.
        let l_max = if seed % 4 == 2 { 1 + l / 3 } else { l };
        let n = 2 * (1 + r(4, 6));
        let (h, n_ssm) = if seed % 4 == 1 { (4, "2") } else { (1 + r(2, 4), "null") };
        let mode = if seed % 2 == 0 { "nplr" } else { "diag" };
        let init = ["legs", "lin", "inv", "real", "rand"][(seed % 5) as usize];
        let disc = if mode == "diag" && seed % 3 == 0 { "bilinear" } else { "null" };
        let yaml = format!(
            "{{mode: {mode}, d_state: {n}, init: {init}, disc: {disc}, channels: {}, n_ssm: {n_ssm}, l_max: {l_max}, \
             activation: {}, dt_min: 0.01, dt_max: 0.2}}",
            1 + (seed % 3 == 2) as usize,
            if seed % 3 == 0 { "id" } else { "gelu" },
        );
        let dev = Device::flex();
        dev.seed(seed);
        let layer = cfg(&yaml).init(h, &dev);
        let u = t(randn(b * l * h, 100 + seed), [b, l, h], &dev);
        let conv = host(layer.forward(u.clone()));
        let err = max_rel(&step_s4(&layer, &u), &conv);
        assert!(err < 1e-4, "seed {seed} {yaml} H={h} B={b}: step vs conv {err}");
    }
}

#[test]
fn s4_step_mode_honours_the_rate() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(4);
    let mut layer = cfg("{d_state: 8, l_max: 64, dt_min: 0.01, dt_max: 0.1}").init(3, &dev);
    layer.kernel.rate = 2.0;
    let u = t(randn(30 * 3, 7), [1, 30, 3], &dev);
    let err = max_rel(&step_s4(&layer, &u), &host(layer.forward(u.clone())));
    assert!(err < 1e-4, "rate 2: step vs conv {err}");
}

/// Central differences along a random direction of each parameter against autodiff.
fn gradient_check(yaml: &str, h: usize, l: usize) {
    let dev = Device::flex().autodiff();
    dev.seed(3);
    let layer = cfg(yaml).init(h, &dev);
    let u = t(randn(2 * l * h, 21), [2, l, h], &dev);
    let loss = |m: &S4| probe(m.forward(u.clone()), 22);
    let g = loss(&layer).backward();
    type Get = fn(&S4) -> Tensor<4>;
    type Set = fn(&mut S4, Tensor<4>);
    let k = &layer.kernel;
    let grads: Vec<(&str, Tensor<4>, Get, Set)> = vec![
        ("C", k.C.grad(&g).unwrap().inner(), |m| m.kernel.C.val(), |m, p| m.kernel.C = Param::from_tensor(p)),
        ("B", k.B.grad(&g).unwrap().inner(), |m| m.kernel.B.val(), |m, p| m.kernel.B = Param::from_tensor(p)),
        (
            "A_imag",
            k.A_imag.grad(&g).unwrap().inner().unsqueeze::<4>(),
            |m| m.kernel.A_imag.val().unsqueeze::<4>(),
            |m, p| m.kernel.A_imag = Param::from_tensor(p.squeeze_dims::<2>(&[0, 1])),
        ),
        (
            "A_real",
            k.A_real.grad(&g).unwrap().inner().unsqueeze::<4>(),
            |m| m.kernel.A_real.val().unsqueeze::<4>(),
            |m, p| m.kernel.A_real = Param::from_tensor(p.squeeze_dims::<2>(&[0, 1])),
        ),
        (
            "inv_dt",
            k.inv_dt.grad(&g).unwrap().inner().unsqueeze::<4>(),
            |m| m.kernel.inv_dt.val().unsqueeze::<4>(),
            |m, p| m.kernel.inv_dt = Param::from_tensor(p.squeeze_dims::<2>(&[0, 1])),
        ),
    ];
    let mut all = grads;
    if let Some(p) = &k.P {
        all.push((
            "P",
            p.grad(&g).unwrap().inner(),
            |m| m.kernel.P.as_ref().unwrap().val(),
            |m, p| m.kernel.P = Some(Param::from_tensor(p)),
        ));
    }
    let base = layer.clone().valid();
    for (name, grad, get, set) in all {
        let p = get(&base);
        let dir = t(randn(p.shape().num_elements(), 30), p.dims(), &p.device());
        let analytic = dot(Tensor::<4>::from_inner(grad.inner()).reshape(p.dims()), dir.clone());
        let f = |s: f64| {
            let mut m = base.clone();
            set(&mut m, p.clone() + dir.clone() * s);
            host(probe(m.forward(u.clone().inner()), 22))[0]
        };
        check_directional(&format!("{yaml} {name}"), analytic, f);
    }
}

#[test]
fn s4_layer_gradients_match_finite_differences() {
    let _turn = serial();
    gradient_check("{d_state: 8, l_max: 24, dt_min: 0.05, dt_max: 0.2}", 3, 24);
    gradient_check("{d_state: 8, l_max: 24, channels: 2, bidirectional: true, dt_min: 0.05, dt_max: 0.2}", 3, 24);
    gradient_check("{mode: diag, init: inv, real_transform: softplus, d_state: 8, dt_min: 0.05, dt_max: 0.2}", 3, 24);
    gradient_check("{d_state: 8, l_max: 20, liquid_kernel: polyb, liquid_degree: 3, dt_min: 0.05, dt_max: 0.2}", 3, 20);
    gradient_check("{d_state: 8, l_max: 20, liquid_kernel: kb, allcombs: false, dt_min: 0.05, dt_max: 0.2}", 3, 20);
}

#[test]
fn bidirectional_s4_sees_the_future_and_causal_s4_does_not() {
    let _turn = serial();
    let dev = Device::flex();
    for (bidir, expect_past_change) in [(false, false), (true, true)] {
        dev.seed(8);
        let layer = cfg(&format!("{{d_state: 8, l_max: 16, bidirectional: {bidir}}}")).init(2, &dev);
        let u = t(randn(16 * 2, 5), [1, 16, 2], &dev);
        let mut v = host(u.clone()).iter().map(|x| *x as f32).collect::<Vec<_>>();
        v[10 * 2] += 1.0; // perturb step 10
        let (y0, y1) = (host(layer.forward(u)), host(layer.forward(t(v, [1, 16, 2], &dev))));
        let past = (0..10 * 2).map(|i| (y0[i] - y1[i]).abs()).fold(0.0, f64::max);
        assert_eq!(past > 1e-6, expect_past_change, "bidirectional={bidir}: change before the perturbation {past}");
    }
    let e = cfg("{bidirectional: true}").init(2, &dev).stepper(1, 16).unwrap_err().to_string();
    assert!(e.contains("bidirectional"), "no recurrent form: {e}");
}

#[test]
fn s4_options_are_checked_with_the_reference_messages() {
    let err = |yaml: &str| cfg(yaml).validate("model.layer").unwrap_err().to_string();
    let e = err("{liquid_kernel: polyb, liquid_degree: 1}");
    assert!(e.contains("model.layer.liquid_degree") && e.contains("≥ 2"), "{e}");
    let e = err("{disc: zoh}");
    assert!(e.contains("model.layer.disc") && e.contains("bilinear"), "{e}");
    let e = err("{d_state: 1}");
    assert!(e.contains("model.layer.d_state") && e.contains("≥ 2"), "{e}");
    let e = err("{d_state: 7, init: fout}");
    assert!(e.contains("model.layer.d_state") && e.contains("even"), "{e}");
    let e = cfg("{n_ssm: 3}").check_width("model.layer", 8).unwrap_err().to_string();
    assert!(e.contains("model.layer.n_ssm") && e.contains("divide"), "{e}");
    // Unknown keys name the key and suggest the right one.
    let e = serde_yaml::from_str::<S4Config>("{liquid_degre: 3}").unwrap_err().to_string();
    assert!(e.contains("liquid_degre"), "{e}");
}
