//! Mamba: the fused selective scan against its tensor-op formulation (values and gradients), and
//! the block's step mode, init and options, RMSNorm, the `model=mamba` backbone and its
//! weights under `MambaLMHeadModel`'s state_dict keys.

mod common;

use burn::tensor::{Device, Tensor};
use common::{host, max_rel, probe, randn, serial, step_through, t};
use wavessm::config::ConfigRequest;
use wavessm::model::block::Norm;
use wavessm::model::ssm::StepError;
use wavessm::model::ssm::mamba::{DtRank, MambaConfig};
use wavessm::model::ssm::selective::{ScanArgs, selective_scan_tensor_ops};
use wavessm::model::{LayerOptions, SeqLayer};
use wavessm::model::{NormKind, SequenceModel};
use wavessm::train::optim::Optim;
use wavessm::train::{FitOptions, fit};
use wavessm::weights::{self, ImportOptions, Layout, Select};

/// Random scan inputs: `b` batch, `l` steps (several backward chunks), `e` channels (more than
/// one block, the last one partial), `n` states; negative `A`.
fn scan_inputs(b: usize, l: usize, e: usize, n: usize, gate: bool, h0: bool, dev: &Device) -> ScanArgs {
    let leaf3 = |v: Vec<f32>, s: [usize; 3]| t(v, s, dev).require_grad();
    let leaf1 = |v: Vec<f32>, s: [usize; 1]| t(v, s, dev).require_grad();
    let a: Vec<f32> = randn(e * n, 3).iter().map(|v| -0.2 - 1.5 * v.abs()).collect();
    ScanArgs {
        u: leaf3(randn(b * l * e, 1), [b, l, e]),
        delta: leaf3(randn(b * l * e, 2).iter().map(|v| 2.0 * v - 1.0).collect(), [b, l, e]),
        a: t(a, [e, n], dev).require_grad(),
        b: leaf3(randn(b * l * n, 4), [b, l, n]),
        c: leaf3(randn(b * l * n, 5), [b, l, n]),
        d: Some(leaf1(randn(e, 6), [e])),
        z: gate.then(|| leaf3(randn(b * l * e, 7).iter().map(|v| 2.0 * v).collect(), [b, l, e])),
        delta_bias: Some(leaf1(randn(e, 8).iter().map(|v| v - 1.0).collect(), [e])),
        delta_softplus: true,
        h0: h0.then(|| leaf3(randn(b * e * n, 9), [b, e, n])),
    }
}

/// Output, last state, and the gradients of `Σ out·w` for every input that has one.
fn run_scan(s: &ScanArgs, fused: bool) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let (out, last) = if fused {
        wavessm::model::ssm::selective::selective_scan(s.clone())
    } else {
        selective_scan_tensor_ops(s.clone())
    };
    let (value, state) = (host(out.clone()), host(last));
    let g = probe(out, 11).backward();
    let mut grads: Vec<Vec<f64>> = vec![
        host(s.u.grad(&g).unwrap()),
        host(s.delta.grad(&g).unwrap()),
        host(s.a.grad(&g).unwrap()),
        host(s.b.grad(&g).unwrap()),
        host(s.c.grad(&g).unwrap()),
    ];
    grads.extend([&s.d, &s.delta_bias].into_iter().flatten().map(|p| host(p.grad(&g).unwrap())));
    grads.extend([&s.z, &s.h0].into_iter().flatten().map(|p| host(p.grad(&g).unwrap())));
    (value, state, grads)
}

