//! What each subcommand does.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use serde_yaml::Value;

use super::{Cli, Command, ConfigArgs, EvalArgs, PredictArgs};
use crate::config::{ConfigError, ConfigRequest, ConfigSources, Item, classify};
use crate::data::BatchIter;
use crate::experiment::ExperimentConfig;
use crate::task::argmax;
use crate::train::checkpoint::Checkpoint;
use crate::train::fit::{format_metrics, load_model, prefixed};
use crate::train::{FitOptions, Setup, device_for, evaluate, fit};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fit(a) if a.multirun => super::sweep::run(&fit_request(&a)?, a.yes, a.resume.is_some()),
        Command::Fit(a) => {
            let cfg = match &a.resume {
                Some(_) if a.d4l.is_set() => {
                    bail!(
                        "D4L's flags (--data_train, --model_cfg, …) build a new run; with --resume override single keys"
                    )
                }
                Some(dir) => {
                    let text = crate::io::read_text_capped(
                        &dir.join("config.yaml"),
                        crate::io::MAX_CONFIG_BYTES,
                        "a config file",
                    )
                    .with_context(|| format!("{}: not a run folder (no readable config.yaml)", dir.display()))?;
                    config_over(&text, &a.config, &dir.join("config.yaml"))?
                }
                None => fit_request(&a)?.resolve()?,
            };
            if a.config.print_config {
                print!("{}", cfg.to_yaml());
                return Ok(());
            }
            fit(
                &cfg,
                &FitOptions {
                    resume: a.resume.clone(),
                    stop_after_epochs: a.stop_after_epochs,
                    init_from: a.init_from.clone(),
                    partial: a.partial,
                    ..Default::default()
                },
            )?;
            Ok(())
        }
        Command::Validate(a) => eval_command(&a, "val"),
        Command::Test(a) => eval_command(&a, "test"),
        Command::Predict(a) => predict(&a),
        Command::Bench(a) => super::bench::run(&a),
        Command::Runs(a) => super::runs::run(&a),
        Command::Plot(a) => super::plot::run(&a),
        Command::Generate(a) => super::sample::run(&a),
        Command::Tune(a) => super::tune::run(&a),
        Command::Infer(a) => super::infer::run(&a),
        Command::Data(super::DataCommand::Generate(g)) => super::generate::run(&g),
        Command::Data(super::DataCommand::Prepare(p)) => prepare(&p.config),
        Command::Weights(w) => super::weights::run(&w),
    }
}

/// `data prepare`: a bare first word names the data config (`sc10` = `data=sc10`).
fn prepare(c: &ConfigArgs) -> Result<()> {
    let mut c = c.clone();
    if let Some(first) = c.overrides.first_mut().filter(|t| !t.contains('=') && !t.starts_with(['~', '+'])) {
        *first = format!("data={first}");
    }
    let cfg = request(&c).resolve()?;
    if c.print_config {
        print!("{}", serde_yaml::to_string(&cfg.data)?);
        return Ok(());
    }
    let spec = crate::data::DataSpec::from_named(&cfg.data, "data")?;
    let t0 = std::time::Instant::now();
    let report = spec.prepare()?;
    println!("prepared {} in {:.1}s: {}", spec.dataset.name(), t0.elapsed().as_secs_f64(), report.folder.display());
    for h in &report.headers {
        let bytes = h.inputs.bytes + h.targets.bytes + h.lengths.map_or(0, |s| s.bytes);
        println!(
            "  {}.wsd: {} sequences × {} × {}, inputs {}, {:.1} MB",
            h.split,
            h.n,
            h.seq_len,
            h.channels,
            h.encoding,
            bytes as f64 / 1e6
        );
    }
    Ok(())
}

pub(super) fn request(c: &ConfigArgs) -> ConfigRequest {
    ConfigRequest {
        config_dirs: c.config_dir.clone(),
        files: c.config.clone(),
        tokens: c.overrides.clone(),
        ..Default::default()
    }
}

/// `fit`'s request: the config arguments plus D4L's flags.
fn fit_request(a: &super::FitArgs) -> Result<ConfigRequest> {
    let mut req = request(&a.config);
    a.d4l.apply(&mut req)?;
    Ok(req)
}

/// A saved config (run or checkpoint) with command-line key overrides on top.
fn config_over(yaml: &str, c: &ConfigArgs, origin: &Path) -> Result<ExperimentConfig> {
    if !c.config.is_empty() {
        bail!("-c/--config cannot be combined with a saved run's config; override single keys instead");
    }
    let mut tree: Value = serde_yaml::from_str(yaml)
        .map_err(|e| ConfigError::File { origin: origin.display().to_string(), msg: e.to_string() })?;
    let sources = ConfigSources::new(c.config_dir.clone());
    for t in &c.overrides {
        match classify(&sources, t)? {
            None => {}
            Some(Item::Key(o)) => o.apply(&mut tree)?,
            Some(Item::Select { group, .. }) => {
                bail!("`{t}`: group `{group}` cannot be re-selected for a saved config; override its keys instead")
            }
        }
    }
    Ok(ExperimentConfig::from_value(tree)?)
}

/// Loads a `--ckpt` file: a regular file that fits in memory (`/dev/zero` or a FIFO is
/// refused before it is read).
fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    crate::io::check_whole_file(path).with_context(|| format!("{}: cannot read the checkpoint", path.display()))?;
    Ok(Checkpoint::load(path)?)
}

