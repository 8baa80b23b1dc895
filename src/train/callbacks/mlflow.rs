//! `logger: {mlflow: {tracking_uri, experiment_name, run_name, tags, flush_timeout_s}}`: a run on
//! an MLflow tracking server, through its REST API (`/api/2.0/mlflow/…`). Params are the
//! flattened config, metrics go in batches, `config.yaml`, `metrics.csv` and images are
//! artifacts (through the server's artifact proxy, or a local file store), the best checkpoint's
//! path is a tag, and the run ends FINISHED, KILLED (stopped, resumable) or FAILED.
//!
//! Credentials come from MLflow's own variables: `MLFLOW_TRACKING_TOKEN` (bearer) or
//! `MLFLOW_TRACKING_USERNAME` + `MLFLOW_TRACKING_PASSWORD` (basic auth).
//!
//! A tracking server that is down or slow never stops or slows training: records go to a
//! bounded queue read by a background thread that retries with backoff; a full queue drops
//! records; the first problem is printed once; the end waits at most `flush_timeout_s`. The
//! thread's side (the REST client) is `mlflow_rest.rs`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::mlflow_rest::{Client, Msg, Shared};
use crate::config::ConfigError;
use crate::experiment::ExperimentConfig;
use crate::train::callback::{Callback, EpochEnd, FitEnd, FitStart, FitStatus};

/// Options of the MLflow logger.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MlflowConfig {
    /// The tracking server (`http://host:port`).
    pub tracking_uri: String,
    /// Experiment (created if missing; default: the experiment's `name`).
    #[serde(default)]
    pub experiment_name: Option<String>,
    /// Run name (default: `<name>/version_N`, the run folder).
    #[serde(default)]
    pub run_name: Option<String>,
    /// Extra run tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Longest wait, in seconds, for buffered records when the fit ends.
    #[serde(default = "default_flush")]
    pub flush_timeout_s: f64,
}

fn default_flush() -> f64 {
    30.0
}

impl MlflowConfig {
    /// Checks the URI scheme and the timeout, naming `{path}.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if !(self.tracking_uri.starts_with("http://") || self.tracking_uri.starts_with("https://")) {
            return Err(ConfigError::Key {
                path: format!("{path}.tracking_uri"),
                msg: format!("must be an http:// or https:// tracking server, got {:?}", self.tracking_uri),
            });
        }
        if !(self.flush_timeout_s >= 0.0 && self.flush_timeout_s.is_finite()) {
            return Err(ConfigError::Key {
                path: format!("{path}.flush_timeout_s"),
                msg: format!("must be a finite number ≥ 0, got {}", self.flush_timeout_s),
            });
        }
        Ok(())
    }
}

/// Records waiting for the background thread.
const QUEUE: usize = 4096;
/// File in the run folder holding the MLflow run id, so a resumed fit logs to the same run.
const RUN_ID_FILE: &str = "mlflow_run_id";

/// The MLflow logger: hands records to its background thread.
pub struct Mlflow {
    cfg: MlflowConfig,
    experiment: String,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    tx: Option<SyncSender<Msg>>,
    shared: Arc<Shared>,
    done: Option<Receiver<()>>,
}

impl Mlflow {
    /// From `logger.mlflow`, if set.
    pub fn from_config(cfg: &ExperimentConfig) -> Result<Option<Box<dyn Callback>>> {
        let Some(m) = &cfg.logger.mlflow else { return Ok(None) };
        let params = super::flat_config(cfg).into_iter().map(|(k, v)| (key(&k), super::value_text(&v))).collect();
        let mut tags: Vec<(String, String)> = m.tags.iter().map(|(k, v)| (key(k), v.clone())).collect();
        if let Some(w) = &cfg.wandb {
            tags.extend(super::wandb::tag_pairs(w));
        }
        tags.push(("mlflow.source.name".into(), "wavessm".into()));
        Ok(Some(Box::new(Mlflow {
            cfg: m.clone(),
            experiment: m.experiment_name.clone().unwrap_or_else(|| cfg.name.clone()),
            params,
            tags,
            tx: None,
            shared: Arc::new(Shared {
                warned: AtomicBool::new(false),
                end: Mutex::new(None),
                deadline: Mutex::new(None),
            }),
            done: None,
        })))
    }

