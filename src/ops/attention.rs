//! Softmax attention as a fused CPU op with a hand-written backward pass, registered as a burn
//! backend extension for `flex` and `Autodiff<flex>`.
//!
//! Why: with tensor ops every [queries, keys] score block of the forward pass is kept for the
//! backward pass, and the mask, softmax, dropout and their gradients each sweep it again
//! (burn's fused `attention` has no backward under autodiff). Fused, each block of queries is
//! scored, normalized and multiplied while it sits in cache, and the backward pass recomputes
//! it from the log-sum-exp (see [`kernel`]). Other backends use the tensor-op formulation in
//! `model::attention::mha`, which computes the same function.

pub mod kernel;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Tensor, TensorData};

pub use self::kernel::Opts;
use self::kernel::{Dims, GradsOut, Heads, Layout, Qkv, Saved};
use super::host;

/// A float tensor of the autodiff backend over `B`.
type AdTensor<B, C> = FloatTensor<Autodiff<B, C>>;

/// Scaled dot-product attention over heads.
#[backend_extension(Flex, Autodiff)]
pub trait AttentionOps: Backend {
    /// `softmax(q·kᵀ/√d + mask)·v` per head, with query `i` at position `o.offset + i` seeing
    /// keys `0..=o.offset + i` when `o.causal`, and attention weights dropped with probability
    /// `o.drop` under the mask drawn from `o.seed` (see [`kernel::RowMask`]).
    ///
    /// Args: `q` [B, nH, L, d], `k`, `v` [B, nH, T, d]. Returns [B, nH, L, d].
    fn attention(q: FloatTensor<Self>, k: FloatTensor<Self>, v: FloatTensor<Self>, o: Opts) -> FloatTensor<Self>;

