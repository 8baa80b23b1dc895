//! The MLflow logger's background side: a REST client for `/api/2.0/mlflow/…` and the
//! server's artifact proxy, with retries and backoff, that opens (or, on resume, reopens) the
//! run, sends the queued records and sets the final status.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// Attempts per request (connection errors, 429 and 5xx are retried).
const ATTEMPTS: u32 = 4;
/// One record for the server.
pub(super) enum Msg {
    /// `(key, value, step)`.
    Metrics(Vec<(String, f64, usize)>),
    /// Tags to set.
    Tags(Vec<(String, String)>),
    /// An artifact: its path in the run's artifact tree and its bytes.
    Artifact(String, Vec<u8>),
}

/// What the caller and the thread share.
pub(super) struct Shared {
    /// Set when the first problem was printed.
    pub(super) warned: AtomicBool,
    /// The run's final status, set at the end.
    pub(super) end: Mutex<Option<&'static str>>,
    /// When to give up on remaining records.
    pub(super) deadline: Mutex<Option<Instant>>,
}

impl Shared {
    pub(super) fn warn(&self, uri: &str, what: &str) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!(
                "warning: mlflow ({uri}): {what}; training goes on, records the server does not take are dropped \
                 (this warning is printed once)"
            );
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline.lock().map(|d| d.is_some_and(|d| Instant::now() >= d)).unwrap_or(true)
    }
}

/// The run on the server.
struct RunInfo {
    id: String,
    artifact_uri: String,
}

/// Why a request failed.
enum Failure {
    /// Worth another try (no connection, 429, 5xx).
    Retry(String),
    /// The server refused it.
    Refused(String),
}

/// The background thread's side: talks to the server.
pub(super) struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    shared: Arc<Shared>,
    experiment: String,
    run_name: String,
    tags: Vec<(String, String)>,
    params: Vec<(String, String)>,
    id_file: PathBuf,
    run: Option<RunInfo>,
}

