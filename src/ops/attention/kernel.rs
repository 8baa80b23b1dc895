//! Host math of the fused attention: per (batch, head), blocks of queries against all the keys
//! they may see, with the softmax, causal mask and dropout applied to the block's scores in
//! place and the products run by `gemm`.
//!
//! Dimension letters: G = batch·heads, L queries, T keys (T = offset + L when causal with a
//! cache), d head size, Q rows of a query block.
//!
//! The backward pass recomputes each block's probabilities from the saved log-sum-exp, so the
//! forward pass keeps only `out` and `lse` [G, L] (FlashAttention's recomputation): no [L, T]
//! matrix outlives a block.

use rayon::prelude::*;

use crate::ops::fastmath::{dot, exp_approx};
use crate::ops::simd::{mul_add, simd_dispatch};

/// Floats of one block's score buffer: 64 query rows of 4096 keys (1 MiB); fewer rows for
/// longer key ranges, at least one.
const BLOCK_FLOATS: usize = 1 << 18;

/// Most query rows per block: enough rows to keep the GEMMs efficient, few enough to stay in L2.
const MAX_ROWS: usize = 64;

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Batch·heads G.
    pub g: usize,
    /// Queries L.
    pub l: usize,
    /// Keys T.
    pub t: usize,
    /// Head size d.
    pub d: usize,
}

/// What the attention computes besides the plain softmax.
#[derive(Debug, Clone, Copy)]
pub struct Opts {
    /// Query `i` sees keys `0..=offset + i` only.
    pub causal: bool,
    /// Position of the first query among the keys (the cached positions).
    pub offset: usize,
    /// Probability of dropping an attention weight (0: no dropout).
    pub drop: f32,
    /// Seed of the dropout mask, the same for the forward and backward pass.
    pub seed: u64,
}

impl Dims {
    /// Query rows per block.
    fn rows(&self) -> usize {
        (BLOCK_FLOATS / self.t.max(1)).clamp(1, MAX_ROWS)
    }
}

impl Opts {
    /// Keys visible to the block of `n` queries from `start`.
    fn keys(&self, dm: &Dims, start: usize, n: usize) -> usize {
        if self.causal { (self.offset + start + n).min(dm.t) } else { dm.t }
    }

    /// Keys visible to query `i`.
    fn visible(&self, dm: &Dims, i: usize) -> usize {
        if self.causal { (self.offset + i + 1).min(dm.t) } else { dm.t }
    }
}

/// The dropout mask of query `i` of head `g`: `mask(j)` is `1/(1 - drop)` for kept keys, 0 for
/// dropped ones (a counter-based hash, so the backward pass regenerates it).
#[derive(Debug, Clone, Copy)]
pub struct RowMask {
    key: u32,
    cut: u64,
    scale: f32,
}

impl RowMask {
    /// The mask of row `i` of head `g` under `o`'s seed and rate.
    pub fn new(o: &Opts, g: usize, i: usize) -> Self {
        let key = splitmix64(o.seed ^ splitmix64(((g as u64) << 32) ^ i as u64)) as u32;
        let keep = 1.0 - o.drop as f64;
        Self { key, cut: (keep * 4_294_967_296.0) as u64, scale: (1.0 / keep) as f32 }
    }

    /// Weight of key `j`.
    #[inline(always)]
    pub fn at(&self, j: usize) -> f32 {
        let h = lowbias32(self.key ^ (j as u32).wrapping_mul(0x9E37_79B9));
        if (h as u64) < self.cut { self.scale } else { 0.0 }
    }
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A bijective 32-bit mixer (Wellons' `lowbias32`): vectorizes, unlike a 64-bit one on AVX2.
#[inline(always)]
fn lowbias32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^ (x >> 16)
}

/// A row-major or transposed read of a matrix: element (r, c) at `data[r·rs + c·cs]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

/// `a` read as a row-major matrix with rows of `cols` values.
fn rows(data: &[f32], cols: usize) -> View<'_> {
    View { data, rs: cols, cs: 1 }
}

/// The transpose of the row-major matrix `data` with rows of `cols` values.
fn transposed(data: &[f32], cols: usize) -> View<'_> {
    View { data, rs: 1, cs: cols }
}

