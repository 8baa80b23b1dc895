//! Asynchronous successive halving (ASHA; Li et al., "A System for Massively Parallel
//! Hyperparameter Tuning", MLSys 2020, Algorithm 2). Rung k trains a trial to
//! `r·η^k` epochs (r = `grace_period`, up to R = `max_t`). Whenever a worker is free,
//! `get_job` promotes, from the highest rung down, a trial that is in the top ⌊n_k/η⌋ of the
//! n_k results of its rung and not yet promoted; if there is none it starts a new trial at rung
//! 0. No rung waits for the others to fill.

use serde::{Deserialize, Serialize};

use crate::train::Mode;

/// What to run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Continue `trial` to rung `rung`.
    Promote {
        /// The trial.
        trial: usize,
        /// The rung it is promoted to.
        rung: usize,
    },
    /// Start a new trial at rung 0.
    Start,
}

/// The scheduler's bookkeeping (part of the study journal).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Asha {
    /// Epochs of each rung: r, rη, rη², … ≤ R.
    pub rungs: Vec<usize>,
    /// η.
    pub eta: usize,
    /// Higher is better.
    pub maximize: bool,
    /// Per rung: (trial, result) in the order reported.
    pub results: Vec<Vec<(usize, f64)>>,
    /// Per rung: trials promoted out of it.
    pub promoted: Vec<Vec<usize>>,
}

impl Asha {
    /// Rungs for minimum resource `r`, maximum `max_t` and reduction factor `eta` (the top rung
    /// is `max_t` itself when it is not a power step, as Ray's ASHA).
    pub fn new(r: usize, max_t: usize, eta: usize, mode: Mode) -> Self {
        let mut rungs = vec![r.max(1)];
        while let Some(next) = rungs.last().and_then(|&x| x.checked_mul(eta.max(2))).filter(|&x| x < max_t) {
            rungs.push(next);
        }
        if *rungs.last().expect("one rung") < max_t {
            rungs.push(max_t);
        }
        let n = rungs.len();
        Self {
            rungs,
            eta: eta.max(2),
            maximize: mode == Mode::Max,
            results: vec![vec![]; n],
            promoted: vec![vec![]; n],
        }
    }

    /// Only the top rung (FIFO: every trial runs to `max_t`).
    pub fn fifo(max_t: usize, mode: Mode) -> Self {
        Self { rungs: vec![max_t], eta: 2, maximize: mode == Mode::Max, results: vec![vec![]], promoted: vec![vec![]] }
    }

    /// Records `trial`'s metric at the end of rung `rung` (NaN: the trial failed; it is never
    /// promoted).
    pub fn report(&mut self, trial: usize, rung: usize, value: f64) {
        self.results[rung].push((trial, value));
    }

    /// ASHA's `get_job`: a promotion if one is due (highest rung first), else a new trial.
    pub fn get_job(&mut self) -> Next {
        for k in (0..self.rungs.len().saturating_sub(1)).rev() {
            if let Some(trial) = self.candidate(k) {
                self.promoted[k].push(trial);
                return Next::Promote { trial, rung: k + 1 };
            }
        }
        Next::Start
    }

    /// The best trial of rung `k` that is in its top ⌊n_k/η⌋ and not yet promoted.
    fn candidate(&self, k: usize) -> Option<usize> {
        let mut ranked: Vec<(usize, f64)> = self.results[k].iter().copied().filter(|(_, v)| v.is_finite()).collect();
        ranked.sort_by(|a, b| if self.maximize { b.1.total_cmp(&a.1) } else { a.1.total_cmp(&b.1) });
        let top = self.results[k].len() / self.eta;
        ranked.into_iter().take(top).map(|(t, _)| t).find(|t| !self.promoted[k].contains(t))
    }

    /// The highest rung `trial` reported, with its result.
    pub fn best_of(&self, trial: usize) -> Option<(usize, f64)> {
        (0..self.rungs.len())
            .rev()
            .find_map(|k| self.results[k].iter().find(|(t, _)| *t == trial).map(|&(_, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_eta_up_to_max_t() {
        assert_eq!(Asha::new(1, 9, 3, Mode::Max).rungs, [1, 3, 9]);
        assert_eq!(Asha::new(1, 10, 3, Mode::Max).rungs, [1, 3, 9, 10]);
        assert_eq!(Asha::new(2, 2, 3, Mode::Max).rungs, [2]);
    }

    /// The paper's rule on synthetic curves: with η = 3 a trial is promoted as soon as it is in
    /// the top third of its rung's results so far, without waiting for the rung to fill.
    #[test]
    fn promotion_follows_the_paper_asynchronously() {
        let mut a = Asha::new(1, 9, 3, Mode::Max);
        // Two results at rung 0: ⌊2/3⌋ = 0 may be promoted.
        a.report(0, 0, 0.5);
        a.report(1, 0, 0.7);
        assert_eq!(a.get_job(), Next::Start);
        // A third: the top one (trial 1) goes up at once.
        a.report(2, 0, 0.6);
        assert_eq!(a.get_job(), Next::Promote { trial: 1, rung: 1 });
        assert_eq!(a.get_job(), Next::Start, "promoted once only");
        // Six results: the top two; trial 1 was already promoted, so trial 4 now.
        for (t, v) in [(3, 0.1), (4, 0.65), (5, 0.2)] {
            a.report(t, 0, v);
        }
        assert_eq!(a.get_job(), Next::Promote { trial: 4, rung: 1 });
        // Nine results at rung 0: its top three are 6, 1, 4, and 6 goes up.
        a.report(1, 1, 0.8);
        a.report(4, 1, 0.9);
        for (t, v) in [(6, 0.95), (7, 0.3), (8, 0.3)] {
            a.report(t, 0, v);
        }
        assert_eq!(a.get_job(), Next::Promote { trial: 6, rung: 1 });
        // Higher rungs first: a third result at rung 1 promotes its best (4) to rung 2.
        a.report(6, 1, 0.85);
        assert_eq!(a.get_job(), Next::Promote { trial: 4, rung: 2 });
        assert_eq!(a.get_job(), Next::Start);
        // Failed trials (NaN) are never promoted; min mode ranks downwards.
        let mut m = Asha::new(1, 4, 2, Mode::Min);
        m.report(0, 0, f64::NAN);
        m.report(1, 0, 3.0);
        assert_eq!(m.get_job(), Next::Promote { trial: 1, rung: 1 });
        assert_eq!(m.best_of(1), Some((0, 3.0)));
    }
}
