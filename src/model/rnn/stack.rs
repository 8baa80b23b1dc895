//! A recurrent layer as `torch.nn.LSTM` / `GRU` / `RNN` build it: `num_layers` stacked cells,
//! optionally one per direction with the outputs concatenated, dropout between layers, in a
//! [B, L, H] → [B, L, H] sequence layer.
//!
//! Width: each direction has `hidden_size` units (default H, or H/2 per direction when
//! bidirectional, so the concatenation is H wide). When `directions·hidden_size ≠ H` a linear
//! `output_linear` maps the outputs back to H.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::cell::{CellKind, CellParams, CellState};
use crate::config::ConfigError;
use crate::model::SeqLayer;
use crate::model::ssm::StepError;
use crate::weights::names::{Layout, Map};

/// Largest `num_layers` accepted (a guard against typos that would allocate huge stacks).
pub(crate) const MAX_LAYERS: usize = 64;

/// Options every recurrent layer has (`torch.nn.LSTM`'s constructor arguments).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StackOptions {
    /// Stacked layers.
    pub num_layers: usize,
    /// One cell per direction, outputs concatenated.
    pub bidirectional: bool,
    /// Dropout on the outputs of every layer but the last.
    pub dropout: f64,
    /// Units per direction (None: H, or H/2 when bidirectional).
    pub hidden_size: Option<usize>,
}

impl StackOptions {
    /// The readout of `pool: auto`: the last step, or the mean when bidirectional (the
    /// reverse direction has seen one step at the last position).
    pub fn pool(&self) -> crate::model::PoolKind {
        if self.bidirectional { crate::model::PoolKind::Mean } else { crate::model::PoolKind::Last }
    }

    /// Checks ranges, naming `{path}.{key}`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let bad = |key: &str, msg: String| Err(ConfigError::Key { path: format!("{path}.{key}"), msg });
        if !(1..=MAX_LAYERS).contains(&self.num_layers) {
            return bad("num_layers", format!("must be in 1..={MAX_LAYERS}, got {}", self.num_layers));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return bad("dropout", format!("must be in [0, 1), got {}", self.dropout));
        }
        if self.hidden_size == Some(0) {
            return bad("hidden_size", "must be at least 1 (or null for the model width)".into());
        }
        Ok(())
    }

    /// Checks the options against the model width `h`.
    pub fn check_width(&self, path: &str, h: usize) -> Result<(), ConfigError> {
        if self.bidirectional && self.hidden_size.is_none() && !h.is_multiple_of(2) {
            return Err(ConfigError::Key {
                path: format!("{path}.bidirectional"),
                msg: format!(
                    "splits d_model = {h} into two halves, one per direction: needs an even d_model or a hidden_size"
                ),
            });
        }
        Ok(())
    }

    fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Units per direction for model width `h`.
    pub fn hidden(&self, h: usize) -> usize {
        self.hidden_size.unwrap_or(h / self.directions()).max(1)
    }

    /// Builds the layer for width `h` (PyTorch's uniform init from the device's seeded RNG).
    pub fn init(&self, kind: CellKind, h: usize, device: &Device) -> Recurrent {
        let (dirs, hidden) = (self.directions(), self.hidden(h));
        let cells = (0..self.num_layers * dirs)
            .map(|k| CellParams::new(kind, if k < dirs { h } else { dirs * hidden }, hidden, device))
            .collect();
        let output_linear = (dirs * hidden != h).then(|| LinearConfig::new(dirs * hidden, h).init(device));
        Recurrent {
            cells,
            extras: Extras { dropout: DropoutConfig::new(self.dropout).init(), output_linear },
            kind,
            bidirectional: self.bidirectional,
        }
    }
}

/// An input whose last axis (of `dims`) is not `width` is a shape error.
pub(crate) fn check_width(dims: &[usize], width: usize) -> Result<(), StepError> {
    if dims.last() == Some(&width) {
        return Ok(());
    }
    let mut expected = dims.to_vec();
    if let Some(last) = expected.last_mut() {
        *last = width;
    }
    Err(StepError::Shape { what: "layer input [.., H]", expected, got: dims.to_vec() })
}

