//! Training: optimizer groups, schedules, checkpoints, runs on disk, and the loop.

pub mod callback;
pub mod callbacks;
pub mod chain_figures;
pub mod checkpoint;
pub mod config;
pub mod device;
pub mod figures;
pub mod fit;
pub mod init_from;
pub mod nonfinite;
pub mod optim;
pub mod optimizers;
pub mod progress;
pub mod run;
pub mod run_info;
pub mod scheduler;
pub mod schedules;
pub mod shared;
pub mod signals;
pub mod status;
pub mod trainer;
pub mod val_figures;

pub use config::{
    CheckpointConfig, DeviceKind, LoggerConfig, Mode, OnNonFinite, OptimizerConfig, ParamGroupConfig, Precision,
    ProgressMode, TrainerConfig,
};
pub use device::device_for;
pub use fit::{FitOptions, FitSummary, Setup, evaluate, fit};
pub use scheduler::SchedulerConfig;
