//! The trainer's validation figures (`trainer.val_figures`): the figure the validation pass
//! collected, a chain's `reconstruct`/`encode` figures, and a language model's text sample, written under `<run>/figures/` and sent to
//! the loggers as images and text. A figure that cannot be drawn (no font) warns once and
//! turns them off; training goes on.

use std::io::Write;

use anyhow::{Context, Result};
use burn::module::Module;

use super::Trainer;
use super::validation::ValAt;
use crate::io::write_atomic;
use crate::model::generate::{Sampling, generate};
use crate::train::chain_figures::{self, ChainFigure};
use crate::train::val_figures::Collector;

/// Tokens of the validation sequence a text sample continues, and tokens generated.
const PROMPT_TOKENS: usize = 32;
const SAMPLE_TOKENS: usize = 64;

impl Trainer<'_> {
    /// Whether this validation draws figures: every `val_figures_every_n_epochs` epochs and
    /// in the last.
    pub(super) fn figure_due(&self) -> bool {
        let t = &self.cfg.trainer;
        let last_epoch = self.state.epoch + 1 >= t.max_epochs || self.state.step >= self.total;
        t.val_figures
            && !self.figures_off
            && ((self.state.epoch + 1).is_multiple_of(t.val_figures_every_n_epochs) || last_epoch)
    }

    /// Writes and logs the validation's figure and text sample (epoch `epoch`, 0-based).
    pub(super) fn log_figures(&mut self, at: ValAt, epoch: usize, figure: Option<Collector>) -> Result<()> {
        let step = self.state.step;
        let (stem, when) = match at {
            ValAt::EpochEnd => (format!("epoch{}", epoch + 1), format!("epoch {}", epoch + 1)),
            ValAt::MidEpoch => (format!("epoch{}_step{step}", epoch + 1), format!("epoch {}, step {step}", epoch + 1)),
        };
        let dir = self.run.root.join("figures");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(f) = figure {
            let title = format!("validation {} ({when})", f.kind().replace('_', " "));
            match f.png(&title) {
                Ok(png) => {
                    write_atomic(&dir.join(format!("val_{}_{stem}.png", f.kind())), |w| w.write_all(&png))?;
                    self.callbacks.log_image(&format!("val/{}", f.kind()), &png, step)?;
                }
                Err(e) => self.figures_failed(e),
            }
        }
        for f in self.chain_figures() {
            let title = format!("validation {} ({when})", f.kind());
            match f.png(&title) {
                Ok(png) => {
                    write_atomic(&dir.join(format!("val_{}_{stem}.png", f.kind())), |w| w.write_all(&png))?;
                    self.callbacks.log_image(&format!("val/{}", f.kind()), &png, step)?;
                }
                Err(e) => self.figures_failed(e),
            }
        }
        if self.vocab.is_some() {
            match self.text_sample(&when) {
                Ok(md) => {
                    write_atomic(&dir.join(format!("val_sample_{stem}.md")), |w| w.write_all(md.as_bytes()))?;
                    self.callbacks.log_text("val/sample", &md, step)?;
                }
                Err(e) => self.figures_failed(e),
            }
        }
        Ok(())
    }

    /// Turns the figures off for the rest of the fit, saying why.
    fn figures_failed(&mut self, e: anyhow::Error) {
        eprintln!("warning: validation figures are off for this run (trainer.val_figures): {e:#}");
        self.figures_off = true;
    }

    /// What a chain's `reconstruct` and `encode` commands give for the first validation batch
    /// (none for other models or a chain without those commands).
    fn chain_figures(&self) -> Vec<ChainFigure> {
        let model = self.model.valid();
        let Some(chain) = model.as_chain() else { return vec![] };
        let n = self.cfg.loader.eval_batch_size.unwrap_or(self.cfg.loader.batch_size).min(self.data.val.len());
        if n == 0 {
            return vec![];
        }
        let idx: Vec<usize> = (0..n).collect();
        chain_figures::collect(chain, &self.data.val.batch(&idx, &self.device.clone().inner()))
    }

    /// A continuation of the first validation sequence's opening tokens, generated in step
    /// mode as `wavessm generate` does, as markdown.
    fn text_sample(&self, when: &str) -> Result<String> {
        let (tokens, level) = self.vocab.as_ref().context("no vocabulary")?;
        let model = self.model.valid();
        let seq = model.as_sequence().context("the model has no step mode to generate with")?;
        let device = self.device.clone().inner();
        let x = self.data.val.batch(&[0], &device).x; // [1, L, 1]
        let ids: Vec<u32> = x.try_into_vec_as::<f32>().expect("f32 inputs").iter().map(|&t| t as u32).collect();
        let prompt = &ids[..PROMPT_TOKENS.min(ids.len() / 2).max(1)];
        let sampling =
            Sampling { temperature: 0.8, top_k: 0, top_p: 1.0, seed: self.cfg.seed ^ self.state.step as u64 };
        let out = generate(seq, &device, prompt, 1, SAMPLE_TOKENS, self.data.train.seq_len, &sampling)?;
        let text = |ids: &[u32]| {
            let words: Vec<&str> =
                ids.iter().map(|&t| tokens.get(t as usize).map_or("<unk>", String::as_str)).collect();
            level.join(&words)
        };
        Ok(format!(
            "Validation sample ({when}). Prompt: the first {} tokens of the first validation sequence.\n\n\
             ```text\n{}\n```\n\nContinuation ({SAMPLE_TOKENS} tokens, temperature 0.8):\n\n```text\n{}\n```\n",
            prompt.len(),
            text(prompt),
            text(&out[0])
        ))
    }
}