/// `dst[m, n] (+)= beta·a[m, k]·b[k, n]`, `dst` row-major with rows of `n` values; `acc` adds
/// to `dst` instead of overwriting it. One thread: the callers are parallel over heads.
#[allow(clippy::too_many_arguments)]
fn matmul(dst: &mut [f32], m: usize, n: usize, k: usize, a: View, b: View, beta: f32, acc: bool) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    let last = |v: &View, r: usize, c: usize| (r - 1) * v.rs + (c - 1) * v.cs;
    assert!(dst.len() >= m * n && a.data.len() > last(&a, m, k) && b.data.len() > last(&b, k, n));
    // SAFETY: the assertion above keeps every index the strides reach inside the slices, and
    // `dst` does not alias `a` or `b` (a `&mut` beside two `&`).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            acc,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

simd_dispatch! {
    /// Softmax of the first `visible` scores of `row` in place (zeros after them), times the
    /// dropout mask when there is one. Returns the log-sum-exp of the visible scores.
    fn softmax_row => softmax_row_body(row: &mut [f32], visible: usize, mask: Option<RowMask>) -> f32
}

#[inline(always)]
fn softmax_row_body<const FMA: bool>(row: &mut [f32], visible: usize, mask: Option<RowMask>) -> f32 {
    let (seen, hidden) = row.split_at_mut(visible);
    hidden.fill(0.0);
    let max = lanes(seen, f32::NEG_INFINITY, f32::max);
    seen.iter_mut().for_each(|s| *s = exp_approx(*s - max));
    let sum = lanes(seen, 0.0, |a, b| a + b);
    let inv = 1.0 / sum;
    match mask {
        Some(m) => seen.iter_mut().enumerate().for_each(|(j, s)| *s *= inv * m.at(j)),
        None => seen.iter_mut().for_each(|s| *s *= inv),
    }
    max + sum.ln()
}

/// `x` folded by `f` in eight independent lanes, then across them (so the fold vectorizes:
/// the compiler does not reorder a sequential float reduction).
#[inline(always)]
fn lanes(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = f(acc[i], c[i]);
        }
    }
    acc.into_iter().chain(rest.iter().copied()).fold(init, f)
}

/// Softmax attention. Args: `q` [G, L, d], `k`, `v` [G, T, d]. Returns `out` [G, L, d] and the
/// log-sum-exp of each query's scaled scores `lse` [G, L].
pub fn forward(q: &[f32], k: &[f32], v: &[f32], dm: Dims, o: &Opts) -> (Vec<f32>, Vec<f32>) {
    let (l, t, d) = (dm.l, dm.t, dm.d);
    let mut out = vec![0f32; dm.g * l * d];
    let mut lse = vec![0f32; dm.g * l];
    if l == 0 || d == 0 {
        return (out, lse);
    }
    let scale = 1.0 / (d as f32).sqrt();
    let qb = dm.rows();
    out.par_chunks_mut(l * d).zip(lse.par_chunks_mut(l)).enumerate().for_each(|(g, (out, lse))| {
        let (qg, kg, vg) = (&q[g * l * d..][..l * d], &k[g * t * d..][..t * d], &v[g * t * d..][..t * d]);
        let mut s = vec![0f32; qb * t];
        for start in (0..l).step_by(qb) {
            let n = qb.min(l - start);
            let keys = o.keys(&dm, start, n);
            let s = &mut s[..n * keys];
            let qs = &qg[start * d..][..n * d];
            matmul(s, n, keys, d, rows(qs, d), transposed(kg, d), scale, false); // [Q, keys]
            for (i, row) in s.chunks_exact_mut(keys).enumerate() {
                let mask = (o.drop > 0.0).then(|| RowMask::new(o, g, start + i));
                lse[start + i] = softmax_row(row, o.visible(&dm, start + i), mask);
            }
            matmul(&mut out[start * d..][..n * d], n, d, keys, rows(s, keys), rows(vg, d), 1.0, false); // [Q, d]
        }
    });
    (out, lse)
}

/// The saved tensors and the output gradient of one call.
pub struct Saved<'a> {
    /// Queries [G, L, d].
    pub q: &'a [f32],
    /// Keys [G, T, d].
    pub k: &'a [f32],
    /// Values [G, T, d].
    pub v: &'a [f32],
    /// Output of the forward pass [G, L, d].
    pub out: &'a [f32],
    /// Log-sum-exp of the forward pass [G, L].
    pub lse: &'a [f32],
    /// Gradient of the output [G, L, d].
    pub grad: &'a [f32],
}

