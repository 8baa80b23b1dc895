//! Convolutional classifiers (ml4gw's, as aframe uses them), registered beside the sequence
//! backbone, and the continuous kernel convolution layer (`ckconv`).

pub mod autoencoder;
pub mod ckconv;
pub mod group_norm;
pub mod resnet1d;
pub mod resnet2d;
pub mod spectrogram;

pub use autoencoder::{GwAutoencoder, GwAutoencoderConfig};
pub use ckconv::{CkConv, CkConvConfig, KernelInit};
pub use group_norm::GroupNorm1d;
pub use resnet1d::{Resnet1d, Resnet1dConfig};
pub use resnet2d::{Resnet2d, Resnet2dConfig};
