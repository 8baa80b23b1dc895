//! `wavessm bench length`: how the time grows with sequence length. The adding problem with
//! its S4D experiment (2×64), B=16, 4 training steps plus an evaluation pass, at L = 1k, 4k,
//! 16k, 64k (from `--min-len` on up to `--max-len`); prints the time, its growth per 4× in L (O(L log L)
//! gives a little over 4) and the peak RSS. `--warmup` runs one untimed step and evaluation at
//! each length first, which takes the first touch of new memory out of the timing.

use anyhow::Result;

use super::bench::BenchArgs;
use super::bench_fit::{peak_rss_mb, train_and_eval};
use crate::config::ConfigRequest;

/// Training steps per length.
const STEPS: usize = 4;

/// Runs the sweep, one line per length.
pub fn run(a: &BenchArgs) -> Result<()> {
    anyhow::ensure!(a.min_len <= a.max_len, "--min-len ({}) is above --max-len ({})", a.min_len, a.max_len);
    let c = &a.config;
    let b = a.batch as usize;
    let mut prev: Option<(f64, f64)> = None;
    let mut l = a.min_len as usize;
    while l as u64 <= a.max_len {
        let mut tokens: Vec<String> = vec![
            "experiment=adding/s4d".into(),
            format!("data.seq_len={l}"),
            format!("data.n_train={}", STEPS * b),
            format!("data.n_test={b}"),
            format!("data.n_val={b}"),
            format!("loader.batch_size={b}"),
        ];
        tokens.extend(c.overrides.iter().cloned());
        let cfg =
            ConfigRequest { config_dirs: c.config_dir.clone(), files: c.config.clone(), tokens, ..Default::default() }
                .resolve()?;
        if a.warmup {
            train_and_eval(&cfg, Some(1))?;
        }
        let t = train_and_eval(&cfg, Some(STEPS))?;
        let ms = (t.train.1 + t.eval.1) * 1e3;
        let cpu = t.cpu.0 + t.cpu.1;
        let growth = prev.map_or("-".into(), |(p, _)| format!("{:.2}x", ms / p));
        let cpu_growth = prev.map_or("-".into(), |(_, c)| format!("{:.2}x", cpu / c));
        println!(
            "length seq_len={l} batch={b} ms={ms:.0} train_ms={:.0} eval_ms={:.0} growth={growth} cpu_s={cpu:.1} \
             cpu_growth={cpu_growth} rss_mb={:.0}",
            t.train.1 * 1e3,
            t.eval.1 * 1e3,
            peak_rss_mb()
        );
        prev = Some((ms, cpu));
        l *= 4;
    }
    Ok(())
}
