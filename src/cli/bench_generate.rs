//! `wavessm bench generate`: tokens/s of autoregressive generation with a 4-layer d=256 token
//! model (vocabulary 256, batch 1; a 64-token prompt in conv mode, then 256 steps, greedy), for
//! each registered layer kind that has a step mode.

use anyhow::Result;
use burn::tensor::{Device, Tensor, TensorData};

use super::bench::BenchArgs;
use crate::config::ConfigRequest;
use crate::model::{LayerConfig, SequenceModel};

/// Prompt and generated tokens per timed repetition.
const PROMPT: usize = 64;
const NEW: usize = 256;

/// Times every layer kind with a step mode; prints one line each.
pub fn run(a: &BenchArgs) -> Result<()> {
    let device = Device::flex();
    for &layer in LayerConfig::NAMES {
        let tokens: Vec<String> = [
            format!("model.layer={layer}"),
            "model.d_model=256".into(),
            "model.n_layers=4".into(),
            "model.pool=none".into(),
            "model.prenorm=true".into(),
        ]
        .into();
        let Ok(cfg) = (ConfigRequest { tokens, ..Default::default() }).resolve() else { continue };
        let mut model_cfg = cfg.model.clone();
        LayerConfig::fill_l_max(&mut model_cfg.layer, PROMPT + NEW)?;
        device.seed(0);
        let Ok(model) = SequenceModel::for_tokens(&model_cfg, 256, 256, &device) else { continue };
        if model.stepper(1, PROMPT + NEW).is_err() {
            continue; // no step mode (a two-sided or liquid kernel)
        }
        let prompt: Vec<f32> = (0..PROMPT).map(|i| (1 + i % 255) as f32).collect();
        let x = Tensor::<3>::from_data(TensorData::new(prompt, [1, PROMPT, 1]), &device);
        let ms = super::bench::median_ms(a.steps, a.verbose, &device, || {
            let (mut logits, mut stepper) = model.prefill(x.clone(), PROMPT + NEW).expect("prefill");
            for _ in 0..NEW {
                let host: Vec<f32> = logits.try_into_vec_as::<f32>().expect("f32");
                let next = (0..host.len()).max_by(|&i, &j| host[i].total_cmp(&host[j])).unwrap_or(0);
                let t = Tensor::<2>::from_data(TensorData::new(vec![next as f32], [1, 1]), &device);
                logits = model.step(&mut stepper, t).expect("step");
            }
        });
        println!("generate-{layer} median_ms={ms:.1} tokens_per_s={:.0}", NEW as f64 / ms * 1e3);
    }
    Ok(())
}
