//! Convolutional classifiers (ml4gw's, as aframe uses them), registered beside the sequence
//! backbone.

pub mod group_norm;
pub mod resnet1d;

pub use group_norm::GroupNorm1d;
pub use resnet1d::{Resnet1d, Resnet1dConfig};
