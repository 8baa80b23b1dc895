//! Attention layers: the Transformer encoder layer, its chunked attention and positions.

pub mod mha;
pub mod norm;
pub mod pos;
pub mod transformer;

pub use transformer::{Transformer, TransformerConfig, TransformerState};
