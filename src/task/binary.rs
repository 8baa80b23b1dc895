//! Binary-detection metrics computed exactly over a whole split (aframe's validation and
//! evaluation scores): the ROC curve with tied scores as one operating point, its area, the
//! McClish-standardized partial area up to a false-positive rate (as sklearn's
//! `roc_auc_score(max_fpr=…)` and torchmetrics' `BinaryAUROC(max_fpr=…)`), and the detection
//! efficiency (true-positive rate) at fixed false-positive rates.

use crate::config::ConfigError;

/// Checks `{path}.max_fpr` and every rate of `{path}.efficiency_fprs` lie in (0, 1].
pub fn check_rates(path: &str, max_fpr: f64, efficiency_fprs: &[f64]) -> Result<(), ConfigError> {
    let key = |k: &str, msg: String| Err(ConfigError::Key { path: crate::config::join_path(path, k), msg });
    if !(max_fpr > 0.0 && max_fpr <= 1.0) {
        return key("max_fpr", format!("must be in (0, 1], got {max_fpr}"));
    }
    if let Some(r) = efficiency_fprs.iter().find(|r| !(**r > 0.0 && **r <= 1.0)) {
        return key("efficiency_fprs", format!("every rate must be in (0, 1], got {r}"));
    }
    Ok(())
}

/// ROC operating points (FPR, TPR) from the highest threshold down, starting at (0, 0) and
/// ending at (1, 1); samples with equal scores enter together. `None` when one class is absent.
pub fn roc_curve(scores: &[f64], positive: &[bool]) -> Option<Vec<(f64, f64)>> {
    let p = positive.iter().filter(|&&b| b).count();
    let n = positive.len() - p;
    if p == 0 || n == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for (i, &j) in order.iter().enumerate() {
        if positive[j] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(i + 1).is_none_or(|&k| scores[k] != scores[j]);
        if last_of_tie {
            pts.push((fp as f64 / n as f64, tp as f64 / p as f64));
        }
    }
    Some(pts)
}

/// Area under the ROC curve (trapezoids, so ties count one half). `None` when a class is absent.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let pts = roc_curve(scores, positive)?;
    Some(pts.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum())
}

/// McClish-standardized partial AUROC over FPR ∈ [0, `max_fpr`]: the raw area `A` (the curve
/// interpolated linearly at `max_fpr`) mapped by `½(1 + (A − m²/2)/(m − m²/2))`, so that chance
/// gives ½ and a perfect detector 1 (sklearn's and torchmetrics' definition). `max_fpr = 1`
/// gives the plain AUROC. `None` when a class is absent.
pub fn partial_auroc(scores: &[f64], positive: &[bool], max_fpr: f64) -> Option<f64> {
    let pts = roc_curve(scores, positive)?;
    if max_fpr >= 1.0 {
        return auroc(scores, positive);
    }
    let mut area = 0.0;
    for w in pts.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x0 >= max_fpr {
            break;
        }
        let (xe, ye) = if x1 > max_fpr { (max_fpr, y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)) } else { (x1, y1) };
        area += (xe - x0) * (ye + y0) / 2.0;
    }
    let (min_area, max_area) = (max_fpr * max_fpr / 2.0, max_fpr);
    Some(0.5 * (1.0 + (area - min_area) / (max_area - min_area)))
}

/// Detection efficiency at a false-positive rate: the largest TPR among the operating points
/// whose FPR is at most `fpr` (no interpolation: a threshold that really exists). `None` when
/// a class is absent.
pub fn efficiency_at(scores: &[f64], positive: &[bool], fpr: f64) -> Option<f64> {
    let pts = roc_curve(scores, positive)?;
    Some(pts.iter().filter(|(x, _)| *x <= fpr).map(|&(_, y)| y).fold(0.0, f64::max))
}
