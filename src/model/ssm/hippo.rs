//! HiPPO-LegS (Gu et al. 2020) and the eigenvalues of its normal part, which give the
//! S4D-LegS and DSS initializations, and its eigenbasis `P`, `B` for S4 (S4 paper, NPLR form;
//! `shared/golden/README.md` §5.1).

use num_complex::Complex64 as C64;

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

/// The normal-plus-low-rank form of LegS with `n` (even) states, restricted to the stored half:
/// `A = V̂ (diag(ŵ) - P̂ P̂ᴴ) V̂ᴴ` (golden README §5.1).
#[derive(Debug, Clone)]
pub struct Nplr {
    /// Diagonal `w`, [N/2], most negative imaginary part first (all `Im w < 0`).
    pub w: Vec<C64>,
    /// Rank-1 factor in the eigenbasis `P = Vᴴ p`, [N/2].
    pub p: Vec<C64>,
    /// Input matrix in the eigenbasis `B = Vᴴ b`, imaginary part clipped to `±b_clip`, [N/2].
    pub b: Vec<C64>,
}

/// NPLR form of LegS: `A + p·pᵀ = -½·I + S` with `S` real skew-symmetric; `-i·S` is Hermitian,
/// and each eigenvector is normalised so its first component is real and positive (the phase
/// the reference's LAPACK call returns up to sign, which the clip of `Im B` depends on).
pub fn legs_nplr(n: usize, b_clip: f64) -> Nplr {
    let (w, v) = skew_eigen(n, true);
    let p: Vec<f64> = (0..n).map(|k| (k as f64 + 0.5).sqrt()).collect();
    let b: Vec<f64> = (0..n).map(|k| ((2 * k + 1) as f64).sqrt()).collect();
    // Vᴴ x for a real x.
    let project = |x: &[f64]| -> Vec<C64> {
        v.iter().map(|col| col.iter().zip(x).map(|(vi, xi)| vi.conj() * xi).sum()).collect()
    };
    let b = project(&b).into_iter().map(|z| C64::new(z.re, z.im.clamp(-b_clip, b_clip))).collect();
    Nplr { w, p: project(&p), b }
}

/// The diagonal `w` of the NPLR form of LegS with `n` (even) states: the `n/2` eigenvalues of
/// `A + p·pᵀ` with negative imaginary part, most negative first, as (re, im).
pub fn legs_diagonal(n: usize) -> Vec<(f64, f64)> {
    skew_eigen(n, false).0.into_iter().map(|z| (z.re, z.im)).collect()
}

/// Eigenvalues `-½ + iλ` of `-½·I + S` for the `n/2` most negative `λ` (ascending), and, when
/// `vectors`, their unit eigenvectors (first component real ≥ 0), one `Vec` of length `n` each.
///
/// `-i·S` is Hermitian; its real embedding `[[0, S], [-S, 0]]` is real symmetric with every
/// eigenvalue doubled, and an eigenvector `[x; y]` of it is the complex eigenvector `x + iy`.
#[allow(clippy::type_complexity)]
fn skew_eigen(n: usize, vectors: bool) -> (Vec<C64>, Vec<Vec<C64>>) {
    assert!(n >= 2 && n.is_multiple_of(2), "the NPLR form needs an even state size, got {n}");
    let s = |r: usize, c: usize| -> f64 {
        let v = 0.5 * (((2 * r + 1) * (2 * c + 1)) as f64).sqrt();
        match r.cmp(&c) {
            std::cmp::Ordering::Greater => -v,
            std::cmp::Ordering::Less => v,
            std::cmp::Ordering::Equal => 0.0,
        }
    };
    let m = 2 * n;
    let mut e = vec![0.0; m * m];
    for r in 0..n {
        for c in 0..n {
            e[r * m + n + c] = s(r, c);
            e[(n + r) * m + c] = -s(r, c);
        }
    }
    let (vals, vecs) = symmetric_eigen(e, m, vectors);
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
    // Pairs of equal λ: one of each for the n/2 most negative.
    let kept: Vec<usize> = order[..n].iter().step_by(2).copied().collect();
    // The pair's mean cancels the Jacobi rounding between the two copies.
    let w = order[..n].chunks(2).map(|p| C64::new(-0.5, 0.5 * (vals[p[0]] + vals[p[1]]))).collect();
    let v = if vectors {
        kept.iter()
            .map(|&j| {
                let col: Vec<C64> = (0..n).map(|r| C64::new(vecs[r * m + j], vecs[(n + r) * m + j])).collect();
                let norm = col.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
                let phase = if col[0].norm() > 0.0 { col[0].conj() / col[0].norm() } else { C64::new(1.0, 0.0) };
                col.into_iter().map(|z| z * phase / norm).collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    (w, v)
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations (f64; small N):
/// eigenvalues, and with `vectors` the eigenvectors as the columns of a row-major [N×N].
fn symmetric_eigen(mut a: Vec<f64>, n: usize, vectors: bool) -> (Vec<f64>, Vec<f64>) {
    let mut v = if vectors { (0..n * n).map(|i| if i / n == i % n { 1.0 } else { 0.0 }).collect() } else { vec![] };
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|r| (0..n).filter(move |&c| c != r).map(move |c| (r, c)))
            .map(|(r, c)| a[r * n + c].powi(2))
            .sum();
        let total: f64 = off + (0..n).map(|r| a[r * n + r].powi(2)).sum::<f64>();
        if off <= 1e-30 * total.max(1e-300) {
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
                if vectors {
                    for k in 0..n {
                        let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                        v[k * n + p] = c * vkp - s * vkq;
                        v[k * n + q] = s * vkp + c * vkq;
                    }
                }
            }
        }
    }
    ((0..n).map(|r| a[r * n + r]).collect(), v)
}
