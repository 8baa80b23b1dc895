//! `wavessm bench <case>`: the cases and shapes of `shared/bench/torch_ssm_bench.py`, printing
//! `<case> median_ms=<x> tokens_per_s=<y>` so the two can be compared side by side.

use std::time::Instant;

use anyhow::Result;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor};
use clap::{Args, ValueEnum};

use crate::config::ConfigRequest;
use crate::model::rnn::{GruConfig, LstmConfig};
use crate::model::ssm::diagonal::Disc;
use crate::model::ssm::hyper::SsmHyper;
use crate::model::ssm::recurrence::DiagonalRecurrence;
use crate::model::ssm::s4::S4Config;
use crate::model::ssm::s4d::S4dConfig;
use crate::model::{LayerOptions, SeqLayer, SequenceModel};
use crate::task::classification::ClassificationConfig;
use crate::train::optim::Optim;

/// Benchmark cases.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Case {
    /// One S4D layer, forward + backward, B=16 H=128 N=64 L=1024.
    S4d,
    /// One S4 (DPLR) layer, forward + backward, the shapes of `s4d`.
    S4,
    /// One Mamba-1 block, forward + backward, B=8 d_model=128 N=16 expand 2 L=1024.
    Mamba,
    /// Mamba-2's chunked SSD scan, forward + backward, B=8 L=1024 heads=8 head_dim=32 N=16 chunk=64.
    Ssd,
    /// 4-layer S4D classifier (d_model 128, LayerNorm, mean pool) on L=784, B=32, with AdamW.
    Model,
    /// S4D recurrent inference, one token at a time, B=1 H=128 N=64, 1024 tokens.
    Step,
    /// One LSTM layer, forward + backward, B=16 H=128 L=1024.
    Lstm,
    /// One GRU layer, forward + backward, B=16 H=128 L=1024.
    Gru,
    /// One causal pre-norm Transformer layer (4 heads, ff 512, GELU, no positions), forward +
    /// backward, B=16 H=128 L=1024.
    Transformer,
    /// Autoregressive generation, tokens/s, per layer kind with a step mode: a 4-layer d=256
    /// token model, batch 1, 64-token prompt, 256 new tokens.
    Generate,
    /// Loader samples/s (prepared shards) against the configured model's training samples/s;
    /// takes config overrides (`wavessm bench data data=sc10 data.path=…`).
    Data,
    /// A small fixed fit (sMNIST, S4D 2×64, one epoch of 512 images, then 512 test images):
    /// training and evaluation samples/s; takes config overrides.
    Fit,
    /// Time growth with sequence length: the adding problem's S4D (2×64), B=16, 4 steps plus
    /// evaluation at L = 1k, 4k, 16k, 64k, … up to `--max-len`.
    Length,
    /// Streaming GW inference (`wavessm infer`), seconds of strain per second: ResNet1D on two
    /// detectors at 2048 Hz, 1 s windows every 0.125 s, 64 s PSDs.
    Infer,
}

/// Options of `bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which case.
    pub case: Case,
    /// Timed repetitions (after one warm-up).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Also print every repetition's time (to stderr).
    #[arg(long)]
    pub verbose: bool,
    /// Device of the layer cases, as `trainer.device` (cpu, cuda, wgpu, auto); `step`,
    /// `generate` and `data` run on the CPU.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Shortest sequence of `bench length` (the sweep goes up from it in steps of 4×).
    #[arg(long, default_value_t = 1 << 10, value_parser = clap::value_parser!(u64).range(16..=1 << 24))]
    pub min_len: u64,
    /// Longest sequence of `bench length` (a power of 4 times `--min-len` ends the sweep exactly).
    #[arg(long, default_value_t = 1 << 16, value_parser = clap::value_parser!(u64).range(16..=1 << 24))]
    pub max_len: u64,
    /// `bench length`: before timing each length, run one untimed training step and evaluation
    /// there, so the timed steps find their memory already faulted in (the steady state of a
    /// long fit; without it, each length also pays the first touch of its new memory).
    #[arg(long)]
    pub warmup: bool,
    /// Batch size of `bench length` (lower it for the longest sequences).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,
    /// Run the generic tensor-op path instead of the kernels (fused on the CPU, CubeCL on wgpu),
    /// to compare the two.
    #[arg(long)]
    pub generic_ops: bool,
    /// Config and overrides (`bench data`, `fit` and `length` only).
    #[command(flatten)]
    pub config: super::ConfigArgs,
}

