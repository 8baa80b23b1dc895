//! `wavessm bench data`: is the loader fast enough? Measures how many samples per second the
//! loader turns into training batches (from prepared shards, on the training device) and how
//! many the configured model consumes in a training step, and prints both and their ratio
//! (the goal is a loader at least 10× faster than the model).

use std::time::Instant;

use anyhow::{Result, bail};
use burn::optim::GradientsParams;

use super::bench::BenchArgs;
use crate::config::ConfigRequest;
use crate::data::prepared::Source;
use crate::data::{BatchIter, DataSpec, PreparedMode};
use crate::train::fit::outputs;
use crate::train::optim::Optim;
use crate::train::{Setup, device_for};

/// Batch building is timed over whole epochs until at least this many seconds have passed
/// (small splits take milliseconds per epoch, too short to time once).
const LOADER_SECONDS: f64 = 1.0;

/// Runs the data bench and prints `data loader_samples_per_s=… model_samples_per_s=… ratio=…`.
pub fn run(a: &BenchArgs) -> Result<()> {
    let c = &a.config;
    let cfg = ConfigRequest {
        config_dirs: c.config_dir.clone(),
        files: c.config.clone(),
        tokens: c.overrides.clone(),
        ..Default::default()
    }
    .resolve()?;
    let mut spec = DataSpec::from_named(&cfg.data, "data")?;
    // The point is the prepared path; `data.prepared=never` still measures the raw one.
    if spec.prepared == PreparedMode::Auto {
        spec.prepared = PreparedMode::Always;
    }
    let t_open = Instant::now();
    let (data, source) = spec.load()?;
    let open_s = t_open.elapsed().as_secs_f64();
    eprintln!("data: {} from {source} (opened in {open_s:.2}s)", cfg.data.name);
    let device = device_for(&cfg.trainer)?.autodiff();
    let Setup { data, task, d_output: k, model, .. } = Setup::with_data(&cfg, data, device.clone())?;
    let train = &data.train;
    let bs = cfg.loader.batch_size;

    // Loader: epochs in training order, batches built as `fit` builds them.
    let t0 = Instant::now();
    let mut loaded = 0usize;
    for epoch in 0.. {
        for idx in BatchIter::new(train.len(), bs, cfg.loader.shuffle, cfg.loader.drop_last, cfg.seed, epoch) {
            let batch = train.batch(&idx, &device);
            std::hint::black_box(&batch);
            loaded += idx.len();
        }
        if t0.elapsed().as_secs_f64() >= LOADER_SECONDS {
            break;
        }
    }
    let loader_sps = loaded as f64 / t0.elapsed().as_secs_f64().max(1e-9);

    // Model: full training steps (forward, loss, backward, AdamW) on the first batches.
    if model.loss_manager().is_some() {
        bail!("`bench data` times the task's loss; this chain has its own (model.options.loss)");
    }
    let mut model = Some(model);
    let mut optim = Optim::new(&cfg)?;
    let batches: Vec<Vec<usize>> = BatchIter::new(train.len(), bs, false, false, 0, 0).collect();
    if batches.is_empty() {
        bail!("the training split is empty");
    }
    let mut times = Vec::new();
    for step in 0..=a.steps.max(1) {
        let idx = &batches[step % batches.len()];
        let t = Instant::now();
        let batch = train.batch(idx, &device);
        let m = model.take().expect("model");
        let loss = task.loss(outputs(&m, &batch, k), &batch);
        let grads = GradientsParams::from_grads(loss.backward(), &m);
        model = Some(optim.step(step, 1000, m, grads));
        // The first step warms up (allocations, FFT plans) and is not counted.
        if step > 0 {
            times.push((idx.len(), t.elapsed().as_secs_f64()));
        }
    }
    if a.verbose {
        eprintln!("step times (s): {:.3?}", times.iter().map(|t| t.1).collect::<Vec<_>>());
    }
    let model_sps = times.iter().map(|t| t.0).sum::<usize>() as f64 / times.iter().map(|t| t.1).sum::<f64>();
    let how = match &source {
        Source::Prepared(_, enc) => format!("prepared/{enc}"),
        Source::Raw(_) => "raw".into(),
    };
    println!(
        "data loader_samples_per_s={loader_sps:.0} model_samples_per_s={model_sps:.1} ratio={:.0}x \
         source={how} open_s={open_s:.2} batch_size={bs} seq_len={} channels={}",
        loader_sps / model_sps,
        train.seq_len,
        train.channels
    );
    Ok(())
}