    /// Queues a record; a full queue drops it (warned once) rather than wait.
    fn send(&self, msg: Msg) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(msg)
        {
            self.shared.warn(&self.cfg.tracking_uri, "the server falls behind, the queue is full");
        }
    }

    /// Sets the final status, lets the thread drain the queue, and waits at most
    /// `flush_timeout_s` for it.
    fn finish(&mut self, status: &'static str) {
        let Some(tx) = self.tx.take() else { return };
        let limit = Duration::from_secs_f64(self.cfg.flush_timeout_s);
        if let Ok(mut e) = self.shared.end.lock() {
            *e = Some(status);
        }
        if let Ok(mut d) = self.shared.deadline.lock() {
            *d = Some(Instant::now() + limit);
        }
        drop(tx);
        if let Some(done) = self.done.take()
            && done.recv_timeout(limit + Duration::from_millis(200)).is_err()
        {
            self.shared.warn(&self.cfg.tracking_uri, "the last records were not sent in time");
        }
    }
}

impl Callback for Mlflow {
    fn name(&self) -> &'static str {
        "mlflow"
    }

    fn on_fit_start(&mut self, start: &FitStart) -> Result<()> {
        let root = &start.run.root;
        let folder = root.iter().rev().take(2).collect::<Vec<_>>();
        let folder = folder.iter().rev().map(|s| s.to_string_lossy()).collect::<Vec<_>>().join("/");
        let mut tags = self.tags.clone();
        tags.push(("wavessm.run_dir".into(), root.display().to_string()));
        let client = Client::new(
            &self.cfg.tracking_uri,
            self.shared.clone(),
            self.experiment.clone(),
            self.cfg.run_name.clone().unwrap_or(folder),
            tags,
            std::mem::take(&mut self.params),
            root.join(RUN_ID_FILE),
        );
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("mlflow".into()).spawn(move || {
            client.serve(rx);
            let _ = done_tx.send(());
        })?;
        (self.tx, self.done) = (Some(tx), Some(done_rx));
        let config = std::fs::read(start.run.config_path()).unwrap_or_else(|_| start.cfg.to_yaml().into_bytes());
        self.send(Msg::Artifact("config.yaml".into(), config));
        Ok(())
    }

    fn on_train_step(&mut self, step: usize, _epoch: usize, loss: f64, grad_norm: f64) -> Result<()> {
        self.send(Msg::Metrics(vec![
            ("train/loss_step".into(), loss, step),
            ("train/grad_norm".into(), grad_norm, step),
        ]));
        Ok(())
    }

    fn on_epoch_end(&mut self, end: &EpochEnd, _state: &mut serde_json::Value) -> Result<bool> {
        let mut m: Vec<(String, f64, usize)> =
            end.train.iter().chain(end.val).map(|(k, v)| (key(k), *v, end.step)).collect();
        m.extend(end.groups.iter().zip(end.lrs).map(|(g, lr)| (key(&format!("train/lr/{}", g.name)), *lr, end.step)));
        m.push(("train/samples_per_sec".into(), end.samples_per_sec, end.step));
        m.push(("epoch".into(), (end.epoch + 1) as f64, end.step));
        self.send(Msg::Metrics(m));
        Ok(false)
    }

    fn on_image(&mut self, tag: &str, png: &[u8], step: usize) -> Result<()> {
        self.send(Msg::Artifact(format!("images/{}/step_{step:08}.png", key(tag)), png.to_vec()));
        Ok(())
    }

    fn on_text(&mut self, tag: &str, markdown: &str, step: usize) -> Result<()> {
        self.send(Msg::Artifact(format!("text/{}/step_{step:08}.md", key(tag)), markdown.as_bytes().to_vec()));
        Ok(())
    }

    fn on_fit_end(&mut self, end: &FitEnd) -> Result<()> {
        if let Some(test) = end.test {
            self.send(Msg::Metrics(test.iter().map(|(k, v)| (key(k), *v, end.state.step)).collect()));
        }
        let best = end.run.checkpoint("best");
        if best.is_file() {
            let path = std::fs::canonicalize(&best).unwrap_or(best);
            self.send(Msg::Tags(vec![("wavessm.best_checkpoint".into(), path.display().to_string())]));
        }
        if let Ok(csv) = std::fs::read(end.run.metrics_path()) {
            self.send(Msg::Artifact("metrics.csv".into(), csv));
        }
        self.finish(match end.status {
            FitStatus::Finished => "FINISHED",
            FitStatus::Stopped => "KILLED",
            FitStatus::Failed => "FAILED",
        });
        Ok(())
    }
}

impl Drop for Mlflow {
    /// A fit that unwinds without reaching `on_fit_end` still closes its run.
    fn drop(&mut self) {
        self.finish("FAILED");
    }
}

/// A metric, param or tag key with the characters MLflow refuses replaced by `_`.
fn key(k: &str) -> String {
    k.chars().map(|c| if c.is_alphanumeric() || "_-. :/".contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_query_values_are_escaped() {
        assert_eq!(key("val/accuracy@rate2"), "val/accuracy_rate2");
        assert_eq!(key("model.layer.d_state"), "model.layer.d_state");
    }
}
