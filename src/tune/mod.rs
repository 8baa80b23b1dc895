//! Studies: sweeps (`wavessm fit -m`) on a launcher (local processes or a Slurm job array).

pub mod launcher;
pub mod local;
pub mod multirun;
pub mod slurm;
pub mod sweep;

pub use launcher::LauncherConfig;
