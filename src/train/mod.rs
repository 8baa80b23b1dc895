//! Training: optimizer groups, schedules, checkpoints, runs on disk, and the loop.

pub mod callback;
pub mod callbacks;
pub mod checkpoint;
pub mod config;
pub mod fit;
pub mod nonfinite;
pub mod optim;
pub mod progress;
pub mod run;
pub mod scheduler;
pub mod shared;
pub mod signals;
pub mod trainer;

pub use config::{
    DeviceKind, LoggerConfig, Mode, OnNonFinite, OptimizerConfig, ParamGroupConfig, ProgressMode, TrainerConfig,
};
pub use fit::{FitOptions, FitSummary, Setup, device_for, evaluate, fit};
pub use scheduler::SchedulerConfig;
