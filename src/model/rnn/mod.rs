//! Recurrent baselines as sequence layers: `lstm`, `gru` and `rnn` (Elman) with PyTorch's
//! equations and parameter layout, and the wave RNN (`wave_rnn`, and the paper's whole classifier `wrnn`). The recurrences run as fused CPU kernels
//! (`crate::ops::rnn`) or, on other devices, one tensor-op step per time step.

pub mod cell;
pub mod elman;
pub mod gru;
pub mod lstm;
pub mod params;
pub mod stack;
pub mod wave;
pub mod wrnn;

pub use cell::{CellKind, Nonlinearity};
pub use elman::{Rnn, RnnConfig};
pub use gru::{Gru, GruConfig};
pub use lstm::{Lstm, LstmConfig};
pub use stack::{Recurrent, RnnState};
pub use wave::{WaveRnn, WaveRnnConfig};
pub use wrnn::{Wrnn, WrnnConfig};
