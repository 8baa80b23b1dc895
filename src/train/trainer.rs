//! The trainer: open or resume a run, train an epoch, validate and checkpoint (at epoch ends
//! and within epochs, [`validation`]; with figures, [`figures`]), test the best. Each part
//! reads on one screen; callbacks (loggers, early stopping) plug in through
//! [`super::callback`].
//!
//! What survives what: checkpoints are written only from finite parameters and metrics; `best`
//! is committed before `last`, and `last` records which validation `best` holds, so a crash between
//! the two writes is repaired on the next open; one process owns a run folder (an advisory
//! lock); Ctrl-C / SIGTERM finish the current optimizer step and write a mid-epoch checkpoint
//! that resumes bit for bit.

mod figures;
mod validation;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Bytes, Device};

use super::OnNonFinite;
use super::callback::{Callbacks, FitEnd, FitStart, FitStatus};
use super::checkpoint::{Checkpoint, TrainerState};
use super::device::device_for;
use super::fit::{
    FitOptions, FitSummary, Setup, evaluate, format_metrics, host_terms, load_model, managed_loss, outputs, prefixed,
};
use super::init_from::init_from;
use super::nonfinite::{self, NonFinite};
use super::optim::{Optim, clip_global_norm};
use super::progress::Progress;
use super::run::ResumePoint;
use super::run::{MetricsCsv, RunDir};
use super::shared::SharedKernels;
use super::signals::Interrupt;
use super::status::{self, RunStatus};
use crate::config::ConfigError;
use crate::data::augment::{Augmentation, train_batch};
use crate::data::lm::Level;
use crate::data::{BatchIter, DataModule};
use crate::experiment::ExperimentConfig;
use crate::io::write_atomic;
use crate::model::Model;
use crate::task::TaskConfig;
use crate::task::loss_manager::{At, TermMetrics};
use validation::{ValAt, Validated};

/// A run being trained.
pub struct Trainer<'a> {
    cfg: &'a ExperimentConfig,
    opts: &'a FitOptions,
    data: DataModule,
    augment: Option<Augmentation>,
    task: TaskConfig,
    k: usize,
    model: Model,
    optim: Optim,
    device: Device,
    run: RunDir,
    state: TrainerState,
    csv: MetricsCsv,
    callbacks: Callbacks,
    per_epoch: usize,
    total: usize,
    rollbacks: usize,
    interrupt: Interrupt,
    status: RunStatus,
    diverged: bool,
    /// Batches between validations within an epoch (`trainer.val_check_interval`).
    val_every: Option<usize>,
    /// A language model's vocabulary, for the validation text sample.
    vocab: Option<(Vec<String>, Level)>,
    /// A figure failed to draw: no more for this fit.
    figures_off: bool,
}

/// Whether a fit finished, its test metrics, and each epoch's training metrics.
type Metrics = (bool, Option<BTreeMap<String, f64>>, Vec<BTreeMap<String, f64>>);

/// How an epoch ended.
enum EpochOutcome {
    /// Every batch (or the step budget) was used.
    Done,
    /// A signal asked to stop; the state is at an optimizer-step boundary.
    Interrupted,
    /// A non-finite value was met and rolled back to the last good checkpoint.
    RolledBack,
    /// Early stopping ended the fit at a validation within the epoch.
    Stopped,
}