/// The state of a recurrent layer for a batch, in PyTorch's `(h_n, c_n)` layout.
#[derive(Debug, Clone)]
pub struct RnnState {
    /// `h` of every layer, [num_layers, B, H].
    pub h: Tensor<3>,
    /// `c` of every layer (LSTM only), [num_layers, B, H].
    pub c: Option<Tensor<3>>,
}

impl RnnState {
    /// Cuts the autodiff graph (truncated backpropagation through time).
    pub fn detach(self) -> Self {
        Self { h: self.h.detach(), c: self.c.map(Tensor::detach) }
    }

    /// State `k` (layer) as a cell state.
    fn cell(&self, k: usize) -> CellState {
        let [_, b, h] = self.h.dims();
        let at = |t: &Tensor<3>| t.clone().narrow(0, k, 1).reshape([b, h]);
        (at(&self.h), self.c.as_ref().map(at))
    }

    fn from_cells(cells: Vec<CellState>) -> Self {
        let (hs, cs): (Vec<_>, Vec<_>) = cells.into_iter().unzip();
        let cs: Option<Vec<_>> = cs.into_iter().collect();
        Self { h: Tensor::stack(hs, 0), c: cs.map(|c| Tensor::stack(c, 0)) }
    }
}

/// The parts of a recurrent layer that are not cells (their names are the derive's).
#[derive(Module, Debug)]
pub struct Extras {
    /// Dropout between layers.
    pub dropout: Dropout,
    /// Projection of the concatenated outputs back to H, when their width differs.
    pub output_linear: Option<Linear>,
}

/// A built recurrent layer (`lstm`, `gru`, `rnn`). Its parameter paths are PyTorch's
/// state_dict keys (`weight_ih_l0`, `bias_hh_l1_reverse`, …), see `params.rs`.
#[derive(Debug, Clone)]
pub struct Recurrent {
    /// Cells in PyTorch's order: layer 0 forward, layer 0 reverse, layer 1 forward, ….
    pub cells: Vec<CellParams>,
    /// Dropout and the output projection.
    pub extras: Extras,
    /// The recurrence.
    pub kind: CellKind,
    /// Whether each layer has a reverse direction.
    pub bidirectional: bool,
}

impl Recurrent {
    fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// Units per direction.
    pub fn hidden(&self) -> usize {
        self.cells[0].hidden()
    }

    fn causal(&self) -> Result<(), StepError> {
        if self.bidirectional {
            return Err(StepError::NoRecurrentForm {
                layer: self.kind.name(),
                why: "`model.layer.bidirectional: true`: the reverse direction reads the sequence from its end",
            });
        }
        Ok(())
    }

    /// Checks that the last axis of an input (`dims`) is the layer's input width.
    fn check_input(&self, dims: &[usize]) -> Result<(), StepError> {
        check_width(dims, self.cells[0].weight_ih.dims()[1])
    }

    fn check_state(&self, s: &RnnState, batch: usize) -> Result<(), StepError> {
        let expected = [self.cells.len(), batch, self.hidden()];
        let c_ok = match (&s.c, self.kind) {
            (Some(c), CellKind::Lstm) => c.dims() == expected,
            (None, CellKind::Lstm) => false,
            (c, _) => c.is_none(),
        };
        if s.h.dims() == expected && c_ok {
            Ok(())
        } else {
            Err(StepError::Shape {
                what: "recurrent state [num_layers, B, H] (h, and c for an LSTM)",
                expected: expected.to_vec(),
                got: s.h.dims().to_vec(),
            })
        }
    }

    /// All layers and directions from `state` (None: zero).
    ///
    /// Args: `x` [B, L, H]. Returns ([B, L, H], final state).
    fn run(&self, x: Tensor<3>, state: Option<&RnnState>) -> (Tensor<3>, RnnState) {
        let [b, _, _] = x.dims();
        let dirs = self.directions();
        let device = x.device();
        let zero = || {
            let z = Tensor::<2>::zeros([b, self.hidden()], &device);
            (z.clone(), (self.kind == CellKind::Lstm).then_some(z))
        };
        let mut input = x;
        let mut finals = Vec::with_capacity(self.cells.len());
        for (layer, cells) in self.cells.chunks(dirs).enumerate() {
            if layer > 0 {
                input = self.extras.dropout.forward(input);
            }
            let mut outs = Vec::with_capacity(dirs);
            for (d, cell) in cells.iter().enumerate() {
                let init = state.map_or_else(zero, |s| s.cell(layer * dirs + d));
                let reverse = d == 1;
                let xin = if reverse { input.clone().flip([1]) } else { input.clone() };
                let (y, fin) = cell.scan(self.kind, xin, init); // [B, L, hidden]
                outs.push(if reverse { y.flip([1]) } else { y });
                finals.push(fin);
            }
            input = Tensor::cat(outs, 2); // [B, L, dirs·hidden]
        }
        let y = match &self.extras.output_linear {
            Some(lin) => lin.forward(input),
            None => input,
        };
        (y, RnnState::from_cells(finals))
    }
}

