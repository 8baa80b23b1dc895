//! MFCC features: shapes and frame count, DCT-II orthonormality, a sine's energy in its mel
//! band, torchaudio reference values, and the speech loader's normalized MFCC splits.

mod common;

use wavessm::data::mfcc::{Mfcc, MfccConfig, dct_ortho, hz_to_mel, mel_filterbank, mel_to_hz};
use wavessm::data::{DataSpec, Targets};

fn sine(freq: f64, n: usize) -> Vec<f32> {
    (0..n).map(|t| (0.5 * (2.0 * std::f64::consts::PI * freq * t as f64 / 16_000.0).sin()) as f32).collect()
}

#[test]
fn frames_follow_centered_framing() {
    let m = Mfcc::new(MfccConfig::default());
    for (n, frames) in [(16_000, 161), (1600, 17), (250, 3), (200, 3)] {
        assert_eq!(m.frames(n), frames, "1 + n / hop for n = {n}");
        assert_eq!(m.compute(&sine(440.0, n)).len(), frames * 20);
    }
    assert!((mel_to_hz(hz_to_mel(1234.5)) - 1234.5).abs() < 1e-9);
    assert!((hz_to_mel(1000.0) - 1000.0).abs() < 0.1, "HTK: 1000 Hz ≈ 1000 mel");
}

#[test]
fn dct_is_orthonormal_and_maps_a_constant_to_its_first_coefficient() {
    let n = 64;
    let d = dct_ortho(n, n);
    for a in 0..n {
        for b in 0..n {
            let dot: f64 = (0..n).map(|i| d[i * n + a] * d[i * n + b]).sum();
            assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-12, "columns {a}, {b}: {dot}");
        }
    }
    // Ortho DCT-II of a constant c over 64 values: c·√64 in the first coefficient, 0 elsewhere.
    let m = Mfcc::new(MfccConfig::default());
    let mut out = [0f32; 20];
    m.dct(&[3.0; 64], &mut out);
    assert!((out[0] - 24.0).abs() < 1e-5, "{}", out[0]);
    assert!(out[1..].iter().all(|v| v.abs() < 1e-5), "{out:?}");
}

#[test]
fn a_sine_lands_in_its_mel_band() {
    let m = Mfcc::new(MfccConfig::default());
    // 2000 Hz is FFT bin 25 exactly (80 Hz bins). On the mel axis it sits at 34.8 of 65 equal
    // steps between 0 and 8 kHz, so filter 34 (peak at point 35) takes most of it.
    let pos = hz_to_mel(2000.0) / (hz_to_mel(8000.0) / 65.0);
    assert!((34.5..35.0).contains(&pos), "{pos}");
    let mel = m.mel_power(&sine(2000.0, 1600));
    let row = &mel[8 * 64..9 * 64];
    let best = (0..64).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
    assert_eq!(best, 34);
    let total: f64 = row.iter().sum();
    let near: f64 = row[32..=36].iter().sum();
    assert!(near / total > 0.999, "energy within two bands: {}", near / total);
    // Power: a 0.5-amplitude sine under a periodic Hann window of 200 has |X|² = (0.5·100/2)²
    // at its bin, split by the filters' weights at 2000 Hz.
    let fb = mel_filterbank(101, 0.0, 8000.0, 64, 16_000.0);
    let weight: f64 = (0..64).map(|k| fb[25 * 64 + k]).sum();
    let leak =
        2.0 * (0.5f64 * 50.0 / 2.0).powi(2) * (0..64).map(|k| fb[24 * 64 + k] + fb[26 * 64 + k]).sum::<f64>() / 2.0;
    let expect = (0.5f64 * 100.0 / 2.0).powi(2) * weight + leak;
    assert!((total - expect).abs() / expect < 1e-3, "mel energy {total}, expected {expect}");
}

