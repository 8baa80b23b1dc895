//! The selective scan on plain slices: forward keeping only the states at chunk boundaries,
//! backward recomputing each chunk and running the reverse-time adjoint scan.
//!
//! Work is split into tasks of one batch element × a block of `W` channels (rayon); within a
//! task the state is `[W, N]` and every loop over `N` runs on contiguous f32 slices so that it
//! vectorizes. Memory beyond inputs and outputs: the boundary states `[B, E, L/T, N]` with
//! `T ≥ N`, and per task `[T, W, N]` buffers: O(B·E·(N + L)).

use rayon::prelude::*;

use crate::ops::fastmath::{dot, exp_approx, sigmoid, softplus};

/// Channels per task: small enough for the per-task buffers to stay in cache.
const BLOCK: usize = 16;

/// Time steps per chunk of the backward recomputation (raised to `N` for large states, which
/// keeps the boundary states at most `[B, E, L]`).
const CHUNK: usize = 64;

/// Sizes: batch, length, channels, state.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Batch size B.
    pub b: usize,
    /// Length L.
    pub l: usize,
    /// Channels E.
    pub e: usize,
    /// State size N.
    pub n: usize,
}

impl Dims {
    /// Steps per chunk.
    pub fn chunk(&self) -> usize {
        CHUNK.max(self.n)
    }

    /// Number of chunks (boundary states per channel).
    pub fn chunks(&self) -> usize {
        self.l.div_ceil(self.chunk()).max(1)
    }
}

/// Inputs of the scan (see [`super::ScanOps::selective_scan`] for the math).
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// `u` [B, L, E].
    pub u: &'a [f32],
    /// Raw step sizes `delta` [B, L, E] (before bias and softplus).
    pub delta: &'a [f32],
    /// `A` [E, N].
    pub a: &'a [f32],
    /// `B` [B, L, N].
    pub bm: &'a [f32],
    /// `C` [B, L, N].
    pub cm: &'a [f32],
    /// Skip `D` [E].
    pub d: &'a [f32],
    /// Gate `z` [B, L, E], empty for none.
    pub z: &'a [f32],
    /// `delta_bias` [E].
    pub bias: &'a [f32],
    /// Whether `Δ = softplus(delta + bias)` (else `delta + bias`).
    pub softplus: bool,
}

/// Per-channel values of a block at one time step, [W] each.
struct Step {
    /// `Δ`.
    dl: Vec<f32>,
    /// `Δ·u`.
    du: Vec<f32>,
    /// `dΔ/d(delta)`: `σ(delta + bias)` with softplus, else 1.
    dsp: Vec<f32>,
    /// `σ(z)` (gated only).
    sz: Vec<f32>,
}

impl Step {
    fn new(w: usize) -> Self {
        Self { dl: vec![0.0; w], du: vec![0.0; w], dsp: vec![1.0; w], sz: vec![0.0; w] }
    }

    /// Fills the values of channels `e0..e0+W` at flat index `i0` of (b, t, e0); loops over
    /// the block's contiguous channels, so they vectorize.
    #[inline(always)]
    fn fill(&mut self, inp: &Inputs, i0: usize, e0: usize, backward: bool) {
        let w = self.dl.len();
        let (delta, u, bias) = (&inp.delta[i0..][..w], &inp.u[i0..][..w], &inp.bias[e0..][..w]);
        let raw = delta.iter().zip(bias).map(|(d, b)| d + b);
        if inp.softplus {
            self.dl.iter_mut().zip(raw.clone()).for_each(|(o, v)| *o = softplus(v));
            if backward {
                self.dsp.iter_mut().zip(raw).for_each(|(o, v)| *o = sigmoid(v));
            }
        } else {
            self.dl.iter_mut().zip(raw).for_each(|(o, v)| *o = v);
        }
        self.du.iter_mut().zip(self.dl.iter().zip(u)).for_each(|(o, (d, u))| *o = d * u);
        if !inp.z.is_empty() {
            self.sz.iter_mut().zip(&inp.z[i0..][..w]).for_each(|(o, z)| *o = sigmoid(*z));
        }
    }
}

