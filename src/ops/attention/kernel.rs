//! Host math of the fused attention: per (batch, head), blocks of queries against all the keys
//! they may see, with the softmax, causal mask and dropout applied to the block's scores in
//! place and the products run by `gemm`.
//!
//! Dimension letters: B batch, nH heads, G = B·nH, L queries, T keys (T = offset + L when
//! causal with a cache), d head size, Q rows of a query block. Where each head's rows lie is a
//! [`Layout`], so the kernels read and write heads in place, whether stored as [B, nH, L, d] or
//! packed in the projections' [B, L, 3·nH·d].
//!
//! The backward pass recomputes each block's probabilities from the saved log-sum-exp, so the
//! forward pass keeps only `out` and `lse` [G, L] (FlashAttention's recomputation): no [L, T]
//! matrix outlives a block.

use rayon::prelude::*;

use crate::ops::fastmath::{dot, exp_approx};
use crate::ops::matmul::{View, matmul, matmul_into, rows, transposed};
use crate::ops::simd::{mul_add, simd_dispatch};

/// Floats of one block's score buffer: 64 query rows of 4096 keys (1 MiB); fewer rows for
/// longer key ranges, at least one.
const BLOCK_FLOATS: usize = 1 << 18;

/// Most query rows per block: enough rows to keep the GEMMs efficient, few enough to stay in L2.
const MAX_ROWS: usize = 64;

/// Sizes of one call.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Batch B.
    pub b: usize,
    /// Heads nH.
    pub nh: usize,
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

/// Where the rows of each head lie in a buffer: row `i` of head `h` of sequence `b` starts at
/// `base + b·batch + h·head + i·row`, and its `d` values are contiguous.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Offset of row 0 of head 0 of sequence 0.
    pub base: usize,
    /// Stride between sequences.
    pub batch: usize,
    /// Stride between heads.
    pub head: usize,
    /// Stride between rows.
    pub row: usize,
}

impl Layout {
    /// Contiguous [B, nH, n, d].
    pub fn heads(nh: usize, n: usize, d: usize) -> Self {
        Self { base: 0, batch: nh * n * d, head: n * d, row: d }
    }

    /// Part `part` (0: queries, 1: keys, 2: values) of packed projections [B, n, 3·nH·d].
    pub fn packed(part: usize, nh: usize, n: usize, d: usize) -> Self {
        let w = nh * d;
        Self { base: part * w, batch: n * 3 * w, head: d, row: 3 * w }
    }

    /// Contiguous [B, n, nH·d] (heads concatenated in each row).
    pub fn joined(nh: usize, n: usize, d: usize) -> Self {
        Self { base: 0, batch: n * nh * d, head: d, row: nh * d }
    }

    /// Offset of row 0 of head `g` (= b·nH + h).
    fn start(&self, g: usize, nh: usize) -> usize {
        self.base + (g / nh) * self.batch + (g % nh) * self.head
    }

    /// Floats a buffer in this layout spans.
    fn span(&self, dm: &Dims, n: usize) -> usize {
        if dm.b == 0 || dm.nh == 0 || n == 0 {
            return 0;
        }
        self.start(dm.b * dm.nh - 1, dm.nh) + (n - 1) * self.row + dm.d
    }
}

/// A buffer's tensors of one role (queries, keys, values, or a gradient) and where they lie.
#[derive(Clone, Copy)]
pub struct Heads<'a> {
    /// The buffer.
    pub data: &'a [f32],
    /// Where each head's rows are.
    pub lay: Layout,
}

impl<'a> Heads<'a> {
    /// Rows `start..` of head `g` as a matrix view.
    fn rows(&self, g: usize, nh: usize, start: usize) -> View<'a> {
        View { data: &self.data[self.lay.start(g, nh) + start * self.lay.row..], rs: self.lay.row, cs: 1 }
    }

    /// The transpose of rows `0..` of head `g`.
    fn transposed(&self, g: usize, nh: usize) -> View<'a> {
        View { data: &self.data[self.lay.start(g, nh)..], rs: 1, cs: self.lay.row }
    }
}

/// A buffer written by several heads at once: each head writes only its own rows' `d` values.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    len: usize,
    lay: Layout,
}