#[test]
fn fused_scan_matches_tensor_ops_in_value_and_gradient() {
    let dev = Device::flex().autodiff();
    for (gate, h0, softplus) in [(true, false, true), (false, true, true), (true, true, false)] {
        let mut s = scan_inputs(2, 150, 20, 4, gate, h0, &dev);
        if !softplus {
            // Without the softplus Δ = delta + bias must stay positive.
            s.delta = t(randn(2 * 150 * 20, 2).iter().map(|v| 0.05 + 0.1 * v.abs()).collect(), [2, 150, 20], &dev)
                .require_grad();
            s.delta_bias = Some(t(vec![0.01; 20], [20], &dev).require_grad());
            s.delta_softplus = false;
        }
        let (v1, s1, g1) = run_scan(&s, true);
        let (v2, s2, g2) = wavessm::ops::with_generic_ops(|| run_scan(&s, false));
        let case = format!("gate {gate}, h0 {h0}, softplus {softplus}");
        assert!(max_rel(&v1, &v2) < 1e-5, "{case}: out {}", max_rel(&v1, &v2));
        assert!(max_rel(&s1, &s2) < 1e-5, "{case}: last state {}", max_rel(&s1, &s2));
        assert_eq!(g1.len(), g2.len());
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_rel(a, b) < 1e-4, "{case}: gradient {i}: {}", max_rel(a, b));
        }
    }
}

#[test]
fn scan_in_two_parts_equals_one_scan() {
    // The last state of the first half, as the initial state of the second half.
    let dev = Device::flex().autodiff();
    let s = scan_inputs(2, 37, 5, 3, true, false, &dev);
    let (whole, last) = wavessm::model::ssm::selective::selective_scan(s.clone());
    let m = 20;
    let part = |from: usize, len: usize, h0: Option<Tensor<3>>| {
        let cut = |x: &Tensor<3>| x.clone().narrow(1, from, len);
        wavessm::model::ssm::selective::selective_scan(ScanArgs {
            u: cut(&s.u),
            delta: cut(&s.delta),
            b: cut(&s.b),
            c: cut(&s.c),
            z: s.z.as_ref().map(cut),
            h0,
            ..s.clone()
        })
    };
    let (y1, h1) = part(0, m, None);
    let (y2, h2) = part(m, 37 - m, Some(h1));
    let joined = host(Tensor::cat(vec![y1, y2], 1));
    assert!(max_rel(&joined, &host(whole)) < 1e-6);
    assert!(max_rel(&host(h2), &host(last)) < 1e-6);
}

/// A seeded block with the reference's init, width `h`, and an input [B, L, H].
fn seeded_block(cfg: &MambaConfig, h: usize, b: usize, l: usize) -> (wavessm::model::ssm::Mamba, Tensor<3>) {
    let dev = Device::flex();
    let _turn = serial();
    dev.seed(5);
    (cfg.init(h, &dev), t(randn(b * l * h, 21), [b, l, h], &dev))
}

#[test]
fn mamba_step_and_prefill_then_step_equal_forward() {
    let cfg = MambaConfig { d_state: 5, d_conv: 3, ..MambaConfig::default() };
    let (b, l, h) = (2, 11, 6);
    let (m, x) = seeded_block(&cfg, h, b, l);
    let y = host(m.forward(x.clone()));
    let mut s = m.stepper(b, l).unwrap();
    let stepped = step_through(&x, |xt| m.step(&mut s, xt).unwrap());
    assert!(max_rel(&stepped, &y) < 1e-5, "step vs forward: {}", max_rel(&stepped, &y));
    // Prompts shorter and longer than the convolution, then steps.
    for p in [1, 2, 7] {
        let (y0, state) = m.forward_state(x.clone().narrow(1, 0, p), None).unwrap();
        let mut s = m.stepper(b, l).unwrap();
        m.set_state(&mut s, &state).unwrap();
        let rest = step_through(&x.clone().narrow(1, p, l - p), |xt| m.step(&mut s, xt).unwrap());
        let expect = host(m.forward(x.clone()).narrow(1, p, l - p));
        assert!(max_rel(&rest, &expect) < 1e-5, "prefill {p}: {}", max_rel(&rest, &expect));
        let head = host(m.forward(x.clone()).narrow(1, 0, p));
        assert!(max_rel(&host(y0), &head) < 1e-6, "prefill {p} outputs");
    }
    // A wrongly shaped state is an error, not a panic.
    let mut s = m.stepper(b + 1, l).unwrap();
    assert!(matches!(m.step(&mut s, x.clone().narrow(1, 0, 1).reshape([b, h])), Err(StepError::Shape { .. })));
}

