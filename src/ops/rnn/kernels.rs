//! The math of the fused recurrences on plain slices: one sequence per rayon task, the
//! `h·W_hhᵀ` product of each step as a row vector times a matrix, backpropagation through
//! time over the stored gates, and the `W_hh` gradient as one matrix product afterwards.
//!
//! Layouts are batch-major and row-major: `gx` [B, L, G·H] (the input projections of all
//! steps, gate blocks in PyTorch's order), `w_hh` [G·H, H].

use rayon::prelude::*;

/// Compiles `$body` a second time with AVX2 and FMA enabled (`$body::<true>`, fused
/// multiply-adds) and picks that copy at run time when the CPU has them: the crate is built
/// for baseline x86-64, whose 4-wide vectors and separate multiplies and adds run the
/// recurrences at a quarter of the speed.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* fn $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) {
                    $body::<true>($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `wide` is compiled for.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body::<false>($($arg),*)
        }
    };
}

/// `a·b + c`, as one fused instruction where the caller is compiled with FMA (`FMA`; elsewhere
/// `mul_add` is a slow library call).
#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `out += a·w` for rows `a` [R, K] and a row-major `w` [K, N] into `out` [R, N]: four rows
/// of `w` per pass over each output row (a quarter of the loads and stores of an axpy loop),
/// all R rows before the next four, so `w` streams from memory once per call and the rows
/// reuse it from L1.
#[inline(always)]
fn rows_mat_acc<const FMA: bool>(out: &mut [f32], a: &[f32], w: &[f32], n: usize) {
    let r = out.len() / n;
    let k = a.len() / r.max(1);
    let mut kb = 0;
    while kb + 4 <= k {
        let (w0, w1, w2, w3) =
            (&w[kb * n..][..n], &w[(kb + 1) * n..][..n], &w[(kb + 2) * n..][..n], &w[(kb + 3) * n..][..n]);
        for (o, c) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            let [a0, a1, a2, a3] = [c[kb], c[kb + 1], c[kb + 2], c[kb + 3]];
            for ((((o, v0), v1), v2), v3) in o.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
                *o = mul_add::<FMA>(
                    a3,
                    *v3,
                    mul_add::<FMA>(a2, *v2, mul_add::<FMA>(a1, *v1, mul_add::<FMA>(a0, *v0, *o))),
                );
            }
        }
        kb += 4;
    }
    for kk in kb..k {
        let wk = &w[kk * n..][..n];
        for (o, c) in out.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for (o, v) in o.iter_mut().zip(wk) {
                *o = mul_add::<FMA>(c[kk], *v, *o);
            }
        }
    }
}

/// `e^x` for f32 in a form the compiler vectorizes (Cephes' polynomial on `x - n·ln 2`,
/// scaled by `2^n` through the exponent bits); relative error about 2e-7.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding it rounds to an integer
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + MAGIC) - MAGIC;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// The logistic function `1/(1+e^{-x})`.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2/(1+e^{2x})` (absolute error about 1e-7).
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (1.0 + exp(2.0 * x))
}

/// The initial state of sequence `b` followed by its states `0..L-1`, the `h_{t-1}` of every
/// step: [L, H] rows from `h0` [B, H] and the state sequence (row stride `stride`, offset 0).
fn prev_states(h0: &[f32], seq: &[f32], stride: usize, b: usize, l: usize, h: usize, out: &mut [f32]) {
    out[..h].copy_from_slice(&h0[b * h..][..h]);
    for t in 1..l {
        out[t * h..][..h].copy_from_slice(&seq[((b * l) + t - 1) * stride..][..h]);
    }
}

/// Sequences `b0..b0 + nr` of a batch-major buffer with `n` values per sequence.
fn rows(v: &[f32], b0: usize, nr: usize, n: usize) -> &[f32] {
    &v[b0 * n..][..nr * n]
}

