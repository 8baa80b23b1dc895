//! The `transformer` layer: KV-cache step mode and prefill against conv mode (across several
//! query blocks), bidirectional attention, option errors, and training on the embedded default.

mod common;

use burn::tensor::{Device, Tensor};
use common::{host, max_rel, randn, serial, step_through, t};
use wavessm::config::ConfigRequest;
use wavessm::model::attention::mha::QUERY_BLOCK;
use wavessm::model::attention::pos::PosKind;
use wavessm::model::attention::{Transformer, TransformerConfig};
use wavessm::model::ssm::StepError;
use wavessm::model::{LayerOptions, SeqLayer, SequenceModel};
use wavessm::train::{FitOptions, fit};

/// A small layer without dropout; `max_len` fits `l`.
fn layer(pos: PosKind, causal: bool, norm_first: bool, l: usize) -> Transformer {
    let cfg = TransformerConfig {
        n_heads: 2,
        causal,
        norm_first,
        ff: Some(16),
        dropout: 0.0,
        pos,
        max_len: Some(l),
        ..TransformerConfig::default()
    };
    cfg.validate("model.layer").unwrap();
    cfg.check_width("model.layer", 8).unwrap();
    cfg.init(8, &Device::flex())
}

#[test]
fn causal_steps_and_prefill_equal_forward() {
    let _turn = serial();
    // Past one query block, so the blocks' masks and key ranges are exercised.
    let (b, l) = (2, QUERY_BLOCK + 9);
    let dev = Device::flex();
    let x: Tensor<3> = t(randn(b * l * 8, 11), [b, l, 8], &dev);
    for (pos, norm_first) in
        [(PosKind::Rope, true), (PosKind::Sin, false), (PosKind::Learned, true), (PosKind::None, false)]
    {
        let m = layer(pos, true, norm_first, l);
        let y = host(m.forward(x.clone()));
        let mut s = m.stepper(b, l).unwrap();
        let stepped = step_through(&x, |xt| m.step(&mut s, xt).unwrap());
        assert!(max_rel(&stepped, &y) < 1e-4, "{pos:?}: step vs forward {}", max_rel(&stepped, &y));
        // Prompt in conv mode (two chunks), then steps from its cache.
        let (p1, p2) = (100, QUERY_BLOCK + 1);
        let (y1, s1) = m.forward_state(x.clone().narrow(1, 0, p1), None).unwrap();
        let (y2, s2) = m.forward_state(x.clone().narrow(1, p1, p2 - p1), Some(&s1)).unwrap();
        let mut s = m.stepper(b, l).unwrap();
        m.set_state(&mut s, &s2).unwrap();
        let y3 = m.forward_state(x.clone().narrow(1, p2, l - p2), Some(&m.state(&s).unwrap())).unwrap().0;
        let joined = host(Tensor::cat(vec![y1, y2, y3], 1));
        assert!(max_rel(&joined, &y) < 1e-4, "{pos:?}: chunks vs forward {}", max_rel(&joined, &y));
    }
}

#[test]
fn bidirectional_attention_sees_the_future_and_has_no_step_mode() {
    let (b, l) = (1, 6);
    let dev = Device::flex();
    let x: Tensor<3> = t(randn(b * l * 8, 12), [b, l, 8], &dev);
    // A random change (LayerNorm would cancel a constant one).
    let nudge: Tensor<3> = t(randn(8, 14), [1, 1, 8], &dev);
    let later = Tensor::cat(vec![x.clone().narrow(1, 0, l - 1), x.clone().narrow(1, l - 1, 1) + nudge], 1);
    for causal in [true, false] {
        let m = layer(PosKind::Rope, causal, true, l);
        let first = |x: Tensor<3>| host(m.forward(x).narrow(1, 0, 1));
        let moved = max_rel(&first(later.clone()), &first(x.clone()));
        assert_eq!(moved > 1e-3, !causal, "causal {causal}: the first output moved by {moved}");
    }
    let m = layer(PosKind::Rope, false, true, l);
    let e = m.stepper(b, l).expect_err("no step mode");
    assert!(matches!(e, StepError::NoRecurrentForm { .. }) && e.to_string().contains("model.layer.causal"), "{e}");
    assert!(matches!(m.forward_state(x, None), Err(StepError::NoRecurrentForm { .. })));
}

#[test]
fn learned_positions_refuse_steps_past_max_len() {
    let m = layer(PosKind::Learned, true, true, 4);
    let x: Tensor<3> = t(randn(5 * 8, 13), [1, 5, 8], &Device::flex());
    assert!(matches!(m.forward_state(x.clone(), None), Err(StepError::Shape { .. })));
    assert!(m.forward_state(x.narrow(1, 0, 4), None).is_ok());
}

#[test]
fn bad_options_name_their_key() {
    let dev = Device::flex();
    for (tokens, key) in [
        (&["model.d_model=30", "model.layer.n_heads=4"][..], "model.layer.n_heads"),
        (&["model.d_model=12", "model.layer.n_heads=4", "model.layer.pos=rope"][..], "model.layer.n_heads"), // odd head size
        (&["model.layer.dropout=1.0"][..], "model.layer.dropout"),
        (&["model.layer.pos=learned"][..], "model.layer.max_len"),
        (&["model.layer.ff=0"][..], "model.layer.ff"),
    ] {
        let mut all = vec!["model=transformer".to_string()];
        all.extend(tokens.iter().map(|s| s.to_string()));
        // Ranges fail when the config resolves; width checks when the model is built.
        let req = ConfigRequest { tokens: all, ..Default::default() };
        let err = match req.resolve() {
            Err(e) => e.to_string(),
            Ok(cfg) => SequenceModel::new(&cfg.model, 1, 10, &dev).expect_err("an error").to_string(),
        };
        assert!(err.contains(key), "{tokens:?}: {err}");
    }
}

#[test]
fn transformer_learns_the_embedded_default() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    // The shipped causal layer, read out at the last position (`pool: last`): a mean over
    // causal positions averages prefixes and stays near 0.8 at this size. 12 epochs: at 8 the
    // result depends on the dropout masks (0.76–0.93 over seeds 0–2).
    let tokens = ["model=transformer", "model.d_model=32", "trainer.max_epochs=12", "trainer.progress_bar=never"];
    let mut tokens: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
    tokens.push(format!("logger.save_dir={}", dir.path().display()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let acc = s.test.expect("tested after fit")["test/accuracy"];
    assert!(acc >= 0.85, "test accuracy {acc} < 0.85");
}