impl<'a> Trainer<'a> {
    /// Builds data and model, then creates a run folder or reopens `opts.resume`'s (locked,
    /// stale temp files removed, `last`/`best` made consistent, state restored).
    pub fn open(cfg: &'a ExperimentConfig, opts: &'a FitOptions) -> Result<Self> {
        let device = device_for(&cfg.trainer)?.autodiff();
        let Setup { data, task, d_output: k, model, device, augment } = Setup::new(cfg, device)?;
        let t = &cfg.trainer;
        let per_epoch = batches_per_epoch(cfg, &data)?;
        let val_every = val_every(cfg, per_epoch)?;
        let total = t.max_steps.unwrap_or(usize::MAX).min(t.max_epochs * per_epoch.div_ceil(t.accumulate_grad_batches));
        let mut optim = Optim::new(cfg)?;
        optim.steps_per_epoch = per_epoch.div_ceil(t.accumulate_grad_batches);
        let config_yaml = cfg.to_yaml();
        let mut run = match &opts.resume {
            Some(dir) => RunDir::open(dir)?,
            None => RunDir::create(&cfg.logger.save_dir, cfg.logger.name.as_deref().unwrap_or(&cfg.name))?,
        };
        run.lock()?;
        let wall_time = RunStatus::read(&run.root).map_or(0.0, |s| s.wall_time);
        let started = status::now();
        let status = RunStatus {
            status: "running".into(),
            pid: std::process::id(),
            started,
            updated: started,
            wall_time,
            reason: None,
        };
        status.write(&run.root)?;
        let state = TrainerState::fresh(optim.states.clone(), config_yaml.clone());
        let csv = MetricsCsv::open(&run.metrics_path(), None)?;
        let mut me = Self {
            callbacks: Callbacks::new(cfg)?,
            cfg,
            opts,
            data,
            augment,
            task,
            k,
            model,
            optim,
            device,
            run,
            state,
            csv,
            per_epoch,
            total,
            rollbacks: 0,
            interrupt: Interrupt::install(),
            status,
            diverged: false,
            val_every,
            vocab: vocabulary(cfg),
            figures_off: false,
        };
        if opts.resume.is_some() {
            me.restore()?;
        } else if let Some(from) = &opts.init_from {
            let (model, report) = init_from(me.model.clone(), from, opts.partial)?;
            me.model = model;
            if !opts.quiet {
                println!("{report}");
            }
        }
        write_atomic(&me.run.config_path(), |f| f.write_all(config_yaml.as_bytes()))?;
        let (step, epoch, mid_val_step) = (me.state.step, me.state.epoch, me.state.mid_val_step);
        let keep = opts.resume.as_ref().map(|_| ResumePoint { step, epoch, mid_val_step });
        me.csv = MetricsCsv::open(&me.run.metrics_path(), keep)?;
        Ok(me)
    }

    /// Loads `last.bpk` (repairing `best.bpk` if a crash left it behind) into model, optimizer
    /// and state.
    fn restore(&mut self) -> Result<()> {
        let path = self.run.checkpoint("last");
        let ck = Checkpoint::load(&path)?;
        self.run.repair_best(&ck)?;
        self.load(ck, &path)
    }

    /// Puts a checkpoint's model, optimizer and state in place.
    fn load(&mut self, ck: Checkpoint, path: &std::path::Path) -> Result<()> {
        self.model = load_model(self.model.clone(), ck.model, path)?;
        self.optim.inner = self
            .optim
            .inner
            .clone()
            .from_bytes(Bytes::from_bytes_vec(ck.optimizer))
            .map_err(|e| anyhow::anyhow!("{}: optimizer section: {e:?}", path.display()))?;
        if ck.state.schedules.len() != self.optim.states.len() {
            bail!(
                "{}: {} schedule states, this config has {}",
                path.display(),
                ck.state.schedules.len(),
                self.optim.states.len()
            );
        }
        self.optim.states = ck.state.schedules.clone();
        self.optim.lr_scale = ck.state.lr_scale;
        self.state = TrainerState { config: self.cfg.to_yaml(), ..ck.state };
        Ok(())
    }

    /// Trains until the epoch or step budget, an early stop or a signal; then tests the best
    /// checkpoint if the run finished. `status.json` says how it ended; so do the callbacks,
    /// errors included.
    pub fn fit(mut self) -> Result<FitSummary> {
        let result = self.fit_inner();
        let (interrupted, diverged) = (self.interrupt.requested(), self.diverged);
        let st = &mut self.status;
        st.updated = status::now();
        st.wall_time += st.updated - st.started;
        (st.status, st.reason) = match &result {
            Ok(s) if s.finished => ("finished".into(), None),
            Ok(_) if interrupted => ("interrupted".into(), None),
            Ok(_) => ("stopped".into(), None),
            Err(e) if diverged => ("diverged".into(), Some(format!("{e:#}"))),
            Err(e) => ("failed".into(), Some(format!("{e:#}"))),
        };
        if let Err(e) = self.status.write(&self.run.root) {
            eprintln!("warning: {e:#}");
        }
        result
    }

    fn fit_inner(&mut self) -> Result<FitSummary> {
        let started = Instant::now();
        self.print_header();
        let start = FitStart {
            cfg: self.cfg,
            run: &self.run,
            num_params: self.model.num_params(),
            step: self.state.step,
            resumed: self.opts.resume.is_some(),
        };
        let outcome = self.callbacks.on_fit_start(&start).and_then(|()| self.train_and_test(started));
        let (status, test) = match &outcome {
            Ok((true, test, _)) => (FitStatus::Finished, test.as_ref()),
            Ok((false, test, _)) => (FitStatus::Stopped, test.as_ref()),
            Err(_) => (FitStatus::Failed, None),
        };
        let ended = self.callbacks.on_fit_end(&FitEnd { run: &self.run, state: &self.state, test, status });
        let (finished, test, history) = outcome?;
        ended?;
        Ok(FitSummary {
            run: self.run.root.clone(),
            epochs: self.state.epoch,
            steps: self.state.step,
            best: self.state.best,
            train_history: history,
            val: self.state.metrics.clone(),
            test,
            finished,
        })
    }

