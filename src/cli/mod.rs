//! The `wavessm` command line: `fit`, `validate`, `test`, `predict`, `bench`, `data generate`.

pub mod args;
pub mod bench;
pub mod bench_data;
pub mod bench_fit;
pub mod bench_generate;
pub mod bench_infer;
pub mod bench_length;
pub mod commands;
pub mod d4l;
pub mod generate;
pub mod infer;
pub mod plot;
pub mod runs;
pub mod sample;
pub mod sweep;
pub mod tune;
pub mod weights;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

const OVERRIDES_HELP: &str = "Config overrides, applied in order after the defaults and -c files. \
Hydra style: `key.sub=value`, `group=option` (e.g. `model=s4d`, `experiment=smnist/s4d`), \
`+key=value` (add), `++key=value` (add or replace), `~key` (remove), `key=null`. \
LightningCLI style: `--key.sub value` or `--key.sub=value`. Values are YAML 1.2 \
(`no`/`on`/`off` stay strings).";

/// Train, evaluate and benchmark state-space sequence models from YAML experiments.
#[derive(Debug, Parser)]
#[command(name = "wavessm", version, about, long_about = None, after_help = "Run `wavessm fit` with no arguments to train the embedded default (S4D on 8x8 digits).")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model (embedded default: S4D on the 8x8 digits, no download needed).
    Fit(FitArgs),
    /// Evaluate a checkpoint on the validation split.
    Validate(EvalArgs),
    /// Evaluate a checkpoint on the test split.
    Test(EvalArgs),
    /// Write one prediction per input of a split to a CSV file.
    Predict(PredictArgs),
    /// Time a benchmark case (same shapes as the PyTorch reference script).
    Bench(bench::BenchArgs),
    /// Dataset tools.
    #[command(subcommand)]
    Data(DataCommand),
    /// Move weights to and from PyTorch state_dicts (.safetensors).
    #[command(subcommand)]
    Weights(weights::WeightsCommand),
    /// List runs: status, progress, best and test metrics, and the config keys that differ.
    Runs(runs::RunsArgs),
    /// Plot learning curves of runs on shared axes (PNG or SVG).
    Plot(plot::PlotArgs),
    /// Sample text from a language-model checkpoint (prompt in conv mode, then steps).
    Generate(sample::GenerateArgs),
    /// Search hyperparameters (`search:` from hparams_search=<name> or -c), stopping trials
    /// early with ASHA, on launcher=local|slurm.
    Tune(tune::TuneArgs),
    /// Run a detector over a long multi-detector strain series (whitened in chunks), writing its
    /// statistic as a time series; `--timeslide` for background.
    Infer(infer::InferArgs),
}

/// `wavessm data …`.
#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate a synthetic benchmark in its official on-disk format.
    #[command(subcommand)]
    Generate(generate::Generated),
    /// Parse a dataset once into memory-mapped shards that training then reads
    /// (`<data dir>/prepared/<dataset>-<config hash>/{train,val,test}.wsd`).
    #[command(after_help = "The first argument may name a data config: `wavessm data prepare sc10 \
data.path=…` is `data=sc10 data.path=…`. Training uses the shards when `data.prepared` is \
`auto` (default) or `always` and the data options match.")]
    Prepare(PrepareArgs),
}

/// Options of `data prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The dataset: a data config name (`sc10`) and/or overrides, as for `fit`.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options shared by every command that builds a config.
#[derive(Debug, Args, Clone, Default)]
pub struct ConfigArgs {
    /// Config file merged after the defaults (LightningCLI `-c`); repeatable, applied in order.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Vec<PathBuf>,
    /// Folder searched for config groups before the embedded configs; repeatable.
    #[arg(long = "config-dir", value_name = "DIR")]
    pub config_dir: Vec<PathBuf>,
    /// Print the fully resolved config as YAML and exit.
    #[arg(long = "print-config", alias = "print_config")]
    pub print_config: bool,
    #[arg(value_name = "OVERRIDES", help = OVERRIDES_HELP)]
    /// Config overrides.
    pub overrides: Vec<String>,
}

/// Options of `fit`.
#[derive(Debug, Args)]
pub struct FitArgs {
    /// Config sources and overrides.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Continue the run in RUN_DIR from its last checkpoint (its config.yaml plus overrides).
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Start a new run from another run's weights (fine-tuning): CKPT is a `.bpk` or a run
    /// folder (its best, else last checkpoint); the optimizer starts fresh.
    #[arg(long, value_name = "CKPT", conflicts_with = "resume")]
    pub init_from: Option<PathBuf>,
    /// With --init-from: load the parameters whose paths match and report the rest.
    #[arg(long, requires = "init_from")]
    pub partial: bool,
    /// Stop after this many epochs have completed, leaving a resumable run.
    #[arg(long, value_name = "N")]
    pub stop_after_epochs: Option<usize>,
    /// Sweep: every override with a comma list, `range(…)`, `choice(…)` or `glob(…)` is an
    /// axis; the runs are their product, on `launcher=local|slurm` (Hydra's `-m`).
    #[arg(short = 'm', long = "multirun")]
    pub multirun: bool,
    /// Launch a sweep larger than `launcher.max_runs` without asking.
    #[arg(long)]
    pub yes: bool,
    /// D4L's experiment-script flags, mapped to config keys.
    #[command(flatten)]
    pub d4l: d4l::D4lArgs,
}

/// Options of `validate` and `test`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Checkpoint to evaluate (e.g. runs/smnist-s4d/version_0/checkpoints/best.bpk).
    #[arg(long, value_name = "FILE")]
    pub ckpt: PathBuf,
    /// Multiply every SSM step size by this factor (2: data at half the training sampling rate).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Overrides applied to the checkpoint's config (e.g. `data.path=…`).
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Options of `predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Checkpoint to predict with.
    #[arg(long, value_name = "FILE")]
    pub ckpt: PathBuf,
    /// Multiply every SSM step size by this factor (2: data at half the training sampling rate).
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Split to predict: train, val or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Output CSV (default: predictions_<split>.csv beside the checkpoint's run).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Overrides applied to the checkpoint's config.
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let argv = args::lightning_to_hydra(std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect());
    let cli = Cli::parse_from(argv);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
