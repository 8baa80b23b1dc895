//! Studies: sweeps (`wavessm fit -m`) and searches (`wavessm tune`, ASHA) on a launcher (local
//! processes or Slurm).

pub mod asha;
pub mod launcher;
pub mod local;
pub mod multirun;
pub mod slurm;
pub mod space;
pub mod study;
pub mod sweep;

pub use launcher::LauncherConfig;
