//! The loss manager: each term against its closed form on host values, the weighted sum, a
//! scheduled weight (KL warm-up), and the checks of its config.

mod common;

use std::collections::BTreeMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use wavessm::data::BatchTargets;
use wavessm::model::chain::links::{Shape, Steps};
use wavessm::task::loss_manager::{At, LossManager, LossTermConfig, TermMetrics};

const B: usize = 2;
const L: usize = 3;

fn terms(yaml: &str) -> Vec<LossTermConfig> {
    serde_yaml::from_str(yaml).unwrap()
}

/// Shapes of the values the tests use: `x` and `rec` [B, L, 2], `z.mu`/`z.logvar` and
/// `logits` [B, 1, 4].
fn shapes() -> BTreeMap<String, Shape> {
    let all = Shape { steps: Steps::All, width: 2 };
    let one = Shape { steps: Steps::One, width: 4 };
    [("x", all), ("rec", all), ("z", one), ("z.mu", one), ("z.logvar", one), ("logits", one)]
        .into_iter()
        .map(|(k, s)| (k.to_string(), s))
        .collect()
}

/// Random host values of [`shapes`] and the tensors holding them.
fn values() -> (BTreeMap<String, Vec<f32>>, BTreeMap<String, Tensor<3>>) {
    let dev = Device::flex();
    let mut host = BTreeMap::new();
    let mut t = BTreeMap::new();
    for (i, (k, s)) in shapes().into_iter().enumerate() {
        let l = if s.steps == Steps::All { L } else { 1 };
        let v = common::randn(B * l * s.width, 11 + i as u64);
        t.insert(k.clone(), Tensor::<3>::from_data(TensorData::new(v.clone(), [B, l, s.width]), &dev));
        host.insert(k, v);
    }
    (host, t)
}

fn labels() -> (Vec<i64>, BatchTargets) {
    let y = vec![1i64, 3];
    (y.clone(), BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(y, [B]), &Device::flex())))
}

/// Each term's value next to its closed form.
#[test]
fn each_term_matches_its_closed_form() {
    let (h, v) = values();
    let (y, targets) = labels();
    let lm = LossManager::new(
        &terms(
            "
- {name: sq, _name_: mse, input: rec, target: x}
- {name: abs, _name_: l1, input: rec, target: x, weight: 0.5}
- {name: kl, _name_: kl_gaussian, input: z, weight: 0.1}
- {name: ce, _name_: cross_entropy, input: logits, target: y, weight: 2.0}
",
        ),
        &shapes(),
        "model.options.loss",
    )
    .unwrap();
    let (total, got) = lm.loss(&v, &targets, None);
    let got: BTreeMap<String, f64> = got.into_iter().map(|(n, t)| (n, t.into_scalar::<f64>())).collect();
    let pairs = |a: &str, b: &str| h[a].iter().zip(&h[b]).map(|(p, q)| (*p - *q) as f64).collect::<Vec<_>>();
    let d = pairs("rec", "x");
    let mse = d.iter().map(|e| e * e).sum::<f64>() / d.len() as f64;
    let l1 = d.iter().map(|e| e.abs()).sum::<f64>() / d.len() as f64;
    let kl = h["z.mu"]
        .iter()
        .zip(&h["z.logvar"])
        .map(|(&m, &lv)| 0.5 * ((lv as f64).exp() + (m as f64).powi(2) - lv as f64 - 1.0))
        .sum::<f64>()
        / B as f64;
    let ce = (0..B)
        .map(|b| {
            let row: Vec<f64> = h["logits"][b * 4..(b + 1) * 4].iter().map(|&v| v as f64).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            lse - row[y[b] as usize]
        })
        .sum::<f64>()
        / B as f64;
    let want = [("sq", mse), ("abs", l1), ("kl", kl), ("ce", ce)];
    for (name, w) in want {
        assert!((got[name] - w).abs() < 1e-5 * w.abs().max(1.0), "{name}: {} vs {w}", got[name]);
    }
    let sum = mse + 0.5 * l1 + 0.1 * kl + 2.0 * ce;
    assert!((total.into_scalar::<f64>() - sum).abs() < 1e-5 * sum.abs().max(1.0));
    // kl_gaussian also takes the two values by name.
    let lm2 =
        LossManager::new(&terms("[{name: kl, _name_: kl_gaussian, input: [z.mu, z.logvar]}]"), &shapes(), "l").unwrap();
    assert!((lm2.loss(&v, &targets, None).0.into_scalar::<f64>() - kl).abs() < 1e-5 * kl.max(1.0));
}

#[test]
fn a_weight_follows_its_schedule() {
    let lm = LossManager::new(
        &terms(
            "
- {name: rec, _name_: mse, input: rec, target: x}
- {name: kl, _name_: kl_gaussian, input: z, weight: 0.2, schedule: {_name_: constant, warmup_steps: 10}}
",
        ),
        &shapes(),
        "loss",
    )
    .unwrap();
    let at = |step| Some(At { step, total: 100, per_epoch: 10 });
    // Linear warm-up from 1/10 of the weight at step 0 to all of it at step 9, then constant;
    // evaluation (no step) uses the base weight.
    for (step, w) in [(0, 0.02), (4, 0.1), (9, 0.2), (50, 0.2)] {
        let got = lm.weights(at(step));
        assert_eq!(got[0], 1.0);
        assert!((got[1] - w).abs() < 1e-12, "step {step}: {got:?}");
    }
    assert_eq!(lm.weights(None), vec![1.0, 0.2]);
    let (_, v) = values();
    let (_, y) = labels();
    let (t0, terms0) = lm.loss(&v, &y, at(0));
    let (t9, _) = lm.loss(&v, &y, at(9));
    let (rec, kl) = (terms0[0].1.clone().into_scalar::<f64>(), terms0[1].1.clone().into_scalar::<f64>());
    assert!((t0.into_scalar::<f64>() - (rec + 0.02 * kl)).abs() < 1e-4);
    assert!((t9.into_scalar::<f64>() - (rec + 0.2 * kl)).abs() < 1e-4);
}

