//! HiPPO transition matrices (Gu et al. 2020) and their normal-plus-low-rank (NPLR) form: the
//! diagonal `w`, and the eigenbasis `P`, `B` for S4 (S4 paper; state-spaces/s4
//! `src/models/hippo/hippo.py`, `transition`, `rank_correction`, `nplr`; golden README §5.1).
//! The NPLR diagonal of LegS also gives the S4D-LegS and DSS initializations.

use num_complex::Complex64 as C64;

/// A HiPPO measure with a rank-1 NPLR form (s4's `nplr(measure)` with `rank = 1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Scaled Legendre (`legs`).
    Legs,
    /// Translated Fourier (`fout`, alias `fourier`): the window's other end is `u(t-1)`.
    Fout,
    /// Translated Laguerre (`lagt`, `beta = 1`).
    Lagt,
}

impl Measure {
    /// Smallest even state size the reference's `nplr` accepts (Fourier has a zero eigenvalue
    /// pair, and the reference allows only one).
    pub fn min_state(self) -> usize {
        match self {
            Measure::Fout => 4,
            Measure::Legs | Measure::Lagt => 2,
        }
    }
}

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

/// `[1, 0, √2, 0, √2, 0, …]`: Fourier's `B`, and its rank-1 correction.
fn fout_b(n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            if k == 0 {
                1.0
            } else if k % 2 == 0 {
                2f64.sqrt()
            } else {
                0.0
            }
        })
        .collect()
}

/// Dense `(A [N×N] row-major, B [N])` of a measure (the reference's `transition`).
///
/// * `fout`: state `2j` / `2j+1` is the cosine / sine of frequency `j`, `A = π·J - B Bᵀ` with
///   `J` the rotation generator of each pair (`-j` above, `+j` below the diagonal).
/// * `lagt`: `A = I/2 - tril(1)` (so `-1/2` on the diagonal, `-1` below), `B = 1`.
pub fn transition(m: Measure, n: usize) -> (Vec<f64>, Vec<f64>) {
    match m {
        Measure::Legs => legs(n),
        Measure::Fout => {
            let b = fout_b(n);
            let mut a: Vec<f64> = (0..n * n).map(|i| -b[i / n] * b[i % n]).collect();
            // d[i] = i/2 for even i couples states (i, i+1); d[0] = 0 leaves states 0 and 1 alone.
            for i in (2..n.saturating_sub(1)).step_by(2) {
                let f = std::f64::consts::PI * (i / 2) as f64;
                a[i * n + i + 1] -= f;
                a[(i + 1) * n + i] += f;
            }
            (a, b)
        }
        Measure::Lagt => {
            let a = (0..n * n)
                .map(|i| match (i / n).cmp(&(i % n)) {
                    std::cmp::Ordering::Greater => -1.0,
                    std::cmp::Ordering::Equal => -0.5,
                    std::cmp::Ordering::Less => 0.0,
                })
                .collect();
            (a, vec![1.0; n])
        }
    }
}

/// The rank-1 `p` such that `A + p pᵀ` is normal (the reference's `rank_correction`).
pub fn rank_correction(m: Measure, n: usize) -> Vec<f64> {
    match m {
        Measure::Legs => (0..n).map(|k| (k as f64 + 0.5).sqrt()).collect(),
        Measure::Fout => fout_b(n),
        Measure::Lagt => vec![0.5f64.sqrt(); n],
    }
}

/// The normal-plus-low-rank form of a measure with `n` (even) states, restricted to the stored
/// half: `A = V̂ (diag(ŵ) - P̂ P̂ᴴ) V̂ᴴ` (golden README §5.1).
#[derive(Debug, Clone)]
pub struct Nplr {
    /// Diagonal `w`, [N/2], most negative imaginary part first (all `Im w ≤ 0`).
    pub w: Vec<C64>,
    /// Rank-1 factor in the eigenbasis `P = Vᴴ p`, [N/2].
    pub p: Vec<C64>,
    /// Input matrix in the eigenbasis `B = Vᴴ b`, imaginary part clipped to `±b_clip`, [N/2].
    pub b: Vec<C64>,
    /// The kept eigenvectors `V` [N × N/2] as columns (one `Vec` of length N each).
    pub v: Vec<Vec<C64>>,
}

/// NPLR form of LegS (see [`nplr`]).
pub fn legs_nplr(n: usize, b_clip: f64) -> Nplr {
    nplr(Measure::Legs, n, b_clip)
}