/// Printed by torchaudio 2.11.0 (torch 2.15, CPU) with
/// `torchaudio.transforms.MFCC(sample_rate=16000, log_mels=True, n_mfcc=20,
/// melkwargs=dict(n_fft=200, n_mels=64))` on the signal of [`reference_signal`] (built in
/// float64, rounded to float32), frames 0, 8 and 16 of 17. torch works in float32 and we in
/// float64; the largest difference seen was 2.7e-5.
const TORCHAUDIO: [(usize, [f64; 20]); 3] = [
    (
        0,
        [
            2.22399, 4.77518, -1.13692, 2.59585, -9.48926, -14.48147, -4.20297, -1.38766, -6.16078, -3.32651, 0.76375,
            -2.29782, -4.02307, -0.31932, 0.83413, 0.25449, -0.13200, -0.97734, 0.37862, 1.74072,
        ],
    ),
    (
        8,
        [
            -22.49542, 2.42780, -1.19442, -4.26532, -10.52971, -16.51377, -10.11306, -6.58990, -7.91569, 1.36580,
            9.95947, 0.17019, -5.60159, 2.70204, 1.79317, -3.62664, 1.01110, -0.85123, -3.84559, 2.88388,
        ],
    ),
    (
        16,
        [
            1.71212, 8.55343, -5.42385, 0.58728, -7.78607, -12.79140, -3.79459, -2.28307, -7.25057, -2.49770, -0.52428,
            -2.07398, -2.42536, -0.73708, 1.16870, -1.56830, 1.75245, 0.56768, -0.77071, -0.77614,
        ],
    ),
];

fn reference_signal() -> Vec<f32> {
    use std::f64::consts::PI;
    (0..1600u64)
        .map(|n| {
            let t = n as f64 / 16_000.0;
            let noise = ((n * 7919) % 1000) as f64 / 1000.0 - 0.5;
            (0.5 * (2.0 * PI * 440.0 * t).sin() + 0.25 * (2.0 * PI * 2500.0 * t + 0.3).sin() + 0.1 * noise) as f32
        })
        .collect()
}

#[test]
fn matches_torchaudio() {
    let m = Mfcc::new(MfccConfig::default());
    let out = m.compute(&reference_signal());
    assert_eq!(out.len(), 17 * 20);
    let mut worst = 0f64;
    for (frame, want) in TORCHAUDIO {
        for (k, w) in want.iter().enumerate() {
            let got = out[frame * 20 + k] as f64;
            worst = worst.max((got - w).abs());
            assert!((got - w).abs() < 2e-4, "frame {frame} coefficient {k}: {got}, torchaudio {w}");
        }
    }
    println!("max |wavessm - torchaudio| = {worst:e}");
}

#[test]
fn speech_mfcc_splits_are_normalized_by_training_statistics() {
    let root = common::data_dir().join("speech-synth");
    if !root.join("validation_list.txt").is_file() {
        println!("SKIP speech-synth MFCC: {} not found (set WAVESSM_DATA_DIR)", root.display());
        return;
    }
    let named = serde_yaml::from_str(&format!(
        "{{_name_: speech_commands, path: {}, features: mfcc, prepared: never}}",
        root.display()
    ))
    .unwrap();
    let (dm, _) = DataSpec::from_named(&named, "data").unwrap().load().unwrap();
    assert_eq!((dm.train.seq_len, dm.train.channels, dm.train.lengths.is_none()), (161, 20, true));
    assert!(matches!(dm.train.targets, Targets::Classes { n_classes: 10, .. }));
    let x = dm.train.inputs.to_vec();
    for c in 0..20 {
        let v: Vec<f64> = x.iter().skip(c).step_by(20).map(|&v| v as f64).collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
        assert!(
            mean.abs() < 1e-4 && (var.sqrt() - 1.0).abs() < 1e-3,
            "coefficient {c}: mean {mean}, std {}",
            var.sqrt()
        );
    }
    let e = DataSpec::from_named(
        &serde_yaml::from_str(&format!(
            "{{_name_: speech_commands, path: {}, features: mfcc, resolution: 2}}",
            root.display()
        ))
        .unwrap(),
        "data",
    )
    .unwrap()
    .load()
    .unwrap_err()
    .to_string();
    assert!(e.contains("resolution") && e.contains("MFCC"), "{e}");
}
