//! S4's `init` option: the `(A, P, B)` each trainable SSM copy starts from, as state-spaces/s4
//! `src/models/sequence/kernels/dplr.py` (`combination`, `ssm`, `dplr`) and
//! `src/models/hippo/hippo.py` (`nplr`).
//!
//! The reference reads an `init` string three ways: a named combination (`hippo` = legs +
//! fourier, `diag` = diag-inv + diag-lin, `all`), which splits the `n_ssm` copies into equal
//! blocks; `diag-<a>` / `dplr-<a>`, a directly built diagonal `A` with `P = 0` (`diag`) or a
//! random `P` (`dplr`); anything else is a HiPPO measure in NPLR form.

use num_complex::Complex64 as C64;
use serde::{Deserialize, Serialize};

use super::hippo::{Measure, nplr};

/// Accepted spellings and the canonical name each stands for.
const SPELLINGS: &[(&str, &str)] = &[
    ("legs", "legs"),
    ("fout", "fout"),
    ("fourier", "fout"),
    ("lagt", "lagt"),
    ("hippo", "hippo"),
    ("diag", "diag"),
    ("all", "all"),
    ("dplr", "dplr-legs"),
    // s4.py accepts only the prefixed forms; the bare ones are wavessm's (random P, as `dplr-`).
    ("lin", "dplr-lin"),
    ("inv", "dplr-inv"),
    ("real", "dplr-real"),
    ("rand", "dplr-rand"),
];

/// `dplr()`'s names for the diagonal `A` (after `diag-` / `dplr-`).
const DIRECT: &[(&str, DirectA)] = &[
    ("legs", DirectA::Legs),
    ("hippo", DirectA::Legs),
    ("lin", DirectA::Lin),
    ("linear", DirectA::Lin),
    ("inv", DirectA::Inv),
    ("inverse", DirectA::Inv),
    ("inv2", DirectA::Inv2),
    ("inverse2", DirectA::Inv2),
    ("quad", DirectA::Quad),
    ("quadratic", DirectA::Quad),
    ("real", DirectA::Real),
    ("rand", DirectA::Rand),
    ("random", DirectA::Rand),
];

/// A diagonal `A` built directly (`dplr(init=…)` in the reference), `n = 0 … N/2-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectA {
    /// S4D-LegS: `-1/2 + i·Im w` of LegS's NPLR form, and LegS's `B` (clipped).
    Legs,
    /// S4D-Lin: `-1/2 - iπn`.
    Lin,
    /// S4D-Inv: `-1/2 - i(N/π)(N/(2n+1) - 1)`.
    Inv,
    /// `-1/2 - i(N/π)(N/(n+1) - 1)`.
    Inv2,
    /// `-1/2 - i(2n+1)²/π`.
    Quad,
    /// S4D-Real: `-(n+1)`.
    Real,
    /// `-1/2 - i·exp(ε)`, `ε ~ N(0, 1)` drawn per copy.
    Rand,
}

/// One block of SSM copies and how it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitPart {
    /// A HiPPO measure's NPLR form (`w`, its `P`, its clipped `B`).
    Nplr(Measure),
    /// A direct diagonal with `B = 1` (LegS: its `B`) and `P` complex normal (`low_rank`) or 0.
    Direct {
        /// The diagonal.
        a: DirectA,
        /// `dplr-` (random `P`) rather than `diag-` (`P = 0`).
        low_rank: bool,
    },
}

/// Initialization of `(A, B, P)` (s4.py's `init`); prints as its canonical name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct S4Init(String);

impl Default for S4Init {
    fn default() -> Self {
        S4Init("legs".into())
    }
}

impl From<S4Init> for String {
    fn from(i: S4Init) -> String {
        i.0
    }
}

impl TryFrom<String> for S4Init {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Some((_, canon)) = SPELLINGS.iter().find(|(k, _)| *k == s) {
            return Ok(S4Init(canon.to_string()));
        }
        if let Some((prefix, rest)) = s.split_once('-')
            && matches!(prefix, "diag" | "dplr")
            && let Some((_, a)) = DIRECT.iter().find(|(k, _)| *k == rest)
        {
            let canon = DIRECT.iter().find(|(_, v)| v == a).map_or(rest, |(k, _)| k);
            return Ok(S4Init(format!("{prefix}-{canon}")));
        }
        // serde's wording, which the config layer turns into "unknown value …; allowed: …".
        let mut allowed: Vec<String> = SPELLINGS.iter().map(|(k, _)| format!("`{k}`")).collect();
        allowed.extend(DIRECT.iter().map(|(k, _)| format!("`diag-{k}`, `dplr-{k}`")));
        Err(format!("unknown variant `{s}`, expected one of {}", allowed.join(", ")))
    }
}