/// One step of the state of one channel: `x ← exp(Δ·a)⊙x + Δ·u·B`; keeps `exp(Δ·a)` in `da`.
/// Zipped iterators: no bounds checks, so the loop over N vectorizes.
#[inline(always)]
fn advance(x: &mut [f32], da: &mut [f32], a: &[f32], bt: &[f32], dl: f32, du: f32) {
    for ((x, da), (a, b)) in x.iter_mut().zip(da.iter_mut()).zip(a.iter().zip(bt)) {
        *da = exp_approx(dl * a);
        *x = *da * *x + du * b;
    }
}

/// Lanes of the fixed-size chunks the loops over N work in: one AVX2 register of f32.
const V: usize = 8;

/// `s[k..k+V]`, zero-padded past the end.
#[inline(always)]
fn load(s: &[f32], k: usize) -> [f32; V] {
    if let Some(Ok(v)) = s.get(k..k + V).map(<[f32; V]>::try_from) {
        return v; // the common case: a fixed-size copy, no call to memcpy
    }
    let mut v = [0f32; V];
    let m = V.min(s.len() - k);
    v[..m].copy_from_slice(&s[k..][..m]);
    v
}

/// Writes the first `s.len() - k` (at most V) lanes of `v` to `s[k..]`.
#[inline(always)]
fn store(s: &mut [f32], k: usize, v: &[f32; V]) {
    if let Some(d) = s.get_mut(k..k + V) {
        d.copy_from_slice(v);
        return;
    }
    let m = V.min(s.len() - k);
    s[k..][..m].copy_from_slice(&v[..m]);
}

/// The accumulators of one channel's adjoint step over N (see [`adjoint_step`]).
struct AdjointRow<'a> {
    /// ∂C_t, ∂B_t (shared by the channels) and this channel's ∂A row, [N] each.
    gc: &'a mut [f32],
    gb: &'a mut [f32],
    ga: &'a mut [f32],
    /// In: `exp(Δ_{t+1}A)⊙λ_{t+1}`; out: `exp(Δ_t A)⊙λ_t`, [N].
    cr: &'a mut [f32],
}

/// One channel's adjoint step at time t over N, from `x_t`, `x_{t-1}`, `exp(Δ_t A)`, `C_t`,
/// `B_t` and `A` ([N] each), the output gradient `gy` and `Δ_t`, `Δ_t·u_t`: with
/// `λ_t = gy·C_t + carry`, accumulates `∂C += gy·x_t`, `∂B += Δu·λ`, `∂A += Δ·λ⊙x_{t-1}⊙e^{ΔA}`
/// and returns `(Σ λ⊙B_t, Σ λ⊙x_{t-1}⊙e^{ΔA}⊙A)`.
///
/// Why chunks of V lanes: every chunk is loaded into registers before anything is stored, so
/// the compiler needs no proof that the slices do not overlap to vectorize, and the two sums
/// stay in vector registers until one horizontal add at the end.
#[inline(always)]
fn adjoint_step(
    r: AdjointRow,
    (x_t, x_prev, dat): (&[f32], &[f32], &[f32]),
    (ct, bt, a): (&[f32], &[f32], &[f32]),
    gy: f32,
    dl: f32,
    du: f32,
) -> (f32, f32) {
    let (mut sb, mut sa) = ([0f32; V], [0f32; V]);
    for k in (0..r.gc.len()).step_by(V) {
        let (xt, xp, da, c, b, av) =
            (load(x_t, k), load(x_prev, k), load(dat, k), load(ct, k), load(bt, k), load(a, k));
        let (mut gc, mut gb, mut ga, mut cr) = (load(r.gc, k), load(r.gb, k), load(r.ga, k), load(r.cr, k));
        for i in 0..V {
            gc[i] += gy * xt[i];
            let lam = gy * c[i] + cr[i];
            gb[i] += lam * du;
            let q = lam * xp[i] * da[i];
            ga[i] += q * dl;
            cr[i] = da[i] * lam;
            sb[i] += lam * b[i];
            sa[i] += q * av[i];
        }
        store(r.gc, k, &gc);
        store(r.gb, k, &gb);
        store(r.ga, k, &ga);
        store(r.cr, k, &cr);
    }
    (sb.iter().sum(), sa.iter().sum())
}

