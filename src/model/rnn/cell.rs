//! One direction of one recurrent layer: PyTorch's four tensors and the recurrence they
//! define, as a whole-sequence scan (fused on the CPU) or one tensor-op step at a time.

use burn::module::Param;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

/// Nonlinearity of the Elman RNN (`torch.nn.RNN`'s `nonlinearity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Nonlinearity {
    /// `tanh` (PyTorch's default).
    #[default]
    Tanh,
    /// `max(0, ·)`.
    Relu,
}

/// Which recurrence a cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// `torch.nn.LSTM`: gates i, f, g, o; state (h, c).
    Lstm,
    /// `torch.nn.GRU`: gates r, z, n; `b_hn` inside `r⊙(…)`.
    Gru,
    /// `torch.nn.RNN`: `h_t = act(W_ih·x_t + b_ih + W_hh·h_{t-1} + b_hh)`.
    Rnn(Nonlinearity),
}

impl CellKind {
    /// Gate blocks G stacked along the rows of the weights ([G·H, ·]).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
            CellKind::Rnn(_) => 1,
        }
    }

    /// The layer name (`model.layer`).
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
            CellKind::Rnn(_) => "rnn",
        }
    }
}

/// The state of one cell for a batch: `h` [B, H] and, for an LSTM, `c` [B, H].
pub type CellState = (Tensor<2>, Option<Tensor<2>>);

/// One direction of one layer (the names are PyTorch's without the `_l{k}` suffix, which
/// [`super::Recurrent`] adds).
#[derive(Debug, Clone)]
pub struct CellParams {
    /// Input weights of the gates, [G·H, In].
    pub weight_ih: Param<Tensor<2>>,
    /// Recurrent weights of the gates, [G·H, H].
    pub weight_hh: Param<Tensor<2>>,
    /// Input bias, [G·H].
    pub bias_ih: Param<Tensor<1>>,
    /// Recurrent bias, [G·H].
    pub bias_hh: Param<Tensor<1>>,
}

impl CellParams {
    /// PyTorch's init: every tensor uniform in `±1/√hidden`.
    pub fn new(kind: CellKind, input: usize, hidden: usize, device: &Device) -> Self {
        let k = 1.0 / (hidden.max(1) as f64).sqrt();
        let gh = kind.gates() * hidden;
        let u = Distribution::Uniform(-k, k);
        Self {
            weight_ih: Param::from_tensor(Tensor::random([gh, input], u, device)),
            weight_hh: Param::from_tensor(Tensor::random([gh, hidden], u, device)),
            bias_ih: Param::from_tensor(Tensor::random([gh], u, device)),
            bias_hh: Param::from_tensor(Tensor::random([gh], u, device)),
        }
    }

    /// Hidden width H.
    pub fn hidden(&self) -> usize {
        self.weight_hh.dims()[1]
    }

    /// The input projections of all steps, `x·W_ihᵀ + b_ih` plus `b_hh` where it is only ever
    /// added (all but the GRU, whose `b_hn` sits inside `r⊙(…)`).
    ///
    /// Args: `x` [B, L, In]. Returns [B, L, G·H].
    pub fn project(&self, kind: CellKind, x: Tensor<3>) -> Tensor<3> {
        let [b, l, i] = x.dims();
        let gh = self.weight_ih.dims()[0];
        let bias = match kind {
            CellKind::Gru => self.bias_ih.val(),
            _ => self.bias_ih.val() + self.bias_hh.val(),
        };
        let gx = x.reshape([b * l, i]).matmul(self.weight_ih.val().transpose()) + bias.unsqueeze::<2>(); // [B·L, G·H]
        gx.reshape([b, l, gh])
    }

