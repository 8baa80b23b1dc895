//! `task=autoencoder` and `model=gw_autoencoder`: the tensor-op shifted-Pearson score against
//! ml4gw's outputs (`$WAVESSM_GOLDEN_DIR/gw/shifted_pearson.json`) and the host form, its
//! gradients, the per-detector grouping of the autoencoder, option and pairing errors, and
//! `experiment=gw/autoencoder` training a few steps and scoring the labelled windows.

mod common;

use burn::tensor::{Device, Tensor};
use wavessm::config::ConfigRequest;
use wavessm::model::conv::GwAutoencoderConfig;
use wavessm::model::{Classifier, ClassifierOptions};
use wavessm::task::autoencoder::{autoencoder_score, shifted_pearson};
use wavessm::train::{FitOptions, fit};

/// A golden [B, C, T] array as a [B, T, C] tensor (the models' step-major layout).
fn steps_last(a: &common::Array, dev: &Device) -> Tensor<3> {
    common::tensor::<3>(a, dev).swap_dims(1, 2)
}

#[test]
fn score_matches_ml4gw_and_the_host_form() {
    let g = common::load(&common::golden_dir().join("gw/shifted_pearson.json"));
    let dev = Device::flex();
    let s = g.cfg_usize("max_shift");
    let (x, x_hat) = (steps_last(g.input("X"), &dev), steps_last(g.input("X_hat"), &dev));
    let corr = shifted_pearson(x.clone(), x_hat.clone().flip([2]), s); // [2S+1, B, C]
    let worst = g.check("corr", &common::host(corr.clone()), g.output("corr"));
    g.check("corr_max", &common::host(corr.max_dim(0)), g.output("corr_max"));
    let score = common::host(autoencoder_score(x.clone(), x_hat.clone(), s));
    g.check("score", &score, g.output("score"));
    g.check("loss", &score.iter().map(|v| -v).collect::<Vec<_>>(), g.output("loss"));
    println!("shifted_pearson: worst corr error / tolerance {worst:.3}");

    // The host form (f64) on the same windows: [B][C][T] rows.
    let rows = |a: &common::Array| -> Vec<Vec<Vec<f64>>> {
        let t = a.shape[2];
        a.data.chunks(t).map(<[f64]>::to_vec).collect::<Vec<_>>().chunks(a.shape[1]).map(<[_]>::to_vec).collect()
    };
    let (xr, hr) = (rows(g.input("X")), rows(g.input("X_hat")));
    let host: Vec<f64> =
        xr.iter().zip(&hr).map(|(x, h)| wavessm::task::shifted_pearson::autoencoder_score(x, h, s)).collect();
    assert!(common::max_rel(&score, &host) < 1e-5, "tensor {score:?} vs host {host:?}");
}

#[test]
fn score_gradients_match_finite_differences() {
    let dev = Device::flex().autodiff();
    let (b, l, c, s) = (3, 64, 2, 5);
    let x = common::t(common::randn(b * l * c, 1), [b, l, c], &dev);
    let h0 = common::randn(b * l * c, 2);
    let v = common::randn(b * l * c, 3);
    let loss = |h: Tensor<3>| -autoencoder_score(x.clone(), h, s).mean();
    let h = common::t(h0.clone(), [b, l, c], &dev).require_grad();
    let grads = loss(h.clone()).backward();
    let g = common::host(h.grad(&grads).expect("gradient reaches the reconstruction"));
    let analytic: f64 = g.iter().zip(&v).map(|(a, b)| a * *b as f64).sum();
    let at = |eps: f64| {
        let h: Vec<f32> = h0.iter().zip(&v).map(|(a, b)| a + eps as f32 * b).collect();
        loss(common::t(h, [b, l, c], &dev)).into_scalar::<f64>()
    };
    // The max over shifts is piecewise smooth; a small step stays on one piece.
    let numeric = (at(1e-3) - at(-1e-3)) / 2e-3;
    let rel = (analytic - numeric).abs() / analytic.abs().max(1e-3);
    assert!(rel < 2e-2, "analytic {analytic} vs numeric {numeric}");
}

fn small() -> GwAutoencoderConfig {
    serde_yaml::from_str("{encode_channels: [4, 8, 8], kernel_size: 5}").unwrap()
}