/// Whether this CPU runs the AVX2 + FMA builds of the task loops.
fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Channel blocks `(b, e0, w)` in task order.
fn tasks(dm: Dims) -> Vec<(usize, usize, usize)> {
    (0..dm.b).flat_map(|b| (0..dm.e).step_by(BLOCK).map(move |e0| (b, e0, BLOCK.min(dm.e - e0)))).collect()
}

/// Forward scan from the initial states `h0` [B, E, N].
///
/// Returns `out` [B, L, E], the last states [B, E, N] and the states before each chunk
/// [B, E, K, N] (K = [`Dims::chunks`]; chunk 0's is `h0`).
pub fn forward(inp: &Inputs, h0: &[f32], dm: Dims) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, e, n } = dm;
    let k = dm.chunks();
    let avx2 = has_avx2();
    let parts: Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> = tasks(dm)
        .into_par_iter()
        .map(|(bi, e0, w)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                return unsafe { forward_block_avx2(inp, h0, dm, bi, e0, w) };
            }
            let _ = avx2;
            forward_block(inp, h0, dm, bi, e0, w)
        })
        .collect();
    let mut out = vec![0f32; b * l * e];
    let mut last = vec![0f32; b * e * n];
    let mut ckpt = vec![0f32; b * e * k * n];
    for ((bi, e0, w), (y, x, ck)) in tasks(dm).into_iter().zip(parts) {
        for t in 0..l {
            out[(bi * l + t) * e + e0..][..w].copy_from_slice(&y[t * w..][..w]);
        }
        last[(bi * e + e0) * n..][..w * n].copy_from_slice(&x);
        ckpt[(bi * e + e0) * k * n..][..w * k * n].copy_from_slice(&ck);
    }
    (out, last, ckpt)
}

/// [`forward_block`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn forward_block_avx2(
    inp: &Inputs,
    h0: &[f32],
    dm: Dims,
    bi: usize,
    e0: usize,
    w: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    forward_block(inp, h0, dm, bi, e0, w)
}

/// The forward scan of channels `e0..e0+w` of batch element `bi`: outputs [L, W], last
/// states [W, N] and boundary states [W, K, N].
#[inline(always)]
fn forward_block(inp: &Inputs, h0: &[f32], dm: Dims, bi: usize, e0: usize, w: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { l, e, n, .. } = dm;
    let (t_len, k) = (dm.chunk(), dm.chunks());
    let mut x = h0[(bi * e + e0) * n..][..w * n].to_vec(); // [W, N]
    let mut da = vec![0f32; n];
    let mut y = vec![0f32; l * w]; // [L, W]
    let mut ck = vec![0f32; w * k * n]; // [W, K, N]
    let mut st = Step::new(w);
    for t in 0..l {
        if t % t_len == 0 {
            for j in 0..w {
                ck[(j * k + t / t_len) * n..][..n].copy_from_slice(&x[j * n..][..n]);
            }
        }
        let i0 = (bi * l + t) * e + e0;
        st.fill(inp, i0, e0, false);
        let (bt, ct) = (&inp.bm[(bi * l + t) * n..][..n], &inp.cm[(bi * l + t) * n..][..n]);
        for j in 0..w {
            let xs = &mut x[j * n..][..n];
            advance(xs, &mut da, &inp.a[(e0 + j) * n..][..n], bt, st.dl[j], st.du[j]);
            let yj = dot(xs, ct) + inp.d[e0 + j] * inp.u[i0 + j];
            y[t * w + j] = if inp.z.is_empty() { yj } else { yj * inp.z[i0 + j] * st.sz[j] };
        }
    }
    if l == 0 {
        for j in 0..w {
            ck[j * k * n..][..n].copy_from_slice(&x[j * n..][..n]);
        }
    }
    (y, x, ck)
}

/// Gradients of the scan for `g = ∂loss/∂out` [B, L, E].
#[derive(Debug, Clone)]
pub struct Grads {
    /// ∂u [B, L, E].
    pub u: Vec<f32>,
    /// ∂delta [B, L, E].
    pub delta: Vec<f32>,
    /// ∂A [E, N].
    pub a: Vec<f32>,
    /// ∂B [B, L, N].
    pub bm: Vec<f32>,
    /// ∂C [B, L, N].
    pub cm: Vec<f32>,
    /// ∂D [E].
    pub d: Vec<f32>,
    /// ∂z [B, L, E] (empty without a gate).
    pub z: Vec<f32>,
    /// ∂delta_bias [E].
    pub bias: Vec<f32>,
    /// ∂h0 [B, E, N].
    pub h0: Vec<f32>,
}

