//! `data=gw`: aframe's online augmentation (what each one does, seeded by (seed, epoch, batch)
//! so resumed runs match, option checks), and `experiment=gw/resnet1d` learning the shared
//! detection set.

mod common;

use burn::tensor::Device;
use wavessm::config::{ConfigRequest, Named};
use wavessm::data::augment::{Augmentation, train_batch};
use wavessm::data::gw::GwAugment;
use wavessm::data::{DataConfig, SeqData, Targets};
use wavessm::train::{FitOptions, fit};

/// 8 windows of [L=5, C=2], labels alternating 0, 1; value = 100 i + 10 c + t + 1.
fn split() -> SeqData {
    let (n, l, c) = (8, 5, 2);
    let x: Vec<f32> = (0..n)
        .flat_map(|i| (0..l).flat_map(move |t| (0..c).map(move |ch| (100 * i + 10 * ch + t + 1) as f32)))
        .collect();
    SeqData::dense(x, l, c, Targets::Classes { labels: (0..n as u32).map(|i| i % 2).collect(), n_classes: 2 })
}

fn run(aug: GwAugment, key: (u64, usize, usize)) -> (Vec<f32>, Vec<i64>) {
    let s = split();
    let idx: Vec<usize> = (0..8).collect();
    let b = train_batch(&s, &idx, Some(&Augmentation::Gw(aug)), key, &Device::flex());
    let y = match b.y {
        wavessm::data::BatchTargets::Classes(t) => t.try_into_vec_as::<i64>().unwrap(),
        _ => unreachable!(),
    };
    (b.x.try_into_vec_as::<f32>().unwrap(), y)
}

fn none() -> GwAugment {
    GwAugment { sign_flip: 0.0, time_reverse: 0.0, swap_prob: 0.0, mute_prob: 0.0 }
}

/// Window `i`, step `t`, detector `ch` of a batch [8, 5, 2].
fn at(x: &[f32], i: usize, t: usize, ch: usize) -> f32 {
    x[i * 10 + t * 2 + ch]
}

#[test]
fn flips_and_reversals_touch_noise_windows_only() {
    let (orig, _) = run(none(), (0, 0, 0));
    let (x, y) = run(GwAugment { sign_flip: 1.0, ..none() }, (0, 0, 0));
    for i in 0..8 {
        for t in 0..5 {
            let want = if i % 2 == 0 { -at(&orig, i, t, 1) } else { at(&orig, i, t, 1) };
            assert_eq!(at(&x, i, t, 1), want, "window {i} step {t}");
        }
    }
    assert_eq!(y, vec![0, 1, 0, 1, 0, 1, 0, 1]);
    let (x, _) = run(GwAugment { time_reverse: 1.0, ..none() }, (0, 0, 0));
    assert_eq!((at(&x, 2, 0, 0), at(&x, 2, 4, 1)), (at(&orig, 2, 4, 0), at(&orig, 2, 0, 1)));
    assert_eq!(at(&x, 3, 0, 0), at(&orig, 3, 0, 0), "injected windows keep their time order");
}

#[test]
fn swaps_and_mutes_make_negatives_from_other_windows() {
    let (orig, _) = run(none(), (0, 0, 0));
    // Which window a detector series came from: its values encode 100 i + 10 ch.
    let source = |x: &[f32], i: usize, ch: usize| ((at(x, i, 0, ch) - 1.0 - 10.0 * ch as f32) / 100.0) as usize;
    for (aug, from_label) in [(GwAugment { swap_prob: 1.0, ..none() }, 1), (GwAugment { mute_prob: 1.0, ..none() }, 0)]
    {
        let (x, y) = run(aug, (3, 1, 2));
        assert_eq!(y, vec![0; 8], "every injected window became a negative");
        for i in (1..8).step_by(2) {
            let moved: Vec<usize> = (0..2).filter(|&ch| source(&x, i, ch) != i).collect();
            assert_eq!(moved.len(), 1, "exactly one detector replaced in window {i}");
            let j = source(&x, i, moved[0]);
            assert_eq!(j % 2, from_label, "window {i} took detector {} from window {j}", moved[0]);
        }
        assert_eq!(&x[..10], &orig[..10], "noise windows untouched");
    }
}

#[test]
fn augmentation_is_a_function_of_seed_epoch_and_batch() {
    let aug = GwAugment::default();
    assert_eq!(run(aug.clone(), (7, 2, 5)), run(aug.clone(), (7, 2, 5)));
    assert_ne!(run(aug.clone(), (7, 2, 5)).0, run(aug.clone(), (7, 2, 6)).0);
    assert_ne!(run(aug.clone(), (7, 2, 5)).0, run(aug, (7, 3, 5)).0);
}

#[test]
fn bad_probabilities_name_the_key() {
    let named: Named = serde_yaml::from_str("{_name_: gw, path: /nonexistent, augment: {mute_prob: 1.5}}").unwrap();
    let e = DataConfig::from_named(&named, "data").unwrap().load().unwrap_err().to_string();
    assert!(e.contains("data.augment.mute_prob"), "{e}");
}

/// Fits `experiment` on the shared gw windows; its test metrics, or `None` (skipped) when the
/// data is absent.
fn fit_gw(experiment: &str) -> Option<std::collections::BTreeMap<String, f64>> {
    let dir = common::data_dir().join("gw");
    if !dir.join("X_train.npy").is_file() {
        println!("SKIP gw: {} not found (set WAVESSM_DATA_DIR)", dir.display());
        return None;
    }
    let _turn = common::serial();
    let out = tempfile::tempdir().unwrap();
    let tokens = [
        format!("experiment={experiment}"),
        format!("data.path={}", dir.display()),
        format!("logger.save_dir={}", out.path().display()),
        "trainer.progress_bar=never".into(),
    ];
    let cfg = ConfigRequest { tokens: tokens.to_vec(), ..Default::default() }.resolve().unwrap();
    let t0 = std::time::Instant::now();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let test = s.test.expect("tested after fit");
    println!("{experiment}: {test:?} in {:.1}s", t0.elapsed().as_secs_f64());
    Some(test)
}

#[test]
fn resnet1d_detects_the_shared_injections() {
    if let Some(test) = fit_gw("gw/resnet1d") {
        assert!(test["test/auroc"] >= 0.95, "{test:?}");
    }
}

#[test]
fn resnet2d_detects_the_shared_injections() {
    if let Some(test) = fit_gw("gw/resnet2d") {
        assert!(test["test/auroc"] >= 0.95, "{test:?}");
    }
}