/// `Σ_{b,t} da[b,t]ᵀ·h_{t-1}[b]`: the gradient of a recurrent weight [G, H] from the gate
/// gradients `da` [B·L, G] and the previous states `hprev` [B·L, H], as one matrix product.
fn weight_grad(da: &[f32], hprev: &[f32], g: usize, h: usize) -> Vec<f32> {
    let rows = da.len() / g.max(1);
    let mut dw = vec![0f32; g * h];
    if rows == 0 || g == 0 || h == 0 {
        return dw;
    }
    // SAFETY: dims and strides describe the three buffers: dw [G, H] row-major, daᵀ [G, rows]
    // read from da [rows, G], hprev [rows, H].
    unsafe {
        gemm::gemm(
            g,
            h,
            rows,
            dw.as_mut_ptr(),
            1,
            h as isize,
            false,
            da.as_ptr(),
            g as isize,
            1,
            hprev.as_ptr(),
            1,
            h as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
    dw
}

/// `wᵀ` of a row-major [R, C] matrix.
fn transpose(w: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = w[i * c + j];
        }
    }
    t
}

/// Sequences one task steps together: enough tasks for every thread, and at most four, whose
/// `h·W_hhᵀ` rows share one pass over `W_hh` per step.
fn group_size(b: usize) -> usize {
    b.div_ceil(rayon::current_num_threads().max(1)).clamp(1, 4)
}

/// Sizes of a recurrence: batch, length, hidden width.
#[derive(Debug, Clone, Copy)]
pub struct Dims {
    /// Batch size B.
    pub b: usize,
    /// Sequence length L.
    pub l: usize,
    /// Hidden width H.
    pub h: usize,
}

// ---------------------------------------------------------------------------------------------
// LSTM: gates i, f, g, o.

/// LSTM over all steps from `(h0, c0)` [B, H]: returns the states `[h_t, c_t]` [B, L, 2H] and
/// the activated gates `[i, f, g, o]` [B, L, 4H] (what the backward pass needs).
///
/// Args: `gx` [B, L, 4H] = `x·W_ihᵀ + b_ih + b_hh`; `w_hh` [4H, H].
pub fn lstm(gx: &[f32], w_hh: &[f32], h0: &[f32], c0: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, 4 * h, h); // [H, 4H]
    let (mut hc, mut gates) = (vec![0f32; b * l * 2 * h], vec![0f32; b * l * 4 * h]);
    if l == 0 || h == 0 {
        return (hc, gates);
    }
    let r = group_size(b);
    hc.par_chunks_mut(r * l * 2 * h).zip(gates.par_chunks_mut(r * l * 4 * h)).enumerate().for_each(
        |(gi, (hc, gates))| {
            let (b0, nr) = (gi * r, hc.len() / (l * 2 * h));
            let states = |v| rows(v, b0, nr, h).to_vec();
            let gd = Dims { b: nr, l, h };
            lstm_group(&gx[b0 * l * 4 * h..][..nr * l * 4 * h], &wt, states(h0), states(c0), hc, gates, gd)
        },
    );
    (hc, gates)
}

simd_dispatch! {
    /// A group of sequences of [`lstm`]: `gx` [R, L, 4H], `wt` [H, 4H], states [R, H]; writes
    /// `hc` [R, L, 2H] and `gates` [R, L, 4H].
    fn lstm_group => lstm_group_body(
        gx: &[f32], wt: &[f32], hs: Vec<f32>, cs: Vec<f32>, hc: &mut [f32], gates: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn lstm_group_body<const FMA: bool>(
    gx: &[f32],
    wt: &[f32],
    mut hs: Vec<f32>,
    mut cs: Vec<f32>,
    hc: &mut [f32],
    gates: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut a = vec![0f32; nr * 4 * h];
    for t in 0..l {
        for (ri, ar) in a.chunks_exact_mut(4 * h).enumerate() {
            ar.copy_from_slice(&gx[(ri * l + t) * 4 * h..][..4 * h]);
        }
        rows_mat_acc::<FMA>(&mut a, &hs, wt, 4 * h);
        for (ri, ar) in a.chunks_exact_mut(4 * h).enumerate() {
            let (ifg, o) = ar.split_at_mut(3 * h);
            let (i_f, g) = ifg.split_at_mut(2 * h);
            i_f.iter_mut().chain(o.iter_mut()).for_each(|v| *v = sigmoid(*v));
            g.iter_mut().for_each(|v| *v = tanh(*v));
            gates[(ri * l + t) * 4 * h..][..4 * h].copy_from_slice(ar);
            let (i, f, g, o) = (&ar[..h], &ar[h..2 * h], &ar[2 * h..3 * h], &ar[3 * h..]);
            let (hr, cr) = (&mut hs[ri * h..][..h], &mut cs[ri * h..][..h]);
            let (ht, ct) = hc[(ri * l + t) * 2 * h..][..2 * h].split_at_mut(h);
            for j in 0..h {
                cr[j] = f[j] * cr[j] + i[j] * g[j];
                ct[j] = cr[j];
                ht[j] = o[j] * tanh(cr[j]);
            }
            hr.copy_from_slice(ht);
        }
    }
}

/// Backward pass of [`lstm`] for output gradient `g` [B, L, 2H] (of `[h_t, c_t]`): returns
/// (∂gx [B, L, 4H], ∂w_hh [4H, H], ∂h0 [B, H], ∂c0 [B, H]).
pub fn lstm_grad(
    w_hh: &[f32],
    (h0, c0): (&[f32], &[f32]),
    (hc, gates): (&[f32], &[f32]),
    g: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dh0, mut dc0) = (vec![0f32; b * l * 4 * h], vec![0f32; b * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; 4 * h * h], dh0, dc0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * 4 * h)
        .zip(dh0.par_chunks_mut(r * h).zip(dc0.par_chunks_mut(r * h)))
        .zip(hprev.par_chunks_mut(r * l * h))
        .enumerate()
        .for_each(|(gi, ((dgx, (dh0, dc0)), hprev))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            let part = |v, w| rows(v, b0, nr, w);
            let gd = Dims { b: nr, l, h };
            let saved = (part(c0, h), part(hc, l * 2 * h), part(gates, l * 4 * h));
            lstm_group_grad(w_hh, saved, part(g, l * 2 * h), dgx, dh0, dc0, gd);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, hc, 2 * h, b0 + ri, l, h, hp);
            }
        });
    let dw = weight_grad(&dgx, &hprev, 4 * h, h);
    (dgx, dw, dh0, dc0)
}

