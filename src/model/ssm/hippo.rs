//! HiPPO-LegS (Gu et al. 2020) and the eigenvalues of its normal part, which give the
//! S4D-LegS and DSS initializations (S4 paper, NPLR form; `shared/golden/README.md` §5.1).

/// Dense HiPPO-LegS `(A [N×N] row-major, B [N])`:
/// `A[n,k] = -sqrt((2n+1)(2k+1))` below the diagonal, `-(n+1)` on it; `B[n] = sqrt(2n+1)`.
pub fn legs(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..=r {
            a[r * n + c] = if r == c { -((r + 1) as f64) } else { -(((2 * r + 1) * (2 * c + 1)) as f64).sqrt() };
        }
    }
    (a, (0..n).map(|r| ((2 * r + 1) as f64).sqrt()).collect())
}

/// The diagonal `w` of the NPLR form of LegS with `n` (even) states: the `n/2` eigenvalues of
/// `A + p·pᵀ = -½·I + S` with negative imaginary part, most negative first, as (re, im).
///
/// `S` is real skew-symmetric, so its eigenvalues are `±i·μ` with `μ²` the eigenvalues of the
/// symmetric `SᵀS`; those come in equal pairs, one per conjugate pair of `S`.
pub fn legs_diagonal(n: usize) -> Vec<(f64, f64)> {
    assert!(n >= 2 && n.is_multiple_of(2), "the NPLR diagonal needs an even state size, got {n}");
    let s = |r: usize, c: usize| -> f64 {
        let v = 0.5 * (((2 * r + 1) * (2 * c + 1)) as f64).sqrt();
        match r.cmp(&c) {
            std::cmp::Ordering::Greater => -v,
            std::cmp::Ordering::Less => v,
            std::cmp::Ordering::Equal => 0.0,
        }
    };
    // M = SᵀS (symmetric, positive semi-definite).
    let mut m = vec![0.0; n * n];
    for r in 0..n {
        for c in 0..n {
            m[r * n + c] = (0..n).map(|k| s(k, r) * s(k, c)).sum();
        }
    }
    let mut mu2 = symmetric_eigenvalues(m, n);
    mu2.sort_by(|a, b| b.total_cmp(a));
    // Pairs (μ², μ²): keep one of each, largest μ first = most negative imaginary part first.
    mu2.chunks(2).map(|p| (-0.5, -(0.5 * (p[0] + p[1])).max(0.0).sqrt())).collect()
}

/// Eigenvalues of a symmetric matrix by cyclic Jacobi rotations (f64; small N).
fn symmetric_eigenvalues(mut a: Vec<f64>, n: usize) -> Vec<f64> {
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|r| (0..n).filter(move |&c| c != r).map(move |c| (r, c)))
            .map(|(r, c)| a[r * n + c].powi(2))
            .sum();
        let diag: f64 = (0..n).map(|r| a[r * n + r].powi(2)).sum();
        if off <= 1e-30 * diag.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|r| a[r * n + r]).collect()
}
