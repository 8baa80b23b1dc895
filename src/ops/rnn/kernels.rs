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

/// `out += a·w` for a row vector `a` [K] and a row-major `w` [K, N], four rows of `w` per pass
/// over `out` (a quarter of the loads and stores of a plain axpy loop).
#[inline(always)]
fn vec_mat_acc<const FMA: bool>(out: &mut [f32], a: &[f32], w: &[f32]) {
    let n = out.len();
    let mut rows = w.chunks_exact(4 * n);
    let mut coefs = a.chunks_exact(4);
    for (w4, a4) in (&mut rows).zip(&mut coefs) {
        let (w0, rest) = w4.split_at(n);
        let (w1, rest) = rest.split_at(n);
        let (w2, w3) = rest.split_at(n);
        let [a0, a1, a2, a3] = [a4[0], a4[1], a4[2], a4[3]];
        for ((((o, v0), v1), v2), v3) in out.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            *o = mul_add::<FMA>(a3, *v3, mul_add::<FMA>(a2, *v2, mul_add::<FMA>(a1, *v1, mul_add::<FMA>(a0, *v0, *o))));
        }
    }
    for (row, &ak) in rows.remainder().chunks_exact(n).zip(coefs.remainder()) {
        for (o, wv) in out.iter_mut().zip(row) {
            *o = mul_add::<FMA>(ak, *wv, *o);
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

/// Sequence `b` of a batch-major buffer with `n` values per sequence.
fn seq(v: &[f32], b: usize, n: usize) -> &[f32] {
    &v[b * n..][..n]
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
    hc.par_chunks_mut(l * 2 * h).zip(gates.par_chunks_mut(l * 4 * h)).enumerate().for_each(|(bi, (hc, gates))| {
        lstm_seq(&gx[bi * l * 4 * h..][..l * 4 * h], &wt, &h0[bi * h..][..h], &c0[bi * h..][..h], hc, gates)
    });
    (hc, gates)
}

simd_dispatch! {
    /// One sequence of [`lstm`]: `gx` [L, 4H], `wt` [H, 4H]; writes `hc` [L, 2H], `gates` [L, 4H].
    fn lstm_seq => lstm_seq_body(gx: &[f32], wt: &[f32], h0: &[f32], c0: &[f32], hc: &mut [f32], gates: &mut [f32])
}

#[inline(always)]
fn lstm_seq_body<const FMA: bool>(gx: &[f32], wt: &[f32], h0: &[f32], c0: &[f32], hc: &mut [f32], gates: &mut [f32]) {
    let h = h0.len();
    let (mut hs, mut cs) = (h0.to_vec(), c0.to_vec());
    for ((a, gxt), hct) in gates.chunks_exact_mut(4 * h).zip(gx.chunks_exact(4 * h)).zip(hc.chunks_exact_mut(2 * h)) {
        a.copy_from_slice(gxt);
        vec_mat_acc::<FMA>(a, &hs, wt);
        let (ifg, o) = a.split_at_mut(3 * h);
        let (i_f, g) = ifg.split_at_mut(2 * h);
        i_f.iter_mut().chain(o.iter_mut()).for_each(|v| *v = sigmoid(*v));
        g.iter_mut().for_each(|v| *v = tanh(*v));
        let (i, f) = i_f.split_at(h);
        let (ht, ct) = hct.split_at_mut(h);
        for j in 0..h {
            cs[j] = f[j] * cs[j] + i[j] * g[j];
            ct[j] = cs[j];
            ht[j] = o[j] * tanh(cs[j]);
        }
        hs.copy_from_slice(ht);
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
    dgx.par_chunks_mut(l * 4 * h)
        .zip(dh0.par_chunks_mut(h).zip(dc0.par_chunks_mut(h)))
        .zip(hprev.par_chunks_mut(l * h))
        .enumerate()
        .for_each(|(bi, ((dgx, (dh0, dc0)), hprev))| {
            let (hc_b, gates_b, g_b) = (seq(hc, bi, l * 2 * h), seq(gates, bi, l * 4 * h), seq(g, bi, l * 2 * h));
            lstm_seq_grad(w_hh, &c0[bi * h..][..h], hc_b, gates_b, g_b, dgx, dh0, dc0);
            prev_states(h0, hc, 2 * h, bi, l, h, hprev);
        });
    let dw = weight_grad(&dgx, &hprev, 4 * h, h);
    (dgx, dw, dh0, dc0)
}

simd_dispatch! {
    /// One sequence of [`lstm_grad`], backwards in time.
    #[allow(clippy::too_many_arguments)]
    fn lstm_seq_grad => lstm_seq_grad_body(
        w_hh: &[f32], c0: &[f32], hc: &[f32], gates: &[f32], g: &[f32],
        dgx: &mut [f32], dh0: &mut [f32], dc0: &mut [f32],
    )
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn lstm_seq_grad_body<const FMA: bool>(
    w_hh: &[f32],
    c0: &[f32],
    hc: &[f32],
    gates: &[f32],
    g: &[f32],
    dgx: &mut [f32],
    dh_next: &mut [f32],
    dc_next: &mut [f32],
) {
    let h = c0.len();
    let l = hc.len() / (2 * h);
    let (mut dh, mut tc) = (vec![0f32; h], vec![0f32; h]);
    dh_next.fill(0.0);
    dc_next.fill(0.0);
    for t in (0..l).rev() {
        let a = &gates[t * 4 * h..][..4 * h];
        let (i, f, gg, o) = (&a[..h], &a[h..2 * h], &a[2 * h..3 * h], &a[3 * h..]);
        let c = &hc[t * 2 * h + h..][..h];
        let c_prev = if t > 0 { &hc[(t - 1) * 2 * h + h..][..h] } else { c0 };
        let (gh, gc) = g[t * 2 * h..][..2 * h].split_at(h);
        let da = &mut dgx[t * 4 * h..][..4 * h];
        let (da_i, rest) = da.split_at_mut(h);
        let (da_f, rest) = rest.split_at_mut(h);
        let (da_g, da_o) = rest.split_at_mut(h);
        for j in 0..h {
            tc[j] = tanh(c[j]);
            dh[j] = gh[j] + dh_next[j];
            let dc = gc[j] + dc_next[j] + dh[j] * o[j] * (1.0 - tc[j] * tc[j]);
            da_i[j] = dc * gg[j] * i[j] * (1.0 - i[j]);
            da_f[j] = dc * c_prev[j] * f[j] * (1.0 - f[j]);
            da_g[j] = dc * i[j] * (1.0 - gg[j] * gg[j]);
            da_o[j] = dh[j] * tc[j] * o[j] * (1.0 - o[j]);
            dc_next[j] = dc * f[j];
        }
        dh_next.fill(0.0);
        vec_mat_acc::<FMA>(dh_next, da, w_hh);
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
    out.par_chunks_mut(l * h).zip(gates.par_chunks_mut(l * 4 * h)).enumerate().for_each(|(bi, (out, gates))| {
        gru_seq(&gx[bi * l * 3 * h..][..l * 3 * h], &wt, b_hh, &h0[bi * h..][..h], out, gates)
    });
    (out, gates)
}

simd_dispatch! {
    /// One sequence of [`gru`]: `gx` [L, 3H], `wt` [H, 3H]; writes `out` [L, H], `gates` [L, 4H].
    fn gru_seq => gru_seq_body(gx: &[f32], wt: &[f32], b_hh: &[f32], h0: &[f32], out: &mut [f32], gates: &mut [f32])
}

#[inline(always)]
fn gru_seq_body<const FMA: bool>(gx: &[f32], wt: &[f32], b_hh: &[f32], h0: &[f32], out: &mut [f32], gates: &mut [f32]) {
    let h = h0.len();
    let mut hs = h0.to_vec();
    let mut gh = vec![0f32; 3 * h];
    for ((gi, ht), sv) in gx.chunks_exact(3 * h).zip(out.chunks_exact_mut(h)).zip(gates.chunks_exact_mut(4 * h)) {
        gh.copy_from_slice(b_hh);
        vec_mat_acc::<FMA>(&mut gh, &hs, wt);
        let (r, rest) = sv.split_at_mut(h);
        let (z, rest) = rest.split_at_mut(h);
        let (n, ghn) = rest.split_at_mut(h);
        for j in 0..h {
            r[j] = sigmoid(gi[j] + gh[j]);
            z[j] = sigmoid(gi[h + j] + gh[h + j]);
            ghn[j] = gh[2 * h + j];
            n[j] = tanh(gi[2 * h + j] + r[j] * ghn[j]);
            hs[j] = (1.0 - z[j]) * n[j] + z[j] * hs[j];
        }
        ht.copy_from_slice(&hs);
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
    dgx.par_chunks_mut(l * 3 * h)
        .zip(dgh.par_chunks_mut(l * 3 * h))
        .zip(dh0.par_chunks_mut(h).zip(hprev.par_chunks_mut(l * h)))
        .enumerate()
        .for_each(|(bi, ((dgx, dgh), (dh0, hprev)))| {
            prev_states(h0, out, h, bi, l, h, hprev);
            let gates = &gates[bi * l * 4 * h..][..l * 4 * h];
            gru_seq_grad(w_hh, hprev, gates, &g[bi * l * h..][..l * h], dgx, dgh, dh0);
        });
    let dw = weight_grad(&dgh, &hprev, 3 * h, h);
    let mut db = vec![0f32; 3 * h];
    for row in dgh.chunks_exact(3 * h) {
        db.iter_mut().zip(row).for_each(|(a, v)| *a += v);
    }
    (dgx, dw, db, dh0)
}

simd_dispatch! {
    /// One sequence of [`gru_grad`], backwards in time; `hprev` [L, H] holds `h_{t-1}`.
    fn gru_seq_grad => gru_seq_grad_body(
        w_hh: &[f32], hprev: &[f32], gates: &[f32], g: &[f32],
        dgx: &mut [f32], dgh: &mut [f32], dh_next: &mut [f32],
    )
}

#[inline(always)]
fn gru_seq_grad_body<const FMA: bool>(
    w_hh: &[f32],
    hprev: &[f32],
    gates: &[f32],
    g: &[f32],
    dgx: &mut [f32],
    dgh: &mut [f32],
    dh_next: &mut [f32],
) {
    let h = dh_next.len();
    let l = g.len() / h;
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        let sv = &gates[t * 4 * h..][..4 * h];
        let (r, z, n, ghn) = (&sv[..h], &sv[h..2 * h], &sv[2 * h..3 * h], &sv[3 * h..]);
        let hp = &hprev[t * h..][..h];
        let gt = &g[t * h..][..h];
        let dx = &mut dgx[t * 3 * h..][..3 * h];
        let dhh = &mut dgh[t * 3 * h..][..3 * h];
        for j in 0..h {
            let dh = gt[j] + dh_next[j];
            let dan = dh * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
            let daz = dh * (hp[j] - n[j]) * z[j] * (1.0 - z[j]);
            let dar = dan * ghn[j] * r[j] * (1.0 - r[j]);
            dx[j] = dar;
            dx[h + j] = daz;
            dx[2 * h + j] = dan;
            dhh[j] = dar;
            dhh[h + j] = daz;
            dhh[2 * h + j] = dan * r[j];
            dh_next[j] = dh * z[j];
        }
        vec_mat_acc::<FMA>(dh_next, dhh, w_hh);
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
    out.par_chunks_mut(l * h)
        .enumerate()
        .for_each(|(bi, out)| rnn_seq(&gx[bi * l * h..][..l * h], &wt, &h0[bi * h..][..h], relu, out));
    out
}

simd_dispatch! {
    /// One sequence of [`rnn`]: `gx` [L, H], `wt` [H, H]; writes `out` [L, H].
    fn rnn_seq => rnn_seq_body(gx: &[f32], wt: &[f32], h0: &[f32], relu: bool, out: &mut [f32])
}

#[inline(always)]
fn rnn_seq_body<const FMA: bool>(gx: &[f32], wt: &[f32], h0: &[f32], relu: bool, out: &mut [f32]) {
    let h = h0.len();
    let mut hs = h0.to_vec();
    for (gxt, ht) in gx.chunks_exact(h).zip(out.chunks_exact_mut(h)) {
        ht.copy_from_slice(gxt);
        vec_mat_acc::<FMA>(ht, &hs, wt);
        if relu {
            ht.iter_mut().for_each(|v| *v = v.max(0.0));
        } else {
            ht.iter_mut().for_each(|v| *v = tanh(*v));
        }
        hs.copy_from_slice(ht);
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
    dgx.par_chunks_mut(l * h).zip(dh0.par_chunks_mut(h).zip(hprev.par_chunks_mut(l * h))).enumerate().for_each(
        |(bi, (dgx, (dh0, hprev)))| {
            prev_states(h0, out, h, bi, l, h, hprev);
            rnn_seq_grad(w_hh, seq(out, bi, l * h), seq(g, bi, l * h), relu, dgx, dh0);
        },
    );
    let dw = weight_grad(&dgx, &hprev, h, h);
    (dgx, dw, dh0)
}

simd_dispatch! {
    /// One sequence of [`rnn_grad`], backwards in time.
    fn rnn_seq_grad => rnn_seq_grad_body(w_hh: &[f32], out: &[f32], g: &[f32], relu: bool, dgx: &mut [f32], dh_next: &mut [f32])
}

#[inline(always)]
fn rnn_seq_grad_body<const FMA: bool>(
    w_hh: &[f32],
    out: &[f32],
    g: &[f32],
    relu: bool,
    dgx: &mut [f32],
    dh_next: &mut [f32],
) {
    let h = dh_next.len();
    let l = g.len() / h;
    dh_next.fill(0.0);
    for t in (0..l).rev() {
        let ht = &out[t * h..][..h];
        let gt = &g[t * h..][..h];
        let da = &mut dgx[t * h..][..h];
        for j in 0..h {
            let dh = gt[j] + dh_next[j];
            da[j] = if relu { if ht[j] > 0.0 { dh } else { 0.0 } } else { dh * (1.0 - ht[j] * ht[j]) };
        }
        dh_next.fill(0.0);
        vec_mat_acc::<FMA>(dh_next, da, w_hh);
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
    fn vec_mat_acc_is_a_product() {
        let (k, n) = (7, 5); // a remainder of three rows after the blocks of four
        let a: Vec<f32> = (0..k).map(|i| i as f32 * 0.5 - 1.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i * 37) % 11) as f32 - 5.0).collect();
        let mut out = vec![1f32; n];
        vec_mat_acc::<false>(&mut out, &a, &w);
        for j in 0..n {
            let e: f32 = 1.0 + (0..k).map(|i| a[i] * w[i * n + j]).sum::<f32>();
            assert!((out[j] - e).abs() < 1e-5, "{j}: {} vs {e}", out[j]);
        }
    }
}
