//! Feedback while training: an indicatif bar on a terminal, one line per epoch otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::ProgressMode;

/// Per-epoch progress display.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts an epoch of `total` batches.
    pub fn epoch(mode: ProgressMode, epoch: usize, max_epochs: usize, total: usize) -> Self {
        let show = match mode {
            ProgressMode::Always => true,
            ProgressMode::Never => false,
            ProgressMode::Auto => std::io::stderr().is_terminal(),
        };
        let bar = show.then(|| {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} [{elapsed}<{eta}] {msg}")
                    .expect("valid template"),
            );
            b.set_prefix(format!("{}/{}", epoch + 1, max_epochs));
            b
        });
        Self { bar }
    }

    /// Advances by one batch with the running loss/metric and throughput.
    pub fn tick(&self, msg: impl FnOnce() -> String) {
        if let Some(b) = &self.bar {
            b.set_message(msg());
            b.inc(1);
        }
    }

    /// Clears the bar (the caller prints the epoch line).
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