impl SeqLayer for Recurrent {
    type Stepper = RnnState;
    type State = RnnState;
    // One type serves `lstm`, `gru` and `rnn`; the messages name `kind` instead.
    const NAME: &'static str = "recurrent";

    /// Args: `x` [B, L, H]. Returns [B, L, H].
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.run(x, None).0
    }

    /// The layer from an initial state (None: zero): outputs and the state after `x`, so a
    /// long sequence can be processed in chunks. A bidirectional layer looks ahead and has no
    /// such form.
    ///
    /// Args: `x` [B, L, H]; `state` [num_layers, B, H]. Returns ([B, L, H], the final state).
    fn forward_state(&self, x: Tensor<3>, state: Option<&RnnState>) -> Result<(Tensor<3>, RnnState), StepError> {
        self.causal()?;
        self.check_input(&x.dims())?;
        if let Some(s) = state {
            self.check_state(s, x.dims()[0])?;
        }
        Ok(self.run(x, state))
    }

    /// Step mode for `batch` sequences from the zero state (`l` is not needed: the layer is
    /// its own recurrence).
    fn stepper(&self, batch: usize, _l: usize) -> Result<RnnState, StepError> {
        self.causal()?;
        let device = self.cells[0].weight_hh.device();
        let dims = [self.cells.len(), batch, self.hidden()];
        let c = (self.kind == CellKind::Lstm).then(|| Tensor::zeros(dims, &device));
        Ok(RnnState { h: Tensor::zeros(dims, &device), c })
    }

    /// One recurrent step: [`Recurrent::forward`] applied to the next time step.
    ///
    /// Args: `x` [B, H]. Returns [B, H].
    fn step(&self, state: &mut RnnState, x: Tensor<2>) -> Result<Tensor<2>, StepError> {
        self.causal()?;
        self.check_input(&x.dims())?;
        let b = x.dims()[0];
        self.check_state(state, b)?;
        let mut input = x;
        let mut cells = Vec::with_capacity(self.cells.len());
        for (k, cell) in self.cells.iter().enumerate() {
            if k > 0 {
                input = self.extras.dropout.forward(input);
            }
            let width = input.dims()[1];
            let gx = cell.project(self.kind, input.reshape([b, 1, width])); // [B, 1, G·H]
            let gh = gx.dims()[2];
            let next = cell.step(self.kind, gx.reshape([b, gh]), state.cell(k));
            input = next.0.clone();
            cells.push(next);
        }
        *state = RnnState::from_cells(cells);
        Ok(match &self.extras.output_linear {
            Some(lin) => lin.forward(input),
            None => input,
        })
    }

    /// Continues step mode from `state` (e.g. the one a prompt left in conv mode); the batch
    /// becomes the state's.
    fn set_state(&self, stepper: &mut RnnState, state: &RnnState) -> Result<(), StepError> {
        self.causal()?;
        self.check_state(state, state.h.dims()[1])?;
        *stepper = state.clone();
        Ok(())
    }

    /// Step mode's state is the conv-mode state.
    fn state(&self, stepper: &RnnState) -> Result<RnnState, StepError> {
        self.causal()?;
        Ok(stepper.clone())
    }

    /// `torch.nn.LSTM`/`GRU`/`RNN` keys as they are, under the layer's prefix (state-spaces/s4's
    /// `TorchLSTM`/`TorchGRU` subclass them). The output projection has no counterpart.
    fn torch_key(_: Layout, prefix: &str, _: usize, rest: &[&str]) -> Option<(String, Map)> {
        let cell_param =
            |n: &str| ["weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l"].iter().any(|p| n.starts_with(p));
        match rest {
            [name] if cell_param(name) => Some((format!("{prefix}.{name}"), Map::Same)),
            _ => None,
        }
    }
}