// SAFETY: the tasks that share an `Out` write disjoint elements (their own head's rows), and
// the buffer outlives the parallel loop that uses it.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    /// `v` written through `lay`, which must give each head its own rows (as `Layout`'s
    /// constructors do).
    fn new(v: &mut [f32], lay: Layout) -> Self {
        Self { ptr: v.as_mut_ptr(), len: v.len(), lay }
    }

    /// Rows `start..start + m` of head `g` as a matmul destination.
    fn rows(&self, g: usize, nh: usize, start: usize) -> (*mut f32, usize, usize) {
        let at = self.lay.start(g, nh) + start * self.lay.row;
        // SAFETY: `at.min(len)` is at most one past the end of the buffer `ptr` points into.
        (unsafe { self.ptr.add(at.min(self.len)) }, self.len.saturating_sub(at), self.lay.row)
    }
}

impl Dims {
    /// Heads G = B·nH.
    pub fn g(&self) -> usize {
        self.b * self.nh
    }

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
    // Plain loops: an iterator adaptor's `for_each` may stay un-inlined, outside the AVX copy.
    for s in seen.iter_mut() {
        *s = exp_approx(*s - max);
    }
    let sum = lanes(seen, 0.0, |a, b| a + b);
    let inv = 1.0 / sum;
    match mask {
        Some(m) => {
            for (j, s) in seen.iter_mut().enumerate() {
                *s *= inv * m.at(j);
            }
        }
        None => {
            for s in seen.iter_mut() {
                *s *= inv;
            }
        }
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

/// Queries, keys and values of one call.
#[derive(Clone, Copy)]
pub struct Qkv<'a> {
    /// Queries, L rows per head.
    pub q: Heads<'a>,
    /// Keys, T rows per head.
    pub k: Heads<'a>,
    /// Values, T rows per head.
    pub v: Heads<'a>,
}

impl Qkv<'_> {
    /// Panics unless every head's rows lie inside the buffers (a caller's bug, not bad input).
    fn check(&self, dm: &Dims) {
        let fits = |x: &Heads, n| x.data.len() >= x.lay.span(dm, n);
        assert!(fits(&self.q, dm.l) && fits(&self.k, dm.t) && fits(&self.v, dm.t), "attention: buffers too small");
    }
}

/// Softmax attention of `x` into `out` (L rows of d values per head, in layout `out`'s).
/// Returns the log-sum-exp of each query's scaled scores `lse` [G, L].
pub fn forward(x: &Qkv, out: &mut [f32], lay: Layout, dm: Dims, o: &Opts) -> Vec<f32> {
    let (l, t, d, nh) = (dm.l, dm.t, dm.d, dm.nh);
    let mut lse = vec![0f32; dm.g() * l];
    if l == 0 || d == 0 || dm.g() == 0 {
        return lse;
    }
    x.check(&dm);
    assert!(out.len() >= lay.span(&dm, l), "attention: output too small");
    let scale = 1.0 / (d as f32).sqrt();
    let qb = dm.rows();
    let dst = Out::new(out, lay);
    lse.par_chunks_mut(l).enumerate().for_each(|(g, lse)| {
        let mut s = vec![0f32; qb * t];
        for start in (0..l).step_by(qb) {
            let n = qb.min(l - start);
            let keys = o.keys(&dm, start, n);
            let s = &mut s[..n * keys];
            matmul(s, n, keys, d, x.q.rows(g, nh, start), x.k.transposed(g, nh), scale, false); // [Q, keys]
            for (i, row) in s.chunks_exact_mut(keys).enumerate() {
                let mask = (o.drop > 0.0).then(|| RowMask::new(o, g, start + i));
                lse[start + i] = softmax_row(row, o.visible(&dm, start + i), mask);
            }
            // SAFETY: head `g`'s rows are this task's alone.
            unsafe { matmul_into(dst.rows(g, nh, start), n, d, keys, rows(s, keys), x.v.rows(g, nh, 0), 1.0, false) };
        }
    });
    lse
}

/// What the backward pass reads: the inputs, the output and its log-sum-exp, and the output's
/// gradient (laid out as the output).
pub struct Saved<'a> {
    /// Queries, keys and values.
    pub x: Qkv<'a>,
    /// Output of the forward pass.
    pub out: Heads<'a>,
    /// Log-sum-exp of the forward pass [G, L].
    pub lse: &'a [f32],
    /// Gradient of the output.
    pub grad: Heads<'a>,
}