simd_dispatch! {
    /// A group of sequences of [`lstm_grad`], backwards in time: `saved` = (c0 [R, H],
    /// hc [R, L, 2H], gates [R, L, 4H]); writes ∂gx [R, L, 4H], ∂h0 and ∂c0 [R, H].
    #[allow(clippy::type_complexity)]
    fn lstm_group_grad => lstm_group_grad_body(
        w_hh: &[f32], saved: (&[f32], &[f32], &[f32]), g: &[f32],
        dgx: &mut [f32], dh_next: &mut [f32], dc_next: &mut [f32], d: Dims,
    )
}

#[allow(clippy::type_complexity)]
#[inline(always)]
fn lstm_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    (c0, hc, gates): (&[f32], &[f32], &[f32]),
    g: &[f32],
    dgx: &mut [f32],
    dh_next: &mut [f32],
    dc_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut da = vec![0f32; nr * 4 * h];
    dh_next.fill(0.0);
    dc_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dar) in da.chunks_exact_mut(4 * h).enumerate() {
            let row = (ri * l + t) * 4 * h;
            let a = &gates[row..][..4 * h];
            let (i, f, gg, o) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..]);
            let c = &hc[(ri * l + t) * 2 * h + h..][..h];
            let c_prev = if t > 0 { &hc[(ri * l + t - 1) * 2 * h + h..][..h] } else { &c0[ri * h..][..h] };
            let (gh, gc) = g[(ri * l + t) * 2 * h..][..2 * h].split_at(h);
            let (dhr, dcr) = (&dh_next[ri * h..][..h], &mut dc_next[ri * h..][..h]);
            let (da_i, rest) = dar.split_at_mut(h);
            let (da_f, rest) = rest.split_at_mut(h);
            let (da_g, da_o) = rest.split_at_mut(h);
            for j in 0..h {
                let tc = tanh(c[j]);
                let dh = gh[j] + dhr[j];
                let dc = gc[j] + dcr[j] + dh * o[j] * (1.0 - tc * tc);
                da_i[j] = dc * gg[j] * i[j] * (1.0 - i[j]);
                da_f[j] = dc * c_prev[j] * f[j] * (1.0 - f[j]);
                da_g[j] = dc * i[j] * (1.0 - gg[j] * gg[j]);
                da_o[j] = dh * tc * o[j] * (1.0 - o[j]);
                dcr[j] = dc * f[j];
            }
            dgx[row..][..4 * h].copy_from_slice(dar);
        }
        dh_next.fill(0.0);
        rows_mat_acc::<FMA>(dh_next, &da, w_hh, h);
    }
}

