//! Mamba-2: the block's step mode against conv mode, its options and init, the `model=mamba2`
//! backbone and its weights under `MambaLMHeadModel`'s keys, the fused convolution against
//! tensor ops, and the `lm/mamba-text` experiment (Mamba-1) through `wavessm generate`.

mod common;

use std::process::Command;

use burn::tensor::{Device, Tensor};
use common::{data_dir, host, max_rel, probe, randn, serial, step_through, t};
use wavessm::config::ConfigRequest;
use wavessm::model::ssm::StepError;
use wavessm::model::ssm::mamba2::{Mamba2, Mamba2Config};
use wavessm::model::{LayerOptions, SeqLayer, SequenceModel};
use wavessm::train::{FitOptions, fit};
use wavessm::weights::{self, ImportOptions, Layout, Select};

/// A small seeded block (4 heads of 3 channels in 2 groups, chunks shorter than the input) and
/// an input [B, L, H].
fn seeded_block(b: usize, l: usize, h: usize, dev: &Device) -> (Mamba2, Tensor<3>) {
    let cfg = Mamba2Config { d_state: 5, d_conv: 3, headdim: 3, ngroups: 2, chunk_size: 4, ..Mamba2Config::default() };
    let _turn = serial();
    dev.seed(7);
    cfg.check_width("model.layer", h).unwrap();
    (cfg.init(h, dev), t(randn(b * l * h, 41), [b, l, h], dev))
}

#[test]
fn mamba2_step_and_prefill_then_step_equal_forward() {
    let (b, l, h) = (2, 11, 6);
    let (m, x) = seeded_block(b, l, h, &Device::flex());
    let y = host(m.forward(x.clone()));
    let mut s = m.stepper(b, l).unwrap();
    let stepped = step_through(&x, |xt| m.step(&mut s, xt).unwrap());
    assert!(max_rel(&stepped, &y) < 1e-4, "step vs forward: {}", max_rel(&stepped, &y));
    let (_, state) = m.forward_state(x.clone(), None).unwrap();
    let reached = m.state(&s).unwrap();
    assert!(max_rel(&host(reached.ssm), &host(state.ssm)) < 1e-4, "stepped state vs conv-mode state");
    // Prompts shorter and longer than the convolution and than a chunk, then steps.
    for p in [1, 2, 7] {
        let (y0, state) = m.forward_state(x.clone().narrow(1, 0, p), None).unwrap();
        let mut s = m.stepper(b, l).unwrap();
        m.set_state(&mut s, &state).unwrap();
        let rest = step_through(&x.clone().narrow(1, p, l - p), |xt| m.step(&mut s, xt).unwrap());
        let expect = host(m.forward(x.clone()).narrow(1, p, l - p));
        assert!(max_rel(&rest, &expect) < 1e-4, "prefill {p}: {}", max_rel(&rest, &expect));
        let head = host(m.forward(x.clone()).narrow(1, 0, p));
        assert!(max_rel(&host(y0), &head) < 1e-4, "prefill {p} outputs");
    }
    // A wrongly shaped state is an error, not a panic.
    let mut s = m.stepper(b + 1, l).unwrap();
    assert!(matches!(m.step(&mut s, x.narrow(1, 0, 1).reshape([b, h])), Err(StepError::Shape { .. })));
}

#[test]
fn mamba2_init_and_options() {
    let (h, cfg) = (64, Mamba2Config::default());
    let dev = Device::flex();
    let m = cfg.init(h, &dev);
    let (e, nh, n) = (2 * h, 2, 16);
    assert_eq!(m.in_proj.weight.dims(), [h, 2 * e + 2 * n + nh]);
    assert_eq!(m.conv1d.weight.dims(), [e + 2 * n, 1, 4]);
    assert_eq!((m.A_log.dims(), m.D.dims(), m.dt_bias.dims(), m.norm.weight.dims()), ([nh], [nh], [nh], [e]));
    // A in A_init_range; softplus(dt_bias) log-uniform in [dt_min, dt_max].
    assert!(host(m.A_log.val()).iter().all(|v| (1.0..=16.0).contains(&v.exp())));
    assert!(host(m.dt_bias.val()).iter().all(|v| (1e-3 * 0.999..=0.1 * 1.001).contains(&v.exp().ln_1p())));

    let parse = |y: &str| serde_yaml::from_str::<Mamba2Config>(y);
    assert_eq!(parse("{}").unwrap(), cfg);
    assert!(parse("{d_model: 3}").is_err(), "unknown keys are refused");
    for (yaml, key) in [
        ("{headdim: 0}", "headdim"),
        ("{chunk_size: 0}", "chunk_size"),
        ("{A_init_range: [0.0, 16.0]}", "A_init_range"),
        ("{dt_min: 0.5, dt_max: 0.1}", "dt_min"),
        ("{dt_limit: [0.1, 0.01]}", "dt_limit"),
    ] {
        let err = parse(yaml).unwrap().validate("model.layer").unwrap_err().to_string();
        assert!(err.contains(&format!("model.layer.{key}")), "{yaml}: {err}");
    }
    // expand·d_model = 2·20 = 40 heads of 64 channels: no.
    let err = cfg.check_width("model.layer", 20).unwrap_err().to_string();
    assert!(err.contains("model.layer.headdim"), "{err}");
    let err = Mamba2Config { headdim: 8, ngroups: 3, ..cfg.clone() }.check_width("model.layer", 20).unwrap_err();
    assert!(err.to_string().contains("model.layer.ngroups"), "{err}");
}

