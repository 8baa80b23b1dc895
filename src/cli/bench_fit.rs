//! `wavessm bench fit`: a user's time is the whole fit, not one layer. Trains one epoch of a small
//! sMNIST S4D setup (2×64, 512 training images, B=64) and evaluates the test images, printing
//! samples/s for each; `bench/torch_fit_bench.py` runs the same fit in PyTorch.

use std::time::Instant;

use anyhow::{Context, Result};
use burn::module::Module;
use burn::optim::GradientsParams;

use super::bench::BenchArgs;
use crate::config::ConfigRequest;
use crate::data::BatchIter;
use crate::data::augment::train_batch;
use crate::experiment::ExperimentConfig;
use crate::train::fit::{evaluate, outputs};
use crate::train::optim::Optim;
use crate::train::{Setup, device_for};

/// The fixed fit; command-line overrides come after these and win.
const FIT: &[&str] = &[
    "experiment=smnist/s4d",
    "model.d_model=64",
    "model.n_layers=2",
    "data.limit_train=569", // 512 training images after the 10% validation split
    "data.limit_test=512",
];

/// Sample counts, wall and CPU time of a training epoch and an evaluation pass.
pub struct FitTimes {
    /// Training samples and wall seconds (forward, loss, backward, optimizer update).
    pub train: (usize, f64),
    /// Evaluation samples and wall seconds (eval mode, no autodiff).
    pub eval: (usize, f64),
    /// CPU seconds of this process (all threads) while training and while evaluating: on a
    /// shared machine less noisy than wall time, and CPU/wall says how many cores were busy.
    pub cpu: (f64, f64),
}

impl FitTimes {
    /// Samples per second of (training, evaluation).
    pub fn rates(&self) -> (f64, f64) {
        let r = |(n, s): (usize, f64)| n as f64 / s.max(1e-9);
        (r(self.train), r(self.eval))
    }
}

/// Trains `steps` batches (all of one epoch when `None`) of `cfg`'s data as `fit` does, then
/// evaluates the test split as `fit` does after training.
pub fn train_and_eval(cfg: &ExperimentConfig, steps: Option<usize>) -> Result<FitTimes> {
    let device = device_for(&cfg.trainer)?.autodiff();
    let Setup { data, task, d_output: k, mut model, device, augment } = Setup::new(cfg, device)?;
    if model.loss_manager().is_some() {
        anyhow::bail!("the fit bench times the task's loss; this chain has its own (model.options.loss)");
    }
    let mut optim = Optim::new(cfg)?;
    let l = &cfg.loader;
    let batches: Vec<Vec<usize>> =
        BatchIter::new(data.train.len(), l.batch_size, l.shuffle, l.drop_last, cfg.seed, 0).collect();
    let n_steps = steps.unwrap_or(batches.len()).min(batches.len());
    let (t0, c0) = (Instant::now(), cpu_s());
    let mut seen = 0;
    for (bi, idx) in batches.iter().take(n_steps).enumerate() {
        let batch = train_batch(&data.train, idx, augment.as_ref(), (cfg.seed, 0, bi), &device);
        let out = outputs(&model, &batch, k);
        let loss = task.loss(out.clone(), &batch);
        // `fit` reads the loss and the outputs every step (metrics); so does the bench.
        std::hint::black_box((loss.clone().into_scalar::<f64>(), out.detach().try_into_vec_as::<f32>().ok()));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(bi, n_steps, model, grads);
        seen += idx.len();
    }
    let (train, c1) = ((seen, t0.elapsed().as_secs_f64()), cpu_s());
    let eval_bs = l.eval_batch_size.unwrap_or(l.batch_size);
    let t1 = Instant::now();
    evaluate(&model.valid(), &data.test, &task, k, eval_bs, None, &device.inner())
        .context("the test split is empty")?;
    let eval = (data.test.len(), t1.elapsed().as_secs_f64());
    Ok(FitTimes { train, eval, cpu: (c1 - c0, cpu_s() - c1) })
}

/// Runs the fixed fit and prints `fit train_samples_per_s=… eval_samples_per_s=… total_s=…`.
pub fn run(a: &BenchArgs) -> Result<()> {
    let c = &a.config;
    let mut tokens: Vec<String> = FIT.iter().map(|s| s.to_string()).collect();
    tokens.extend(c.overrides.iter().cloned());
    let cfg =
        ConfigRequest { config_dirs: c.config_dir.clone(), files: c.config.clone(), tokens, ..Default::default() }
            .resolve()?;
    let t = train_and_eval(&cfg, None)?;
    let (tr, ev) = t.rates();
    println!(
        "fit train_samples_per_s={tr:.1} eval_samples_per_s={ev:.1} total_s={:.1} train={} eval={} \
         train_cpu_s={:.1} eval_cpu_s={:.1} train_cores={:.2} eval_cores={:.2} rss_mb={:.0}",
        t.train.1 + t.eval.1,
        t.train.0,
        t.eval.0,
        t.cpu.0,
        t.cpu.1,
        t.cpu.0 / t.train.1.max(1e-9),
        t.cpu.1 / t.eval.1.max(1e-9),
        peak_rss_mb()
    );
    Ok(())
}

/// Peak resident memory of this process in MB (`VmHWM`; 0 where `/proc` has none).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system, all threads) this process has used.
pub fn cpu_s() -> f64 {
    // SAFETY: `getrusage` only writes the zeroed struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
