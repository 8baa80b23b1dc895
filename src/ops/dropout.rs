//! Dropout whose mask is drawn on the host in parallel: burn's `Dropout` samples a Bernoulli
//! tensor element by element on one thread and multiplies twice (mask, then 1/keep), which
//! took a tenth of a small sMNIST training step. Same semantics: in training on an autodiff
//! device, each element kept with probability `1 - prob` and scaled by `1/(1 - prob)`.

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// Elements per parallel task (each task has its own generator stream).
const CHUNK: usize = 1 << 16;

/// `d.forward(x)` with the mask drawn in parallel on `flex`; other devices use burn's.
///
/// Args: `x` of any shape. Returns the same shape.
pub fn dropout<const D: usize>(d: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let rate = active_rate(d, &device);
    if rate == 0.0 {
        return x;
    }
    if !super::supported(&device) {
        return d.forward(x);
    }
    let dims = x.dims();
    let mask = mask(dims.iter().product(), 1.0 - rate, draw_seed(&device));
    x * Tensor::from_data(TensorData::new(mask, dims), &device)
}

/// The probability `d` drops an element with on `device` now: its rate in training on an
/// autodiff device, else 0.
pub fn active_rate(d: &Dropout, device: &Device) -> f64 {
    if d.training.is_enabled() && device.is_autodiff() { d.prob } else { 0.0 }
}

/// A mask seed from the device's generator: masks follow the device's seed (reseeded every step
/// by the trainer), so runs and resumed runs stay reproducible.
pub fn draw_seed(device: &Device) -> u64 {
    let draw: Vec<f32> =
        Tensor::<1>::random([2], Distribution::Uniform(0.0, 1.0), device).try_into_vec_as::<f32>().expect("f32");
    ((draw[0].to_bits() as u64) << 32) | draw[1].to_bits() as u64
}

/// `n` values, each `1/keep` with probability `keep`, else 0.
pub fn mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let mut m = super::pool::zeros(n);
    let (scale, cut) = ((1.0 / keep) as f32, (keep * 4_294_967_296.0) as u64);
    m.par_chunks_mut(CHUNK).enumerate().for_each(|(i, c)| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(i as u64);
        for v in c.iter_mut() {
            *v = if (rng.random::<u32>() as u64) < cut { scale } else { 0.0 };
        }
    });
    m
}
