//! Kernel reuse under gradient accumulation: one optimizer step computes each SSM kernel once,
//! not once per micro-batch (the waste the DSS seed names).
//!
//! The kernels are computed with their graph, and the micro-batches run on a copy of the model
//! whose layers read detached copies `K'` that require their own gradient. Each micro-batch's
//! backward stops at `K'` and adds to `∂L/∂K'`; at the end of the step one backward of
//! `Σ ⟨K, ∂L/∂K'⟩` carries the summed gradient through the kernel generators. By linearity the
//! result equals the sum of the micro-batches' full gradients.

use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::model::Model;

/// The model of one optimizer step with its kernels computed once.
pub struct SharedKernels {
    model: Model,
    kernels: Vec<(Tensor<3>, Tensor<3>)>,
    grads: Vec<Option<Tensor<3>>>,
}

impl SharedKernels {
    /// Computes every layer's kernel for sequences of length `l`; `None` for models without
    /// SSM kernels (other than the sequence backbone).
    pub fn new(model: &Model, l: usize) -> Option<Self> {
        let mut seq = model.as_sequence()?.clone();
        let kernels: Vec<_> = seq.layers.iter_mut().filter_map(|b| b.layer.share_kernel(l)).collect();
        let grads = vec![None; kernels.len()];
        Some(Self { model: Model::Sequence(seq), kernels, grads })
    }

    /// The model the micro-batches run on.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// A micro-batch's backward: the gradients of every parameter outside the kernels, while
    /// `∂loss/∂K` is kept for [`SharedKernels::finish`].
    pub fn backward(&mut self, loss: Tensor<1>) -> GradientsParams {
        let grads = loss.backward();
        for ((_, leaf), acc) in self.kernels.iter().zip(self.grads.iter_mut()) {
            if let Some(g) = leaf.grad(&grads) {
                *acc = Some(match acc.take() {
                    Some(a) => a + g,
                    None => g,
                });
            }
        }
        GradientsParams::from_grads(grads, &self.model)
    }

    /// The kernel parameters' gradients of all micro-batches, through one backward.
    pub fn finish(self, model: &Model) -> GradientsParams {
        let mut total: Option<Tensor<1>> = None;
        for ((k, _), g) in self.kernels.into_iter().zip(self.grads) {
            if let Some(g) = g {
                let term = (k * Tensor::from_inner(g)).sum();
                total = Some(total.map_or(term.clone(), |t| t + term));
            }
        }
        match total {
            Some(t) => GradientsParams::from_grads(t.backward(), model),
            None => GradientsParams::new(),
        }
    }
}
