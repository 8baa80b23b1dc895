//! Training: optimizer groups, schedules, checkpoints, runs on disk, and the loop.

pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod optim;
pub mod progress;
pub mod run;
pub mod scheduler;
pub mod shared;

pub use config::{DeviceKind, LoggerConfig, Mode, OptimizerConfig, ParamGroupConfig, ProgressMode, TrainerConfig};
pub use fit::{FitOptions, FitSummary, Setup, device_for, evaluate, fit};
pub use scheduler::SchedulerConfig;