/// Loads a checkpoint and its (overridden) config, and builds everything for evaluation.
pub(super) fn load_for_eval(
    ckpt: &Path,
    c: &ConfigArgs,
    rate: f64,
) -> Result<(ExperimentConfig, Setup, crate::model::Model)> {
    if !(rate.is_finite() && rate > 0.0) {
        bail!("--rate must be a positive number, got {rate}");
    }
    let ck = load_checkpoint(ckpt)?;
    let cfg = config_over(&ck.state.config, c, ckpt)?;
    let setup = Setup::new(&cfg, device_for(&cfg.trainer)?)?;
    let model = load_model(setup.model.clone(), ck.model, ckpt)?.valid().with_rate(rate);
    Ok((cfg, setup, model))
}

fn eval_command(a: &EvalArgs, split: &str) -> Result<()> {
    if a.config.print_config {
        let ck = load_checkpoint(&a.ckpt)?;
        print!("{}", config_over(&ck.state.config, &a.config, &a.ckpt)?.to_yaml());
        return Ok(());
    }
    let (cfg, s, model) = load_for_eval(&a.ckpt, &a.config, a.rate)?;
    let data = s.data.split(split).expect("known split");
    let bs = cfg.loader.eval_batch_size.unwrap_or(cfg.loader.batch_size);
    match evaluate(&model, data, &s.task, s.d_output, bs, cfg.trainer.limit_eval_batches, &s.device) {
        Some(m) => {
            println!("{} ({} sequences, {})", format_metrics(&prefixed(split, &m)), data.len(), a.ckpt.display())
        }
        None => println!(
            "{split}: no batches ({} sequences, limit_eval_batches={:?})",
            data.len(),
            cfg.trainer.limit_eval_batches
        ),
    }
    Ok(())
}

fn predict(a: &PredictArgs) -> Result<()> {
    let (cfg, s, model) = load_for_eval(&a.ckpt, &a.config, a.rate)?;
    if model.loss_manager().is_some() {
        bail!(
            "`predict` writes the task's outputs, but this chain's `forward` feeds its own loss \
             (model.options.loss); evaluate it with `validate` or `test`"
        );
    }
    let data =
        s.data.split(&a.split).with_context(|| format!("unknown split `{}`; use train, val or test", a.split))?;
    let out_path = a.out.clone().unwrap_or_else(|| {
        let run = a.ckpt.parent().and_then(Path::parent).unwrap_or(Path::new("."));
        run.join(format!("predictions_{}.csv", a.split))
    });
    let bs = cfg.loader.eval_batch_size.unwrap_or(cfg.loader.batch_size);
    let k = s.d_output;
    // An autoencoder's prediction is its detection score, not its reconstruction.
    let scored = matches!(s.task, crate::task::TaskConfig::Autoencoder(_));
    // The rows below are written by target kind, so the header is chosen the same way.
    let mut text = String::from(match data.targets {
        crate::data::Targets::Classes { .. } if scored => "index,target,score\n",
        crate::data::Targets::Classes { .. } => "index,target,prediction,probability\n",
        // Per-step tasks: one row per step (target empty where the step is not scored).
        crate::data::Targets::Tokens { .. } => "index,step,target,prediction,probability\n",
        _ => "index,target,prediction\n",
    });
    let mut index = 0;
    for idx in BatchIter::sequential(data.len(), bs) {
        let batch = data.batch(&idx, &s.device);
        let out = crate::train::fit::outputs(&model, &batch, k);
        if let (true, crate::data::Targets::Classes { labels, .. }) = (scored, &data.targets) {
            let scores: Vec<f32> = s.task.loss_and_rows(out, &batch).1.try_into_vec_as::<f32>().expect("f32 scores");
            for (score, &i) in scores.iter().zip(&idx) {
                text.push_str(&format!("{index},{},{score:.6}\n", labels[i]));
                index += 1;
            }
            continue;
        }
        let rows: Vec<f32> = out.try_into_vec_as::<f32>().expect("f32 outputs");
        if let crate::data::Targets::Tokens { ids, .. } = &data.targets {
            let l = data.seq_len;
            for (r, row) in rows.chunks(k).enumerate() {
                let (i, t) = (idx[r / l], r % l);
                let (p, prob) = top(row);
                let target = ids[i * l + t];
                let target = if target == crate::data::IGNORE_INDEX { String::new() } else { target.to_string() };
                text.push_str(&format!("{},{t},{target},{p},{prob:.6}\n", index + r / l));
            }
            index += idx.len();
            continue;
        }
        for (row, &i) in rows.chunks(k).zip(&idx) {
            match &data.targets {
                crate::data::Targets::Classes { labels, .. } => {
                    let (p, prob) = top(row);
                    text.push_str(&format!("{index},{},{p},{prob:.6}\n", labels[i]));
                }
                crate::data::Targets::Tokens { .. } => unreachable!("per-step rows are written above"),
                crate::data::Targets::Values { values, dim } => {
                    let join = |v: &[f32]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(";");
                    text.push_str(&format!("{index},{},{}\n", join(&values[i * dim..(i + 1) * dim]), join(row)));
                }
            }
            index += 1;
        }
    }
    crate::io::write_atomic(&out_path, |f| f.write_all(text.as_bytes()))?;
    println!("wrote {index} predictions to {}", out_path.display());
    Ok(())
}

/// The most likely class of a row of logits and its softmax probability.
fn top(row: &[f32]) -> (usize, f32) {
    let p = argmax(row);
    let max = row[p];
    let z: f32 = row.iter().map(|v| (v - max).exp()).sum();
    (p, 1.0 / z)
}