// ---------------------------------------------------------------------------------------------
// GRU: gates r, z, n; `b_hn` inside the product with r.

/// GRU over all steps from `h0` [B, H]: returns the states [B, L, H] and the saved gates
/// `[r, z, n, W_hn·h_{t-1} + b_hn]` [B, L, 4H].
///
/// Args: `gx` [B, L, 3H] = `x·W_ihᵀ + b_ih`; `w_hh` [3H, H]; `b_hh` [3H].
pub fn gru(gx: &[f32], w_hh: &[f32], b_hh: &[f32], h0: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, 3 * h, h); // [H, 3H]
    let (mut out, mut gates) = (vec![0f32; b * l * h], vec![0f32; b * l * 4 * h]);
    if l == 0 || h == 0 {
        return (out, gates);
    }
    let r = group_size(b);
    out.par_chunks_mut(r * l * h).zip(gates.par_chunks_mut(r * l * 4 * h)).enumerate().for_each(
        |(gi, (out, gates))| {
            let (b0, nr) = (gi * r, out.len() / (l * h));
            let gd = Dims { b: nr, l, h };
            gru_group(
                &gx[b0 * l * 3 * h..][..nr * l * 3 * h],
                &wt,
                b_hh,
                h0[b0 * h..][..nr * h].to_vec(),
                out,
                gates,
                gd,
            )
        },
    );
    (out, gates)
}

simd_dispatch! {
    /// A group of sequences of [`gru`]: `gx` [R, L, 3H], `wt` [H, 3H], `hs` [R, H]; writes
    /// `out` [R, L, H] and `gates` [R, L, 4H].
    fn gru_group => gru_group_body(
        gx: &[f32], wt: &[f32], b_hh: &[f32], hs: Vec<f32>, out: &mut [f32], gates: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn gru_group_body<const FMA: bool>(
    gx: &[f32],
    wt: &[f32],
    b_hh: &[f32],
    mut hs: Vec<f32>,
    out: &mut [f32],
    gates: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut gh = vec![0f32; nr * 3 * h];
    for t in 0..l {
        gh.chunks_exact_mut(3 * h).for_each(|row| row.copy_from_slice(b_hh));
        rows_mat_acc::<FMA>(&mut gh, &hs, wt, 3 * h);
        for (ri, ghr) in gh.chunks_exact(3 * h).enumerate() {
            let gi = &gx[(ri * l + t) * 3 * h..][..3 * h];
            let sv = &mut gates[(ri * l + t) * 4 * h..][..4 * h];
            let (r, rest) = sv.split_at_mut(h);
            let (z, rest) = rest.split_at_mut(h);
            let (n, ghn) = rest.split_at_mut(h);
            let hr = &mut hs[ri * h..][..h];
            for j in 0..h {
                r[j] = sigmoid(gi[j] + ghr[j]);
                z[j] = sigmoid(gi[h + j] + ghr[h + j]);
                ghn[j] = ghr[2 * h + j];
                n[j] = tanh(gi[2 * h + j] + r[j] * ghn[j]);
                hr[j] = (1.0 - z[j]) * n[j] + z[j] * hr[j];
            }
            out[(ri * l + t) * h..][..h].copy_from_slice(hr);
        }
    }
}

/// Backward pass of [`gru`] for output gradient `g` [B, L, H]: returns
/// (∂gx [B, L, 3H], ∂w_hh [3H, H], ∂b_hh [3H], ∂h0 [B, H]).
pub fn gru_grad(
    w_hh: &[f32],
    h0: &[f32],
    (out, gates): (&[f32], &[f32]),
    g: &[f32],
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dgh, mut dh0) = (vec![0f32; b * l * 3 * h], vec![0f32; b * l * 3 * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; 3 * h * h], vec![0f32; 3 * h], dh0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * 3 * h)
        .zip(dgh.par_chunks_mut(r * l * 3 * h))
        .zip(dh0.par_chunks_mut(r * h).zip(hprev.par_chunks_mut(r * l * h)))
        .enumerate()
        .for_each(|(gi, ((dgx, dgh), (dh0, hprev)))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, out, h, b0 + ri, l, h, hp);
            }
            let gates = &gates[b0 * l * 4 * h..][..nr * l * 4 * h];
            let g = &g[b0 * l * h..][..nr * l * h];
            gru_group_grad(w_hh, (hprev, gates), g, dgx, dgh, dh0, Dims { b: nr, l, h });
        });
    let dw = weight_grad(&dgh, &hprev, 3 * h, h);
    let mut db = vec![0f32; 3 * h];
    for row in dgh.chunks_exact(3 * h) {
        db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    (dgx, dw, db, dh0)
}

