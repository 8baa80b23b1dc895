//! Binary-detection metrics against hand-computed ROC curves, exact over a split (not averaged
//! over batches), and their option checks.

use burn::tensor::{Device, Int, Tensor, TensorData};
use wavessm::config::{ConfigRequest, Named};
use wavessm::data::BatchTargets;
use wavessm::task::TaskConfig;
use wavessm::task::binary::{auroc, efficiency_at, partial_auroc, roc_curve};

/// Positives score 0.9, 0.7, 0.4, 0.2 and negatives 0.8, 0.5, 0.3, 0.1: the ROC staircase
/// alternates, (0, ¼) (¼, ¼) (¼, ½) (½, ½) (½, ¾) (¾, ¾) (¾, 1) (1, 1).
fn staircase() -> (Vec<f64>, Vec<bool>) {
    (vec![0.9, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1], vec![true, false, true, false, true, false, true, false])
}

#[test]
fn auroc_counts_ordered_pairs_and_halves_ties() {
    let (s, p) = staircase();
    // Pairs (positive above negative): 4 + 3 + 2 + 1 of 16.
    assert_eq!(auroc(&s, &p), Some(10.0 / 16.0));
    // sklearn's documented example: 0.75.
    assert_eq!(auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]), Some(0.75));
    // A tie between a positive and a negative counts one half.
    assert_eq!(auroc(&[0.5, 0.5, 0.1], &[true, false, false]), Some(0.75));
    assert_eq!(roc_curve(&[0.5, 0.5], &[true, false]).unwrap(), vec![(0.0, 0.0), (1.0, 1.0)]);
    assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None, "one class only");
}

#[test]
fn partial_auroc_is_mcclish_standardized() {
    let (s, p) = staircase();
    // Up to FPR ½: area ¼·¼ + ¼·½ = 3/16; min ½·(½)² = 1/8, max ½.
    let want = 0.5 * (1.0 + (3.0 / 16.0 - 1.0 / 8.0) / (0.5 - 1.0 / 8.0));
    assert!((partial_auroc(&s, &p, 0.5).unwrap() - want).abs() < 1e-15);
    // Up to FPR ⅜ the curve is cut inside the flat step at TPR ½: area 1/16 + ⅛·½.
    let m = 0.375;
    let want = 0.5 * (1.0 + (1.0 / 16.0 + 0.125 * 0.5 - m * m / 2.0) / (m - m * m / 2.0));
    assert!((partial_auroc(&s, &p, m).unwrap() - want).abs() < 1e-15);
    // Cut inside a rising segment: scores with a tie between a positive and a negative at
    // FPR 0 → ½ (TPR 0 → ½); at FPR ¼ the interpolated TPR is ¼, area ¼·¼/2.
    let (s2, p2) = (vec![0.9, 0.9, 0.1, 0.1], vec![true, false, true, false]);
    let m = 0.25;
    let want = 0.5 * (1.0 + (m * 0.25 / 2.0 - m * m / 2.0) / (m - m * m / 2.0));
    assert!((partial_auroc(&s2, &p2, m).unwrap() - want).abs() < 1e-15);
    // A perfect detector scores 1 at any max_fpr, max_fpr = 1 is the plain area.
    assert_eq!(partial_auroc(&[2.0, 1.0], &[true, false], 1e-3), Some(1.0));
    assert_eq!(partial_auroc(&s, &p, 1.0), auroc(&s, &p));
}

#[test]
fn efficiency_is_the_best_real_operating_point() {
    let (s, p) = staircase();
    assert_eq!(efficiency_at(&s, &p, 0.0), Some(0.25));
    assert_eq!(efficiency_at(&s, &p, 0.1), Some(0.25));
    assert_eq!(efficiency_at(&s, &p, 0.25), Some(0.5));
    assert_eq!(efficiency_at(&s, &p, 0.6), Some(0.75));
    assert_eq!(efficiency_at(&s, &p, 1.0), Some(1.0));
}

#[test]
fn metrics_are_exact_over_the_split_not_averaged_over_batches() {
    let (s, p) = staircase();
    let named: Named = serde_yaml::from_str("{_name_: classification, max_fpr: 0.5}").unwrap();
    let task = TaskConfig::from_named(&named, "task").unwrap();
    // Two-class logits whose log-odds are the staircase scores.
    let out: Vec<f32> = s.iter().flat_map(|&v| [0.0f32, v as f32]).collect();
    let labels: Vec<i64> = p.iter().map(|&b| b as i64).collect();
    let dev = Device::flex();
    let y = |r: std::ops::Range<usize>| {
        BatchTargets::Classes(Tensor::<1, Int>::from_data(TensorData::new(labels[r.clone()].to_vec(), [r.len()]), &dev))
    };
    let mut whole = task.metrics();
    whole.update(&out, 2, &y(0..8), 0.0);
    let mut batched = task.metrics();
    // Each batch alone has AUROC ½, so a mean over batches would report ½, not ⅝.
    batched.update(&out[..6], 2, &y(0..3), 0.0);
    batched.update(&out[6..], 2, &y(3..8), 0.0);
    let (w, b) = (whole.finish(), batched.finish());
    assert!((w["auroc"] - 0.625).abs() < 1e-7, "{w:?}");
    assert_eq!(w, b);
    assert!(w.contains_key("pauc") && w.contains_key("eff@fpr0.01"), "{w:?}");
    assert!(task.metric_names(2).contains(&"pauc".to_string()));
    assert!(!task.metric_names(10).contains(&"pauc".to_string()), "binary metrics need two classes");
}

#[test]
fn max_fpr_out_of_range_names_the_key() {
    for bad in ["0", "1.5", "-0.1"] {
        let e = ConfigRequest { tokens: vec![format!("task.max_fpr={bad}")], ..Default::default() }
            .resolve()
            .unwrap_err()
            .to_string();
        assert!(e.contains("task.max_fpr") && e.contains("(0, 1]"), "{bad}: {e}");
    }
    let e = ConfigRequest { tokens: vec!["task.efficiency_fprs=[0.01,2]".into()], ..Default::default() }
        .resolve()
        .unwrap_err()
        .to_string();
    assert!(e.contains("task.efficiency_fprs"), "{e}");
    assert!(ConfigRequest { tokens: vec!["task.max_fpr=1".into()], ..Default::default() }.resolve().is_ok());
}