    /// The loop of [`Self::fit`]; returns whether the run finished, its test metrics and the
    /// training metrics of each epoch.
    fn train_and_test(&mut self, started: Instant) -> Result<Metrics> {
        let t = &self.cfg.trainer;
        let mut history = Vec::new();
        let mut stopped_early = self.state.stopped_early;
        while self.state.epoch < t.max_epochs && self.state.step < self.total && !stopped_early {
            if self.opts.stop_after_epochs.is_some_and(|s| self.state.epoch >= s) {
                break;
            }
            let t0 = Instant::now();
            let (outcome, train, samples) = self.train_epoch()?;
            match outcome {
                EpochOutcome::RolledBack => continue,
                EpochOutcome::Interrupted => {
                    self.save_mid_epoch()?;
                    break;
                }
                EpochOutcome::Stopped => {
                    stopped_early = true;
                    break;
                }
                EpochOutcome::Done => {}
            }
            let rate = samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            stopped_early = self.validate_and_checkpoint(ValAt::EpochEnd, &train, rate, t0)? == Validated::Stop;
            history.push(train);
        }
        let finished = self.state.epoch >= t.max_epochs || self.state.step >= self.total || stopped_early;
        let test = if finished && t.test_after_fit { self.test_best()? } else { None };
        self.print_footer(finished, &test, started);
        Ok((finished, test, history))
    }

    /// One epoch of optimizer steps from the state's position in it (a mid-epoch checkpoint
    /// resumes after its last completed step). Returns the outcome, the epoch's training
    /// metrics and the samples seen.
    fn train_epoch(&mut self) -> Result<(EpochOutcome, BTreeMap<String, f64>, usize)> {
        let (cfg, t) = (self.cfg, &self.cfg.trainer);
        let (epoch, accum, k) = (self.state.epoch, t.accumulate_grad_batches, self.k);
        let batches = self.epoch_batches();
        let first = self.state.batch.min(batches.len());
        let progress = Progress::epoch(t.progress_bar, epoch, t.max_epochs, batches.len() - first);
        let (mut train_m, mut acc) = (self.task.metrics(), GradientsAccumulator::<Model>::new());
        let mut term_m = TermMetrics::default();
        let managed = self.model.loss_manager().is_some();
        let finish = |train_m: &crate::task::Metrics, term_m: &TermMetrics| {
            if managed { term_m.finish() } else { train_m.finish() }
        };
        let (mut shared, mut in_group, mut samples, mut skip_group) = (None::<SharedKernels>, 0, 0usize, false);
        let t0 = Instant::now();
        for (bi, idx) in batches.iter().enumerate().skip(first) {
            let group_len = accum.min(batches.len() - (bi - bi % accum));
            self.device.seed(step_seed(cfg.seed, self.state.step, bi % accum));
            let batch = train_batch(&self.data.train, idx, self.augment.as_ref(), (cfg.seed, epoch, bi), &self.device);
            if group_len > 1 && shared.is_none() {
                shared = SharedKernels::new(&self.model, batch.x.dims()[1]);
            }
            let model = shared.as_ref().map_or(&self.model, |s| s.model());
            let (loss, out, terms) = match model.loss_manager() {
                Some(lm) => {
                    let at = At { step: self.state.step, total: self.total, per_epoch: self.optim.steps_per_epoch };
                    let (total, terms) = managed_loss(model, lm, &batch, Some(at));
                    (total, None, host_terms(terms))
                }
                None => {
                    let (loss, rows) = self.task.loss_and_rows(outputs(model, &batch, k), &batch);
                    (loss, Some(rows), vec![])
                }
            };
            let loss_v = loss.clone().into_scalar::<f64>();
            if !loss_v.is_finite() {
                let bad = NonFinite::Loss { value: loss_v, step: self.state.step, epoch };
                if self.on_nonfinite(bad)? {
                    return Ok((EpochOutcome::RolledBack, BTreeMap::new(), samples));
                }
                skip_group = true;
            } else {
                match out {
                    Some(rows) => {
                        let rows_k = rows.dims()[1];
                        let host: Vec<f32> = rows.detach().try_into_vec_as::<f32>().expect("f32 outputs");
                        train_m.update(&host, rows_k, &batch.y, loss_v);
                    }
                    None => term_m.update(loss_v, &terms, idx.len()),
                }
                let loss = loss / group_len as f64;
                let grads = match shared.as_mut() {
                    Some(s) => s.backward(loss),
                    None => GradientsParams::from_grads(loss.backward(), &self.model),
                };
                acc.accumulate(&self.model, grads);
            }
            samples += idx.len();
            in_group += 1;
            if in_group < group_len {
                continue;
            }
            let acc = std::mem::replace(&mut acc, GradientsAccumulator::new());
            let Some(norm) = self.optimizer_step(acc, shared.take(), skip_group)? else {
                return Ok((EpochOutcome::RolledBack, BTreeMap::new(), samples));
            };
            self.state.batch = bi + 1;
            (in_group, skip_group) = (0, false);
            let rate = samples as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            if let Some(end) = self.after_step(bi - bi % accum..bi + 1, batches.len(), (loss_v, norm), rate)? {
                progress.finish();
                return Ok((end, BTreeMap::new(), samples));
            }
            if self.state.step >= self.total {
                break;
            }
            if self.interrupt.requested() || self.opts.stop_after_steps.is_some_and(|s| self.state.step >= s) {
                progress.finish();
                return Ok((EpochOutcome::Interrupted, finish(&train_m, &term_m), samples));
            }
            progress.tick(|| progress_line(&finish(&train_m, &term_m), rate));
        }
        progress.finish();
        Ok((EpochOutcome::Done, prefixed("train", &finish(&train_m, &term_m)), samples))
    }