/// One task's share of the gradients.
struct Part {
    /// ∂u, ∂delta, ∂z of the block, [L, W] each.
    u: Vec<f32>,
    delta: Vec<f32>,
    z: Vec<f32>,
    /// This block's contributions to ∂B, ∂C of its batch element, [L, N].
    bm: Vec<f32>,
    cm: Vec<f32>,
    /// ∂A [W, N], ∂D and ∂bias [W] of this batch element.
    a: Vec<f32>,
    d: Vec<f32>,
    bias: Vec<f32>,
    /// ∂h0 [W, N].
    h0: Vec<f32>,
}

/// Backward pass: recomputes each chunk's states from its boundary state `ckpt`
/// [B, E, K, N] (from [`forward`]), then runs the adjoint `λ_t = ∂loss/∂x_t` backwards in time.
pub fn backward(inp: &Inputs, ckpt: &[f32], g: &[f32], dm: Dims) -> Grads {
    let Dims { b, l, e, n } = dm;
    let avx2 = has_avx2();
    let parts: Vec<Part> = tasks(dm)
        .into_par_iter()
        .map(|(bi, e0, w)| {
            #[cfg(target_arch = "x86_64")]
            if avx2 {
                // SAFETY: the CPU has AVX2 and FMA (checked above).
                return unsafe { backward_block_avx2(inp, ckpt, g, dm, (bi, e0, w)) };
            }
            let _ = avx2;
            backward_block(inp, ckpt, g, dm, (bi, e0, w))
        })
        .collect();
    let gated = !inp.z.is_empty();
    let mut out = Grads {
        u: vec![0f32; b * l * e],
        delta: vec![0f32; b * l * e],
        a: vec![0f32; e * n],
        bm: vec![0f32; b * l * n],
        cm: vec![0f32; b * l * n],
        d: vec![0f32; e],
        z: if gated { vec![0f32; b * l * e] } else { Vec::new() },
        bias: vec![0f32; e],
        h0: vec![0f32; b * e * n],
    };
    for ((bi, e0, w), p) in tasks(dm).into_iter().zip(parts) {
        for t in 0..l {
            let dst = (bi * l + t) * e + e0;
            out.u[dst..][..w].copy_from_slice(&p.u[t * w..][..w]);
            out.delta[dst..][..w].copy_from_slice(&p.delta[t * w..][..w]);
            if gated {
                out.z[dst..][..w].copy_from_slice(&p.z[t * w..][..w]);
            }
        }
        let add = |dst: &mut [f32], src: &[f32]| dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
        add(&mut out.bm[bi * l * n..][..l * n], &p.bm);
        add(&mut out.cm[bi * l * n..][..l * n], &p.cm);
        add(&mut out.a[e0 * n..][..w * n], &p.a);
        add(&mut out.d[e0..][..w], &p.d);
        add(&mut out.bias[e0..][..w], &p.bias);
        out.h0[(bi * e + e0) * n..][..w * n].copy_from_slice(&p.h0);
    }
    out
}

/// Recomputes chunk `c` of a block from its boundary state: fills `xs` [T+1, W, N] with the
/// states before and after each step and `da` [T, W, N] with each step's `exp(Δ·A)`.
#[inline(always)]
fn recompute_chunk(
    inp: &Inputs,
    ckpt: &[f32],
    dm: Dims,
    (bi, e0, w): (usize, usize, usize),
    c: usize,
    (xs, da): (&mut [f32], &mut [f32]),
    st: &mut Step,
) {
    let Dims { l, e, n, .. } = dm;
    let (t_len, k) = (dm.chunk(), dm.chunks());
    let (t0, t1) = (c * t_len, ((c + 1) * t_len).min(l));
    for j in 0..w {
        xs[j * n..][..n].copy_from_slice(&ckpt[((bi * e + e0 + j) * k + c) * n..][..n]);
    }
    for t in t0..t1 {
        let s = t - t0;
        let bt = &inp.bm[(bi * l + t) * n..][..n];
        st.fill(inp, (bi * l + t) * e + e0, e0, false);
        let (prev, next) = xs.split_at_mut((s + 1) * w * n);
        let (prev, next) = (&prev[s * w * n..], &mut next[..w * n]);
        next.copy_from_slice(prev);
        for j in 0..w {
            let (x, d) = (&mut next[j * n..][..n], &mut da[(s * w + j) * n..][..n]);
            advance(x, d, &inp.a[(e0 + j) * n..][..n], bt, st.dl[j], st.du[j]);
        }
    }
}

