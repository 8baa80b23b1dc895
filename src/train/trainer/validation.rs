//! Validate and checkpoint: at an epoch's end, and within it every `trainer.val_check_interval`
//! batches (Lightning's semantics, in the epochs `check_val_every_n_epoch` selects). Both go
//! through [`Trainer::validate_and_checkpoint`]: metrics rows at the step, best / top-k /
//! early stopping, non-finite checks, figures, then `best` (if improved) before `last`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Result, bail};
use burn::module::Module;

use super::Trainer;
use crate::train::callback::EpochEnd;
use crate::train::checkpoint::{Checkpoint, TrainerState};
use crate::train::fit::{evaluate, evaluate_observed, format_metrics, prefixed};
use crate::train::nonfinite;
use crate::train::val_figures::Collector;
use crate::train::{Mode, OnNonFinite};

/// Where a validation happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ValAt {
    /// After the epoch's last batch.
    EpochEnd,
    /// After an optimizer step within the epoch.
    MidEpoch,
}

/// What a validation leaves the loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Validated {
    /// Train on.
    Go,
    /// Early stopping ends the fit.
    Stop,
    /// A non-finite value rolled the run back to the last good checkpoint.
    RolledBack,
}

impl Trainer<'_> {
    /// Whether the epoch that just ended validates: in the epochs `check_val_every_n_epoch`
    /// selects when its last batch ends a `val_check_interval` (Lightning), and always in the
    /// last epoch.
    pub(super) fn epoch_end_val_due(&self) -> bool {
        let t = &self.cfg.trainer;
        let last_epoch = self.state.epoch + 1 >= t.max_epochs || self.state.step >= self.total;
        let on_interval = self.val_every.is_none_or(|n| self.per_epoch.is_multiple_of(n));
        last_epoch || ((self.state.epoch + 1).is_multiple_of(t.check_val_every_n_epoch) && on_interval)
    }

    /// Whether the optimizer step over batches `group` (0-based, in an epoch of `n_batches`)
    /// crossed a `val_check_interval` before the epoch's end.
    pub(super) fn mid_epoch_val_due(&self, group: std::ops::Range<usize>, n_batches: usize) -> bool {
        let t = &self.cfg.trainer;
        let Some(n) = self.val_every else { return false };
        (self.state.epoch + 1).is_multiple_of(t.check_val_every_n_epoch)
            && group.end < n_batches
            && self.state.step < self.total
            && group.end / n > group.start / n
    }

    /// Validates (at an epoch's end only when due), updates best and schedules, logs, draws
    /// the figures, writes `best` (if improved, and the top k) then `last`.
    pub(super) fn validate_and_checkpoint(
        &mut self,
        at: ValAt,
        train: &BTreeMap<String, f64>,
        rate: f64,
        t0: Instant,
    ) -> Result<Validated> {
        let (epoch, draw) = (self.state.epoch, self.figure_due());
        let due = at == ValAt::MidEpoch || self.epoch_end_val_due();
        let (val, figure) = if due { self.validation(draw)? } else { Default::default() };
        if let Some(bad) = nonfinite::in_metrics(&val, self.state.step, epoch)
            .or_else(|| nonfinite::in_params(&self.model, self.state.step, epoch))
        {
            // Nothing to skip at validation: roll back (the epoch is redone from the last good
            // checkpoint, a bounded number of times) or stop.
            if self.cfg.trainer.on_nonfinite == OnNonFinite::SkipBatch {
                self.diverged = true;
                bail!("{bad}; stopped, the last good checkpoint is kept ({})", self.run.checkpoint("last").display());
            }
            self.on_nonfinite(bad)?;
            return Ok(Validated::RolledBack);
        }
        let improved = !val.is_empty() && self.select_best(&val)?;
        match at {
            ValAt::EpochEnd => (self.state.epoch, self.state.batch) = (epoch + 1, 0),
            ValAt::MidEpoch => self.state.mid_val_step = Some(self.state.step),
        }
        self.state.schedules = self.optim.states.clone();
        if !val.is_empty() {
            self.state.metrics = val.clone();
        }
        let stop = self.log_validation(at, train, &val, rate)?;
        self.state.stopped_early = stop;
        if draw && !val.is_empty() {
            self.log_figures(at, epoch, figure)?;
        }
        self.save_validated(improved, at)?;
        self.print_validation(at, epoch, [train, &val], rate, t0, (improved, stop));
        Ok(if stop { Validated::Stop } else { Validated::Go })
    }

    /// Writes the metrics rows and tells the callbacks; returns whether one stops training.
    fn log_validation(
        &mut self,
        at: ValAt,
        train: &BTreeMap<String, f64>,
        val: &BTreeMap<String, f64>,
        rate: f64,
    ) -> Result<bool> {
        let mid_epoch = at == ValAt::MidEpoch;
        let lrs = if mid_epoch { vec![] } else { self.optim.lrs(self.state.step.saturating_sub(1), self.total) };
        let end = EpochEnd {
            step: self.state.step,
            epoch: self.state.epoch - usize::from(!mid_epoch),
            train,
            val,
            lrs: &lrs,
            groups: &self.optim.groups,
            samples_per_sec: rate,
            model: &self.model,
            mid_epoch,
        };
        self.callbacks.on_epoch_end(&mut self.csv, &end, &mut self.state)
    }

    /// Validation metrics (`val/…`) at rate 1 and at each of `trainer.eval_rates`
    /// (`val/accuracy@rate2`), with the figure's data when `draw` asks for it.
    fn validation(&self, draw: bool) -> Result<(BTreeMap<String, f64>, Option<Collector>)> {
        let t = &self.cfg.trainer;
        let eval_bs = self.cfg.loader.eval_batch_size.unwrap_or(self.cfg.loader.batch_size);
        let eval_device = self.device.clone().inner();
        let mut figure = draw.then(|| Collector::for_task(&self.task, self.k, self.vocab.is_some())).flatten();
        let k = self.k;
        let mut observe = |b: &crate::data::Batch, out: &[f32]| {
            if let Some(f) = figure.as_mut() {
                f.observe(b, out, k)
            }
        };
        let m = evaluate_observed(
            &self.model.valid(),
            &self.data.val,
            &self.task,
            k,
            (eval_bs, t.limit_eval_batches),
            &eval_device,
            &mut observe,
        );
        let mut val = prefixed("val", &m.ok_or_else(|| anyhow::anyhow!("validation yielded no batches"))?);
        for &r in t.eval_rates.iter().filter(|&&r| r != 1.0) {
            let model = self.model.valid().with_rate(r);
            let m = evaluate(&model, &self.data.val, &self.task, k, eval_bs, t.limit_eval_batches, &eval_device);
            for (name, v) in m.ok_or_else(|| anyhow::anyhow!("validation yielded no batches"))? {
                val.insert(format!("val/{name}@rate{r}"), v);
            }
        }
        Ok((val, figure))
    }

    /// Feeds the schedules and updates the best monitored value; returns whether it improved.
    fn select_best(&mut self, val: &BTreeMap<String, f64>) -> Result<bool> {
        let t = &self.cfg.trainer;
        self.optim.on_validation(val).map_err(anyhow::Error::msg)?;
        let monitored = val[&t.monitor];
        let improved = match (self.state.best, t.mode) {
            (None, _) => true,
            (Some((b, _)), Mode::Max) => monitored > b,
            (Some((b, _)), Mode::Min) => monitored < b,
        };
        if improved {
            self.state.best = Some((monitored, self.state.epoch));
            self.state.best_step = Some(self.state.step);
        }
        Ok(improved)
    }

    /// Writes the validation's checkpoint: `best` (if improved), the top k, then `last`.
    fn save_validated(&mut self, improved: bool, at: ValAt) -> Result<()> {
        let mut ck = self.checkpoint()?;
        if improved {
            ck.save(&self.run.checkpoint("best"))?;
        }
        if self.cfg.checkpoint.save_top_k > 1 && !self.state.metrics.is_empty() {
            self.update_top_k(&ck, at)?;
            ck.state.top_k = self.state.top_k.clone();
        }
        ck.save(&self.run.checkpoint("last"))?;
        Ok(())
    }

    /// Keeps the `checkpoint.save_top_k` best validations by the monitor under
    /// `checkpoints/top/` (`epoch=E-…`, or `epoch=E-step=S-…` within an epoch), removing the
    /// one that falls out.
    fn update_top_k(&mut self, ck: &Checkpoint, at: ValAt) -> Result<()> {
        let t = &self.cfg.trainer;
        let entry = match at {
            ValAt::EpochEnd => (self.state.metrics[&t.monitor], self.state.epoch - 1, None),
            ValAt::MidEpoch => (self.state.metrics[&t.monitor], self.state.epoch, Some(self.state.step)),
        };
        let better = |a: f64, b: f64| if t.mode == Mode::Max { a > b } else { a < b };
        let mut top = self.state.top_k.clone();
        let at = top.iter().position(|&(w, ..)| better(entry.0, w)).unwrap_or(top.len());
        if at >= self.cfg.checkpoint.save_top_k {
            return Ok(());
        }
        top.insert(at, entry);
        let dir = self.run.root.join("checkpoints/top");
        std::fs::create_dir_all(&dir)?;
        let monitor = t.monitor.replace('/', "_");
        let file = |(v, e, s): (f64, usize, Option<usize>)| {
            let step = s.map(|s| format!("step={s}-")).unwrap_or_default();
            dir.join(format!("epoch={}-{step}{monitor}={v:.4}.bpk", e + 1))
        };
        let mut kept = Checkpoint { state: TrainerState { top_k: top.clone(), ..ck.state.clone() }, ..ck.clone() };
        if top.len() > self.cfg.checkpoint.save_top_k {
            let out = top.pop().expect("over k");
            kept.state.top_k = top.clone();
            kept.save(&file(entry))?;
            let _ = std::fs::remove_file(file(out));
        } else {
            kept.save(&file(entry))?;
        }
        self.state.top_k = top;
        Ok(())
    }

    /// The validation's line on stdout.
    fn print_validation(
        &self,
        at: ValAt,
        epoch: usize,
        metrics: [&BTreeMap<String, f64>; 2],
        rate: f64,
        t0: Instant,
        flags: (bool, bool),
    ) {
        if self.opts.quiet {
            return;
        }
        let ([train, val], (improved, stop)) = (metrics, flags);
        let lr = self.optim.lrs(self.state.step.saturating_sub(1), self.total)[0];
        let timing = match at {
            ValAt::EpochEnd => format!("{rate:.0} samples/s {:.1}s", t0.elapsed().as_secs_f64()),
            ValAt::MidEpoch => "(within the epoch)".into(),
        };
        let metrics = [format_metrics(train), format_metrics(val)].into_iter().filter(|m| !m.is_empty());
        println!(
            "epoch {}/{} step {} {} lr={lr:.2e} {timing}{}{}",
            epoch + 1,
            self.cfg.trainer.max_epochs,
            self.state.step,
            metrics.collect::<Vec<_>>().join(" "),
            if improved { " *" } else { "" },
            if stop { " (early stop)" } else { "" }
        );
    }
}