impl Client {
    /// A client for the server at `uri` (the thread opens the run on its first record).
    pub(super) fn new(
        uri: &str,
        shared: Arc<Shared>,
        experiment: String,
        run_name: String,
        tags: Vec<(String, String)>,
        params: Vec<(String, String)>,
        id_file: PathBuf,
    ) -> Self {
        Client {
            agent: ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(3)))
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .into(),
            base: uri.trim_end_matches('/').to_string(),
            auth: auth_header(),
            shared,
            experiment,
            run_name,
            tags,
            params,
            id_file,
            run: None,
        }
    }

    /// Sends records until the logger is finished, then sets the run's status.
    pub(super) fn serve(mut self, rx: Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            // Metrics that piled up go in one request.
            while let Ok(m) = rx.try_recv() {
                batch.push(m);
                if batch.len() >= 64 {
                    break;
                }
            }
            self.handle(batch);
        }
        let status = self.shared.end.lock().ok().and_then(|e| *e).unwrap_or("FAILED");
        if self.ensure_run().is_some() {
            let id = self.run.as_ref().map(|r| r.id.clone()).unwrap_or_default();
            let body = json!({"run_id": id, "status": status, "end_time": now_ms()});
            self.call_logged("POST", "runs/update", body);
        }
    }

    fn handle(&mut self, batch: Vec<Msg>) {
        if self.shared.past_deadline() || self.ensure_run().is_none() {
            return;
        }
        let id = self.run.as_ref().map(|r| r.id.clone()).unwrap_or_default();
        let mut metrics = Vec::new();
        for msg in batch {
            match msg {
                Msg::Metrics(m) => metrics.extend(m),
                Msg::Tags(t) => {
                    for (k, v) in t {
                        self.call_logged("POST", "runs/set-tag", json!({"run_id": id, "key": k, "value": v}));
                    }
                }
                Msg::Artifact(name, bytes) => self.artifact(&name, bytes),
            }
        }
        let ts = now_ms();
        let metrics: Vec<_> = metrics
            .into_iter()
            .filter(|(_, v, _)| v.is_finite())
            .map(|(k, v, step)| json!({"key": k, "value": v, "timestamp": ts, "step": step}))
            .collect();
        for chunk in metrics.chunks(1000) {
            self.call_logged("POST", "runs/log-batch", json!({"run_id": id, "metrics": chunk}));
        }
    }

    /// Finds or creates the run (a resumed fit reopens the run its folder names); `None` when
    /// the server cannot be reached.
    fn ensure_run(&mut self) -> Option<&RunInfo> {
        if self.run.is_none() {
            match self.open_run() {
                Ok(r) => self.run = Some(r),
                Err(e) => {
                    self.shared.warn(&self.base, &e);
                    return None;
                }
            }
        }
        self.run.as_ref()
    }

    fn open_run(&mut self) -> Result<RunInfo, String> {
        if let Ok(id) = std::fs::read_to_string(&self.id_file) {
            let id = id.trim().to_string();
            let got = self.call("GET", &format!("runs/get?run_id={id}"), serde_json::Value::Null)?;
            let info = &got["run"]["info"];
            let artifact_uri = info["artifact_uri"].as_str().unwrap_or_default().to_string();
            self.call("POST", "runs/update", json!({"run_id": id, "status": "RUNNING"}))?;
            return Ok(RunInfo { id, artifact_uri });
        }
        let name: String = url_encode(&self.experiment);
        let exp = match self.call("GET", &format!("experiments/get-by-name?experiment_name={name}"), json!(null)) {
            Ok(v) => v["experiment"]["experiment_id"].as_str().unwrap_or_default().to_string(),
            Err(e) if e.contains("RESOURCE_DOES_NOT_EXIST") => {
                self.call("POST", "experiments/create", json!({"name": self.experiment}))?["experiment_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }
            Err(e) => return Err(e),
        };
        let tags: Vec<_> = self.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        let body = json!({"experiment_id": exp, "run_name": self.run_name, "start_time": now_ms(), "tags": tags});
        let created = self.call("POST", "runs/create", body)?;
        let info = &created["run"]["info"];
        let id = info["run_id"].as_str().ok_or("runs/create returned no run_id")?.to_string();
        let _ = crate::io::write_atomic(&self.id_file, |f| std::io::Write::write_all(f, id.as_bytes()));
        let run = RunInfo { id: id.clone(), artifact_uri: info["artifact_uri"].as_str().unwrap_or_default().into() };
        // Params are the flattened config; MLflow caps a value's length and a batch's size.
        let params: Vec<_> = self
            .params
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v.chars().take(500).collect::<String>()}))
            .collect();
        for chunk in params.chunks(100) {
            self.call_logged("POST", "runs/log-batch", json!({"run_id": id, "params": chunk}));
        }
        Ok(run)
    }

    /// Uploads an artifact through the server's proxy (`mlflow-artifacts:`) or into a local
    /// file store (`file:` or a path).
    fn artifact(&mut self, name: &str, bytes: Vec<u8>) {
        let uri = self.run.as_ref().map(|r| r.artifact_uri.clone()).unwrap_or_default();
        if let Some(rest) = uri.strip_prefix("mlflow-artifacts:") {
            // `mlflow-artifacts:/1/<run>/artifacts` or `mlflow-artifacts://host:port/1/<run>/artifacts`.
            let path = match rest.strip_prefix("//") {
                Some(r) => r.split_once('/').map(|(_, p)| p).unwrap_or(""),
                None => rest.trim_start_matches('/'),
            };
            let url = format!("{}/api/2.0/mlflow-artifacts/artifacts/{path}/{name}", self.base);
            let res = self.retry(|agent| with_auth(agent.put(&url), &self.auth).send(&bytes[..]));
            if let Err(e) = res {
                self.shared.warn(&self.base, &format!("artifact {name}: {e}"));
            }
        } else if uri.starts_with("file:") || uri.starts_with('/') {
            let dir = PathBuf::from(uri.trim_start_matches("file://").trim_start_matches("file:"));
            if let Err(e) = write_local(&dir.join(name), &bytes) {
                self.shared.warn(&self.base, &format!("artifact {name}: {e}"));
            }
        } else {
            self.shared.warn(&self.base, &format!("artifact store {uri:?} is not supported; artifacts are not logged"));
        }
    }

    /// A request whose failure is only warned about.
    fn call_logged(&mut self, method: &str, endpoint: &str, body: serde_json::Value) {
        if let Err(e) = self.call(method, endpoint, body) {
            self.shared.warn(&self.base, &format!("{endpoint}: {e}"));
        }
    }

    /// `METHOD /api/2.0/mlflow/<endpoint>` with retries; the JSON answer or why it failed.
    fn call(&mut self, method: &str, endpoint: &str, body: serde_json::Value) -> Result<serde_json::Value, String> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let text = self.retry(|agent| match method {
            "GET" => with_auth(agent.get(&url), &self.auth).call(),
            _ => with_auth(agent.post(&url), &self.auth).send_json(&body),
        })?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Runs a request up to [`ATTEMPTS`] times with doubling pauses, stopping at the deadline.
    fn retry(
        &self,
        send: impl Fn(&ureq::Agent) -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, String> {
        let mut pause = Duration::from_millis(250);
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                if self.shared.past_deadline() {
                    break;
                }
                std::thread::sleep(pause);
                pause *= 2;
            }
            match once(send(&self.agent)) {
                Ok(text) => return Ok(text),
                Err(Failure::Refused(e)) => return Err(e),
                Err(Failure::Retry(e)) => {
                    self.shared.warn(&self.base, &format!("{e} (retrying in the background)"));
                    last = e;
                }
            }
        }
        Err(last)
    }
}

/// Reads an answer: 2xx is success, 429/5xx and transport errors are retried.
fn once(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<String, Failure> {
    let mut resp = r.map_err(|e| Failure::Retry(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    match status {
        200..=299 => Ok(text),
        429 | 500..=599 => Err(Failure::Retry(format!("HTTP {status}: {}", text.trim()))),
        _ => Err(Failure::Refused(format!("HTTP {status}: {}", text.trim()))),
    }
}

/// The `Authorization` header MLflow's client would send, from its environment variables.
fn auth_header() -> Option<String> {
    use base64::Engine;
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = var("MLFLOW_TRACKING_TOKEN") {
        return Some(format!("Bearer {token}"));
    }
    let (user, password) = (var("MLFLOW_TRACKING_USERNAME")?, var("MLFLOW_TRACKING_PASSWORD")?);
    Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))))
}

/// A request with the credentials, if any.
fn with_auth<B>(req: ureq::RequestBuilder<B>, auth: &Option<String>) -> ureq::RequestBuilder<B> {
    match auth {
        Some(a) => req.header("Authorization", a),
        None => req,
    }
}

/// Percent-encodes a query value.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Writes an artifact into a local file store.
fn write_local(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, bytes)
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(url_encode("digits s4d/1"), "digits%20s4d%2F1");
    }
}