/// [`backward_block`] compiled for AVX2 + FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn backward_block_avx2(inp: &Inputs, ckpt: &[f32], g: &[f32], dm: Dims, task: (usize, usize, usize)) -> Part {
    backward_block(inp, ckpt, g, dm, task)
}

/// The backward pass of one block of `w` channels from `e0` of batch element `bi`.
#[inline(always)]
fn backward_block(inp: &Inputs, ckpt: &[f32], g: &[f32], dm: Dims, (bi, e0, w): (usize, usize, usize)) -> Part {
    let Dims { l, e, n, .. } = dm;
    let (t_len, k) = (dm.chunk(), dm.chunks());
    let gated = !inp.z.is_empty();
    let mut p = Part {
        u: vec![0f32; l * w],
        delta: vec![0f32; l * w],
        z: if gated { vec![0f32; l * w] } else { Vec::new() },
        bm: vec![0f32; l * n],
        cm: vec![0f32; l * n],
        a: vec![0f32; w * n],
        d: vec![0f32; w],
        bias: vec![0f32; w],
        h0: vec![0f32; w * n],
    };
    // xs[s] = states after step t0+s-1 of the chunk (xs[0]: the boundary state), [T+1, W, N];
    // da[s] = exp(Δ·A) of step t0+s, [T, W, N].
    let mut xs = vec![0f32; (t_len + 1) * w * n];
    let mut da = vec![0f32; t_len * w * n];
    let mut carry = vec![0f32; w * n]; // exp(Δ_{t+1}A)⊙λ_{t+1}, [W, N]
    let mut st = Step::new(w);
    for c in (0..k).rev() {
        let (t0, t1) = (c * t_len, ((c + 1) * t_len).min(l));
        recompute_chunk(inp, ckpt, dm, (bi, e0, w), c, (&mut xs, &mut da), &mut st);
        for t in (t0..t1).rev() {
            let s = t - t0;
            let row = bi * l + t;
            let (bt, ct) = (&inp.bm[row * n..][..n], &inp.cm[row * n..][..n]);
            let i0 = row * e + e0;
            st.fill(inp, i0, e0, true);
            for j in 0..w {
                let (ei, i) = (e0 + j, i0 + j);
                let (x_t, x_prev) = (&xs[((s + 1) * w + j) * n..][..n], &xs[(s * w + j) * n..][..n]);
                let (dat, a) = (&da[(s * w + j) * n..][..n], &inp.a[ei * n..][..n]);
                let (dl, du, u) = (st.dl[j], st.du[j], inp.u[i]);
                // Gate: out = y·silu(z), silu'(z) = σ(z)·(1 + z·(1 - σ(z))).
                let gy = if gated {
                    let (z, sz) = (inp.z[i], st.sz[j]);
                    let y = dot(x_t, ct) + inp.d[ei] * u;
                    p.z[t * w + j] = g[i] * y * sz * (1.0 + z * (1.0 - sz));
                    g[i] * z * sz
                } else {
                    g[i]
                };
                p.d[j] += gy * u;
                let cr = &mut carry[j * n..][..n];
                let (gc, gb) = (&mut p.cm[t * n..][..n], &mut p.bm[t * n..][..n]);
                let ga = &mut p.a[j * n..][..n];
                let (sb, sa) = adjoint_step(AdjointRow { gc, gb, ga, cr }, (x_t, x_prev, dat), (ct, bt, a), gy, dl, du);
                let g_dl = u * sb + sa;
                p.u[t * w + j] = gy * inp.d[ei] + dl * sb;
                let gd = g_dl * st.dsp[j];
                p.delta[t * w + j] = gd;
                p.bias[j] += gd;
            }
        }
    }
    p.h0.copy_from_slice(&carry);
    p
}
