//! Autoregressive sampling from a token model: the prompt runs in conv mode, then each new
//! token is one recurrent step (O(1) per token for every layer with a step mode), drawn with
//! temperature, top-k and top-p from a seeded RNG. Used by `wavessm generate` and by the
//! trainer's validation text sample.

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{SequenceModel, StepError};

/// How each token is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Softmax temperature (0: greedy).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    pub top_p: f64,
    /// Seed of the sampler: the same seed gives the same tokens.
    pub seed: u64,
}

/// `n` continuations of `prompt` (token ids, not empty), `length` tokens each, from a model
/// on `device` trained on sequences of `l_max` steps.
pub fn generate(
    model: &SequenceModel,
    device: &Device,
    prompt: &[u32],
    n: usize,
    length: usize,
    l_max: usize,
    s: &Sampling,
) -> Result<Vec<Vec<u32>>, StepError> {
    let ids = |tokens: Vec<f32>, shape: Vec<usize>| TensorData::new(tokens, shape);
    let x: Vec<f32> = (0..n).flat_map(|_| prompt.iter().map(|&t| t as f32)).collect();
    let x = Tensor::<3>::from_data(ids(x, vec![n, prompt.len(), 1]), device); // [N, P, 1]
    let (mut logits, mut stepper) = model.prefill(x, l_max)?; // [N, V]
    let mut rng = ChaCha8Rng::seed_from_u64(s.seed);
    let mut out: Vec<Vec<u32>> = vec![Vec::with_capacity(length); n];
    for _ in 0..length {
        let host: Vec<f32> = logits.try_into_vec_as::<f32>().expect("f32 logits");
        let v = host.len() / n;
        let next: Vec<u32> = host.chunks(v).map(|row| sample(row, s, &mut rng)).collect();
        for (o, &t) in out.iter_mut().zip(&next) {
            o.push(t);
        }
        let x = next.iter().map(|&t| t as f32).collect();
        logits = model.step(&mut stepper, Tensor::<2>::from_data(ids(x, vec![n, 1]), device))?; // [N, V]
    }
    Ok(out)
}

/// One token from logits: greedy at temperature 0, else softmax(logits / T) cut to the top k
/// and the top-p nucleus.
pub fn sample(logits: &[f32], s: &Sampling, rng: &mut ChaCha8Rng) -> u32 {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&i, &j| logits[j].total_cmp(&logits[i]));
    if s.temperature == 0.0 {
        return order[0] as u32;
    }
    let keep = if s.top_k > 0 { s.top_k.min(order.len()) } else { order.len() };
    let max = logits[order[0]] as f64;
    let mut probs: Vec<f64> = order[..keep].iter().map(|&i| ((logits[i] as f64 - max) / s.temperature).exp()).collect();
    let total: f64 = probs.iter().sum();
    probs.iter_mut().for_each(|p| *p /= total);
    let mut cum = 0.0;
    let nucleus = probs.iter().position(|p| {
        cum += p;
        cum >= s.top_p
    });
    let n = nucleus.map_or(probs.len(), |i| i + 1);
    let total: f64 = probs[..n].iter().sum();
    let mut u = rng.random_range(0.0..total);
    for (r, p) in probs[..n].iter().enumerate() {
        if u < *p {
            return order[r] as u32;
        }
        u -= p;
    }
    order[n - 1] as u32
}
