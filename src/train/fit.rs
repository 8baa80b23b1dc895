//! The training loop: seeded, resumable, with gradient accumulation, global-norm clipping,
//! per-group schedules, validation every epoch, and atomic `last`/`best` checkpoints.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use super::checkpoint::{Checkpoint, TrainerState};
use super::optim::{Optim, clip_global_norm};
use super::progress::Progress;
use super::run::{MetricsCsv, RunDir};
use super::shared::SharedKernels;
use super::{DeviceKind, Mode};
use crate::config::ConfigError;
use crate::data::{BatchIter, DataModule, DataSpec, SeqData};
use crate::experiment::ExperimentConfig;
use crate::io::write_atomic;
use crate::model::PoolKind;
use crate::model::{LayerConfig, SequenceModel};
use crate::task::TaskConfig;

/// The device for a config: burn's `flex` CPU backend, or CUDA when built with `cuda`.
pub fn device_for(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        #[cfg(feature = "cuda")]
        DeviceKind::Cuda => Ok(Device::cuda(0)),
        #[cfg(not(feature = "cuda"))]
        DeviceKind::Cuda => bail!("`trainer.device: cuda` needs a build with `--features cuda`"),
    }
}

/// Data, task and model built from a config: what every command starts from.
pub struct Setup {
    /// The splits.
    pub data: DataModule,
    /// The task.
    pub task: TaskConfig,
    /// Decoder outputs K.
    pub d_output: usize,
    /// The freshly initialized model.
    pub model: SequenceModel,
    /// The device (autodiff for training, plain for evaluation).
    pub device: Device,
}

impl Setup {
    /// Loads data (prepared shards or raw files, as `data.prepared` says; printed) and
    /// initializes the model from `cfg.seed` on `device`.
    pub fn new(cfg: &ExperimentConfig, device: Device) -> Result<Self> {
        let (data, source) = DataSpec::from_named(&cfg.data, "data")?.load()?;
        eprintln!("data: {} from {source}", cfg.data.name);
        Self::with_data(cfg, data, device)
    }

    /// Initializes task and model for already loaded `data`.
    pub fn with_data(cfg: &ExperimentConfig, data: DataModule, device: Device) -> Result<Self> {
        let task = TaskConfig::from_named(&cfg.task, "task")?;
        let d_output = task.d_output(data.target_kind())?;
        if task.per_step() != (cfg.model.pool == PoolKind::None) {
            let msg = if task.per_step() {
                format!("task `{}` predicts every step; set `model.pool=none`", task.name())
            } else {
                format!("task `{}` predicts one target per sequence; use `mean` or `last`", task.name())
            };
            return Err(ConfigError::Key { path: "model.pool".into(), msg }.into());
        }
        let names: Vec<String> = task.metrics().finish().keys().map(|k| format!("val/{k}")).collect();
        if !names.contains(&cfg.trainer.monitor) {
            return Err(ConfigError::Key {
                path: "trainer.monitor".into(),
                msg: format!(
                    "no metric `{}`{}; available: {}",
                    cfg.trainer.monitor,
                    crate::config::suggest(&cfg.trainer.monitor, &names),
                    names.join(", ")
                ),
            }
            .into());
        }
        device.seed(cfg.seed);
        let mut model_cfg = cfg.model.clone();
        LayerConfig::fill_l_max(&mut model_cfg.layer, data.train.seq_len)?;
        let model = match data.vocab() {
            Some(v) if data.train.is_pairs() => SequenceModel::for_token_pairs(&model_cfg, v, d_output, &device)?,
            Some(v) => SequenceModel::for_tokens(&model_cfg, v, d_output, &device)?,
            None => SequenceModel::new(&model_cfg, data.d_input(), d_output, &device)?,
        };
        Ok(Self { data, task, d_output, model, device })
    }
}

/// Restores model parameters from burnpack bytes.
pub fn load_model(model: SequenceModel, bytes: Vec<u8>, origin: &Path) -> Result<SequenceModel> {
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{}: model section: {e:?}", origin.display()))?;
    model.try_load_record(rec).map_err(|e| {
        anyhow::anyhow!("{}: parameters do not fit this model (was the config changed?): {e:?}", origin.display())
    })
}

