//! `data=gw_strain`: windows drawn from raw two-detector strain as aframe draws them (PSD from
//! the window's own background, TaylorF2 injections at a target SNR, whitening), the errors
//! each bad input gets, and a detector learning the drawn windows.

mod common;

use std::path::Path;

use wavessm::config::{ConfigRequest, Named};
use wavessm::data::npy_format::write_npy_f32;
use wavessm::data::{DataConfig, DataModule, SeqData, Targets};
use wavessm::train::{FitOptions, fit};

const FS: usize = 512;

/// Writes `secs` of unit white noise per detector (different seeds) under `dir`.
fn strain(dir: &Path, secs: usize) {
    for (i, ifo) in ["H1", "L1"].iter().enumerate() {
        write_npy_f32(&dir.join(format!("{ifo}.npy")), &[secs * FS], &common::randn(secs * FS, 11 + i as u64)).unwrap();
    }
}

/// The test's options with the keys of the YAML mapping `extra` replaced.
fn options(dir: &Path, extra: &str) -> Named {
    let yaml = format!(
        "{{_name_: gw_strain, path: {}, sample_rate: {FS}, psd_length: 4, kernel_length: 1, fduration: 1, \
         highpass: 20, snr_min: 20, snr_max: 30, split: [0.6, 0.2, 0.2], n_train: 48, n_val: 16, n_test: 16}}",
        dir.display()
    );
    let mut base: serde_yaml::Mapping = serde_yaml::from_str(&yaml).unwrap();
    let extra: serde_yaml::Mapping = serde_yaml::from_str(if extra.is_empty() { "{}" } else { extra }).unwrap();
    base.extend(extra);
    serde_yaml::from_value(serde_yaml::Value::Mapping(base)).unwrap()
}

fn load(dir: &Path, extra: &str) -> Result<DataModule, String> {
    let cfg = DataConfig::from_named(&options(dir, extra), "data").map_err(|e| e.to_string())?;
    cfg.load().map_err(|e| e.to_string())
}

fn labels(s: &SeqData) -> Vec<u32> {
    match &s.targets {
        Targets::Classes { labels, .. } => labels.clone(),
        other => panic!("{other:?}"),
    }
}

/// Mean square of each window.
fn energies(s: &SeqData) -> Vec<f64> {
    let w = s.seq_len * s.channels;
    s.inputs.to_vec().chunks(w).map(|x| x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w as f64).collect()
}

#[test]
fn windows_are_whitened_noise_plus_louder_injections() {
    let dir = tempfile::tempdir().unwrap();
    strain(dir.path(), 120);
    let dm = load(dir.path(), "").unwrap();
    for (s, n) in [(&dm.train, 48), (&dm.val, 16), (&dm.test, 16)] {
        assert_eq!((s.len(), s.seq_len, s.channels), (n, FS, 2));
    }
    let (y, e) = (labels(&dm.train), energies(&dm.train));
    let mean = |want: u32| {
        let v: Vec<f64> = y.iter().zip(&e).filter(|(l, _)| **l == want).map(|(_, e)| *e).collect();
        assert!(v.len() >= 10, "label {want}: {} of 48 windows", v.len());
        v.iter().sum::<f64>() / v.len() as f64
    };
    let (noise, signal) = (mean(0), mean(1));
    println!("whitened mean square: noise {noise:.3}, injected {signal:.3}");
    // White noise whitened by a median of 3 Welch segments: E[1/Ŝ] > 1/S inflates the variance
    // (to ≈ 1.6 for 3 exponential periodograms, less the highpassed band), as in aframe.
    assert!((0.7..2.0).contains(&noise), "noise windows: {noise}");
    assert!(signal > noise * 1.05, "injections at SNR 20-30 add power: {signal} vs {noise}");
    // Seeded: the same options draw the same windows.
    let again = load(dir.path(), "").unwrap();
    assert_eq!(again.train.inputs.to_vec(), dm.train.inputs.to_vec());
    let other = load(dir.path(), "{seed: 1}").unwrap();
    assert_ne!(other.train.inputs.to_vec(), dm.train.inputs.to_vec());
}

#[test]
fn bad_strain_and_options_are_named() {
    let dir = tempfile::tempdir().unwrap();
    strain(dir.path(), 12);
    let e = load(dir.path(), "").unwrap_err();
    assert!(e.contains("H1.npy") && e.contains("shorter than psd_length"), "{e}");
    let e = load(dir.path(), "{snr_max: 5}").unwrap_err();
    assert!(e.contains("data.snr_max"), "{e}");
    let e = load(dir.path(), "{ifos: [H1, X9]}").unwrap_err();
    assert!(e.contains("data.ifos") && e.contains("X9"), "{e}");
    let e = load(dir.path(), "{source: {masses: [50, 10]}}").unwrap_err();
    assert!(e.contains("data.source.masses"), "{e}");
    let mut bad = common::randn(120 * FS, 3);
    bad[777] = f32::NAN;
    write_npy_f32(&dir.path().join("L1.npy"), &[bad.len()], &bad).unwrap();
    strain_one(dir.path(), "H1", 120);
    let e = load(dir.path(), "").unwrap_err();
    assert!(e.contains("L1.npy") && e.contains("777"), "{e}");
    std::fs::remove_file(dir.path().join("L1.npy")).unwrap();
    let e = load(dir.path(), "").unwrap_err();
    assert!(e.contains("L1.npy"), "{e}");
}

fn strain_one(dir: &Path, ifo: &str, secs: usize) {
    write_npy_f32(&dir.join(format!("{ifo}.npy")), &[secs * FS], &common::randn(secs * FS, 5)).unwrap();
}

#[test]
fn resnet1d_learns_the_drawn_windows() {
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    strain(dir.path(), 120);
    let out = tempfile::tempdir().unwrap();
    let mut tokens: Vec<String> = [
        "experiment=gw/resnet1d",
        "data=gw_strain",
        "data.sample_rate=512",
        "data.psd_length=4",
        "data.highpass=20",
        "data.snr_min=20",
        "data.snr_max=30",
        "data.split=[0.6,0.2,0.2]",
        "data.n_train=128",
        "data.n_val=32",
        "data.n_test=32",
        "trainer.max_epochs=4",
        "trainer.progress_bar=never",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.push(format!("data.path={}", dir.path().display()));
    tokens.push(format!("logger.save_dir={}", out.path().display()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    let test = s.test.expect("tested after fit");
    println!("gw_strain + resnet1d: {test:?}");
    assert!(test["test/auroc"] >= 0.8, "{test:?}");
}