/// NPLR form of a measure, as the reference's `nplr(measure, N, rank=1, B_clip=b_clip)`.
///
/// `A + p·pᵀ = w_re·I + S` with `S` real skew-symmetric (read from the lower triangle, as
/// `eigh` does); `w_re` is the mean of the diagonal and `-i·S` is Hermitian. Each eigenvector is
/// normalised so its first non-zero component is real and positive: LAPACK returns the first
/// component real with an arbitrary sign, and the clip of `Im B` depends on the phase.
/// Fourier's first component is exactly 0; its phase follows the reference's float32 rounding
/// (see the comment inside). A zero eigenvalue (Fourier's constant/sine pair at frequency 0) gets the reference's fixed
/// eigenvector `(e₀ + i·e₁)/√2`.
pub fn nplr(m: Measure, n: usize, b_clip: f64) -> Nplr {
    assert!(
        n >= m.min_state() && (n.is_multiple_of(2) || m != Measure::Fout),
        "{m:?} needs a state size ≥ {} (even for fout)",
        m.min_state()
    );
    let (a, b) = transition(m, n);
    let p = rank_correction(m, n);
    let ap = |r: usize, c: usize| a[r * n + c] + p[r] * p[c];
    let w_re = (0..n).map(|k| ap(k, k)).sum::<f64>() / n as f64;
    let s = |r: usize, c: usize| match r.cmp(&c) {
        std::cmp::Ordering::Greater => ap(r, c),
        std::cmp::Ordering::Less => -ap(c, r),
        std::cmp::Ordering::Equal => 0.0,
    };
    let (lambda, mut v) = skew_eigen(n, s, true);
    if m == Measure::Fout {
        // The reference builds Fourier's p in float32, so `A + p·pᵀ` keeps a coupling δ < 0
        // between state 0 and every cosine state; to first order it gives each eigenvector a
        // first component `iδ·V[2k]/λ`, which LAPACK makes real and positive: V[2k] = -i/√2,
        // so B = +i. (Exactly, the first component is 0 and this phase is free.)
        for col in v.iter_mut() {
            col.iter_mut().for_each(|z| *z *= C64::new(0.0, -1.0));
        }
    }
    let last = n / 2 - 1;
    assert!(last == 0 || C64::new(w_re, lambda[last - 1]).norm() > 1e-4, "only one zero eigenvalue is allowed");
    if C64::new(w_re, lambda[last]).norm() < 1e-4 {
        let h = 0.5f64.sqrt();
        v[last] = (0..n).map(|r| [C64::new(h, 0.0), C64::new(0.0, h)].get(r).copied().unwrap_or_default()).collect();
    }
    // Vᴴ x for a real x.
    let project = |x: &[f64]| -> Vec<C64> {
        v.iter().map(|col| col.iter().zip(x).map(|(vi, xi)| vi.conj() * xi).sum()).collect()
    };
    let b = project(&b).into_iter().map(|z| C64::new(z.re, z.im.clamp(-b_clip, b_clip))).collect();
    let w = lambda.iter().map(|&im| C64::new(w_re, im)).collect();
    Nplr { w, p: project(&p), b, v }
}

/// The diagonal `w` of the NPLR form of LegS with `n` (even) states: the `n/2` eigenvalues of
/// `A + p·pᵀ` with negative imaginary part, most negative first, as (re, im).
pub fn legs_diagonal(n: usize) -> Vec<(f64, f64)> {
    assert!(n >= 2, "the NPLR form needs a state size ≥ 2, got {n}");
    let s = |r: usize, c: usize| -> f64 {
        let v = 0.5 * (((2 * r + 1) * (2 * c + 1)) as f64).sqrt();
        match r.cmp(&c) {
            std::cmp::Ordering::Greater => -v,
            std::cmp::Ordering::Less => v,
            std::cmp::Ordering::Equal => 0.0,
        }
    };
    skew_eigen(n, s, false).0.into_iter().map(|im| (-0.5, im)).collect()
}

/// The `n/2` most negative eigenvalues `λ` (ascending) of the Hermitian `-i·S` for a real
/// skew-symmetric `S` (`s(r, c)`), and, when `vectors`, their unit eigenvectors (first non-zero
/// component real > 0), one `Vec` of length `n` each.
///
/// The real embedding `[[0, S], [-S, 0]]` of `-i·S` is real symmetric with every eigenvalue
/// doubled, and an eigenvector `[x; y]` of it is the complex eigenvector `x + iy`.
#[allow(clippy::type_complexity)]
fn skew_eigen(n: usize, s: impl Fn(usize, usize) -> f64, vectors: bool) -> (Vec<f64>, Vec<Vec<C64>>) {
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
    // Pairs of equal λ: one of each for the n/2 most negative (an odd n's zero is left out).
    let pairs = &order[..2 * (n / 2)];
    let kept: Vec<usize> = pairs.iter().step_by(2).copied().collect();
    // The pair's mean cancels the Jacobi rounding between the two copies.
    let lambda = pairs.chunks(2).map(|p| 0.5 * (vals[p[0]] + vals[p[1]])).collect();
    let v = if vectors {
        kept.iter()
            .map(|&j| {
                let col: Vec<C64> = (0..n).map(|r| C64::new(vecs[r * m + j], vecs[(n + r) * m + j])).collect();
                let norm = col.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
                let lead = col.iter().find(|z| z.norm() > 1e-9 * norm).copied().unwrap_or(C64::new(1.0, 0.0));
                let phase = lead.conj() / lead.norm();
                col.into_iter().map(|z| z * phase / norm).collect()
            })
            .collect()
    } else {
        Vec::new()
    };
    (lambda, v)
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