/// Model outputs as rows [R, K]: one per sequence (pooled) or one per step (`pool: none`).
pub fn outputs(model: &SequenceModel, batch: &crate::data::Batch, k: usize) -> Tensor<2> {
    let out = model.forward(batch.x.clone(), batch.lengths.as_deref()); // [B, L', K]
    let [b, l, _] = out.dims();
    out.reshape([b * l, k])
}

/// Evaluates `model` (in eval mode) on a split; metrics without prefix.
pub fn evaluate(
    model: &SequenceModel,
    split: &SeqData,
    task: &TaskConfig,
    k: usize,
    batch_size: usize,
    limit: Option<usize>,
    device: &Device,
) -> BTreeMap<String, f64> {
    let mut m = task.metrics();
    for idx in BatchIter::sequential(split.len(), batch_size).take(limit.unwrap_or(usize::MAX)) {
        let batch = split.batch(&idx, device);
        let out = outputs(model, &batch, k);
        let loss = task.loss(out.clone(), &batch.y).into_scalar::<f64>();
        let host: Vec<f32> = out.try_into_vec_as::<f32>().expect("f32 outputs");
        m.update(&host, k, &batch.y, loss);
    }
    m.finish()
}

/// Prefixes metric names with `split/`.
pub fn prefixed(split: &str, m: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    m.iter().map(|(k, v)| (format!("{split}/{k}"), *v)).collect()
}

/// One line of `k=v` pairs.
pub fn format_metrics(m: &BTreeMap<String, f64>) -> String {
    m.iter().map(|(k, v)| format!("{k}={v:.4}")).collect::<Vec<_>>().join(" ")
}

/// How to run `fit` beyond the config.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// Continue the run in this folder from its `last.bpk`.
    pub resume: Option<PathBuf>,
    /// Stop (as if interrupted) after this many epochs in total have completed.
    pub stop_after_epochs: Option<usize>,
    /// Print nothing but errors.
    pub quiet: bool,
}

/// What a finished (or stopped) fit reports.
#[derive(Debug, Clone)]
pub struct FitSummary {
    /// The run folder.
    pub run: PathBuf,
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Best monitored value and its epoch.
    pub best: Option<(f64, usize)>,
    /// Training metrics of each completed epoch in this session (`train/loss`, …).
    pub train_history: Vec<BTreeMap<String, f64>>,
    /// Validation metrics of the last epoch.
    pub val: BTreeMap<String, f64>,
    /// Test metrics of the best checkpoint (when tested).
    pub test: Option<BTreeMap<String, f64>>,
}