#[test]
fn gw_autoencoder_keeps_each_detector_apart() {
    let _turn = common::serial();
    for (dev, mode) in [(Device::flex(), "eval"), (Device::flex().autodiff(), "train")] {
        for skip in ["concat", "add", "none"] {
            let mut cfg = small();
            cfg.skip_connection = serde_yaml::from_str(skip).unwrap();
            let m = cfg.init(2, 2, &dev).unwrap();
            for l in [100, 37] {
                let x0 = common::randn(4 * l * 2, 5);
                let mut x1 = x0.clone();
                // Change detector 1 only ([B, L, C] row-major: odd entries).
                x1.iter_mut().skip(1).step_by(2).for_each(|v| *v = -3.0 * *v + 1.0);
                let y0 = common::host(m.forward(common::t(x0, [4, l, 2], &dev), None));
                let y1 = common::host(m.forward(common::t(x1, [4, l, 2], &dev), None));
                assert_eq!(y0.len(), 4 * l * 2, "{mode} {skip}: output shape");
                let (d0, d1) = (0..2).fold((0f64, 0f64), |acc, ch| {
                    let d = y0.iter().zip(&y1).skip(ch).step_by(2).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
                    if ch == 0 { (d, acc.1) } else { (acc.0, d) }
                });
                assert_eq!(d0, 0.0, "{mode} {skip} L={l}: detector 0's reconstruction saw detector 1");
                assert!(d1 > 0.0, "{mode} {skip} L={l}: detector 1's reconstruction ignored its input");
            }
        }
    }
}

#[test]
fn bad_options_and_pairings_name_the_key() {
    for (yaml, key) in [
        ("{encode_channels: []}", "model.options.encode_channels"),
        ("{encode_channels: [4, 0]}", "model.options.encode_channels"),
        ("{kernel_size: 6}", "model.options.kernel_size"),
        ("{stride: 0}", "model.options.stride"),
        ("{stride: 9, kernel_size: 7}", "model.options.stride"),
    ] {
        let e = serde_yaml::from_str::<GwAutoencoderConfig>(yaml)
            .unwrap()
            .validate("model.options")
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{yaml}: {e}");
    }
    let e = small().init(2, 1, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("model._name_"), "{e}");
    // A backbone mixes detectors: task=autoencoder refuses it; classification refuses the AE.
    for (tokens, key) in [
        (vec!["data=gw", "task=autoencoder", "model.pool=none"], "model._name_"),
        (vec!["data=gw", "model=gw_autoencoder"], "model._name_"),
        (vec!["data=gw", "experiment=gw/autoencoder", "task.max_shift=5000"], "task.max_shift"),
        (vec!["experiment=gw/autoencoder", "task.max_fpr=0"], "task.max_fpr"),
    ] {
        let dir = common::data_dir().join("gw");
        if !dir.join("X_train.npy").is_file() {
            println!("SKIP pairing checks: {} not found (set WAVESSM_DATA_DIR)", dir.display());
            return;
        }
        let mut tokens: Vec<String> = tokens.iter().map(|s| s.to_string()).collect();
        tokens.push(format!("data.path={}", dir.display()));
        let e = ConfigRequest { tokens: tokens.clone(), ..Default::default() }
            .resolve()
            .map_err(anyhow::Error::from)
            .and_then(|cfg| wavessm::train::fit::Setup::new(&cfg, Device::flex()).map(|_| ()))
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "{tokens:?}: {e}");
    }
}

#[test]
fn gw_autoencoder_trains_and_scores_the_labelled_windows() {
    let dir = common::data_dir().join("gw");
    if !dir.join("X_train.npy").is_file() {
        println!("SKIP gw: {} not found (set WAVESSM_DATA_DIR)", dir.display());
        return;
    }
    let _turn = common::serial();
    let out = tempfile::tempdir().unwrap();
    let tokens = [
        "experiment=gw/autoencoder".to_string(),
        format!("data.path={}", dir.display()),
        format!("logger.save_dir={}", out.path().display()),
        "trainer.progress_bar=never".into(),
        "trainer.max_epochs=1".into(),
        "trainer.limit_train_batches=3".into(),
    ];
    let cfg = ConfigRequest { tokens: tokens.to_vec(), ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    assert_eq!(s.steps, 3);
    let test = s.test.expect("tested after fit");
    println!("gw/autoencoder after 3 steps: {test:?}");
    for k in ["test/auroc", "test/pauc", "test/eff@fpr0.01", "test/loss"] {
        assert!(test.get(k).is_some_and(|v| v.is_finite()), "{k}: {test:?}");
    }
    // The loss is −score and every correlation lies in [−1, 1].
    assert!((-(2f64.sqrt())..=0.0).contains(&test["test/loss"]), "{test:?}");
    assert!((0.0..=1.0).contains(&test["test/auroc"]), "{test:?}");
    // Every training window is an injection: the training AUROC has one class (reported ½).
    assert_eq!(s.train_history[0]["train/auroc"], 0.5, "{:?}", s.train_history);

    // `predict` writes each test window's score; ranked against the labels it gives test/auroc.
    let (best, csv) = (s.run.join("checkpoints/best.bpk"), out.path().join("scores.csv"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_wavessm"))
        .args(["predict", "--ckpt", best.to_str().unwrap(), "--out", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("index,target,score"));
    let (scores, positive): (Vec<f64>, Vec<bool>) = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[2].parse::<f64>().unwrap(), f[1] == "1")
        })
        .unzip();
    let auroc = wavessm::task::binary::auroc(&scores, &positive).unwrap();
    assert!((auroc - test["test/auroc"]).abs() < 1e-3, "predict {auroc} vs fit {test:?}");
}
