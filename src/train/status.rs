//! `status.json` of a run: what the owning process last said about it (running, finished,
//! stopped, interrupted, diverged, failed) and when. A run whose file says `running` while
//! nobody holds its lock died without a clean end: it reads as `crashed`.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The last word of a run's process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunStatus {
    /// running | finished | stopped | interrupted | diverged | failed.
    pub status: String,
    /// The process that wrote it.
    pub pid: u32,
    /// Seconds since the epoch when this session of the run started.
    pub started: f64,
    /// Seconds since the epoch of this update.
    pub updated: f64,
    /// Seconds of training over all sessions of the run, up to this update.
    #[serde(default)]
    pub wall_time: f64,
    /// Why it ended, for `diverged` and `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl RunStatus {
    /// Reads `<run>/status.json` (None if missing or unreadable).
    pub fn read(run: &Path) -> Option<Self> {
        let text =
            crate::io::read_text_capped(&run.join("status.json"), crate::io::MAX_CONFIG_BYTES, "status.json").ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes `<run>/status.json` atomically.
    pub fn write(&self, run: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::io::write_atomic(&run.join("status.json"), |f| std::io::Write::write_all(f, &json))?;
        Ok(())
    }
}

/// Whether a process holds the run's lock now (it is training).
pub fn locked(run: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = std::fs::OpenOptions::new().read(true).write(true).open(run.join(".lock")) else { return false };
    // SAFETY: flock on a descriptor we own; released when `f` closes.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) != 0 }
}

/// What a run is now: its status file, corrected to `crashed` when it claims to run but holds
/// no lock (a `kill -9`, a power loss).
pub fn current(run: &Path) -> String {
    match RunStatus::read(run) {
        Some(s) if s.status == "running" && !locked(run) => "crashed".into(),
        Some(s) => s.status,
        None if locked(run) => "running".into(),
        None => "unknown".into(),
    }
}