/// Seed of the dropout masks of a micro-batch: a pure function, so resumed runs match.
fn step_seed(seed: u64, step: usize, micro: usize) -> u64 {
    let mut z = seed ^ ((step as u64) << 20) ^ micro as u64 ^ 0x5851_F42D_4C95_7F2D;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Trains as the config says; resumes from `opts.resume` when given.
pub fn fit(cfg: &ExperimentConfig, opts: &FitOptions) -> Result<FitSummary> {
    let started = Instant::now();
    let device = device_for(cfg.trainer.device)?.autodiff();
    let Setup { data, task, d_output: k, mut model, device } = Setup::new(cfg, device)?;
    let eval_device = device.clone().inner();
    let mut optim = Optim::new(cfg)?;
    let t = &cfg.trainer;
    let config_yaml = cfg.to_yaml();

    let (run, mut state) = match &opts.resume {
        Some(dir) => {
            let run = RunDir::open(dir)?;
            let path = run.checkpoint("last");
            let ck = Checkpoint::load(&path)?;
            model = load_model(model, ck.model, &path)?;
            optim.inner = optim
                .inner
                .from_bytes(Bytes::from_bytes_vec(ck.optimizer))
                .map_err(|e| anyhow::anyhow!("{}: optimizer section: {e:?}", path.display()))?;
            if ck.state.schedules.len() != optim.states.len() {
                bail!(
                    "{}: {} schedule states, this config has {}",
                    path.display(),
                    ck.state.schedules.len(),
                    optim.states.len()
                );
            }
            optim.states = ck.state.schedules.clone();
            write_atomic(&run.config_path(), |f| f.write_all(config_yaml.as_bytes()))?;
            (run, TrainerState { config: config_yaml.clone(), ..ck.state })
        }
        None => {
            let run = RunDir::create(&cfg.logger.save_dir, cfg.logger.name.as_deref().unwrap_or(&cfg.name))?;
            write_atomic(&run.config_path(), |f| f.write_all(config_yaml.as_bytes()))?;
            let state = TrainerState {
                epoch: 0,
                step: 0,
                best: None,
                schedules: optim.states.clone(),
                metrics: BTreeMap::new(),
                config: config_yaml.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
            };
            (run, state)
        }
    };
    let mut csv = MetricsCsv::open(&run.metrics_path(), opts.resume.as_ref().map(|_| state.step))?;
    if !opts.quiet {
        println!("run: {}", run.root.display());
        println!(
            "model: {} blocks of {} (d_model={}), {} parameters; data: {} train / {} val / {} test sequences of length {}",
            cfg.model.n_layers,
            cfg.model.layer.name,
            cfg.model.d_model,
            model.num_params(),
            data.train.len(),
            data.val.len(),
            data.test.len(),
            data.train.seq_len
        );
    }

    let bs = cfg.loader.batch_size;
    let eval_bs = cfg.loader.eval_batch_size.unwrap_or(bs);
    let accum = t.accumulate_grad_batches;
    let full = BatchIter::new(data.train.len(), bs, false, cfg.loader.drop_last, 0, 0).num_batches();
    let per_epoch = full.min(t.limit_train_batches.unwrap_or(usize::MAX));
    if per_epoch == 0 {
        bail!(
            "the training split yields no batch (n={}, batch_size={bs}, drop_last={})",
            data.train.len(),
            cfg.loader.drop_last
        );
    }
    let steps_per_epoch = per_epoch.div_ceil(accum);
    let total = t.max_steps.unwrap_or(usize::MAX).min(t.max_epochs * steps_per_epoch);
    let mut history = Vec::new();
    let mut val = state.metrics.clone();

    while state.epoch < t.max_epochs && state.step < total {
        if opts.stop_after_epochs.is_some_and(|s| state.epoch >= s) {
            break;
        }
        let epoch = state.epoch;
        let t0 = Instant::now();
        let batches: Vec<Vec<usize>> =
            BatchIter::new(data.train.len(), bs, cfg.loader.shuffle, cfg.loader.drop_last, cfg.seed, epoch)
                .take(per_epoch)
                .collect();
        let progress = Progress::epoch(t.progress_bar, epoch, t.max_epochs, batches.len());
        let mut train_m = task.metrics();
        let mut acc = GradientsAccumulator::<SequenceModel>::new();
        let mut shared: Option<SharedKernels> = None;
        let mut in_group = 0;
        let mut samples = 0usize;
        for (bi, idx) in batches.iter().enumerate() {
            let group_len = accum.min(batches.len() - (bi - bi % accum));
            device.seed(step_seed(cfg.seed, state.step, bi % accum));
            let batch = data.train.batch(idx, &device);
            if group_len > 1 && shared.is_none() {
                shared = Some(SharedKernels::new(&model, batch.x.dims()[1]));
            }
            let out = outputs(shared.as_ref().map_or(&model, |s| s.model()), &batch, k);
            let loss = task.loss(out.clone(), &batch.y);
            let loss_v = loss.clone().into_scalar::<f64>();
            if !loss_v.is_finite() {
                bail!(
                    "loss became {loss_v} at step {} (epoch {epoch}); lower the learning rate or enable `trainer.gradient_clip_val`",
                    state.step
                );
            }
            let host: Vec<f32> = out.detach().try_into_vec_as::<f32>().expect("f32 outputs");
            train_m.update(&host, k, &batch.y, loss_v);
            samples += idx.len();
            let loss = loss / group_len as f64;
            let grads = match shared.as_mut() {
                Some(s) => s.backward(loss),
                None => GradientsParams::from_grads(loss.backward(), &model),
            };
            acc.accumulate(&model, grads);
            in_group += 1;
            if in_group == group_len {
                if let Some(s) = shared.take() {
                    acc.accumulate(&model, s.finish(&model));
                }
                let mut g = acc.grads();
                let norm = clip_global_norm(&model, &mut g, t.gradient_clip_val);
                model = optim.step(state.step, total, model, g);
                state.step += 1;
                in_group = 0;
                if state.step % t.log_every_n_steps.max(1) == 0 {
                    csv.row(state.step, epoch, "train", "loss_step", loss_v)?;
                    csv.row(state.step, epoch, "train", "grad_norm", norm)?;
                }
                if state.step >= total {
                    break;
                }
            }
            let rate = samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            progress.tick(|| {
                let m = train_m.finish();
                let metric =
                    m.iter().find(|(k, _)| *k != "loss").map(|(k, v)| format!(" {k}={v:.4}")).unwrap_or_default();
                format!("loss={:.4}{metric} {rate:.0} samples/s", m["loss"])
            });
        }
        progress.finish();
        let train_time = t0.elapsed().as_secs_f64();
        let train = prefixed("train", &train_m.finish());
        val = prefixed(
            "val",
            &evaluate(&model.valid(), &data.val, &task, k, eval_bs, t.limit_eval_batches, &eval_device),
        );
        optim.on_validation(&val).map_err(anyhow::Error::msg)?;
        state.epoch = epoch + 1;
        let monitored = val[&t.monitor];
        let improved = match (state.best, t.mode) {
            (None, _) => true,
            (Some((b, _)), Mode::Max) => monitored > b,
            (Some((b, _)), Mode::Min) => monitored < b,
        };
        if improved {
            state.best = Some((monitored, epoch));
        }
        let lrs = optim.lrs(state.step.saturating_sub(1), total);
        csv.rows(state.step, epoch, "train", &train)?;
        csv.rows(state.step, epoch, "val", &val)?;
        for (g, lr) in optim.groups.iter().zip(&lrs) {
            csv.row(state.step, epoch, "train", &format!("lr/{}", g.name), *lr)?;
        }
        state.schedules = optim.states.clone();
        state.metrics = val.clone();
        let ck = Checkpoint {
            state: state.clone(),
            model: model
                .clone()
                .into_record()
                .into_bytes()
                .map_err(|e| anyhow::anyhow!("serializing the model: {e:?}"))?
                .to_vec(),
            optimizer: optim
                .inner
                .into_bytes()
                .map_err(|e| anyhow::anyhow!("serializing the optimizer: {e:?}"))?
                .to_vec(),
        };
        ck.save(&run.checkpoint("last"))?;
        if improved {
            ck.save(&run.checkpoint("best"))?;
        }
        if !opts.quiet {
            println!(
                "epoch {}/{} step {} {} {} lr={:.2e} {:.0} samples/s {:.1}s{}",
                epoch + 1,
                t.max_epochs,
                state.step,
                format_metrics(&train),
                format_metrics(&val),
                lrs[0],
                samples as f64 / train_time.max(1e-9),
                t0.elapsed().as_secs_f64(),
                if improved { " *" } else { "" }
            );
        }
        history.push(train);
    }

    let finished = state.epoch >= t.max_epochs || state.step >= total;
    let mut test = None;
    if finished && t.test_after_fit {
        let best_path = run.checkpoint("best");
        let m = if best_path.is_file() {
            let ck = Checkpoint::load(&best_path)?;
            load_model(model.valid(), ck.model, &best_path)?
        } else {
            model.valid()
        };
        let tm = prefixed("test", &evaluate(&m, &data.test, &task, k, eval_bs, t.limit_eval_batches, &eval_device));
        csv.rows(state.step, state.epoch, "test", &tm)?;
        test = Some(tm);
    }
    if !opts.quiet {
        let best = state.best.map(|(v, e)| format!(" best {}={v:.4} (epoch {})", t.monitor, e + 1)).unwrap_or_default();
        let test_s = test.as_ref().map(|m| format!(" {}", format_metrics(m))).unwrap_or_default();
        let status = if finished { "done" } else { "stopped (resume with --resume)" };
        println!(
            "fit {status}: epochs={} steps={} time={:.1}s;{best}{test_s}; run {}",
            state.epoch,
            state.step,
            started.elapsed().as_secs_f64(),
            run.root.display()
        );
    }
    Ok(FitSummary {
        run: run.root.clone(),
        epochs: state.epoch,
        steps: state.step,
        best: state.best,
        train_history: history,
        val,
        test,
    })
}
