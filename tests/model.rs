//! The S4D layer's pieces: convolution by FFT equals direct convolution, the fused CPU kernels
//! equal the generic tensor-op formulation (values and gradients), and a finite-difference
//! gradient check of the whole layer.

mod common;

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use common::{check_directional, dot, host, max_rel, probe, randn, serial, step_through, t};
use wavessm::model::ssm::conv::{causal_conv, direct_conv, fft_conv};
use wavessm::model::ssm::diagonal::{Disc, RealTransform};
use wavessm::model::ssm::s4d::{Activation, S4dConfig, S4dInit};
use wavessm::model::ssm::vandermonde::{vandermonde, vandermonde_tensor_ops};
use wavessm::model::{LayerOptions, SeqLayer};

#[test]
fn fft_convolution_equals_direct_convolution() {
    // Odd and power-of-two lengths: the FFT length never changes the linear convolution. 37
    // channels and 50 steps cross the fused kernel's 16×16 transpose tiles whole and in part.
    for (b, h, l) in [(2, 3, 17), (1, 2, 64), (3, 1, 100), (2, 37, 50)] {
        let u = randn(b * h * l, 1);
        let k = randn(h * l, 2);
        let u64_: Vec<f64> = u.iter().map(|v| *v as f64).collect();
        let k64: Vec<f64> = k.iter().map(|v| *v as f64).collect();
        let direct = direct_conv(&u64_, &k64, b, h, l); // [B, H, L]
        let dev = Device::flex();
        let generic = host(fft_conv(t(u.clone(), [b, h, l], &dev), t(k.clone(), [h, l], &dev)));
        assert!(max_rel(&generic, &direct) < 1e-5, "tensor-op FFT conv, L={l}: {}", max_rel(&generic, &direct));
        // Fused kernel, on the backbone's [B, L, H] layout, with D = 0 and no activation.
        let u_blh = t(u, [b, h, l], &dev).swap_dims(1, 2);
        let conv = || {
            host(
                causal_conv(u_blh.clone(), t(k.clone(), [h, l], &dev), Tensor::zeros([h], &dev), false).swap_dims(1, 2),
            )
        };
        let fused = conv();
        assert!(max_rel(&fused, &direct) < 1e-5, "fused conv, L={l}: {}", max_rel(&fused, &direct));
        let generic = wavessm::ops::with_generic_ops(conv);
        assert!(max_rel(&generic, &direct) < 1e-5, "generic conv, L={l}: {}", max_rel(&generic, &direct));
    }
}

