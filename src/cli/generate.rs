//! `wavessm data generate <dataset>`: synthetic benchmarks written in their official on-disk
//! formats, so the ordinary loaders read them.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

/// Datasets `data generate` can write.
#[derive(Debug, Subcommand)]
pub enum Generated {
    /// LRA ListOps: `basic_{train,val,test}.tsv`.
    Listops(ListopsArgs),
    /// LRA Pathfinder: `<difficulty>/imgs/<n>/sample_<i>.png` and `<difficulty>/metadata/<n>.npy`.
    Pathfinder(PathfinderArgs),
}

/// Options of `data generate listops`.
#[derive(Debug, Args)]
pub struct ListopsArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Training examples.
    #[arg(long, default_value_t = 96_000)]
    pub train: usize,
    /// Validation examples.
    #[arg(long, default_value_t = 2_000)]
    pub val: usize,
    /// Test examples.
    #[arg(long, default_value_t = 2_000)]
    pub test: usize,
    /// Maximum tree depth.
    #[arg(long, default_value_t = 10)]
    pub max_depth: usize,
    /// Maximum arguments per operator.
    #[arg(long, default_value_t = 10)]
    pub max_args: usize,
    /// Keep sequences with more tokens than this.
    #[arg(long, default_value_t = 500)]
    pub min_length: usize,
    /// Keep sequences with fewer tokens than this.
    #[arg(long, default_value_t = 2000)]
    pub max_length: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Options of `data generate pathfinder`.
#[derive(Debug, Args)]
pub struct PathfinderArgs {
    /// Output folder (the loader's `data.path`; the difficulty folder is created inside).
    #[arg(long)]
    pub out: PathBuf,
    /// Image side: 32, 64, 128 (Path-X) or 256, each with LRA's settings.
    #[arg(long, default_value_t = 32)]
    pub resolution: usize,
    /// Number of images.
    #[arg(long)]
    pub n: usize,
    /// Paddles per target contour: 14 is LRA's `curv_contour_length_14`, 9 and 6 the easier levels.
    #[arg(long, default_value_t = 14)]
    pub contour_length: usize,
    /// Images per `imgs/<n>/` folder and metadata file.
    #[arg(long, default_value_t = 1000)]
    pub per_folder: usize,
    /// Random seed (image i depends only on the seed and i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Writes the chosen dataset.
pub fn run(g: &Generated) -> Result<()> {
    match g {
        Generated::Listops(a) => {
            if a.min_length + 1 >= a.max_length || a.max_args < 2 {
                bail!("need min_length + 1 < max_length and max_args ≥ 2");
            }
            let opts = crate::data::listops::GenerateOptions {
                train: a.train,
                val: a.val,
                test: a.test,
                max_depth: a.max_depth,
                max_args: a.max_args,
                min_length: a.min_length,
                max_length: a.max_length,
                seed: a.seed,
            };
            crate::data::listops::generate(&opts, &a.out).with_context(|| format!("writing {}", a.out.display()))?;
            println!(
                "wrote {}/basic_{{train,val,test}}.tsv ({} / {} / {} examples)",
                a.out.display(),
                a.train,
                a.val,
                a.test
            );
        }
        Generated::Pathfinder(a) => {
            let opts = crate::data::pathfinder::GenerateOptions {
                resolution: a.resolution,
                n: a.n,
                contour_length: a.contour_length,
                per_folder: a.per_folder,
                seed: a.seed,
            };
            let t0 = std::time::Instant::now();
            let (root, positives) = crate::data::pathfinder::generate(&opts, &a.out)?;
            println!(
                "wrote {} {}×{} images ({positives} positive) to {} in {:.1}s",
                a.n,
                a.resolution,
                a.resolution,
                root.display(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