impl S4Init {
    /// The canonical name (`fourier` reads as `fout`, `lin` as `dplr-lin`).
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The blocks the SSM copies are split into, in order.
    pub fn parts(&self) -> Vec<InitPart> {
        let one = |s: &str| -> InitPart {
            match s {
                "legs" => InitPart::Nplr(Measure::Legs),
                "fout" => InitPart::Nplr(Measure::Fout),
                "lagt" => InitPart::Nplr(Measure::Lagt),
                _ => {
                    let (prefix, rest) = s.split_once('-').expect("canonical direct names are prefixed");
                    let a = DIRECT.iter().find(|(k, _)| *k == rest).expect("canonical").1;
                    InitPart::Direct { a, low_rank: prefix == "dplr" }
                }
            }
        };
        let names: &[&str] = match self.0.as_str() {
            "hippo" => &["legs", "fout"],
            "diag" => &["diag-inv", "diag-lin"],
            "all" => &["legs", "fout", "diag-inv", "diag-lin"],
            s => return vec![one(s)],
        };
        names.iter().map(|s| one(s)).collect()
    }

    /// The smallest state size every part accepts.
    pub fn min_state(&self) -> usize {
        self.parts()
            .iter()
            .map(|p| match p {
                InitPart::Nplr(m) => m.min_state(),
                InitPart::Direct { .. } => 2,
            })
            .max()
            .unwrap_or(2)
    }
}

/// Initial `(w, B, P)` of `s` SSM copies with `n` states (`N2 = n/2` stored modes), each
/// `[S·N2]` copy-major; `P` only when `with_p` (`nplr` mode). `normal(k, std)` draws `k`
/// normal values (complex normals draw re and im with std `√½` each, as `torch.randn(cfloat)`).
/// `s` must be a multiple of the number of parts (checked by the config).
#[allow(clippy::type_complexity)]
pub fn init_copies(
    init: &S4Init,
    n: usize,
    s: usize,
    with_p: bool,
    normal: &mut dyn FnMut(usize, f64) -> Vec<f64>,
) -> (Vec<C64>, Vec<C64>, Option<Vec<C64>>) {
    let n2 = n / 2;
    let parts = init.parts();
    let per = s / parts.len();
    let (mut w, mut b, mut p) = (Vec::with_capacity(s * n2), Vec::with_capacity(s * n2), Vec::new());
    for part in parts {
        match part {
            InitPart::Nplr(m) => {
                let f = nplr(m, n, 2.0);
                for _ in 0..per {
                    w.extend(&f.w);
                    b.extend(&f.b);
                    p.extend(&f.p);
                }
            }
            InitPart::Direct { a, low_rank } => {
                let nf = n as f64;
                let pi = std::f64::consts::PI;
                let legs = (a == DirectA::Legs).then(|| nplr(Measure::Legs, n, 2.0));
                let imag: Vec<f64> = match a {
                    DirectA::Rand => normal(per * n2, 1.0).into_iter().map(f64::exp).collect(),
                    _ => {
                        let one: Vec<f64> = (0..n2)
                            .map(|k| {
                                let kf = k as f64;
                                match a {
                                    DirectA::Legs => -legs.as_ref().expect("legs").w[k].im,
                                    DirectA::Lin => pi * kf,
                                    DirectA::Inv => nf / pi * (nf / (2.0 * kf + 1.0) - 1.0),
                                    DirectA::Inv2 => nf / pi * (nf / (kf + 1.0) - 1.0),
                                    DirectA::Quad => (2.0 * kf + 1.0).powi(2) / pi,
                                    DirectA::Real | DirectA::Rand => 0.0,
                                }
                            })
                            .collect();
                        (0..per).flat_map(|_| one.iter().copied()).collect()
                    }
                };
                let real = |k: usize| if a == DirectA::Real { (k + 1) as f64 } else { 0.5 };
                w.extend(imag.iter().enumerate().map(|(i, im)| C64::new(-real(i % n2), -im)));
                match &legs {
                    Some(f) => (0..per).for_each(|_| b.extend(&f.b)),
                    None => b.extend(std::iter::repeat_n(C64::new(1.0, 0.0), per * n2)),
                }
                if with_p {
                    let scale = if low_rank { 1.0 } else { 0.0 };
                    let z = normal(2 * per * n2, 0.5f64.sqrt());
                    p.extend(z.chunks(2).map(|z| C64::new(z[0], z[1]) * scale));
                }
            }
        }
    }
    (w, b, with_p.then_some(p))
}