/// Sum of `y·w` for a fixed random `w`, so every output element matters to the gradient.
#[test]
fn fused_kernels_match_tensor_ops_in_value_and_gradient() {
    let dev = Device::flex().autodiff();
    let (c, h, n2, l) = (2, 3, 4, 37);
    let leaf = |v: Vec<f32>, s: [usize; 3]| t(v, s, &dev).require_grad();
    let leaf2 = |v: Vec<f32>, s: [usize; 2]| t(v, s, &dev).require_grad();
    let wr = leaf(randn(c * h * n2, 3), [c, h, n2]);
    let wi = leaf(randn(c * h * n2, 4), [c, h, n2]);
    let dr = leaf2(randn(h * n2, 5).iter().map(|v| -0.05 - 0.05 * v.abs()).collect(), [h, n2]);
    let di = leaf2(randn(h * n2, 6).iter().map(|v| 0.5 * v).collect(), [h, n2]);
    let grads = |fused: bool| {
        let k = if fused {
            vandermonde(wr.clone(), wi.clone(), dr.clone(), di.clone(), l)
        } else {
            vandermonde_tensor_ops(wr.clone(), wi.clone(), dr.clone(), di.clone(), l)
        };
        let value = host(k.clone());
        let g = probe(k, 9).backward();
        let gs: Vec<Vec<f64>> = vec![
            host(wr.grad(&g).unwrap()),
            host(wi.grad(&g).unwrap()),
            host(dr.grad(&g).unwrap()),
            host(di.grad(&g).unwrap()),
        ];
        (value, gs)
    };
    let (v1, g1) = grads(true);
    let (v2, g2) = grads(false);
    assert!(max_rel(&v1, &v2) < 1e-5, "kernel values: {}", max_rel(&v1, &v2));
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert!(max_rel(a, b) < 1e-4, "kernel gradient {i}: {}", max_rel(a, b));
    }

    // Convolution with skip and GELU: fused vs generic. 37 channels are three tasks of the
    // fused kernel (the last one partial), so at least one worker reuses a task's buffers.
    let (b, h) = (2, 37);
    let u = t(randn(b * l * h, 7), [b, l, h], &dev).require_grad();
    let k = leaf2(randn(h * l, 8).iter().map(|v| v * 0.3).collect(), [h, l]);
    let d = t(randn(h, 10), [h], &dev).require_grad();
    let run = |fused: bool| {
        let y = if fused {
            wavessm::ops::causal_conv(u.clone(), k.clone(), d.clone(), true)
        } else {
            let ut = u.clone().swap_dims(1, 2);
            burn::tensor::activation::gelu(
                (fft_conv(ut.clone(), k.clone()) + ut * d.clone().reshape([1, h, 1])).swap_dims(1, 2),
            )
        };
        let value = host(y.clone());
        let g = probe(y, 11).backward();
        (value, [host(u.grad(&g).unwrap()), host(k.grad(&g).unwrap()), host(d.grad(&g).unwrap())])
    };
    let (v1, g1) = run(true);
    let (v2, g2) = run(false);
    assert!(max_rel(&v1, &v2) < 1e-5, "conv values: {}", max_rel(&v1, &v2));
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert!(max_rel(a, b) < 1e-4, "conv gradient {i}: {}", max_rel(a, b));
    }

    // GLU.
    let x = t(randn(b * l * 2 * h, 12), [b, l, 2 * h], &dev).require_grad();
    let gl = |fused: bool| {
        let y = if fused { wavessm::ops::glu_last(x.clone()) } else { burn::tensor::activation::glu(x.clone(), 2) };
        let value = host(y.clone());
        let g = probe(y, 13).backward();
        (value, host(x.grad(&g).unwrap()))
    };
    let ((v1, g1), (v2, g2)) = (gl(true), gl(false));
    assert!(max_rel(&v1, &v2) < 1e-6 && max_rel(&g1, &g2) < 1e-5, "glu");

    // (GELU +) Linear + GLU against burn's GELU, Linear then GLU. 600 rows of 2·37 outputs are
    // three row blocks of the fused kernel (the last partial), so ∂W and ∂b add partial sums.
    let (rows_b, rows_l) = (3, 200);
    let lin = burn::nn::LinearConfig::new(h, 2 * h).init(&dev);
    let x = t(randn(rows_b * rows_l * h, 18), [rows_b, rows_l, h], &dev).require_grad();
    for gelu in [false, true] {
        let lg = |fused: bool| {
            let y = if fused {
                wavessm::model::ssm::conv::linear_glu(x.clone(), &lin, gelu)
            } else {
                let a = if gelu { burn::tensor::activation::gelu(x.clone()) } else { x.clone() };
                burn::tensor::activation::glu(lin.forward(a), 2)
            };
            let value = host(y.clone());
            let g = probe(y, 19).backward();
            let bias = lin.bias.as_ref().expect("bias").grad(&g).expect("∂b");
            (value, [host(x.grad(&g).unwrap()), host(lin.weight.grad(&g).unwrap()), host(bias)])
        };
        let (v1, g1) = lg(true);
        let (v2, g2) = wavessm::ops::with_generic_ops(|| lg(false));
        assert!(max_rel(&v1, &v2) < 1e-5, "linear_glu (gelu {gelu}) values: {}", max_rel(&v1, &v2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_rel(a, b) < 1e-4, "linear_glu (gelu {gelu}) gradient {i}: {}", max_rel(a, b));
        }
    }

    // LayerNorm against burn's, with non-trivial scale and shift.
    let mut ln = burn::nn::LayerNormConfig::new(h).init(&dev);
    ln.gamma = Param::from_tensor(t(randn(h, 14).iter().map(|v| 1.0 + v).collect(), [h], &dev));
    ln.beta = Some(Param::from_tensor(t(randn(h, 15), [h], &dev)));
    let x = t(randn(b * l * h, 16).iter().map(|v| 3.0 * v + 0.5).collect(), [b, l, h], &dev).require_grad();
    let norm = |fused: bool| {
        let y = if fused {
            wavessm::ops::layer_norm(x.clone(), ln.gamma.val(), ln.beta.as_ref().unwrap().val(), 1e-5)
        } else {
            ln.forward(x.clone())
        };
        let value = host(y.clone());
        let g = probe(y, 17).backward();
        (
            value,
            [
                host(x.grad(&g).unwrap()),
                host(ln.gamma.grad(&g).unwrap()),
                host(ln.beta.as_ref().unwrap().grad(&g).unwrap()),
            ],
        )
    };
    let ((v1, g1), (v2, g2)) = (norm(true), norm(false));
    assert!(max_rel(&v1, &v2) < 1e-5, "layer norm values: {}", max_rel(&v1, &v2));
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert!(max_rel(a, b) < 1e-4, "layer norm gradient {i}: {}", max_rel(a, b));
    }
}

