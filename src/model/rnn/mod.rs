//! Recurrent baselines as sequence layers: `lstm`, `gru` and `rnn` (Elman) with PyTorch's
//! equations and parameter layout, the wave RNN (`wave_rnn`, and the paper's whole classifier
//! `wrnn`), UnICORNN (`unicornn`) and LipschitzRNN (`lipschitz_rnn`). The recurrences run as
//! fused CPU kernels (`crate::ops`) or, on other devices, one tensor-op step per time step.

pub mod cell;
pub mod elman;
pub mod gru;
pub mod lipschitz;
pub mod lstm;
pub mod params;
pub mod stack;
pub mod unicornn;
pub mod wave;
pub mod wrnn;

pub use cell::{CellKind, Nonlinearity};
pub use elman::{HiddenInit, Rnn, RnnConfig, orthogonal};
pub use gru::{Gru, GruConfig};
pub use lipschitz::{LipschitzRnn, LipschitzRnnConfig};
pub use lstm::{Lstm, LstmConfig};
pub use stack::{Recurrent, RnnState};
pub use unicornn::{Unicornn, UnicornnConfig};
pub use wave::{WaveRnn, WaveRnnConfig};
pub use wrnn::{Wrnn, WrnnConfig};
