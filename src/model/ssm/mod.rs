//! State-space layers.

pub mod complex;
pub mod conv;
pub mod diagonal;
pub mod dss;
pub mod hippo;
pub mod recurrence;
pub mod s4d;
pub mod vandermonde;

pub use dss::{Dss, DssConfig};
pub use s4d::{S4d, S4dConfig, S4dKernel};