/// Median wall time of `steps` runs of `f` after one warm-up, in ms; each run waits for the
/// device to finish (GPU backends queue their work).
pub(super) fn median_ms(steps: usize, verbose: bool, device: &Device, mut f: impl FnMut()) -> f64 {
    let mut run = || {
        f();
        device.sync().expect("the device failed to run the benchmark");
    };
    run();
    let mut ts: Vec<f64> = (0..steps.max(1))
        .map(|_| {
            let t0 = Instant::now();
            run();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    if verbose {
        eprintln!("times (ms): {ts:.1?}");
    }
    ts.sort_by(f64::total_cmp);
    ts[ts.len() / 2]
}

/// Runs one case and prints its line.
pub fn run(a: &BenchArgs) -> Result<()> {
    if a.generic_ops { crate::ops::with_generic_ops(|| run_case(a)) } else { run_case(a) }
}

/// [`run`] on the path `--generic-ops` chose.
fn run_case(a: &BenchArgs) -> Result<()> {
    let c = &a.config;
    if matches!(a.case, Case::Data) {
        return super::bench_data::run(a);
    }
    if matches!(a.case, Case::Generate) {
        return super::bench_generate::run(a);
    }
    if matches!(a.case, Case::Infer) {
        return super::bench_infer::run(a);
    }
    if matches!(a.case, Case::Fit) {
        return super::bench_fit::run(a);
    }
    if matches!(a.case, Case::Length) {
        return super::bench_length::run(a);
    }
    if !(c.overrides.is_empty() && c.config.is_empty() && c.config_dir.is_empty()) {
        anyhow::bail!(
            "config overrides apply to `bench data`, `fit` and `length` only; the other cases have fixed shapes"
        );
    }
    let kind: crate::train::DeviceKind = serde_yaml::from_str(&a.device)
        .map_err(|_| anyhow::anyhow!("--device: expected cpu, cuda, wgpu or auto, got `{}`", a.device))?;
    let device = crate::train::device::resolve(kind)?.autodiff();
    device.seed(0);
    let (name, ms, tokens) = match a.case {
        Case::S4d => {
            let (b, h, l) = (16, 128, 1024);
            // S4D-Lin, ZOH, GELU, N=64: the defaults, as the PyTorch script.
            let cfg = S4dConfig { lr: SsmHyper::All(None), ..S4dConfig::default() };
            let layer = cfg.init(h, &device);
            let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = layer.forward(u.clone()).square().mean().backward();
            });
            ("s4d", ms, b * l)
        }
        Case::S4 => {
            let (b, h, l) = (16, 128, 1024);
            let cfg: S4Config = serde_yaml::from_str("{mode: nplr, d_state: 64, l_max: 1024}")?;
            let layer = cfg.init(h, &device);
            let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = layer.forward(u.clone()).square().mean().backward();
            });
            ("s4", ms, b * l)
        }
        Case::Mamba => {
            let (b, h, l) = (8, 128, 1024);
            let layer = crate::model::ssm::MambaConfig::default().init(h, &device);
            let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = layer.forward(u.clone()).square().mean().backward();
            });
            ("mamba", ms, b * l)
        }
        Case::Ssd => {
            let (b, l, nh, p, n) = (8, 1024, 8, 32, 16);
            let normal = |s: [usize; 4]| Tensor::<4>::random(s, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let args = crate::model::ssm::ssd::SsdArgs {
                x: normal([b, l, nh, p]),
                a: (-Tensor::<3>::random([b, l, nh], Distribution::Uniform(0.0, 0.1), &device)).require_grad(),
                b: normal([b, l, nh, n]),
                c: normal([b, l, nh, n]),
                h0: None,
                chunk: 64,
            };
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = crate::model::ssm::ssd::ssd(args.clone()).0.square().mean().backward();
            });
            ("ssd", ms, b * l)
        }
        Case::Model => {
            let (b, l) = (32, 784);
            let tokens = [
                "model.d_model=128",
                "model.n_layers=4",
                "model.norm=layer",
                "model.prenorm=false",
                "model.dropout=0.0",
                "model.pool=mean",
                "optimizer.lr=0.001",
                "optimizer.weight_decay=0.01",
            ];
            let cfg = ConfigRequest { tokens: tokens.iter().map(|s| s.to_string()).collect(), ..Default::default() }
                .resolve()?;
            let mut model = Some(SequenceModel::new(&cfg.model, 1, 10, &device)?);
            let mut optim = Optim::new(&cfg)?;
            let task = ClassificationConfig::default();
            let x = Tensor::<3>::random([b, l, 1], Distribution::Normal(0.0, 1.0), &device);
            let y = Tensor::<1, Int>::random([b], Distribution::Uniform(0.0, 10.0), &device);
            let mut step = 0;
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let m = model.take().expect("model");
                let out = m.forward(x.clone(), None).reshape([b, 10]);
                let grads = GradientsParams::from_grads(task.loss(out, y.clone()).backward(), &m);
                model = Some(optim.step(step, 1000, m, grads));
                step += 1;
            });
            ("model", ms, b * l)
        }
        Case::Lstm | Case::Gru => {
            let (b, h, l) = (16, 128, 1024);
            let (name, layer) = match a.case {
                Case::Lstm => ("lstm", LstmConfig::default().init(h, &device)),
                _ => ("gru", GruConfig::default().init(h, &device)),
            };
            let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = layer.forward(u.clone()).square().mean().backward();
            });
            (name, ms, b * l)
        }
        Case::Transformer => {
            let (b, h, l) = (16, 128, 1024);
            let cfg: crate::model::attention::TransformerConfig =
                serde_yaml::from_str("{n_heads: 4, ff: 512, dropout: 0.0, activation: gelu, pos: none}")?;
            let layer = cfg.init(h, &device);
            let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let _ = layer.forward(u.clone()).square().mean().backward();
            });
            ("transformer", ms, b * l)
        }
        Case::Data | Case::Generate | Case::Infer | Case::Fit | Case::Length => unreachable!("handled above"),
        Case::Step => {
            let (h, n2, l) = (128, 32, 1024);
            let rng_vals = |scale: f64, shift: f64| -> Vec<f64> {
                let t = Tensor::<1>::random([h * n2], Distribution::Uniform(0.0, 1.0), &Device::flex());
                t.try_into_vec_as::<f64>().expect("f64").into_iter().map(|v| v * scale + shift).collect()
            };
            let a_re = rng_vals(-0.5, -0.01);
            let a_im = rng_vals(100.0, 0.0);
            let (b_re, b_im, c_re, c_im) =
                (rng_vals(2.0, -1.0), rng_vals(2.0, -1.0), rng_vals(2.0, -1.0), rng_vals(2.0, -1.0));
            let dt = vec![0.01; h];
            let rec = DiagonalRecurrence::new(Disc::Zoh, h, n2, &dt, (&a_re, &a_im), (&b_re, &b_im), (&c_re, &c_im))
                .expect("zoh steps");
            let d: Vec<f64> = (0..h).map(|i| ((i % 7) as f64 - 3.0) * 0.1).collect();
            let ms = median_ms(a.steps, a.verbose, &device, || {
                let mut state = rec.zero_state();
                let mut u: Vec<f64> = (0..h).map(|i| (i as f64).sin()).collect();
                let mut y = vec![0.0; h];
                for _ in 0..l {
                    rec.step(&mut state, &u, &mut y);
                    for i in 0..h {
                        u[i] = y[i] + d[i] * u[i];
                    }
                }
                std::hint::black_box(&u);
            });
            ("step", ms, l)
        }
    };
    println!("{name} median_ms={ms:.1} tokens_per_s={:.0}", tokens as f64 / ms * 1e3);
    Ok(())
}
