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
    for (bad, key) in [
        ("{fduration: 0.001}", "data.fduration"),
        ("{snr_index: 50}", "data.snr_index"),
        ("{snr_min: .nan}", "data.snr_min"),
        ("{snr_max: 1e30}", "data.snr_max"),
        ("{source: {f_min: 300}}", "data.source.f_min"),
        ("{source: {f_min: 1, masses: [1, 2]}}", "data.source.f_min"),
    ] {
        let e = load(dir.path(), bad).unwrap_err();
        assert!(e.contains(key), "{bad}: {e}");
    }
    let e = load(dir.path(), "{n_train: 900000, kernel_length: 60}").unwrap_err();
    assert!(e.contains("data.n_train") && e.contains("GiB"), "{e}");
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

/// Trains the CI-sized resnet1d on windows drawn from `dir`'s strain; returns the run folder.
fn train_detector(dir: &Path, out: &Path) -> (std::path::PathBuf, std::collections::BTreeMap<String, f64>) {
    let mut tokens: Vec<String> = [
        "experiment=gw/resnet1d",
        "data=gw_strain",
        "data.sample_rate=512",
        "data.psd_length=4",
        "data.highpass=20",
        "data.snr_min=20",
        "data.snr_max=30",
        "data.split=[0.6,0.2,0.2]",
        "data.n_train=320",
        "data.n_val=32",
        "data.n_test=32",
        "trainer.max_epochs=6",
        "trainer.progress_bar=never",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    tokens.push(format!("data.path={}", dir.display()));
    tokens.push(format!("logger.save_dir={}", out.display()));
    let cfg = ConfigRequest { tokens, ..Default::default() }.resolve().unwrap();
    let s = fit(&cfg, &FitOptions { quiet: true, ..Default::default() }).unwrap();
    (s.run, s.test.expect("tested after fit"))
}

#[test]
fn resnet1d_learns_the_drawn_windows_and_infer_finds_an_injection() {
    let _turn = common::serial();
    let dir = tempfile::tempdir().unwrap();
    strain(dir.path(), 120);
    let out = tempfile::tempdir().unwrap();
    let (run, test) = train_detector(dir.path(), out.path());
    println!("gw_strain + resnet1d: {test:?}");
    assert!(test["test/auroc"] >= 0.8, "{test:?}");

    // 40 s of fresh noise [C, T] with one SNR-25 TaylorF2 signal coalescing at 30 s.
    let (secs, tc) = (40usize, 30.0);
    let mut x: Vec<Vec<f64>> =
        (0..2).map(|c| common::randn(secs * FS, 90 + c).into_iter().map(f64::from).collect()).collect();
    inject(&mut x, tc, 25.0);
    let series = out.path().join("series.npy");
    let flat: Vec<f32> = x.concat().iter().map(|v| *v as f32).collect();
    write_npy_f32(&series, &[2, secs * FS], &flat).unwrap();
    let ckpt = run.join("checkpoints/best.bpk");
    let csv = out.path().join("stat.csv");
    let args = ["infer", "--ckpt", ckpt.to_str().unwrap(), "--input", series.to_str().unwrap(), "--psd-length", "4s"];
    let o = wavessm(&[&args[..], &["--stride", "0.25s", "--out", csv.to_str().unwrap()]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = read_rows(&csv);
    // Windows end every 0.25 s from psd_length + fduration/2 + window = 5.5 s to the end.
    // psd_length + fduration + window = 6 s of strain per first window, then one per 0.25 s.
    assert_eq!(rows.len(), ((secs as f64 - 6.0) / 0.25) as usize + 1, "{} rows", rows.len());
    assert!((rows[0].0 - 5.5).abs() < 1e-9 && (rows[1].0 - rows[0].0 - 0.25).abs() < 1e-9);
    let best = rows.iter().max_by(|a, b| a.2.total_cmp(&b.2)).unwrap();
    let near: Vec<_> = rows.iter().filter(|r| (r.0 - tc).abs() < 2.0).map(|r| (r.0, r.2)).collect();
    assert!(
        (tc - 1.0..=tc + 1.5).contains(&best.0),
        "the loudest window ends at {best:?}, the signal is at {tc} s: {near:?}"
    );
    // Time slides break the coincidence: the same series slid by 3 s scores lower at the event.
    let npy = out.path().join("bg.npy");
    let slid = ["--stride", "0.25s", "--timeslide", "3s", "--slides", "2", "--out", npy.to_str().unwrap()];
    let o = wavessm(&[&args[..], &slid[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("s of strain/s"));
    let a = wavessm::data::npy_format::read_npy(&npy).unwrap();
    assert_eq!(a.shape, vec![2 * rows.len(), 3]);
    let v = a.to_f64().unwrap();
    let slid_peak =
        v.chunks(3).filter(|r| r[1] == 3.0 && (r[0] - tc).abs() < 1.5).map(|r| r[2]).fold(f64::MIN, f64::max);
    assert!(slid_peak < best.2, "slid by 3 s the event scores {slid_peak}, coincident {}", best.2);
    // Bad input names what is wrong.
    let e = wavessm(&[&args[..], &["--fduration", "0.001s", "--out", csv.to_str().unwrap()]].concat());
    assert!(String::from_utf8_lossy(&e.stderr).contains("--fduration"), "{}", String::from_utf8_lossy(&e.stderr));
    let e = wavessm(&[&args[..], &["--stride", "0s", "--out", csv.to_str().unwrap()]].concat());
    assert!(String::from_utf8_lossy(&e.stderr).contains("--stride"), "{}", String::from_utf8_lossy(&e.stderr));
    let short = out.path().join("short.npy");
    write_npy_f32(&short, &[2, 3 * FS], &flat[..6 * FS]).unwrap();
    let e = wavessm(&[
        "infer",
        "--ckpt",
        ckpt.to_str().unwrap(),
        "--input",
        short.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("shorter than psd_length"),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
}

fn wavessm(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wavessm")).args(args).output().unwrap()
}

/// (time, shift, stat) rows of an `infer` CSV.
fn read_rows(csv: &Path) -> Vec<(f64, f64, f64)> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            (v[0], v[1], v[2])
        })
        .collect()
}

/// Adds a TaylorF2 signal coalescing at `tc` s, projected onto H1/L1 and scaled to network SNR
/// `rho` against the series' own Welch PSD.
fn inject(x: &mut [Vec<f64>], tc: f64, rho: f64) {
    use wavessm::data::gw::{project, psd, snr, taylorf2::Binary, waveform};
    let fs = FS as f64;
    let n = x[0].len();
    let b = Binary {
        chirp_mass: 25.0,
        mass_ratio: 0.8,
        chi1: 0.1,
        chi2: 0.0,
        distance: 100.0,
        phic: 0.3,
        inclination: 0.4,
    };
    let (hc, hp) = waveform::time_domain(&b, &waveform::SourcePrior::default(), fs, n, (tc * fs) as usize);
    let sky = project::Sky { dec: 0.3, psi: 1.0, phi: -0.5 };
    let mut h: Vec<Vec<f64>> = ["H1", "L1"]
        .iter()
        .map(|d| project::observed_strain(&hc, &hp, sky, &project::Detector::named(d).unwrap(), fs))
        .collect();
    let psds: Vec<Vec<f64>> =
        x.iter().map(|s| psd::welch(s, fs, 4 * FS, 2 * FS, psd::Average::Mean, true).unwrap()).collect();
    let now = snr::network_snr(&h, &psds, fs, Some(20.0), None);
    snr::reweight(&mut h, now, rho);
    for (s, hi) in x.iter_mut().zip(&h) {
        s.iter_mut().zip(hi).for_each(|(v, d)| *v += d);
    }
}