    /// The epoch's batches (sample indices), in the order `(seed, epoch)` fixes.
    fn epoch_batches(&self) -> Vec<Vec<usize>> {
        let (cfg, n) = (self.cfg, self.cfg.loader.train_len(self.data.train.len()));
        let l = &cfg.loader;
        BatchIter::new(n, l.batch_size, l.shuffle, l.drop_last, cfg.seed, self.state.epoch)
            .take(self.per_epoch)
            .collect()
    }

    /// Ends an accumulation group: adds the shared kernels' gradients, clips, and steps the
    /// optimizer unless the group is skipped or its gradient is non-finite (which
    /// `trainer.on_nonfinite` handles). Returns the gradient norm, or `None` when rolled back.
    fn optimizer_step(
        &mut self,
        mut acc: GradientsAccumulator<Model>,
        shared: Option<SharedKernels>,
        mut skip: bool,
    ) -> Result<Option<f64>> {
        if let Some(s) = shared
            && !skip
        {
            acc.accumulate(&self.model, s.finish(&self.model));
        }
        let mut g = acc.grads();
        let norm = clip_global_norm(&self.model, &mut g, self.cfg.trainer.gradient_clip_val);
        if !norm.is_finite() && !skip {
            let bad = NonFinite::GradNorm { step: self.state.step, epoch: self.state.epoch };
            if self.on_nonfinite(bad)? {
                return Ok(None);
            }
            skip = true;
        }
        if !skip {
            self.model = self.optim.step(self.state.step, self.total, self.model.clone(), g);
        }
        self.state.step += 1;
        Ok(Some(norm))
    }

    /// After an optimizer step over the epoch's batches `group` (of `n_batches`): logs it,
    /// validates when `trainer.val_check_interval` asks (which checkpoints too), else
    /// checkpoints when `checkpoint.every_n_steps` asks. Returns how the epoch ends, if here.
    fn after_step(
        &mut self,
        group: std::ops::Range<usize>,
        n_batches: usize,
        (loss, norm): (f64, f64),
        rate: f64,
    ) -> Result<Option<EpochOutcome>> {
        self.callbacks.on_train_step(&mut self.csv, self.state.step, self.state.epoch, loss, norm)?;
        if self.mid_epoch_val_due(group, n_batches) {
            let validated = self.validate_and_checkpoint(ValAt::MidEpoch, &BTreeMap::new(), rate, Instant::now())?;
            return Ok(match validated {
                Validated::Go => None,
                Validated::Stop => Some(EpochOutcome::Stopped),
                Validated::RolledBack => Some(EpochOutcome::RolledBack),
            });
        }
        if self.every_n_steps_due() {
            self.save_mid_epoch()?;
        }
        Ok(None)
    }