#[test]
fn mamba_init_is_the_reference_init() {
    let cfg = MambaConfig::default();
    let h = 20;
    let (m, _) = seeded_block(&cfg, h, 1, 1);
    let (e, n, r) = (2 * h, 16, h.div_ceil(16));
    assert_eq!(m.in_proj.weight.dims(), [h, 2 * e]);
    assert_eq!(m.conv1d.weight.dims(), [e, 1, 4]);
    assert_eq!(m.x_proj.weight.dims(), [e, r + 2 * n]);
    assert_eq!(m.dt_proj.weight.dims(), [r, e]);
    assert!(m.in_proj.bias.is_none() && m.out_proj.bias.is_none() && m.conv1d.bias.is_some());
    let a_log = host(m.A_log.val());
    assert!((0..e * n).all(|i| (a_log[i] - ((i % n + 1) as f64).ln()).abs() < 1e-6), "A_log = log(1..N)");
    assert!(host(m.D.val()).iter().all(|v| *v == 1.0));
    // softplus(dt_proj.bias) is the initial dt, log-uniform in [dt_min, dt_max].
    for v in host(m.dt_proj.bias.as_ref().unwrap().val()) {
        let dt = v.exp().ln_1p();
        assert!((cfg.dt_min * 0.999..=cfg.dt_max * 1.001).contains(&dt), "dt {dt}");
    }
    let bound = 1.0 / (r as f64).sqrt();
    assert!(host(m.dt_proj.weight.val()).iter().all(|w| w.abs() <= bound));
}

#[test]
fn mamba_options_are_checked() {
    let parse = |y: &str| serde_yaml::from_str::<MambaConfig>(y);
    assert_eq!(parse("{}").unwrap(), MambaConfig::default());
    assert_eq!(parse("{dt_rank: 3}").unwrap().dt_rank, DtRank::Fixed(3));
    assert!(parse("{dt_init: uniform}").unwrap_err().to_string().contains("dt_init"));
    assert!(parse("{dt_rank: big}").unwrap_err().to_string().contains("auto"));
    assert!(parse("{d_model: 3}").is_err(), "unknown keys are refused");
    for (yaml, key) in [
        ("{dt_min: 0.5, dt_max: 0.1}", "dt_min"),
        ("{d_state: 0}", "d_state"),
        ("{d_conv: 0}", "d_conv"),
        ("{expand: 0}", "expand"),
        ("{dt_rank: 0}", "dt_rank"),
        ("{dt_scale: .nan}", "dt_scale"),
        ("{dt_init_floor: .inf}", "dt_init_floor"),
    ] {
        let err = parse(yaml).unwrap().validate("model.layer").unwrap_err().to_string();
        assert!(err.contains(&format!("model.layer.{key}")), "{yaml}: {err}");
    }
}