simd_dispatch! {
    /// A group of sequences of [`gru_grad`], backwards in time: `saved` = (`h_{t-1}` [R, L, H],
    /// gates [R, L, 4H]); writes ∂gx, ∂gh [R, L, 3H] and ∂h0 [R, H].
    fn gru_group_grad => gru_group_grad_body(
        w_hh: &[f32], saved: (&[f32], &[f32]), g: &[f32],
        dgx: &mut [f32], dgh: &mut [f32], dh_next: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn gru_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    (hprev, gates): (&[f32], &[f32]),
    g: &[f32],
    dgx: &mut [f32],
    dgh: &mut [f32],
    dh_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut dghb = vec![0f32; nr * 3 * h];
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dhh) in dghb.chunks_exact_mut(3 * h).enumerate() {
            let sv = &gates[(ri * l + t) * 4 * h..][..4 * h];
            let (r, z, n, ghn) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
            let hp = &hprev[(ri * l + t) * h..][..h];
            let gt = &g[(ri * l + t) * h..][..h];
            let dx = &mut dgx[(ri * l + t) * 3 * h..][..3 * h];
            let dn_r = &mut dh_next[ri * h..][..h];
            for j in 0..h {
                let dh = gt[j] + dn_r[j];
                let dan = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                let daz = dh * (hp[j] - n[j]) * z[j] * (1.0 - z[j]);
                let dar = dan * ghn[j] * r[j] * (1.0 - r[j]);
                dx[j] = dar;
                dx[h + j] = daz;
                dx[2 * h + j] = dan;
                dhh[j] = dar;
                dhh[h + j] = daz;
                dhh[2 * h + j] = dan * r[j];
                dn_r[j] = dh * z[j];
            }
            dgh[(ri * l + t) * 3 * h..][..3 * h].copy_from_slice(dhh);
        }
        rows_mat_acc::<FMA>(dh_next, &dghb, w_hh, h);
    }
}

// ---------------------------------------------------------------------------------------------
// Elman RNN: h_t = act(gx_t + W_hh·h_{t-1}).

/// Elman RNN over all steps from `h0` [B, H] with tanh (or ReLU when `relu`): returns the
/// states [B, L, H]. Args: `gx` [B, L, H] = `x·W_ihᵀ + b_ih + b_hh`; `w_hh` [H, H].
pub fn rnn(gx: &[f32], w_hh: &[f32], h0: &[f32], relu: bool, d: Dims) -> Vec<f32> {
    let Dims { b, l, h } = d;
    let wt = transpose(w_hh, h, h);
    let mut out = vec![0f32; b * l * h];
    if l == 0 || h == 0 {
        return out;
    }
    let r = group_size(b);
    out.par_chunks_mut(r * l * h).enumerate().for_each(|(gi, out)| {
        let (b0, nr) = (gi * r, out.len() / (l * h));
        let gd = Dims { b: nr, l, h };
        rnn_group(&gx[b0 * l * h..][..nr * l * h], &wt, h0[b0 * h..][..nr * h].to_vec(), relu, out, gd)
    });
    out
}

simd_dispatch! {
    /// A group of sequences of [`rnn`]: `gx` [R, L, H], `wt` [H, H], `hs` [R, H]; writes
    /// `out` [R, L, H].
    fn rnn_group => rnn_group_body(gx: &[f32], wt: &[f32], hs: Vec<f32>, relu: bool, out: &mut [f32], d: Dims)
}

#[inline(always)]
fn rnn_group_body<const FMA: bool>(gx: &[f32], wt: &[f32], mut hs: Vec<f32>, relu: bool, out: &mut [f32], d: Dims) {
    let Dims { b: nr, l, h } = d;
    let mut a = vec![0f32; nr * h];
    for t in 0..l {
        for (ri, ar) in a.chunks_exact_mut(h).enumerate() {
            ar.copy_from_slice(&gx[(ri * l + t) * h..][..h]);
        }
        rows_mat_acc::<FMA>(&mut a, &hs, wt, h);
        if relu {
            a.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            a.iter_mut().for_each(|v| *v = tanh(*v));
        }
        for (ri, ar) in a.chunks_exact(h).enumerate() {
            out[(ri * l + t) * h..][..h].copy_from_slice(ar);
        }
        hs.copy_from_slice(&a);
    }
}