/// Gradients (∂q [G, L, d], ∂k, ∂v [G, T, d]) of [`forward`]'s `out`.
///
/// With `Z = P∘M` (probabilities times the dropout mask), `dZ = dO·Vᵀ`, and
/// `Σ_j P_ij·M_ij·dZ_ij = dO_i·O_i`: `dS = P∘(M∘dZ − rowsum(dO∘O))`, `dQ = scale·dS·K`,
/// `dK = scale·dSᵀ·Q`, `dV = Zᵀ·dO`.
pub fn backward(sv: &Saved, dm: Dims, o: &Opts) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (l, t, d) = (dm.l, dm.t, dm.d);
    let mut dq = vec![0f32; dm.g * l * d];
    let mut dk = vec![0f32; dm.g * t * d];
    let mut dv = vec![0f32; dm.g * t * d];
    if l == 0 || t == 0 || d == 0 {
        return (dq, dk, dv);
    }
    let scale = 1.0 / (d as f32).sqrt();
    let qb = dm.rows();
    let heads = dq.par_chunks_mut(l * d).zip(dk.par_chunks_mut(t * d)).zip(dv.par_chunks_mut(t * d));
    heads.enumerate().for_each(|(g, ((dq, dk), dv))| {
        let (qg, og, dog) =
            (&sv.q[g * l * d..][..l * d], &sv.out[g * l * d..][..l * d], &sv.grad[g * l * d..][..l * d]);
        let (kg, vg, lse) = (&sv.k[g * t * d..][..t * d], &sv.v[g * t * d..][..t * d], &sv.lse[g * l..][..l]);
        // D_i = dO_i·O_i [L]
        let dots: Vec<f32> = og.chunks_exact(d).zip(dog.chunks_exact(d)).map(|(a, b)| dot(a, b)).collect();
        let (mut p, mut ds) = (vec![0f32; qb * t], vec![0f32; qb * t]);
        for start in (0..l).step_by(qb) {
            let n = qb.min(l - start);
            let keys = o.keys(&dm, start, n);
            let (p, ds) = (&mut p[..n * keys], &mut ds[..n * keys]);
            let (qs, dos) = (&qg[start * d..][..n * d], &dog[start * d..][..n * d]);
            matmul(p, n, keys, d, rows(qs, d), transposed(kg, d), scale, false); // S [Q, keys]
            matmul(ds, n, keys, d, rows(dos, d), transposed(vg, d), 1.0, false); // dZ [Q, keys]
            for (i, (pr, dr)) in p.chunks_exact_mut(keys).zip(ds.chunks_exact_mut(keys)).enumerate() {
                let (row, visible) = (start + i, o.visible(&dm, start + i));
                let mask = (o.drop > 0.0).then(|| RowMask::new(o, g, row));
                grad_row(pr, dr, visible, lse[row], dots[row], mask);
            }
            matmul(dv, keys, d, n, transposed(p, keys), rows(dos, d), 1.0, true); // += Zᵀ·dO [keys, d]
            matmul(&mut dq[start * d..][..n * d], n, d, keys, rows(ds, keys), rows(kg, d), scale, false); // [Q, d]
            matmul(dk, keys, d, n, transposed(ds, keys), rows(qs, d), scale, true); // += dSᵀ·Q [keys, d]
        }
    });
    (dq, dk, dv)
}

simd_dispatch! {
    /// One query's row: the scores `p` become `Z = P∘M` and the value-gradients `dz` become
    /// `dS`, both zero past the visible keys.
    fn grad_row => grad_row_body(p: &mut [f32], dz: &mut [f32], visible: usize, lse: f32, dot: f32, mask: Option<RowMask>)
}

#[inline(always)]
fn grad_row_body<const FMA: bool>(
    p: &mut [f32],
    dz: &mut [f32],
    visible: usize,
    lse: f32,
    dot: f32,
    mask: Option<RowMask>,
) {
    let ((p, p_hidden), (dz, dz_hidden)) = (p.split_at_mut(visible), dz.split_at_mut(visible));
    p_hidden.fill(0.0);
    dz_hidden.fill(0.0);
    match mask {
        Some(m) => {
            for (j, (p, dz)) in p.iter_mut().zip(dz.iter_mut()).enumerate() {
                let (prob, w) = (exp_approx(*p - lse), m.at(j));
                *dz = prob * mul_add::<FMA>(w, *dz, -dot);
                *p = prob * w;
            }
        }
        None => {
            for (p, dz) in p.iter_mut().zip(dz.iter_mut()) {
                let prob = exp_approx(*p - lse);
                *dz = prob * (*dz - dot);
                *p = prob;
            }
        }
    }
}
