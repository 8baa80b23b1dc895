//! wavessm: train, evaluate, benchmark and test state-space sequence models (S4D, …) from YAML
//! experiments, on the CPU or a GPU, as one binary.
//!
//! The pieces are separate and interchangeable: [`model`] (a residual backbone whose layer is
//! chosen by name), [`data`] (datasets by name), [`task`] (loss, metrics, output size), wired
//! by an experiment [`config`] and run by [`train`]. Shape letters are listed in [`model`].

pub mod cli;
pub mod config;
pub mod data;
pub mod experiment;
pub mod io;
pub mod model;
pub mod ops;
pub mod task;
pub mod train;
pub mod tune;
pub mod weights;
