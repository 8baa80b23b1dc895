//! Training: optimizer groups, schedules, checkpoints, runs on disk, and the loop.

pub mod checkpoint;
pub mod fit;
pub mod optim;
pub mod progress;
pub mod run;
pub mod scheduler;
pub mod shared;
pub mod torch;

pub use fit::{FitOptions, FitSummary, Setup, device_for, evaluate, fit};
pub use scheduler::SchedulerConfig;
