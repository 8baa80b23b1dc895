//! Step mode at the layer level: a layer's recurrence, the D skip and one state per sequence,
//! fed one time step of a batch at a time.

use burn::tensor::{Device, Tensor, TensorData};

use super::recurrence::{DiagonalState, Recurrence, StepState};
use super::state::SsmState;

/// Why a layer cannot step or forward a state, or what is wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// The layer's map is not a causal recurrence (it looks ahead or is nonlinear in time).
    #[error("{layer} has no causal recurrent form: {why}")]
    NoRecurrentForm {
        /// The layer.
        layer: &'static str,
        /// The option responsible.
        why: &'static str,
    },
    /// A stepper or state of another layer kind was passed to a layer.
    #[error("the stepper or state given to a {layer} layer belongs to another kind of layer")]
    Mismatch {
        /// The layer.
        layer: &'static str,
    },
    /// Step mode was asked for a kernel of length 0.
    #[error("the sequence length a stepper reproduces must be at least 1")]
    ZeroLength,
    /// An input or state has the wrong shape.
    #[error("{what}: expected shape {expected:?}, got {got:?}")]
    Shape {
        /// The argument.
        what: &'static str,
        /// Its expected shape.
        expected: Vec<usize>,
        /// The shape given.
        got: Vec<usize>,
    },
}

/// Step mode of one SSM layer for a batch: the recurrence, the skip `D` and the states.
#[derive(Debug, Clone)]
pub struct SsmStepper {
    rec: Recurrence,
    states: Vec<StepState>,
    /// Skip per channel and feature, [C·H].
    d: Vec<f64>,
}

impl SsmStepper {
    /// Starts `batch` sequences from the zero state. Args: `d` [C·H].
    /// Step mode of a diagonal layer (s4d, dss): the recurrence of its length-`l` `system`
    /// with skip `d` ([H] or [C, H]), for `batch` sequences from the zero state.
    pub(crate) fn diagonal<const D: usize>(
        l: usize,
        system: impl FnOnce(usize) -> super::diagonal::DiagonalSystem,
        d: burn::tensor::Tensor<D>,
        batch: usize,
    ) -> Result<Self, StepError> {
        if l == 0 {
            return Err(StepError::ZeroLength);
        }
        let d = d.try_into_vec_as::<f64>().expect("f64 data");
        Ok(Self::new(Recurrence::Diag(system(l).recurrence()), d, batch))
    }

    pub(crate) fn new(rec: Recurrence, d: Vec<f64>, batch: usize) -> Self {
        debug_assert_eq!(d.len(), rec.dims().0 * rec.dims().2, "D is [C·H]");
        Self { states: vec![rec.zero_state(); batch], rec, d }
    }

    /// Number of sequences stepped together.
    pub fn batch(&self) -> usize {
        self.states.len()
    }

    /// `[H, N2]`: the per-sequence state shape.
    fn state_dims(&self) -> [usize; 2] {
        let (h, n2, _) = self.rec.dims();
        [h, n2]
    }

    /// The states, one per sequence, [H·N2] each.
    pub fn states(&self) -> Vec<DiagonalState> {
        self.states.iter().map(|s| self.rec.export(s)).collect()
    }

    /// The states as tensors, [B, H, N2] (e.g. to continue in conv mode with `forward_state`).
    pub fn state(&self, device: &Device) -> SsmState {
        let [h, n2] = self.state_dims();
        SsmState::from_host(&self.states(), h, n2, device)
    }

    /// Replaces the states (e.g. by the final state of `forward_state` over a prompt); the batch
    /// becomes the state's.
    pub fn set_state(&mut self, state: &SsmState) -> Result<(), StepError> {
        let [h, n2] = self.state_dims();
        state.check([state.dims()[0], h, n2])?;
        self.states = state.to_host().iter().map(|x| self.rec.import(x)).collect();
        Ok(())
    }

    /// One step of the SSM with its skip, before the layer's activation and output map.
    ///
    /// Args: `u` [B, H]. Returns [B, C·H] (channel-major features).
    pub fn advance(&mut self, u: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let (h, _, c) = self.rec.dims();
        let b = self.batch();
        if u.dims() != [b, h] {
            return Err(StepError::Shape { what: "step input [B, H]", expected: vec![b, h], got: u.dims().to_vec() });
        }
        let device = u.device();
        let u_host = u.try_into_vec_as::<f64>().expect("f64 data");
        let (mut y, mut yt) = (vec![0f32; b * c * h], vec![0f64; c * h]);
        for (bi, state) in self.states.iter_mut().enumerate() {
            let ub = &u_host[bi * h..][..h];
            self.rec.step(state, ub, &mut yt);
            for j in 0..c * h {
                y[bi * c * h + j] = (yt[j] + self.d[j] * ub[j % h]) as f32;
            }
        }
        Ok(Tensor::from_data(TensorData::new(y, [b, c * h]), &device))
    }
}

/// Checks a layer input `[B, L, H]`: width `h` and at least one step.
pub(crate) fn check_input(dims: [usize; 3], h: usize) -> Result<(), StepError> {
    if dims[2] != h {
        return Err(StepError::Shape {
            what: "layer input [B, L, H]",
            expected: vec![dims[0], dims[1], h],
            got: dims.to_vec(),
        });
    }
    if dims[1] == 0 {
        return Err(StepError::ZeroLength);
    }
    Ok(())
}
