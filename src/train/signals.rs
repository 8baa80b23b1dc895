//! Ctrl-C and SIGTERM while training: the first asks the trainer to finish the current
//! optimizer step, write a checkpoint and stop; a second Ctrl-C exits at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when SIGINT or SIGTERM arrived.
#[derive(Debug, Clone)]
pub struct Interrupt {
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers (once per process; later calls share the flag).
    pub fn install() -> Self {
        static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
        let flag = FLAG
            .get_or_init(|| {
                let flag = Arc::new(AtomicBool::new(false));
                for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                    // Order matters: the conditional exit sees the flag before this signal sets it,
                    // so only a second signal exits (with 130, as a shell reports SIGINT).
                    let _ = signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag));
                    let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
                }
                flag
            })
            .clone();
        flag.store(false, Ordering::SeqCst);
        Self { flag }
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
}