    /// One step by tensor ops from the step's projection [`CellParams::project`].
    ///
    /// Args: `gx` [B, G·H]; `state` ([B, H], [B, H] for an LSTM). Returns the new state.
    pub fn step(&self, kind: CellKind, gx: Tensor<2>, state: CellState) -> CellState {
        let (h, c) = state;
        let hd = self.hidden();
        let gh = h.clone().matmul(self.weight_hh.val().transpose()); // [B, G·H]
        let part = |t: &Tensor<2>, k: usize| t.clone().narrow(1, k * hd, hd);
        match kind {
            CellKind::Lstm => {
                let a = gx + gh;
                let (i, f, g, o) =
                    (sigmoid(part(&a, 0)), sigmoid(part(&a, 1)), part(&a, 2).tanh(), sigmoid(part(&a, 3)));
                let c = f * c.unwrap_or_else(|| h.zeros_like()) + i * g;
                (o * c.clone().tanh(), Some(c))
            }
            CellKind::Gru => {
                let gh = gh + self.bias_hh.val().unsqueeze::<2>();
                let r = sigmoid(part(&gx, 0) + part(&gh, 0));
                let z = sigmoid(part(&gx, 1) + part(&gh, 1));
                let n = (part(&gx, 2) + r * part(&gh, 2)).tanh();
                (n.clone() + z * (h - n), None)
            }
            CellKind::Rnn(act) => {
                let a = gx + gh;
                (
                    match act {
                        Nonlinearity::Tanh => a.tanh(),
                        Nonlinearity::Relu => relu(a),
                    },
                    None,
                )
            }
        }
    }

    /// The recurrence over a whole sequence: the fused kernels on the CPU, else one step of
    /// tensor ops per time step.
    ///
    /// Args: `x` [B, L, In]; `state` ([B, H], [B, H] for an LSTM). Returns ([B, L, H], the
    /// state after the last step).
    pub fn scan(&self, kind: CellKind, x: Tensor<3>, state: CellState) -> (Tensor<3>, CellState) {
        let [b, l, _] = x.dims();
        let hd = self.hidden();
        if l == 0 {
            return (Tensor::zeros([b, 0, hd], &x.device()), state);
        }
        let gx = self.project(kind, x); // [B, L, G·H]
        if !crate::ops::supported(&gx.device()) {
            return self.scan_steps(kind, gx, state);
        }
        let (h0, c0) = state;
        let w = self.weight_hh.val();
        let last = |y: &Tensor<3>| y.clone().narrow(1, l - 1, 1).reshape([b, hd]);
        match kind {
            CellKind::Lstm => {
                let c0 = c0.unwrap_or_else(|| h0.zeros_like());
                let hc = crate::ops::rnn::lstm_scan(gx, w, h0, c0); // [B, L, 2H]
                let (y, c) = (hc.clone().narrow(2, 0, hd), hc.narrow(2, hd, hd));
                let hn = last(&y);
                (y, (hn, Some(last(&c))))
            }
            CellKind::Gru => {
                let y = crate::ops::rnn::gru_scan(gx, w, self.bias_hh.val(), h0);
                let hn = last(&y);
                (y, (hn, None))
            }
            CellKind::Rnn(act) => {
                let y = crate::ops::rnn::rnn_scan(gx, w, h0, act == Nonlinearity::Relu);
                let hn = last(&y);
                (y, (hn, None))
            }
        }
    }

    /// [`CellParams::scan`] as one tensor-op step per time step (other devices; and the
    /// reference the fused kernels are tested against).
    ///
    /// Args: `gx` [B, L, G·H]. Returns ([B, L, H], final state).
    pub fn scan_steps(&self, kind: CellKind, gx: Tensor<3>, mut state: CellState) -> (Tensor<3>, CellState) {
        let [b, l, gh] = gx.dims();
        let mut ys = Vec::with_capacity(l);
        for t in 0..l {
            state = self.step(kind, gx.clone().narrow(1, t, 1).reshape([b, gh]), state);
            ys.push(state.0.clone());
        }
        (Tensor::stack(ys, 1), state)
    }
}