/// `lr` puts every tensor between `in_proj` and `out_proj` in the layer's optimizer groups (A_log
/// and D without weight decay), refuses a negative rate by its key, and null leaves them the
/// optimizer's rate.
#[test]
fn mamba_lr_groups_the_scan_tensors_and_is_range_checked() {
    let groups = MambaConfig::default().param_groups();
    let keys: Vec<(&str, Option<f64>)> = groups.iter().map(|g| (g.key, g.lr)).collect();
    assert_eq!(keys, [("A", Some(0.001)), ("D", Some(0.001)), ("scan", Some(0.001))]);
    let wd: Vec<Option<f64>> = groups.iter().map(|g| g.wd).collect();
    assert_eq!(wd, [Some(0.0), Some(0.0), None]);
    let (m, _) = seeded_block(&MambaConfig::default(), 20, 1, 1);
    for (p, ..) in common::named_params(&m) {
        let grouped = common::in_groups(&groups, &p);
        assert_eq!(grouped, !p.starts_with("in_proj") && !p.starts_with("out_proj"), "{p}");
    }
    common::assert_key_error(
        MambaConfig { lr: Some(-1.0), ..MambaConfig::default() }.validate("model.layer"),
        "model.layer.lr",
    );
    assert!(MambaConfig { lr: Some(f64::NAN), ..MambaConfig::default() }.validate("model.layer").is_err());
    // Through the optimizer: the layer's rate reaches its groups, null leaves only the no-decay ones.
    let optim = |tokens: &[&str]| {
        let tokens = tokens.iter().map(|s| s.to_string()).collect();
        Optim::new(&ConfigRequest { tokens, ..Default::default() }.resolve().unwrap()).unwrap()
    };
    let o = optim(&["model=mamba", "model.layer.lr=0.003"]);
    let lrs: Vec<(&str, f64)> = o.groups.iter().map(|g| (g.name.as_str(), g.lr)).collect();
    assert_eq!(lrs, [("default", 0.01), ("ssm.A", 0.003), ("ssm.D", 0.003), ("ssm.scan", 0.003)]);
    let o = optim(&["model=mamba", "model.layer.lr=null"]);
    let lrs: Vec<(&str, f64)> = o.groups.iter().map(|g| (g.name.as_str(), g.lr)).collect();
    assert_eq!(lrs, [("default", 0.01), ("ssm.A", 0.01), ("ssm.D", 0.01)]);
    let bad = ConfigRequest { tokens: vec!["model=mamba".into(), "model.layer.lr=-0.1".into()], ..Default::default() };
    let err = bad.resolve().map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("model.layer.lr"), "{err}");
}

#[test]
fn rms_norm_is_mambas() {
    let (b, l, h) = (2, 3, 7);
    let dev = Device::flex();
    let Some(Norm::Rms(mut norm)) = Norm::new(NormKind::Rms, h, &dev) else { panic!("norm: rms is RMSNorm") };
    norm.gamma = burn::module::Param::from_tensor(t(randn(h, 31), [h], &dev));
    let norm = Norm::Rms(norm);
    let x = randn(b * l * h, 32);
    let y = host(norm.forward(t(x.clone(), [b, l, h], &dev)));
    let gamma = randn(h, 31);
    let mut expect = vec![0.0; b * l * h];
    for (row, out) in x.chunks(h).zip(expect.chunks_mut(h)) {
        let ms = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / h as f64;
        for j in 0..h {
            out[j] = row[j] as f64 / (ms + 1e-5).sqrt() * gamma[j] as f64;
        }
    }
    assert!(max_rel(&y, &expect) < 1e-6, "{}", max_rel(&y, &expect));
}

