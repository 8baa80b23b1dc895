//! D4L's plain flags on `wavessm fit`, each mapped to config keys (the README's table):
//!
//! | flag | config |
//! |---|---|
//! | `--data_train FILE` | the file merged under `data` |
//! | `--data_val FILE` | merged under `data` too; it must name the same dataset (the validation split comes from it) |
//! | `--subsample_size N` | `loader.subsample=N` (train on the first N training sequences) |
//! | `--tags A B …` | `tags=[A, B, …]` |
//! | `--experiment_name X` | `name=X` |
//! | `--project_name X` | `logger.name=X` (the runs' folder under `logger.save_dir`) |
//! | `--model_cfg FILE` | the file merged under `model` |
//! | `--trainer_cfg FILE` | the file merged under `trainer` |
//! | `--verbose` | `trainer.progress_bar=always` |

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;

use crate::config::ConfigRequest;

/// D4L's experiment-script options.
#[derive(Debug, Args, Clone, Default)]
pub struct D4lArgs {
    /// Training data config (D4L): a file merged under `data`.
    #[arg(long = "data_train", value_name = "FILE")]
    pub data_train: Option<PathBuf>,
    /// Validation data config (D4L): merged under `data` after `--data_train`; must name the same dataset.
    #[arg(long = "data_val", value_name = "FILE")]
    pub data_val: Option<PathBuf>,
    /// Train on the first N training sequences (D4L): `loader.subsample=N`.
    #[arg(long = "subsample_size", value_name = "N")]
    pub subsample_size: Option<usize>,
    /// Tags recorded with the run (D4L): `tags=[…]`; give them last or comma-separated.
    #[arg(long = "tags", value_name = "TAG", num_args = 1.., value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Experiment name (D4L): `name=…`.
    #[arg(long = "experiment_name", value_name = "NAME")]
    pub experiment_name: Option<String>,
    /// Project name (D4L's Neptune project): `logger.name=…`, the runs' folder.
    #[arg(long = "project_name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Model config (D4L): a file merged under `model`.
    #[arg(long = "model_cfg", value_name = "FILE")]
    pub model_cfg: Option<PathBuf>,
    /// Trainer config (D4L): a file merged under `trainer`.
    #[arg(long = "trainer_cfg", value_name = "FILE")]
    pub trainer_cfg: Option<PathBuf>,
    /// Show a progress bar (D4L's `--verbose`): `trainer.progress_bar=always`.
    #[arg(long = "verbose")]
    pub verbose: bool,
}

impl D4lArgs {
    /// Whether any D4L flag was given.
    pub fn is_set(&self) -> bool {
        self.data_train.is_some()
            || self.data_val.is_some()
            || self.subsample_size.is_some()
            || !self.tags.is_empty()
            || self.experiment_name.is_some()
            || self.project_name.is_some()
            || self.model_cfg.is_some()
            || self.trainer_cfg.is_some()
            || self.verbose
    }

    /// Adds the flags' files and keys to a request (the tokens go first, so explicit
    /// overrides still win).
    pub fn apply(&self, req: &mut ConfigRequest) -> Result<()> {
        if let Some(bad) = self.tags.iter().find(|t| t.contains('=')) {
            bail!("--tags: `{bad}` looks like an override; put overrides before --tags or separate tags with commas");
        }
        for (section, file) in [
            ("data", &self.data_train),
            ("data", &self.data_val),
            ("model", &self.model_cfg),
            ("trainer", &self.trainer_cfg),
        ] {
            if let Some(f) = file {
                req.section_files.push((section.to_string(), f.clone()));
            }
        }
        let mut tokens = Vec::new();
        if let Some(n) = self.subsample_size {
            tokens.push(format!("loader.subsample={n}"));
        }
        if !self.tags.is_empty() {
            let quoted: Vec<String> = self.tags.iter().map(|t| format!("'{}'", t.replace('\'', "''"))).collect();
            tokens.push(format!("++tags=[{}]", quoted.join(", ")));
        }
        if let Some(n) = &self.experiment_name {
            tokens.push(format!("++name={n}"));
        }
        if let Some(n) = &self.project_name {
            tokens.push(format!("++logger.name={n}"));
        }
        if self.verbose {
            tokens.push("trainer.progress_bar=always".into());
        }
        tokens.append(&mut req.tokens);
        req.tokens = tokens;
        Ok(())
    }
}