    /// Whether `checkpoint.every_n_steps` asks for a mid-epoch checkpoint now.
    fn every_n_steps_due(&self) -> bool {
        self.cfg.checkpoint.every_n_steps.is_some_and(|n| n > 0 && self.state.step.is_multiple_of(n))
    }

    /// Applies `trainer.on_nonfinite`: `stop` errors (the last good checkpoint stays), `skip_batch`
    /// returns false (drop this update), `rollback` reloads the last good checkpoint with a
    /// smaller learning rate and returns true (a bounded number of times, then stops).
    fn on_nonfinite(&mut self, bad: NonFinite) -> Result<bool> {
        let t = &self.cfg.trainer;
        match t.on_nonfinite {
            OnNonFinite::SkipBatch => {
                eprintln!("warning: {bad}; update skipped (trainer.on_nonfinite=skip_batch)");
                Ok(false)
            }
            OnNonFinite::Rollback if self.rollbacks < t.max_rollbacks => {
                let path = self.run.checkpoint("last");
                if !path.is_file() {
                    bail!("{bad}; no checkpoint to roll back to yet (trainer.on_nonfinite=rollback)");
                }
                self.rollbacks += 1;
                let ck = Checkpoint::load(&path)?;
                self.load(ck, &path)?;
                self.optim.lr_scale *= t.rollback_lr_factor;
                self.state.lr_scale = self.optim.lr_scale;
                eprintln!(
                    "warning: {bad}; rolled back to {} (epoch {}, step {}) with the learning rate × {} ({} of {} rollbacks)",
                    path.display(),
                    self.state.epoch,
                    self.state.step,
                    self.optim.lr_scale,
                    self.rollbacks,
                    t.max_rollbacks
                );
                Ok(true)
            }
            _ => {
                self.diverged = true;
                bail!(
                    "{bad}; stopped, the last good checkpoint is kept ({}). Lower the learning rate, enable \
                 `trainer.gradient_clip_val`, or set `trainer.on_nonfinite=skip_batch|rollback`",
                    self.run.checkpoint("last").display()
                )
            }
        }
    }

    /// The current model, optimizer and state as a checkpoint.
    fn checkpoint(&self) -> Result<Checkpoint> {
        let model = self
            .model
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("serializing the model: {e:?}"))?;
        let optimizer =
            self.optim.inner.clone().into_bytes().map_err(|e| anyhow::anyhow!("serializing the optimizer: {e:?}"))?;
        Ok(Checkpoint { state: self.state.clone(), model: model.to_vec(), optimizer: optimizer.to_vec() })
    }

    /// Writes `last.bpk` in the middle of an epoch (after a completed optimizer step), if the
    /// parameters are finite.
    fn save_mid_epoch(&mut self) -> Result<()> {
        if let Some(bad) = nonfinite::in_params(&self.model, self.state.step, self.state.epoch) {
            bail!("{bad}; not checkpointed, the last good checkpoint is kept");
        }
        self.state.schedules = self.optim.states.clone();
        self.checkpoint()?.save(&self.run.checkpoint("last"))?;
        if self.interrupt.requested() {
            eprintln!(
                "interrupted: checkpoint written at epoch {} step {}; continue with `wavessm fit --resume {}`",
                self.state.epoch + 1,
                self.state.step,
                self.run.root.display()
            );
        }
        Ok(())
    }

    /// Evaluates the best checkpoint on the test split (once per run: a resumed finished run
    /// does not log its test rows again). `None` when the test split has no batches.
    fn test_best(&mut self) -> Result<Option<BTreeMap<String, f64>>> {
        if self.csv.has_rows("test") {
            return Ok(None);
        }
        let t = &self.cfg.trainer;
        let best_path = self.run.checkpoint("best");
        let m = if best_path.is_file() {
            let ck = Checkpoint::load(&best_path)?;
            load_model(self.model.valid(), ck.model, &best_path)?
        } else {
            self.model.valid()
        };
        let eval_bs = self.cfg.loader.eval_batch_size.unwrap_or(self.cfg.loader.batch_size);
        let eval_device = self.device.clone().inner();
        let Some(tm) = evaluate(&m, &self.data.test, &self.task, self.k, eval_bs, t.limit_eval_batches, &eval_device)
        else {
            if !self.opts.quiet {
                println!("test: no batches (the test split is empty)");
            }
            return Ok(None);
        };
        let tm = prefixed("test", &tm);
        self.csv.rows(self.state.step, self.state.epoch, "test", &tm)?;
        Ok(Some(tm))
    }

    fn print_header(&self) {
        if self.opts.quiet {
            return;
        }
        let (cfg, data) = (self.cfg, &self.data);
        println!("run: {}", self.run.root.display());
        println!(
            "model: {}, {} parameters; data: {} train / {} val / {} test sequences of length {}",
            match self.model.as_sequence() {
                Some(_) =>
                    format!("{} blocks of {} (d_model={})", cfg.model.n_layers, cfg.model.layer.name, cfg.model.d_model),
                None => self.model.kind().to_string(),
            },
            self.model.num_params(),
            data.train.len(),
            data.val.len(),
            data.test.len(),
            data.train.seq_len
        );
    }

    fn print_footer(&self, finished: bool, test: &Option<BTreeMap<String, f64>>, started: Instant) {
        if self.opts.quiet {
            return;
        }
        let t = &self.cfg.trainer;
        let best =
            self.state.best.map(|(v, e)| format!(" best {}={v:.4} (epoch {})", t.monitor, e + 1)).unwrap_or_default();
        let test_s = test.as_ref().map(|m| format!(" {}", format_metrics(m))).unwrap_or_default();
        let status = if finished { "done" } else { "stopped (resume with --resume)" };
        println!(
            "fit {status}: epochs={} steps={} time={:.1}s;{best}{test_s}; run {}",
            self.state.epoch,
            self.state.step,
            started.elapsed().as_secs_f64(),
            self.run.root.display()
        );
    }
}