#[test]
fn mamba_model_has_the_reference_residual_structure_and_trains() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut tokens: Vec<String> = [
        "model=mamba",
        "model.d_model=32",
        "model.n_layers=2",
        "model.layer.d_state=4",
        "loader.batch_size=32",
        "trainer.max_epochs=5",
        "trainer.limit_train_batches=25",
        "trainer.progress_bar=never",
        "scheduler.warmup_steps=0",
        "optimizer.lr=0.01",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.push(format!("logger.save_dir={}", dir.path().display()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    // Pre-norm RMSNorm blocks without feed-forward, and a final RMSNorm (`norm_f`).
    let model = SequenceModel::new(&cfg.model, 1, 10, &Device::flex()).unwrap();
    assert!(matches!(model.norm, Some(Norm::Rms(_))));
    assert!(model.layers.iter().all(|b| b.prenorm && matches!(b.norm, Some(Norm::Rms(_))) && b.ff.is_none()));
    // A_log and D take no weight decay; everything else the optimizer's.
    let optim = Optim::new(&cfg).unwrap();
    let wd: Vec<(&str, f64)> = optim.groups.iter().map(|g| (g.name.as_str(), g.weight_decay)).collect();
    assert_eq!(wd, [("default", cfg.optimizer.weight_decay), ("ssm.A", 0.0), ("ssm.D", 0.0)]);
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let (first, last) = (s.train_history[0]["train/loss"], s.train_history.last().unwrap()["train/loss"]);
    assert!(last < first * 0.9, "train loss {first} -> {last}");
}

#[test]
fn weights_round_trip_through_the_mamba_lm_head_model_layout() {
    let _turn = serial();
    let tokens = ["model=mamba", "model.d_model=8", "model.n_layers=2", "model.layer.d_state=4", "model.pool=none"];
    let cfg = ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
        .resolve()
        .unwrap();
    let dev = Device::flex();
    let build = |seed| {
        dev.seed(seed);
        SequenceModel::for_tokens(&cfg.model, 11, 11, &dev).unwrap()
    };
    let (mut a, b) = (build(1), build(2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamba.safetensors");
    // lm_head has no bias: a nonzero one has no counterpart.
    let err = weights::export(&a, &path, Layout::Mamba, None, false).unwrap_err().to_string();
    assert!(err.contains("decoder.bias"), "{err}");
    a.decoder.as_mut().expect("a decoder").bias = Some(burn::module::Param::from_tensor(Tensor::zeros([11], &dev)));
    let (keys, _) = weights::export(&a, &path, Layout::Mamba, None, false).unwrap();
    let mut expect =
        vec!["backbone.embedding.weight".to_string(), "backbone.norm_f.weight".into(), "lm_head.weight".into()];
    for i in 0..2 {
        expect.push(format!("backbone.layers.{i}.norm.weight"));
        for k in [
            "in_proj.weight",
            "conv1d.weight",
            "conv1d.bias",
            "x_proj.weight",
            "dt_proj.weight",
            "dt_proj.bias",
            "A_log",
            "D",
            "out_proj.weight",
        ] {
            expect.push(format!("backbone.layers.{i}.mixer.{k}"));
        }
    }
    expect.sort();
    assert_eq!(keys, expect);
    let opts = ImportOptions { layout: Layout::Mamba, dt_transform: None, select: Select::All, partial: false };
    let (b, report) = weights::import(b, &path, &opts).unwrap();
    assert!(report.kept.is_empty() && report.ignored.is_empty(), "{report:?}");
    let x = t((0..2 * 9).map(|i| (i % 11) as f32).collect(), [2, 9, 1], &dev);
    let (ya, yb) = (host(a.forward(x.clone(), None)), host(b.forward(x, None)));
    assert_eq!(ya, yb);
}

#[test]
fn fused_block_matches_tensor_ops_in_value_and_gradient() {
    // The scan and the convolution with SiLU, fused, against the tensor-op block; with and
    // without the convolution's bias.
    for conv_bias in [true, false] {
        let cfg = MambaConfig { d_state: 5, d_conv: 3, conv_bias, ..MambaConfig::default() };
        let (b, l, h) = (2, 13, 6);
        let m = {
            let _turn = serial();
            Device::flex().seed(9);
            cfg.init(h, &Device::flex().autodiff())
        };
        let run = || {
            let x = t(randn(b * l * h, 41), [b, l, h], &Device::flex().autodiff()).require_grad();
            let y = m.forward(x.clone());
            let value = host(y.clone());
            let g = probe(y, 42).backward();
            let mut grads = vec![
                host(x.grad(&g).unwrap()),
                host(m.conv1d.weight.grad(&g).unwrap()),
                host(m.in_proj.weight.grad(&g).unwrap()),
                host(m.A_log.grad(&g).unwrap()),
            ];
            grads.extend(m.conv1d.bias.as_ref().map(|p| host(p.grad(&g).unwrap())));
            (value, grads)
        };
        let ((v1, g1), (v2, g2)) = (run(), wavessm::ops::with_generic_ops(run));
        assert!(max_rel(&v1, &v2) < 1e-5, "conv_bias {conv_bias}: out {}", max_rel(&v1, &v2));
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_rel(a, b) < 1e-4, "conv_bias {conv_bias}: gradient {i}: {}", max_rel(a, b));
        }
    }
}