    /// `attention` that also returns each query's log-sum-exp [B·nH, L], which its backward
    /// pass recomputes the probabilities from.
    fn attention_saving(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        o: Opts,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// Gradients (∂q, ∂k, ∂v) of `attention` for output gradient `grad`, from its output `out`
    /// and the log-sum-exp `lse` of `attention_saving`.
    #[allow(clippy::too_many_arguments)]
    fn attention_grad(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        o: Opts,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `attention` of `n_heads` heads read in place from packed projections `qkv`
    /// [B, L, 3H] (queries, keys, values, heads in order in each), without cached positions.
    /// Returns the heads concatenated, [B, L, H].
    fn attention_packed(qkv: FloatTensor<Self>, n_heads: usize, o: Opts) -> FloatTensor<Self>;

    /// `attention_packed` that also returns the log-sum-exp [B·nH, L].
    fn attention_packed_saving(
        qkv: FloatTensor<Self>,
        n_heads: usize,
        o: Opts,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradient of `attention_packed`'s `qkv` [B, L, 3H] for output gradient `grad`.
    #[allow(clippy::too_many_arguments)]
    fn attention_packed_grad(
        qkv: FloatTensor<Self>,
        out: FloatTensor<Self>,
        lse: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        n_heads: usize,
        o: Opts,
    ) -> FloatTensor<Self>;
}

fn flex(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

/// Sizes from `q` [B, nH, L, d] and `k` [B, nH, T, d].
fn dims(q: &FlexTensor, k: &FlexTensor) -> Dims {
    let (qs, ks) = (q.shape().to_vec(), k.shape().to_vec());
    let (&[b, nh, l, d], &[_, _, t, _]) = (&qs[..], &ks[..]) else {
        panic!("attention: q [B, nH, L, d], k [B, nH, T, d]")
    };
    Dims { b, nh, l, t, d }
}

/// Sizes from packed projections `qkv` [B, L, 3H] of `nh` heads.
fn packed_dims(qkv: &FlexTensor, nh: usize) -> Dims {
    let s = qkv.shape().to_vec();
    let &[b, l, h3] = &s[..] else { panic!("attention_packed: qkv [B, L, 3H]") };
    assert!(nh > 0 && h3 % (3 * nh) == 0, "attention_packed: 3H = {h3} is not 3·{nh} heads");
    Dims { b, nh, l, t: l, d: h3 / (3 * nh) }
}

/// The three roles of packed projections.
fn packed<'a>(qkv: &'a [f32], dm: &Dims) -> Qkv<'a> {
    let part = |i| Heads { data: qkv, lay: Layout::packed(i, dm.nh, dm.l, dm.d) };
    Qkv { q: part(0), k: part(1), v: part(2) }
}

impl AttentionOps for Flex {
    fn attention(q: FlexTensor, k: FlexTensor, v: FlexTensor, o: Opts) -> FlexTensor {
        Self::attention_saving(q, k, v, o).0
    }

    fn attention_saving(q: FlexTensor, k: FlexTensor, v: FlexTensor, o: Opts) -> (FlexTensor, FlexTensor) {
        let dm = dims(&q, &k);
        let (q, k, v) = (host(&q), host(&k), host(&v));
        let heads = |data, n| Heads { data, lay: Layout::heads(dm.nh, n, dm.d) };
        let x = Qkv { q: heads(&q, dm.l), k: heads(&k, dm.t), v: heads(&v, dm.t) };
        let mut out = vec![0f32; dm.g() * dm.l * dm.d];
        let lse = kernel::forward(&x, &mut out, Layout::heads(dm.nh, dm.l, dm.d), dm, &o);
        (flex(out, &[dm.b, dm.nh, dm.l, dm.d]), flex(lse, &[dm.g(), dm.l]))
    }

    fn attention_grad(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        out: FlexTensor,
        lse: FlexTensor,
        grad: FlexTensor,
        o: Opts,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let dm = dims(&q, &k);
        let (q, k, v, out, lse, grad) = (host(&q), host(&k), host(&v), host(&out), host(&lse), host(&grad));
        let heads = |data, n| Heads { data, lay: Layout::heads(dm.nh, n, dm.d) };
        let x = Qkv { q: heads(&q, dm.l), k: heads(&k, dm.t), v: heads(&v, dm.t) };
        let saved = Saved { x, out: heads(&out, dm.l), lse: &lse, grad: heads(&grad, dm.l) };
        let (mut dq, mut dk, mut dv) =
            (vec![0f32; dm.g() * dm.l * dm.d], vec![0f32; dm.g() * dm.t * dm.d], vec![0f32; dm.g() * dm.t * dm.d]);
        let dst = |v: &mut Vec<f32>, n| (v.as_mut_ptr(), v.len(), Layout::heads(dm.nh, n, dm.d));
        // SAFETY: three zeroed buffers of their own, each laid out head by head, that live
        // past `backward`.
        let grads = unsafe { GradsOut::new(dst(&mut dq, dm.l), dst(&mut dk, dm.t), dst(&mut dv, dm.t)) };
        kernel::backward(&saved, &grads, dm, &o);
        let (sq, sk) = ([dm.b, dm.nh, dm.l, dm.d], [dm.b, dm.nh, dm.t, dm.d]);
        (flex(dq, &sq), flex(dk, &sk), flex(dv, &sk))
    }

    fn attention_packed(qkv: FlexTensor, n_heads: usize, o: Opts) -> FlexTensor {
        Self::attention_packed_saving(qkv, n_heads, o).0
    }

    fn attention_packed_saving(qkv: FlexTensor, n_heads: usize, o: Opts) -> (FlexTensor, FlexTensor) {
        let dm = packed_dims(&qkv, n_heads);
        let qkv = host(&qkv);
        let mut out = vec![0f32; dm.b * dm.l * dm.nh * dm.d];
        let lse = kernel::forward(&packed(&qkv, &dm), &mut out, Layout::joined(dm.nh, dm.l, dm.d), dm, &o);
        (flex(out, &[dm.b, dm.l, dm.nh * dm.d]), flex(lse, &[dm.g(), dm.l]))
    }

    fn attention_packed_grad(
        qkv: FlexTensor,
        out: FlexTensor,
        lse: FlexTensor,
        grad: FlexTensor,
        n_heads: usize,
        o: Opts,
    ) -> FlexTensor {
        let dm = packed_dims(&qkv, n_heads);
        let (qkv, out, lse, grad) = (host(&qkv), host(&out), host(&lse), host(&grad));
        let joined = |data| Heads { data, lay: Layout::joined(dm.nh, dm.l, dm.d) };
        let saved = Saved { x: packed(&qkv, &dm), out: joined(&out), lse: &lse, grad: joined(&grad) };
        let mut dqkv = vec![0f32; qkv.len()];
        let (ptr, len) = (dqkv.as_mut_ptr(), dqkv.len());
        let part = |i| (ptr, len, Layout::packed(i, dm.nh, dm.l, dm.d));
        // SAFETY: one zeroed buffer that lives past `backward`, whose three packed parts give
        // every head of every role its own columns.
        let grads = unsafe { GradsOut::new(part(0), part(1), part(2)) };
        kernel::backward(&saved, &grads, dm, &o);
        flex(dqkv, &[dm.b, dm.l, 3 * dm.nh * dm.d])
    }
}

impl<B: Backend + AttentionOps, C: CheckpointStrategy> AttentionOps for Autodiff<B, C> {
    fn attention(q: AdTensor<B, C>, k: AdTensor<B, C>, v: AdTensor<B, C>, o: Opts) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Attention(Opts);
        impl<B: Backend + AttentionOps> Backward<B, 3> for Attention {
            type State = [B::FloatTensorPrimitive; 5];
            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [q, k, v, out, lse] = ops.state;
                let o = self.0;
                let (dq, dk, dv) = B::attention_grad(q, k, v, out, lse, g, o);
                for (node, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
                    if let Some(node) = node {
                        grads.register::<B>(node.id, grad);
                    }
                }
            }
        }
        let guards = [q.node(), k.node(), v.node()];
        let [q, k, v] = [q, k, v].map(|t| t.into_primitive());
        let (out, lse) = B::attention_saving(q.clone(), k.clone(), v.clone(), o);
        match Attention(o).prepare::<C>(guards).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([q, k, v, out.clone(), lse], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn attention_saving(
        q: AdTensor<B, C>,
        k: AdTensor<B, C>,
        v: AdTensor<B, C>,
        o: Opts,
    ) -> (AdTensor<B, C>, AdTensor<B, C>) {
        let [q, k, v] = [q, k, v].map(|t| t.into_primitive());
        let (out, lse) = B::attention_saving(q, k, v, o);
        (Self::from_inner(out), Self::from_inner(lse))
    }

    fn attention_grad(
        _q: AdTensor<B, C>,
        _k: AdTensor<B, C>,
        _v: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _lse: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _o: Opts,
    ) -> (AdTensor<B, C>, AdTensor<B, C>, AdTensor<B, C>) {
        unimplemented!("second-order gradients of the fused attention")
    }

    fn attention_packed(qkv: AdTensor<B, C>, n_heads: usize, o: Opts) -> AdTensor<B, C> {
        #[derive(Debug)]
        struct Packed(usize, Opts);
        impl<B: Backend + AttentionOps> Backward<B, 1> for Packed {
            type State = [B::FloatTensorPrimitive; 3];
            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let g = grads.consume::<B>(&ops.node);
                let [qkv, out, lse] = ops.state;
                let (nh, o) = (self.0, self.1);
                let dqkv = B::attention_packed_grad(qkv, out, lse, g, nh, o);
                if let Some(node) = ops.parents.into_iter().next().flatten() {
                    grads.register::<B>(node.id, dqkv);
                }
            }
        }
        let guard = [qkv.node()];
        let qkv = qkv.into_primitive();
        let (out, lse) = B::attention_packed_saving(qkv.clone(), n_heads, o);
        match Packed(n_heads, o).prepare::<C>(guard).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([qkv, out.clone(), lse], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn attention_packed_saving(qkv: AdTensor<B, C>, n_heads: usize, o: Opts) -> (AdTensor<B, C>, AdTensor<B, C>) {
        let (out, lse) = B::attention_packed_saving(qkv.into_primitive(), n_heads, o);
        (Self::from_inner(out), Self::from_inner(lse))
    }

    #[allow(clippy::too_many_arguments)]
    fn attention_packed_grad(
        _qkv: AdTensor<B, C>,
        _out: AdTensor<B, C>,
        _lse: AdTensor<B, C>,
        _grad: AdTensor<B, C>,
        _n_heads: usize,
        _o: Opts,
    ) -> AdTensor<B, C> {
        unimplemented!("second-order gradients of the fused attention")
    }
}

/// Fused attention (see [`AttentionOps::attention`]) of `q` [B, nH, L, d] over `k`, `v`
/// [B, nH, T, d]. Returns [B, nH, L, d].
pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, o: Opts) -> Tensor<4> {
    let [q, k, v] = [q, k, v].map(|x| x.into_dispatch());
    Tensor::from_dispatch(<Dispatch as AttentionOps>::attention(q, k, v, o))
}

/// Fused attention of `n_heads` heads read from packed projections `qkv` [B, L, 3H] (see
/// [`AttentionOps::attention_packed`]). Returns [B, L, H].
pub fn attention_packed(qkv: Tensor<3>, n_heads: usize, o: Opts) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as AttentionOps>::attention_packed(qkv.into_dispatch(), n_heads, o))
}