/// `lr` puts every tensor but `out_proj` and the gated norm in the layer's optimizer groups
/// (`A_log`, `D`, `dt_bias` without weight decay) and refuses a negative rate by its key.
#[test]
fn mamba2_lr_groups_the_scan_tensors_and_is_range_checked() {
    let cfg = Mamba2Config { bias: true, ..Mamba2Config::default() };
    let groups = cfg.param_groups();
    let keys: Vec<(&str, Option<f64>, Option<f64>)> = groups.iter().map(|g| (g.key, g.lr, g.wd)).collect();
    let (lr, no) = (Some(0.001), Some(0.0));
    assert_eq!(keys, [("A", lr, no), ("D", lr, no), ("dt", lr, no), ("scan", lr, None)]);
    for (p, ..) in common::named_params(&cfg.init(64, &Device::flex())) {
        let grouped = common::in_groups(&groups, &p);
        assert_eq!(grouped, !p.starts_with("out_proj") && !p.starts_with("norm"), "{p}");
    }
    common::assert_key_error(
        Mamba2Config { lr: Some(-1.0), ..Mamba2Config::default() }.validate("model.layer"),
        "model.layer.lr",
    );
    assert!(Mamba2Config { lr: None, ..Mamba2Config::default() }.param_groups().iter().all(|g| g.lr.is_none()));
}

#[test]
fn mamba2_model_trains() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut tokens: Vec<String> = [
        "model=mamba2",
        "model.d_model=32",
        "model.n_layers=2",
        "model.layer.d_state=8",
        "model.layer.headdim=16",
        "model.layer.chunk_size=64",
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
    SequenceModel::new(&cfg.model, 1, 10, &Device::flex()).unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let (first, last) = (s.train_history[0]["train/loss"], s.train_history.last().unwrap()["train/loss"]);
    assert!(last < first * 0.9, "train loss {first} -> {last}");
    // A headdim that does not divide the inner width is refused by name.
    let bad = ConfigRequest { tokens: vec!["model=mamba2".into(), "model.d_model=20".into()], ..Default::default() };
    let err = bad.resolve().and_then(|c| SequenceModel::new(&c.model, 1, 10, &Device::flex()).map(|_| ()));
    assert!(format!("{:#}", err.unwrap_err()).contains("model.layer.headdim"));
}

#[test]
fn mamba_text_fits_and_generates() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let tokens: Vec<String> = [
        "experiment=lm/mamba-text",
        "data.seq_len=64",
        "model.d_model=32",
        "model.n_layers=2",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=5",
        "trainer.limit_eval_batches=2",
        "trainer.progress_bar=never",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("data.path={}", data_dir().join("text/sotu").display()),
        format!("logger.save_dir={}", dir.path().display()),
    ])
    .collect();
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    assert_eq!(cfg.model.layer.name, "mamba");
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let ck = s.run.join("checkpoints/best.bpk");
    let o = Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(["generate", "--ckpt", ck.to_str().unwrap(), "--prompt", "The ", "--length", "16", "--seed", "1"])
        .env_remove("WAVESSM_CONFIG_DIR")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    // 16 tokens after the prompt (one of them may print as `<unk>`).
    assert!(text.starts_with("The ") && text.trim_end_matches('\n').chars().count() >= 4 + 16, "{text:?}");
}

#[test]
fn mamba2_fused_conv_matches_tensor_ops_in_value_and_gradient() {
    let (b, l, h) = (2, 9, 6);
    let (m, x) = seeded_block(b, l, h, &Device::flex().autodiff());
    let x = x.require_grad();
    let run = || {
        let y = m.forward(x.clone());
        let g = probe(y.clone(), 43).backward();
        let grads = [
            host(x.grad(&g).unwrap()),
            host(m.in_proj.weight.grad(&g).unwrap()),
            host(m.conv1d.weight.grad(&g).unwrap()),
            host(m.A_log.grad(&g).unwrap()),
            host(m.dt_bias.grad(&g).unwrap()),
            host(m.norm.weight.grad(&g).unwrap()),
        ];
        (host(y), grads)
    };
    let (y1, g1) = run();
    let (y2, g2) = wavessm::ops::with_generic_ops(run);
    assert!(max_rel(&y1, &y2) < 1e-5, "out {}", max_rel(&y1, &y2));
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert!(max_rel(a, b) < 1e-4, "gradient {i}: {}", max_rel(a, b));
    }
}

#[test]
fn weights_round_trip_through_the_mamba_lm_head_model_layout() {
    let _turn = serial();
    let tokens = ["model=mamba2", "model.d_model=8", "model.n_layers=2", "model.layer.headdim=4", "model.pool=none"];
    let cfg = ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
        .resolve()
        .unwrap();
    let dev = Device::flex();
    let build = |seed| {
        dev.seed(seed);
        let mut m = SequenceModel::for_tokens(&cfg.model, 11, 11, &dev).unwrap();
        m.decoder.as_mut().expect("a decoder").bias = Some(burn::module::Param::from_tensor(Tensor::zeros([11], &dev)));
        m
    };
    let (a, b) = (build(1), build(2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mamba2.safetensors");
    let (keys, _) = weights::export(&a, &path, Layout::Mamba, None, false).unwrap();
    let mut expect =
        vec!["backbone.embedding.weight".to_string(), "backbone.norm_f.weight".into(), "lm_head.weight".into()];
    for i in 0..2 {
        expect.push(format!("backbone.layers.{i}.norm.weight"));
        for k in [
            "in_proj.weight",
            "conv1d.weight",
            "conv1d.bias",
            "dt_bias",
            "A_log",
            "D",
            "norm.weight",
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
    assert_eq!(host(a.forward(x.clone(), None)), host(b.forward(x, None)));
}