/// Seed of the dropout masks of a micro-batch: a pure function, so resumed runs match.
fn step_seed(seed: u64, step: usize, micro: usize) -> u64 {
    let mut z = seed ^ ((step as u64) << 20) ^ micro as u64 ^ 0x5851_F42D_4C95_7F2D;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Training batches per epoch; refuses data that yields none, or no validation batch.
fn batches_per_epoch(cfg: &ExperimentConfig, data: &DataModule) -> Result<usize> {
    let (t, bs) = (&cfg.trainer, cfg.loader.batch_size);
    let n_train = cfg.loader.train_len(data.train.len());
    let full = BatchIter::new(n_train, bs, false, cfg.loader.drop_last, 0, 0).num_batches();
    let per_epoch = full.min(t.limit_train_batches.unwrap_or(usize::MAX));
    if per_epoch == 0 {
        bail!("the training split yields no batch (n={n_train}, batch_size={bs}, drop_last={})", cfg.loader.drop_last);
    }
    if data.val.is_empty() || t.limit_eval_batches == Some(0) {
        bail!(
            "`trainer.monitor: {}` needs validation batches, but the validation split has none \
             ({} sequences, limit_eval_batches={:?})",
            t.monitor,
            data.val.len(),
            t.limit_eval_batches
        );
    }
    Ok(per_epoch)
}

/// Batches between validations within an epoch of `per_epoch` batches; a batch count above
/// it is refused, as Lightning does while `check_val_every_n_epoch` is set.
fn val_every(cfg: &ExperimentConfig, per_epoch: usize) -> Result<Option<usize>> {
    let Some(v) = cfg.trainer.val_check_interval else { return Ok(None) };
    let n = v.batches(per_epoch);
    if n > per_epoch {
        return Err(ConfigError::Key {
            path: "trainer.val_check_interval".into(),
            msg: format!(
                "{n} batches is more than an epoch's {per_epoch} training batches; use at most {per_epoch}, \
                 or a fraction of the epoch"
            ),
        }
        .into());
    }
    Ok(Some(n))
}

/// The vocabulary of a language model's text data, for the validation text sample (`None`
/// for other tasks and data, or when figures are off).
fn vocabulary(cfg: &ExperimentConfig) -> Option<(Vec<String>, Level)> {
    if !cfg.trainer.val_figures || !matches!(cfg.task.name.as_str(), "lm" | "adaptivelm") {
        return None;
    }
    let spec = crate::data::DataSpec::from_named(&cfg.data, "data").ok()?;
    match spec.dataset.vocabulary()? {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("warning: no validation text sample: {e}");
            None
        }
    }
}

/// The progress bar's text: the running loss, another metric, and the throughput.
fn progress_line(m: &BTreeMap<String, f64>, rate: f64) -> String {
    let metric = m.iter().find(|(k, _)| *k != "loss").map(|(k, v)| format!(" {k}={v:.4}")).unwrap_or_default();
    format!("loss={:.4}{metric} {rate:.0} samples/s", m.get("loss").copied().unwrap_or(f64::NAN))
}
