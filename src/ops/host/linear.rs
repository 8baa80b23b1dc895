//! `y = glu(act(x)·W + b)`, the activation and output projection of the S4 blocks, and its
//! gradient, in row blocks: each task runs its own small GEMM and the bias and GLU while the
//! block is in cache.
//!
//! Why not burn's Linear then the fused GLU: its matmul output is zeroed and then copied (to
//! realign it) on the calling thread, and the bias add, the bias gradient and ∂W's
//! reductions run serially below burn-flex's parallel threshold; in `bench fit` that was a
//! quarter of the main thread's time, with the workers idle.
//!
//! Dimensions: R rows, I inputs, O outputs after the GLU (2·O before it).

use rayon::prelude::*;

use super::{glu_grad_rows, glu_rows};
use crate::ops::gelu::{gelu_grad_into, gelu_into};
use crate::ops::matmul::{matmul, rows, transposed};
use crate::ops::pool::zeros;

/// Floats of one task's pre-activation block (rows × 2·O): it stays in L2.
const BLOCK: usize = 1 << 14;

/// Rows per task.
fn rows_per_task(o2: usize) -> usize {
    (BLOCK / o2.max(1)).max(1)
}

/// One worker's block buffers of the backward pass: the pre-activation and its gradient
/// [rows, 2·O], and with GELU, `gelu(x)` and its gradient [rows, I].
struct Scratch {
    pre: Vec<f32>,
    gt: Vec<f32>,
    act: Vec<f32>,
    ga: Vec<f32>,
}

impl Scratch {
    fn new(rows: usize, i: usize, o2: usize, gelu: bool) -> Self {
        let a = if gelu { rows * i } else { 0 };
        Self { pre: vec![0.0; rows * o2], gt: vec![0.0; rows * o2], act: vec![0.0; a], ga: vec![0.0; a] }
    }
}

/// `pre = x·W + b` for one block of rows: `x` [rc, I], `pre` [rc, 2·O].
fn pre_block(x: &[f32], w: &[f32], b: &[f32], pre: &mut [f32], i: usize, o2: usize) {
    let rc = pre.len() / o2;
    assert!(x.len() == rc * i && w.len() == i * o2 && b.len() == o2, "linear_glu: block sizes");
    matmul(pre, rc, o2, i, rows(x, i), rows(w, o2), 1.0, false);
    for row in pre.chunks_exact_mut(o2) {
        for (p, b) in row.iter_mut().zip(b) {
            *p += b;
        }
    }
}

/// The block's input to the GEMM: `x` itself, or `gelu(x)` written into `buf`.
fn input<'a>(x: &'a [f32], gelu: bool, buf: &'a mut [f32]) -> &'a [f32] {
    if !gelu {
        return x;
    }
    let buf = &mut buf[..x.len()];
    gelu_into(x, buf);
    buf
}

/// Args: `x` [R, I], `w` [I, 2·O] (burn's Linear layout), `b` [2·O]. Returns
/// `y = glu(act(x)·W + b)` [R, O], `act` = exact GELU with `gelu`, else identity.
///
/// Neither the pre-activation nor `gelu(x)` is kept: they live one block at a time, and the
/// backward pass recomputes them (one more small GEMM per block) rather than hold 2·O + I
/// floats a row, which at B·L = 2^20 rows is 768 MB a layer.
///
/// # Panics
/// With `i` or `o2` zero (the callers take burn's ops then) or sizes that do not match.
pub fn linear_glu(x: &[f32], w: &[f32], b: &[f32], i: usize, o2: usize, gelu: bool) -> Vec<f32> {
    assert!(i > 0 && o2 > 0 && o2.is_multiple_of(2), "linear_glu: I = {i}, 2·O = {o2}");
    assert!(w.len() == i * o2 && b.len() == o2 && x.len().is_multiple_of(i), "linear_glu: sizes");
    let r = x.len() / i;
    let (o, rt) = (o2 / 2, rows_per_task(o2));
    let mut y = zeros(r * o);
    let tasks = y.par_chunks_mut(rt * o).zip(x.par_chunks(rt * i));
    tasks.for_each_init(
        || (vec![0f32; rt * o2], vec![0f32; if gelu { rt * i } else { 0 }]),
        |(pre, act), (y, x)| {
            let pre = &mut pre[..y.len() / o * o2];
            pre_block(input(x, gelu, act), w, b, pre, i, o2);
            glu_rows(pre, y, o);
        },
    );
    y
}

/// Gradients of [`linear_glu`] given `g = ∂loss/∂y` [R, O]: (∂x [R, I], ∂W [I, 2·O], ∂b [2·O]).
pub fn linear_glu_grad(x: &[f32], w: &[f32], b: &[f32], g: &[f32], i: usize, o2: usize, gelu: bool) -> [Vec<f32>; 3] {
    assert!(i > 0 && o2 > 0 && g.len() * 2 == x.len() / i * o2, "linear_glu_grad: sizes");
    let (o, rt) = (o2 / 2, rows_per_task(o2));
    let r = x.len() / i;
    let mut gx = zeros(r * i);
    let tasks = gx.par_chunks_mut(rt * i).zip(g.par_chunks(rt * o)).zip(x.par_chunks(rt * i));
    // Each worker sums its blocks' ∂W and ∂b; the partial sums are added at the end.
    let (gw, gb) = tasks
        .fold(
            || (vec![0f32; i * o2], vec![0f32; o2], Scratch::new(rt, i, o2, gelu)),
            |(mut gw, mut gb, mut sc), ((gx, g), x)| {
                let rc = g.len() / o;
                let Scratch { pre, gt, act, ga } = &mut sc;
                let (pre, gt) = (&mut pre[..rc * o2], &mut gt[..rc * o2]); // [rc, 2O] each
                let a = input(x, gelu, act); // [rc, I]
                pre_block(a, w, b, pre, i, o2);
                glu_grad_rows(pre, g, gt, o); // ∂pre
                // ∂act(x) = ∂pre·Wᵀ is ∂x without GELU, else it goes through gelu'(x).
                let (ga, gx) = if gelu { (&mut ga[..rc * i], Some(gx)) } else { (gx, None) };
                matmul(ga, rc, i, o2, rows(gt, o2), transposed(w, o2), 1.0, false); // ∂pre·Wᵀ
                matmul(&mut gw, i, o2, rc, transposed(a, i), rows(gt, o2), 1.0, true); // += aᵀ·∂pre
                if let Some(gx) = gx {
                    gelu_grad_into(x, ga, gx);
                }
                for row in gt.chunks_exact(o2) {
                    for (s, v) in gb.iter_mut().zip(row) {
                        *s += v;
                    }
                }
                (gw, gb, sc)
            },
        )
        .map(|(gw, gb, _)| (gw, gb))
        .reduce(
            || (vec![0f32; i * o2], vec![0f32; o2]),
            |(mut a, mut ab), (b, bb)| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                ab.iter_mut().zip(&bb).for_each(|(a, b)| *a += b);
                (a, ab)
            },
        );
    [gx, gw, gb]
}
