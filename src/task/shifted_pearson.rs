//! aframe's autoencoder score (ml4gw's `ShiftedPearsonCorrelation`): the Pearson correlation of
//! one detector's reconstruction with the other detector's data, maximised over time shifts of
//! up to ±`max_shift` samples, so a real signal (coherent across detectors up to the light
//! travel time) scores high and detector-local noise does not.

/// Correlations [2S+1] of `y` [T] against `x` [T] shifted by `j − S` for j ∈ [0, 2S]: entry j
/// pairs `y[t]` with `x[t + j − S]` (zero outside), each window de-meaned over its T samples.
pub fn shifted_pearson(x: &[f64], y: &[f64], max_shift: usize) -> Vec<f64> {
    let t = y.len();
    let y_mean = y.iter().sum::<f64>() / t as f64;
    let yc: Vec<f64> = y.iter().map(|v| v - y_mean).collect();
    let y_norm = yc.iter().map(|v| v * v).sum::<f64>();
    (0..=2 * max_shift)
        .map(|j| {
            let w: Vec<f64> = (0..t)
                .map(|i| {
                    let k = i as i64 + j as i64 - max_shift as i64;
                    if (0..x.len() as i64).contains(&k) { x[k as usize] } else { 0.0 }
                })
                .collect();
            let w_mean = w.iter().sum::<f64>() / t as f64;
            let (mut num, mut w_norm) = (0.0, 0.0);
            for (wi, yi) in w.iter().zip(&yc) {
                num += (wi - w_mean) * yi;
                w_norm += (wi - w_mean).powi(2);
            }
            num / (w_norm * y_norm).sqrt()
        })
        .collect()
}

/// The anomaly score of one window: detectors `x` [I][T] against their reconstructions
/// `x_hat` [I][T] with the detector order reversed (each reconstruction against the *other*
/// detector), `√Σ_i (max_shift corr_i)²`. aframe's loss is its negative.
pub fn autoencoder_score(x: &[Vec<f64>], x_hat: &[Vec<f64>], max_shift: usize) -> f64 {
    let n = x.len();
    (0..n)
        .map(|i| {
            let corr = shifted_pearson(&x[i], &x_hat[n - 1 - i], max_shift);
            corr.into_iter().fold(f64::NEG_INFINITY, f64::max).powi(2)
        })
        .sum::<f64>()
        .sqrt()
}