#[test]
fn s4d_layer_gradient_matches_finite_differences() {
    let _turn = serial();
    for disc in [Disc::Zoh, Disc::Bilinear, Disc::Dss] {
        s4d_gradient_check(disc);
    }
}

fn s4d_gradient_check(disc: Disc) {
    let dev = Device::flex().autodiff();
    dev.seed(3);
    let (b, l, h) = (2, 24, 4);
    let cfg = S4dConfig { d_state: 8, dt_min: 0.01, activation: Activation::Gelu, disc, ..S4dConfig::default() };
    let layer = cfg.init(h, &dev);
    let u = t(randn(b * l * h, 21), [b, l, h], &dev);
    let loss = |m: &wavessm::model::ssm::S4d| probe(m.forward(u.clone()), 22);
    let g = loss(&layer).backward();

    // Directional derivatives along a random direction of each SSM parameter and of D.
    type Get = fn(&wavessm::model::ssm::S4d) -> &Param<Tensor<2>>;
    type Set = fn(&mut wavessm::model::ssm::S4d, Param<Tensor<2>>);
    let params: [(&str, Get, Set); 2] = [
        ("log_A_real", |m| &m.kernel.log_A_real, |m, p| m.kernel.log_A_real = p),
        ("A_imag", |m| &m.kernel.A_imag, |m, p| m.kernel.A_imag = p),
    ];
    for (name, get, set) in params {
        let p = get(&layer).val();
        let dir = t(randn(p.shape().num_elements(), 30), p.dims(), &dev);
        check_directional(&format!("{disc:?} {name}"), dot(get(&layer).grad(&g).unwrap(), dir.clone()), |s| {
            let mut m = layer.clone().valid();
            set(&mut m, Param::from_tensor(p.clone().inner() + dir.clone().inner() * s));
            host(loss(&m))[0]
        });
    }
    let d = layer.D.val();
    let dir = t(randn(h, 31), [h], &dev);
    check_directional(&format!("{disc:?} D"), dot(layer.D.grad(&g).unwrap(), dir.clone()), |s| {
        let mut m = layer.clone().valid();
        m.D = Param::from_tensor(d.clone().inner() + dir.clone().inner() * s);
        host(loss(&m))[0]
    });
}

#[test]
fn dss_layer_gradient_matches_finite_differences() {
    let _turn = serial();
    use wavessm::model::ssm::DssConfig;
    use wavessm::model::ssm::diagonal::DssVersion;
    for version in [DssVersion::Exp, DssVersion::Softmax] {
        let dev = Device::flex().autodiff();
        dev.seed(5);
        let (b, l, h) = (2, 20, 3);
        let cfg: DssConfig = serde_yaml::from_str(&format!(
            "{{d_state: 4, channels: 2, dt_min: 0.05, dt_max: 0.2, version: {}}}",
            if version == DssVersion::Exp { "exp" } else { "softmax" }
        ))
        .unwrap();
        let layer = cfg.init(h, &dev);
        let u = t(randn(b * l * h, 41), [b, l, h], &dev);
        let loss = |m: &wavessm::model::ssm::Dss| probe(m.forward(u.clone()), 42);
        let g = loss(&layer).backward();
        // Along a random direction of W and of log_dt.
        let w = layer.kernel.W.val();
        let dir = t(randn(w.shape().num_elements(), 43), w.dims(), &dev);
        check_directional(&format!("{version:?} W"), dot(layer.kernel.W.grad(&g).unwrap(), dir.clone()), |s| {
            let mut m = layer.clone().valid();
            m.kernel.W = Param::from_tensor(w.clone().inner() + dir.clone().inner() * s);
            host(loss(&m))[0]
        });
        let ldt = layer.kernel.log_dt.val();
        let dir = t(randn(ldt.shape().num_elements(), 44), ldt.dims(), &dev);
        check_directional(
            &format!("{version:?} log_dt"),
            dot(layer.kernel.log_dt.grad(&g).unwrap(), dir.clone()),
            |s| {
                let mut m = layer.clone().valid();
                m.kernel.log_dt = Param::from_tensor(ldt.clone().inner() + dir.clone().inner() * s);
                host(loss(&m))[0]
            },
        );
    }
}

