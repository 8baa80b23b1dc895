//! `wavessm generate --ckpt CKPT`: samples text from a language model autoregressively (see
//! [`crate::model::generate`]).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::ConfigArgs;
use super::commands::load_for_eval;
use crate::data::DataSpec;
use crate::data::lm::Level;
use crate::model::generate::{Sampling, generate};

/// Options of `generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A language-model checkpoint (task `lm`).
    #[arg(long, value_name = "FILE")]
    pub ckpt: PathBuf,
    /// Text the samples continue.
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// A file whose text the samples continue.
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    /// Samples to draw.
    #[arg(long, default_value_t = 1)]
    pub n: usize,
    /// Tokens to generate per sample.
    #[arg(long, default_value_t = 200)]
    pub length: usize,
    /// Softmax temperature (0: greedy).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f64,
    /// Seed of the sampler: the same seed gives the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Overrides applied to the checkpoint's config (e.g. `data.path=…`).
    #[command(flatten)]
    pub config: ConfigArgs,
}

/// Runs the command.
pub fn run(a: &GenerateArgs) -> Result<()> {
    check(a)?;
    let (cfg, setup, model) = load_for_eval(&a.ckpt, &a.config, 1.0)?;
    let model = model.as_sequence().cloned().with_context(|| {
        format!("{}: generate steps the sequence backbone; model `{}` has no step mode", a.ckpt.display(), model.kind())
    })?;
    if !matches!(cfg.task.name.as_str(), "lm" | "adaptivelm") {
        bail!(
            "{}: generate needs a language-model checkpoint (task lm or adaptivelm); this one is task `{}`",
            a.ckpt.display(),
            cfg.task.name
        );
    }
    let data = DataSpec::from_named(&cfg.data, "data")?;
    let (tokens, level) = data
        .dataset
        .vocabulary()
        .context("generate needs text data with a vocabulary (wikitext103 or another train/valid/test text)")??;
    let prompt = match (&a.prompt, &a.prompt_file) {
        (Some(p), _) => p.clone(),
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
        (None, None) => String::new(),
    };
    let mut ids = encode(&prompt, &tokens, level)?;
    if ids.is_empty() {
        ids.push(if level == Level::Word { crate::data::lm::EOS } else { 0 });
    }
    let sampling = Sampling { temperature: a.temperature, top_k: a.top_k, top_p: a.top_p, seed: a.seed };
    let out = generate(&model, &setup.device, &ids, a.n, a.length, setup.data.train.seq_len, &sampling)?;
    for (i, o) in out.iter().enumerate() {
        let words: Vec<&str> = o.iter().map(|&t| tokens.get(t as usize).map_or("<unk>", String::as_str)).collect();
        if a.n > 1 {
            println!("--- sample {} ---", i + 1);
        }
        println!("{}{}", prompt, level.join(&words));
    }
    Ok(())
}

/// Checks the numeric options.
fn check(a: &GenerateArgs) -> Result<()> {
    if a.n == 0 || a.n > 4096 {
        bail!("--n must be in 1..=4096, got {}", a.n);
    }
    if a.length > 1_000_000 {
        bail!("--length must be at most 1000000, got {}", a.length);
    }
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        bail!("--temperature must be a finite number ≥ 0, got {}", a.temperature);
    }
    if !(a.top_p > 0.0 && a.top_p <= 1.0) {
        bail!("--top-p must be in (0, 1], got {}", a.top_p);
    }
    Ok(())
}

/// The prompt as token ids; characters or words outside the vocabulary are an error naming
/// them (a word-level vocabulary maps them to `<unk>` with a note instead).
fn encode(prompt: &str, tokens: &[String], level: Level) -> Result<Vec<u32>> {
    let index: std::collections::HashMap<&str, u32> =
        tokens.iter().enumerate().map(|(i, t)| (t.as_str(), i as u32)).collect();
    let mut unknown: Vec<String> = Vec::new();
    let ids: Vec<u32> = level
        .tokens(prompt)
        .map(|t| {
            index.get(t.as_ref()).copied().unwrap_or_else(|| {
                if !unknown.contains(&t.to_string()) {
                    unknown.push(t.to_string());
                }
                0
            })
        })
        .collect();
    let ids = if level == Level::Word && !prompt.ends_with('\n') {
        ids[..ids.len().saturating_sub(1)].to_vec() // no <eos> after an unfinished last line
    } else {
        ids
    };
    if !unknown.is_empty() {
        let list = unknown.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
        match level {
            Level::Char => bail!("the prompt has characters outside the model's vocabulary: {list}"),
            Level::Word => eprintln!("note: the prompt's words {list} are outside the vocabulary; read as <unk>"),
        }
    }
    Ok(ids)
}
