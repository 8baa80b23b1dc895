//! Working buffers for parallel tasks, allocated on the calling thread and reused.
//!
//! Why: glibc serves a rayon worker from a per-thread arena, whose heaps hold at most 64 MB
//! each. A larger allocation gets a fresh `mmap` that `free` unmaps again, and a heap that
//! empties is unmapped too, so at L = 2^20 every conv task (16 channels × 2^20 steps × 4 B a
//! buffer) faulted in and zeroed new pages: 16 of the 94 CPU-seconds of `bench length` at 1M
//! went to the kernel. Buffers from the caller's heap (the main arena, never trimmed: see
//! `main.rs`) are reused instead, and one set serves every task that a worker runs.

use std::sync::Mutex;

/// One `T` per worker thread, handed to tasks one at a time.
pub(crate) struct TaskPool<T, F: Fn() -> T> {
    free: Mutex<Vec<T>>,
    make: F,
}

impl<T, F: Fn() -> T> TaskPool<T, F> {
    /// Sets for up to `tasks` tasks at once (at most one per worker), made here by `make`.
    pub fn new(tasks: usize, make: F) -> Self {
        let sets = tasks.min(rayon::current_num_threads()).max(1);
        Self { free: Mutex::new((0..sets).map(|_| make()).collect()), make }
    }

    /// Runs `f` on a free set (a fresh one if nested tasks took them all), then frees it.
    /// Contents are left from the previous task: `f` must write what it reads.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let taken = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut set = taken.unwrap_or_else(&self.make);
        let r = f(&mut set);
        self.free.lock().unwrap_or_else(|e| e.into_inner()).push(set);
        r
    }
}

/// Elements below which [`zeros`] zeroes on the calling thread (a parallel job costs more).
const PAR_ZERO: usize = 1 << 16;

/// `n` zeros, written by all workers.
///
/// Why: the outputs of the fused kernels were zeroed by `vec![0.0; n]` on the calling thread,
/// which glibc does with a serial `memset` once the heap is reused; in `bench fit` that was a
/// fifth of the main thread's time, while the workers waited.
pub(crate) fn zeros(n: usize) -> Vec<f32> {
    use rayon::prelude::*;
    if n < PAR_ZERO {
        return vec![0.0; n];
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(0f32, n).with_min_len(PAR_ZERO));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn concurrent_tasks_never_share_a_set_and_sets_are_reused() {
        let made = AtomicUsize::new(0);
        let pool = TaskPool::new(64, || {
            made.fetch_add(1, Ordering::Relaxed);
            vec![0usize; 1024]
        });
        let ok = (0..64usize).into_par_iter().all(|t| {
            pool.with(|buf| {
                buf.fill(t);
                std::thread::yield_now();
                buf.iter().all(|v| *v == t)
            })
        });
        assert!(ok, "a set was written by two tasks at once");
        // One set per worker up front; more only if a worker nests tasks (none do here).
        assert!(made.load(Ordering::Relaxed) <= rayon::current_num_threads());
        assert_eq!(zeros(3 * PAR_ZERO + 5), vec![0.0; 3 * PAR_ZERO + 5]);
    }
}