#[test]
fn s4d_step_mode_equals_conv_mode_on_random_configs() {
    let _turn = serial();
    for seed in 0..8u64 {
        let r = |k: u64, n: usize| (randn(1, seed * 31 + k)[0].abs() * n as f32) as usize;
        let (b, h, l) = (1 + r(1, 3), 1 + r(2, 5), 5 + r(3, 40));
        let n = 2 * (1 + r(4, 8));
        let disc = [Disc::Zoh, Disc::Bilinear, Disc::Dss][((seed + seed / 3) % 3) as usize];
        let activation = if seed % 3 == 0 { Activation::Id } else { Activation::Gelu };
        let init = [S4dInit::Lin, S4dInit::Inv, S4dInit::Legs, S4dInit::Real, S4dInit::Rand][(seed % 5) as usize];
        let real_transform = [RealTransform::Exp, RealTransform::Softplus, RealTransform::Relu][(seed % 3) as usize];
        let dev = Device::flex();
        dev.seed(seed);
        let cfg = S4dConfig { d_state: n, init, real_transform, activation, disc, ..S4dConfig::default() };
        let layer = cfg.init(h, &dev);
        let u = t(randn(b * l * h, 100 + seed), [b, l, h], &dev);
        let conv = host(layer.forward(u.clone())); // [B, L, H]
        let mut stepper = layer.stepper(b, l).expect("every disc steps");
        let step = step_through(&u, |ut| layer.step(&mut stepper, ut).expect("step"));
        let err = max_rel(&step, &conv);
        assert!(err < 1e-4, "seed {seed} (B={b} H={h} N={n} L={l} {disc:?} {init:?}): step vs conv {err}");
    }
    // A stepper reproduces a kernel of at least one step.
    let cfg =
        S4dConfig { d_state: 4, dt_min: 0.01, activation: Activation::Id, disc: Disc::Dss, ..S4dConfig::default() };
    assert!(cfg.init(2, &Device::flex()).stepper(1, 0).is_err());
}

#[test]
fn rate_multiplies_the_step_size_in_conv_and_step_mode() {
    let _turn = serial();
    let dev = Device::flex();
    dev.seed(9);
    let cfg =
        S4dConfig { d_state: 8, dt_min: 0.01, activation: Activation::Gelu, disc: Disc::Zoh, ..S4dConfig::default() };
    let layer = cfg.init(3, &dev);
    let mut fast = layer.clone();
    fast.kernel.rate = 2.0;
    let mut shifted = layer.clone();
    shifted.kernel.log_dt = Param::from_tensor(layer.kernel.log_dt.val() + 2f64.ln());
    let (k2, kd) = (host(fast.kernel.forward(30)), host(shifted.kernel.forward(30)));
    assert!(max_rel(&k2, &kd) < 1e-5, "rate 2 == dt·2: {}", max_rel(&k2, &kd));
    assert!(max_rel(&k2, &host(layer.kernel.forward(30))) > 1e-2, "and differs from rate 1");
    let u = t(randn(30 * 3, 77), [1, 30, 3], &dev);
    let conv = host(fast.forward(u.clone()));
    let mut st = fast.stepper(1, 30).unwrap();
    let step: Vec<f64> =
        (0..30).flat_map(|i| host(fast.step(&mut st, u.clone().narrow(1, i, 1).reshape([1, 3])).unwrap())).collect();
    assert!(max_rel(&step, &conv) < 1e-4, "step mode honours the rate");
}

#[test]
fn dropout_keeps_the_expected_fraction_scaled_follows_the_seed_and_passes_the_mask_back() {
    use burn::nn::DropoutConfig;
    use wavessm::ops::dropout::dropout;
    let _turn = serial();
    let dev = Device::flex().autodiff();
    let d = DropoutConfig::new(0.25).init();
    // More elements than one parallel task takes, so several generator streams are used.
    let dims = [4, 300, 128];
    let run = |seed: u64| {
        dev.seed(seed);
        let x = Tensor::<3>::ones(dims, &dev).require_grad();
        let y = dropout(&d, x.clone());
        let g = x.grad(&y.clone().sum().backward()).expect("grad");
        (host(y), g.try_into_vec_as::<f32>().expect("f32"))
    };
    let (y, g) = run(3);
    let kept = y.iter().filter(|v| **v != 0.0).count() as f64 / y.len() as f64;
    assert!((kept - 0.75).abs() < 0.01, "kept {kept}");
    assert!(y.iter().all(|v| *v == 0.0 || (*v - 1.0 / 0.75).abs() < 1e-6));
    // ∂(Σ y)/∂x is the scaled mask itself.
    assert_eq!(y, g.iter().map(|v| *v as f64).collect::<Vec<_>>());
    assert_eq!(y, run(3).0);
    assert_ne!(y, run(4).0);
    let chunk = 1 << 16;
    assert_ne!(y[..chunk], y[chunk..2 * chunk], "parallel tasks must draw different numbers");
    // Evaluation mode is the identity.
    let x = Tensor::<3>::ones(dims, &dev);
    assert_eq!(host(dropout(&d.valid(), x.clone())), host(x));
}