#[test]
fn term_metrics_are_batch_weighted_means() {
    let mut m = TermMetrics::default();
    m.update(3.0, &[("rec".into(), 2.0)], 1);
    m.update(6.0, &[("rec".into(), 5.0)], 2);
    let f = m.finish();
    assert_eq!((f["loss"], f["loss/rec"]), (5.0, 4.0));
}

#[test]
fn bad_terms_name_their_key() {
    let bad = |yaml: &str| LossManager::new(&terms(yaml), &shapes(), "model.options.loss").unwrap_err().to_string();
    let e = bad("[{name: rec, _name_: mse, input: dec, target: x}]");
    assert!(e.contains("model.options.loss.0.input") && e.contains("no value `dec`"), "{e}");
    let e = bad("[{name: rec, _name_: mse, input: rec, target: logits}]");
    assert!(e.contains("model.options.loss.0.target") && e.contains("[B, L, 2]") && e.contains("[B, 1, 4]"), "{e}");
    let e = bad("[{name: rec, _name_: mse, input: rec}]");
    assert!(e.contains("model.options.loss.0.target"), "{e}");
    let e = bad("[{name: kl, _name_: kl_gaussian, input: z, target: x}]");
    assert!(e.contains("model.options.loss.0.target"), "{e}");
    let e = bad("[{name: kl, _name_: kl_gaussian, input: [z.mu, rec]}]");
    assert!(e.contains("model.options.loss.0.input") && e.contains("differ"), "{e}");
    let e = bad("[{name: ce, _name_: cross_entropy, input: logits, target: x}]");
    assert!(e.contains("model.options.loss.0.target") && e.contains("`y`"), "{e}");
    let e = bad("[{name: a, _name_: l1, input: rec, target: x}, {name: a, _name_: mse, input: rec, target: x}]");
    assert!(e.contains("model.options.loss.1.name"), "{e}");
    let e = bad("[{name: a, _name_: l1, input: rec, target: x, weight: -1.0}]");
    assert!(e.contains("model.options.loss.0.weight"), "{e}");
    let e = bad("[{name: a, _name_: l1, input: rec, target: x, schedule: {_name_: step}}]");
    assert!(e.contains("model.options.loss.0.schedule"), "{e}");
    let e = LossManager::new(&[], &shapes(), "model.options.loss").unwrap_err().to_string();
    assert!(e.contains("model.options.loss"), "{e}");
    let e = serde_yaml::from_str::<Vec<LossTermConfig>>("[{name: a, _name_: huber, input: rec}]").unwrap_err();
    assert!(e.to_string().contains("huber"), "{e}");
}

/// `cross_entropy` skips labels as PyTorch's `ignore_index` does: negative ones (the data's -1,
/// PyTorch's default -100) and the term's `ignore_index`; the mean is over the scored rows.
#[test]
fn cross_entropy_skips_the_ignore_index() {
    let (h, v) = values();
    let row_nll = |b: usize, y: usize| {
        let row: Vec<f64> = h["logits"][b * 4..(b + 1) * 4].iter().map(|&v| v as f64).collect();
        row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[y]
    };
    let ce = |yaml: &str, y: Vec<i64>| {
        let lm = LossManager::new(&terms(yaml), &shapes(), "loss").unwrap();
        let y = BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(y, [B]), &Device::flex()));
        lm.loss(&v, &y, None).0.into_scalar::<f64>()
    };
    let plain = "[{name: ce, _name_: cross_entropy, input: logits, target: y}]";
    let ignore3 = "[{name: ce, _name_: cross_entropy, input: logits, target: y, ignore_index: 3}]";
    let close = |a: f64, b: f64| (a - b).abs() < 1e-5 * b.abs().max(1.0);
    for (yaml, y, want) in [
        (plain, vec![-100, 3], row_nll(1, 3)),
        (plain, vec![2, -1], row_nll(0, 2)),
        (ignore3, vec![1, 3], row_nll(0, 1)),
        (ignore3, vec![3, 0], row_nll(1, 0)),
        (ignore3, vec![1, 2], (row_nll(0, 1) + row_nll(1, 2)) / 2.0),
        (plain, vec![-100, -1], 0.0),
    ] {
        let got = ce(yaml, y.clone());
        assert!(close(got, want), "{yaml} {y:?}: {got} vs {want}");
    }
    let e = LossManager::new(&terms("[{name: a, _name_: l1, input: rec, target: x, ignore_index: 0}]"), &shapes(), "l")
        .unwrap_err()
        .to_string();
    assert!(e.contains("l.0.ignore_index"), "{e}");
}