#[cfg(test)]
mod tests {
    use burn::tensor::activation::softmax;
    use burn::tensor::{Device, Tensor, TensorData};

    use super::kernel::{Opts, RowMask};
    use super::{attention, attention_packed};

    /// `n` deterministic values in [-1.5, 1.5).
    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n).map(|i| (((i * 7919 + salt * 104_729) % 1013) as f32 / 1013.0 - 0.5) * 3.0).collect()
    }

    /// The same attention with tensor ops and the kernel's dropout mask as a tensor.
    fn reference(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, o: &Opts) -> Tensor<4> {
        let [b, nh, l, d] = q.dims();
        let t = k.dims()[2];
        let mut add = vec![0f32; l * t];
        let mut mask = vec![1f32; b * nh * l * t];
        for i in 0..l {
            for j in 0..t {
                if o.causal && j > o.offset + i {
                    add[i * t + j] = f32::NEG_INFINITY;
                }
            }
        }
        if o.drop > 0.0 {
            for g in 0..b * nh {
                for i in 0..l {
                    let m = RowMask::new(o, g, i);
                    (0..t).for_each(|j| mask[(g * l + i) * t + j] = m.at(j));
                }
            }
        }
        let device = q.device();
        let add = Tensor::<4>::from_data(TensorData::new(add, [1, 1, l, t]), &device);
        let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, nh, l, t]), &device);
        let s = q.matmul(k.swap_dims(2, 3)) / (d as f64).sqrt() + add; // [B, nH, L, T]
        (softmax(s, 3) * mask).matmul(v)
    }

    /// The fused op equals the tensor-op attention in value and in every gradient: causal with
    /// and without cached positions, bidirectional, with and without dropout, over several
    /// query blocks.
    #[test]
    fn fused_attention_matches_tensor_ops_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let (b, nh, l, d) = (2, 3, 150, 8);
        for (causal, offset, drop) in
            [(true, 0, 0.0), (true, 37, 0.0), (false, 0, 0.0), (true, 5, 0.3), (false, 0, 0.5)]
        {
            let t = l + offset;
            let o = Opts { causal, offset, drop, seed: 42 };
            let make = |n: usize, salt| {
                let x = Tensor::<4>::from_data(TensorData::new(values(b * nh * n * d, salt), [b, nh, n, d]), &device);
                x.require_grad()
            };
            let (q, k, v, w) = (make(l, 1), make(t, 2), make(t, 3), make(l, 4).detach());
            let run = |fused: bool| {
                let out = if fused {
                    attention(q.clone(), k.clone(), v.clone(), o)
                } else {
                    reference(q.clone(), k.clone(), v.clone(), &o)
                };
                let grads = (out.clone() * w.clone()).sum().backward();
                let g = |x: &Tensor<4>| x.grad(&grads).expect("grad").try_into_vec_as::<f32>().unwrap();
                [out.inner().try_into_vec_as::<f32>().unwrap(), g(&q), g(&k), g(&v)]
            };
            let (fused, generic) = (run(true), run(false));
            for (name, (a, e)) in ["out", "dq", "dk", "dv"].iter().zip(fused.iter().zip(&generic)) {
                let scale = e.iter().fold(0f32, |m, x| m.max(x.abs()));
                let worst = a.iter().zip(e).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst <= 1e-5 * scale.max(1.0), "{name} causal {causal} offset {offset} drop {drop}: {worst}");
            }
        }
    }

    /// The packed op equals the tensor-op attention of the heads it reads, in value and in the
    /// gradient of the packed projections.
    #[test]
    fn packed_attention_matches_tensor_ops_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let (b, nh, l, d) = (2, 3, 100, 8);
        let h = nh * d;
        for (causal, drop) in [(true, 0.0), (false, 0.0), (true, 0.4)] {
            let o = Opts { causal, offset: 0, drop, seed: 9 };
            let qkv = Tensor::<3>::from_data(TensorData::new(values(b * l * 3 * h, 5), [b, l, 3 * h]), &device);
            let qkv = qkv.require_grad();
            let w = Tensor::<3>::from_data(TensorData::new(values(b * l * h, 6), [b, l, h]), &device);
            let run = |fused: bool| {
                let out = if fused {
                    attention_packed(qkv.clone(), nh, o)
                } else {
                    let heads = |i: usize| qkv.clone().narrow(2, i * h, h).reshape([b, l, nh, d]).swap_dims(1, 2);
                    let o = reference(heads(0), heads(1), heads(2), &o); // [B, nH, L, d]
                    o.swap_dims(1, 2).reshape([b, l, h])
                };
                let grads = (out.clone() * w.clone()).sum().backward();
                let g = qkv.grad(&grads).expect("grad").try_into_vec_as::<f32>().unwrap();
                [out.inner().try_into_vec_as::<f32>().unwrap(), g]
            };
            let (fused, generic) = (run(true), run(false));
            for (name, (a, e)) in ["out", "dqkv"].iter().zip(fused.iter().zip(&generic)) {
                let scale = e.iter().fold(0f32, |m, x| m.max(x.abs()));
                let worst = a.iter().zip(e).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
                assert!(worst <= 1e-5 * scale.max(1.0), "{name} causal {causal} drop {drop}: {worst}");
            }
        }
    }

    /// The mask keeps about `1 - drop` of the weights and scales them by `1/(1 - drop)`.
    #[test]
    fn the_dropout_mask_keeps_the_expected_share() {
        let o = Opts { causal: false, offset: 0, drop: 0.25, seed: 7 };
        let (mut kept, n) = (0usize, 64 * 4096);
        for i in 0..64 {
            let m = RowMask::new(&o, 3, i);
            for j in 0..4096 {
                let w = m.at(j);
                assert!(w == 0.0 || (w - 1.0 / 0.75).abs() < 1e-6);
                kept += (w > 0.0) as usize;
            }
        }
        let share = kept as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.005, "kept {share}");
    }
}