/// Where the backward pass writes ∂q, ∂k and ∂v: zeroed buffers (∂k and ∂v accumulate).
pub struct GradsOut {
    q: Out,
    k: Out,
    v: Out,
}

impl GradsOut {
    /// Destinations in the given buffers and layouts (they may share one buffer, as the packed
    /// projections do).
    ///
    /// # Safety
    /// Each pointer must stay valid and unused by anything else until `backward` returns, hold
    /// `len` zeroed floats, and the layouts must give every head of every role its own rows.
    pub unsafe fn new(
        q: (*mut f32, usize, Layout),
        k: (*mut f32, usize, Layout),
        v: (*mut f32, usize, Layout),
    ) -> Self {
        let out = |(ptr, len, lay)| Out { ptr, len, lay };
        Self { q: out(q), k: out(k), v: out(v) }
    }
}

/// Gradients of [`forward`]'s output into `dst`.
///
/// With `Z = P∘M` (probabilities times the dropout mask), `dZ = dO·Vᵀ`, and
/// `Σ_j P_ij·M_ij·dZ_ij = dO_i·O_i`: `dS = P∘(M∘dZ − rowsum(dO∘O))`, `dQ = scale·dS·K`,
/// `dK = scale·dSᵀ·Q`, `dV = Zᵀ·dO`.
pub fn backward(sv: &Saved, dst: &GradsOut, dm: Dims, o: &Opts) {
    let (l, t, d, nh) = (dm.l, dm.t, dm.d, dm.nh);
    if l == 0 || t == 0 || d == 0 || dm.g() == 0 {
        return;
    }
    sv.x.check(&dm);
    let fits = |x: &Heads| x.data.len() >= x.lay.span(&dm, l);
    assert!(fits(&sv.out) && fits(&sv.grad) && sv.lse.len() >= dm.g() * l, "attention: saved buffers too small");
    for (w, n) in [(&dst.q, l), (&dst.k, t), (&dst.v, t)] {
        assert!(w.len >= w.lay.span(&dm, n), "attention: gradient buffer too small");
    }
    let scale = 1.0 / (d as f32).sqrt();
    let qb = dm.rows();
    (0..dm.g()).into_par_iter().for_each(|g| {
        let lse = &sv.lse[g * l..][..l];
        // D_i = dO_i·O_i [L]
        let dots: Vec<f32> =
            (0..l).map(|i| dot(&sv.out.rows(g, nh, i).data[..d], &sv.grad.rows(g, nh, i).data[..d])).collect();
        let (mut p, mut ds) = (vec![0f32; qb * t], vec![0f32; qb * t]);
        for start in (0..l).step_by(qb) {
            let n = qb.min(l - start);
            let keys = o.keys(&dm, start, n);
            let (p, ds) = (&mut p[..n * keys], &mut ds[..n * keys]);
            let (qs, dos) = (sv.x.q.rows(g, nh, start), sv.grad.rows(g, nh, start));
            matmul(p, n, keys, d, qs, sv.x.k.transposed(g, nh), scale, false); // S [Q, keys]
            matmul(ds, n, keys, d, dos, sv.x.v.transposed(g, nh), 1.0, false); // dZ [Q, keys]
            for (i, (pr, dr)) in p.chunks_exact_mut(keys).zip(ds.chunks_exact_mut(keys)).enumerate() {
                let (row, visible) = (start + i, o.visible(&dm, start + i));
                let mask = (o.drop > 0.0).then(|| RowMask::new(o, g, row));
                grad_row(pr, dr, visible, lse[row], dots[row], mask);
            }
            // SAFETY: head `g`'s rows of every gradient are this task's alone.
            unsafe {
                matmul_into(dst.v.rows(g, nh, 0), keys, d, n, transposed(p, keys), dos, 1.0, true); // += Zᵀ·dO
                matmul_into(dst.q.rows(g, nh, start), n, d, keys, rows(ds, keys), sv.x.k.rows(g, nh, 0), scale, false);
                matmul_into(dst.k.rows(g, nh, 0), keys, d, n, transposed(ds, keys), qs, scale, true); // += dSᵀ·Q
            }
        }
    });
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