/// Backward pass of [`rnn`] for output gradient `g` [B, L, H]: returns
/// (∂gx [B, L, H], ∂w_hh [H, H], ∂h0 [B, H]).
pub fn rnn_grad(
    w_hh: &[f32],
    h0: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    d: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, l, h } = d;
    let (mut dgx, mut dh0) = (vec![0f32; b * l * h], vec![0f32; b * h]);
    if l == 0 || h == 0 {
        return (dgx, vec![0f32; h * h], dh0);
    }
    let mut hprev = vec![0f32; b * l * h];
    let r = group_size(b);
    dgx.par_chunks_mut(r * l * h)
        .zip(dh0.par_chunks_mut(r * h).zip(hprev.par_chunks_mut(r * l * h)))
        .enumerate()
        .for_each(|(gi, (dgx, (dh0, hprev)))| {
            let (b0, nr) = (gi * r, dh0.len() / h);
            for (ri, hp) in hprev.chunks_exact_mut(l * h).enumerate() {
                prev_states(h0, out, h, b0 + ri, l, h, hp);
            }
            let part = |v| rows(v, b0, nr, l * h);
            rnn_group_grad(w_hh, part(out), part(g), relu, dgx, dh0, Dims { b: nr, l, h });
        });
    let dw = weight_grad(&dgx, &hprev, h, h);
    (dgx, dw, dh0)
}

simd_dispatch! {
    /// A group of sequences of [`rnn_grad`], backwards in time: `out` and `g` [R, L, H];
    /// writes ∂gx [R, L, H] and ∂h0 [R, H].
    fn rnn_group_grad => rnn_group_grad_body(
        w_hh: &[f32], out: &[f32], g: &[f32], relu: bool, dgx: &mut [f32], dh_next: &mut [f32], d: Dims,
    )
}

#[inline(always)]
fn rnn_group_grad_body<const FMA: bool>(
    w_hh: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    dgx: &mut [f32],
    dh_next: &mut [f32],
    d: Dims,
) {
    let Dims { b: nr, l, h } = d;
    let mut da = vec![0f32; nr * h];
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        for (ri, dar) in da.chunks_exact_mut(h).enumerate() {
            let row = (ri * l + t) * h;
            let (ht, gt, dn) = (&out[row..][..h], &g[row..][..h], &dh_next[ri * h..][..h]);
            for j in 0..h {
                let dh = gt[j] + dn[j];
                dar[j] = if relu { if ht[j] > 0.0 { dh } else { 0.0 } } else { dh * (1.0 - ht[j] * ht[j]) };
            }
            dgx[row..][..h].copy_from_slice(dar);
        }
        dh_next.fill(0.0);
        rows_mat_acc::<FMA>(dh_next, &da, w_hh, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_activations_match_std() {
        let mut worst = (0f32, 0f32, 0f32);
        for i in -2000..=2000 {
            let x = i as f32 * 0.01;
            worst.0 = worst.0.max((exp(x) - x.exp()).abs() / x.exp());
            worst.1 = worst.1.max((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
            worst.2 = worst.2.max((tanh(x) - x.tanh()).abs());
        }
        assert!(worst.0 < 5e-7 && worst.1 < 2e-7 && worst.2 < 3e-7, "{worst:?}");
        assert_eq!(tanh(100.0), 1.0);
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-30 && sigmoid(200.0) == 1.0);
    }

    #[test]
    fn rows_mat_acc_is_a_product() {
        let (r, k, n) = (3, 7, 5); // a remainder of three rows of `w` after the blocks of four
        let a: Vec<f32> = (0..r * k).map(|i| i as f32 * 0.25 - 1.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let mut out = vec![1f32; r * n];
        rows_mat_acc::<false>(&mut out, &a, &w, n);
        for ri in 0..r {
            for j in 0..n {
                let e: f32 = 1.0 + (0..k).map(|i| a[ri * k + i] * w[i * n + j]).sum::<f32>();
                assert!((out[ri * n + j] - e).abs() < 1e-4, "{ri},{j}: {} vs {e}", out[ri * n + j]);
            }
        }
    }
}
