//! `wavessm weights export|import`: a model's weights to and from PyTorch state_dicts in
//! `.safetensors` files, under the reference's keys (see [`crate::weights`]).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::module::Module;

use super::ConfigArgs;
use super::commands::{load_for_eval, request};
use crate::io::write_atomic;
use crate::train::checkpoint::{Checkpoint, TrainerState};
use crate::train::optim::Optim;
use crate::train::run::RunDir;
use crate::train::{Setup, device_for};
use crate::weights::{self, DtTransform, ImportOptions, Layout, Select};

const LAYOUT_HELP: &str = "Reference state_dict: `s4-example` (state-spaces/s4 example.py's S4Model: \
encoder, s4_layers.{i}, norms.{i}, decoder) or `s4-sequence` (state-spaces/s4 train.py's Lightning \
module: encoder.0, model.layers.{i}.layer…, model.norm.norm, decoder.0.output_transform)";

const DT_HELP: &str = "How the file stores S4's `inv_dt` (s4.py's dt_transform): exp or softplus \
[default: exp for s4-example, softplus for s4-sequence]";

/// `wavessm weights …`.
#[derive(Debug, clap::Subcommand)]
pub enum WeightsCommand {
    /// Write a checkpoint's weights to a .safetensors file under a PyTorch model's state_dict keys.
    Export(ExportArgs),
    /// Load a PyTorch state_dict (.safetensors) into the model a config builds, and write it as
    /// a run whose checkpoint `validate`, `test`, `predict` and `fit --resume` take.
    #[command(after_help = "On the PyTorch side: `safetensors.torch.save_file(model.state_dict(), \
\"model.safetensors\")` (for a Lightning checkpoint: `torch.load(ckpt)[\"state_dict\"]`).")]
    Import(ImportArgs),
}

/// Options of `weights export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Checkpoint to export (e.g. runs/smnist-s4d/version_0/checkpoints/best.bpk).
    #[arg(long, value_name = "FILE")]
    pub ckpt: PathBuf,
    #[arg(long, help = LAYOUT_HELP)]
    /// Reference layout.
    pub layout: Layout,
    /// Output .safetensors file (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    #[arg(long, value_name = "T", help = DT_HELP)]
    /// dt transform.
    pub dt_transform: Option<DtTransform>,
    /// Leave out parameters the layout has no key for instead of failing.
    #[arg(long)]
    pub partial: bool,
    /// Overrides applied to the checkpoint's config (e.g. `data.path=…`: its data is loaded to
    /// rebuild the model).
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options of `weights import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The .safetensors file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[arg(long, help = LAYOUT_HELP)]
    /// Reference layout.
    pub layout: Layout,
    #[arg(long, value_name = "T", help = DT_HELP)]
    /// dt transform.
    pub dt_transform: Option<DtTransform>,
    /// Load only the SSM parameters (`kernel.*`, `D`); everything else keeps its initialization.
    #[arg(long)]
    pub ssm_only: bool,
    /// Keep the initialization of parameters whose key is missing, ignore unexpected keys.
    #[arg(long)]
    pub partial: bool,
    /// The model's config, as for `fit` (the run folder goes under `logger.save_dir`).
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Runs `weights export` or `weights import`.
pub fn run(cmd: &WeightsCommand) -> Result<()> {
    match cmd {
        WeightsCommand::Export(a) => {
            let (_, _, model) = load_for_eval(&a.ckpt, &a.config, 1.0)?;
            let model = sequence_only(&model)?;
            let (keys, left_out) = weights::export(model, &a.out, a.layout, a.dt_transform, a.partial)?;
            println!("wrote {} tensors under layout {} to {}", keys.len(), a.layout, a.out.display());
            if !left_out.is_empty() {
                println!("left out (no key in {}): {}", a.layout, left_out.join(", "));
            }
            Ok(())
        }
        WeightsCommand::Import(a) => import(a),
    }
}

/// The sequence backbone: PyTorch layouts exist for it only.
fn sequence_only(model: &crate::model::Model) -> Result<&crate::model::SequenceModel> {
    model.as_sequence().ok_or_else(|| {
        anyhow::anyhow!(
            "weights import/export has PyTorch layouts for the sequence backbone only, not `{}`",
            model.kind()
        )
    })
}

fn import(a: &ImportArgs) -> Result<()> {
    let cfg = request(&a.config).resolve()?;
    if a.config.print_config {
        print!("{}", cfg.to_yaml());
        return Ok(());
    }
    let setup = Setup::new(&cfg, device_for(&cfg.trainer)?)?;
    let select = if a.ssm_only { Select::Ssm } else { Select::All };
    let opts = ImportOptions { layout: a.layout, dt_transform: a.dt_transform, select, partial: a.partial };
    let (model, report) = weights::import(sequence_only(&setup.model)?.clone(), &a.file, &opts)?;
    let optim = Optim::new(&cfg)?;
    let config_yaml = cfg.to_yaml();
    let state = TrainerState::fresh(optim.states.clone(), config_yaml.clone());
    let ck = Checkpoint {
        state,
        model: model.into_record().into_bytes().map_err(|e| anyhow::anyhow!("serializing the model: {e:?}"))?.to_vec(),
        optimizer: optim.inner.into_bytes().map_err(|e| anyhow::anyhow!("serializing the optimizer: {e:?}"))?.to_vec(),
    };
    let run = RunDir::create(&cfg.logger.save_dir, cfg.logger.name.as_deref().unwrap_or(&cfg.name))?;
    write_atomic(&run.config_path(), |f| f.write_all(config_yaml.as_bytes()))?;
    let path = run.checkpoint("last");
    ck.save(&path).with_context(|| format!("writing {}", path.display()))?;
    println!("loaded {} tensors from {} ({})", report.loaded.len(), a.file.display(), a.layout);
    if !report.kept.is_empty() {
        println!("kept at initialization: {}", report.kept.join(", "));
    }
    if !report.ignored.is_empty() {
        println!("ignored keys: {}", report.ignored.join(", "));
    }
    println!(
        "wrote {} (evaluate with `validate --ckpt`, fine-tune with `fit --resume {}`)",
        path.display(),
        run.root.display()
    );
    Ok(())
}
