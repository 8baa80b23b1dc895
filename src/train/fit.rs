//! What every command starts from (device, data, task and model), evaluation, and `fit`, whose
//! loop is the [`super::trainer::Trainer`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor};

use crate::config::ConfigError;
use crate::data::augment::Augmentation;
use crate::data::{BatchIter, DataModule, DataSpec, SeqData};
use crate::experiment::ExperimentConfig;
use crate::model::chain::FORWARD;
use crate::model::{LayerConfig, Model, PoolKind, SequenceModel};
use crate::task::TaskConfig;
use crate::task::loss_manager::{At, LossManager, TermMetrics};

/// Data, task and model built from a config: what every command starts from.
pub struct Setup {
    /// The splits.
    pub data: DataModule,
    /// The task.
    pub task: TaskConfig,
    /// Decoder outputs K.
    pub d_output: usize,
    /// The freshly initialized model.
    pub model: Model,
    /// The device (autodiff for training, plain for evaluation).
    pub device: Device,
    /// The dataset's augmentation of training batches.
    pub augment: Option<Augmentation>,
}

impl Setup {
    /// Loads data (prepared shards or raw files, as `data.prepared` says; printed) and
    /// initializes the model from `cfg.seed` on `device`.
    pub fn new(cfg: &ExperimentConfig, device: Device) -> Result<Self> {
        let spec = DataSpec::from_named(&cfg.data, "data")?;
        let (data, source) = spec.load()?;
        eprintln!("data: {} from {source}", cfg.data.name);
        let augment = spec.dataset.augmentation();
        Ok(Self { augment, ..Self::with_data(cfg, data, device)? })
    }

    /// Initializes task and model for already loaded `data`.
    pub fn with_data(cfg: &ExperimentConfig, data: DataModule, device: Device) -> Result<Self> {
        let task = TaskConfig::from_named(&cfg.task, "task")?;
        let d_output = task.d_output(data.target_kind(), data.d_input())?;
        let data = task.prepare_data(data)?;
        let classifier = cfg.model.classifier()?;
        // The autoencoder's loss is only meaningful when no reconstruction sees another
        // detector's data (else copying that detector is a perfect score).
        if matches!(task, TaskConfig::Autoencoder(_)) && !classifier.as_ref().is_some_and(|c| c.per_channel()) {
            let msg = "task `autoencoder` needs a model that reconstructs each channel from that channel \
                       alone (e.g. `gw_autoencoder`)";
            return Err(ConfigError::Key { path: "model._name_".into(), msg: msg.into() }.into());
        }
        // A model with its own loss (a chain's loss manager) reports its own metrics.
        let own = classifier.as_ref().and_then(|c| c.own_metrics());
        if let Some(c) = &classifier
            && ((own.is_none() && task.per_step() != c.per_step()) || data.vocab().is_some())
        {
            let msg = if data.vocab().is_some() {
                format!("model `{}` takes real-valued inputs, the dataset has tokens", c.name())
            } else {
                format!(
                    "model `{}` does not fit task `{}` (one output per sequence or per step)",
                    c.name(),
                    task.name()
                )
            };
            return Err(ConfigError::Key { path: "model._name_".into(), msg }.into());
        }
        if classifier.is_none() && task.per_step() != (cfg.model.pool == PoolKind::None) {
            let msg = if task.per_step() {
                format!("task `{}` predicts every step; set `model.pool=none`", task.name())
            } else {
                format!("task `{}` predicts one target per sequence; use `mean` or `last`", task.name())
            };
            return Err(ConfigError::Key { path: "model.pool".into(), msg }.into());
        }
        let names: Vec<String> =
            own.unwrap_or_else(|| task.metric_names(d_output)).iter().map(|k| format!("val/{k}")).collect();
        if !names.contains(&cfg.trainer.monitor) {
            return Err(ConfigError::Key {
                path: "trainer.monitor".into(),
                msg: format!(
                    "no metric `{}`{}; available: {}",
                    cfg.trainer.monitor,
                    crate::config::suggest(&cfg.trainer.monitor, &names),
                    names.join(", ")
                ),
            }
            .into());
        }
        device.seed(cfg.seed);
        let mut model_cfg = cfg.model.clone();
        LayerConfig::fill_l_max(&mut model_cfg.layer, data.train.seq_len)?;
        // Parameters, optimizer state and a training step's activations must fit in memory
        // (the estimate covers the sequence backbone).
        if classifier.is_none() {
            let d_in = data.vocab().unwrap_or_else(|| data.d_input());
            crate::model::memory::check(&model_cfg, d_in, d_output, data.train.seq_len, cfg.loader.batch_size)?;
        }
        if let Some(c) = &classifier {
            c.check_seq_len("model.options", data.train.seq_len)?;
        }
        if let TaskConfig::AdaptiveLm(_) = &task
            && (classifier.is_some() || data.vocab().is_none() || data.train.is_pairs())
        {
            let msg = "the adaptive embedding and softmax need the sequence backbone (`model._name_: sequence`) \
                       and a token stream such as `data=wikitext103`";
            return Err(ConfigError::Key { path: "task._name_".into(), msg: msg.into() }.into());
        }
        let adaptive = match &task {
            TaskConfig::AdaptiveLm(a) => Some(a),
            _ => None,
        };
        let model = match (classifier, data.vocab()) {
            (None, Some(v)) if adaptive.is_some() => {
                let a = adaptive.expect("matched");
                Model::Sequence(SequenceModel::for_adaptive_tokens(&model_cfg, a, "task", v, &device)?)
            }
            (Some(c), _) => c.init(data.d_input(), d_output, &device)?,
            (None, Some(v)) if data.train.is_pairs() => {
                Model::Sequence(SequenceModel::for_token_pairs(&model_cfg, v, d_output, &device)?)
            }
            (None, Some(v)) => Model::Sequence(SequenceModel::for_tokens(&model_cfg, v, d_output, &device)?),
            (None, None) => Model::Sequence(SequenceModel::new(&model_cfg, data.d_input(), d_output, &device)?),
        };
        Ok(Self { data, task, d_output, model, device, augment: None })
    }
}

/// Restores model parameters from burnpack bytes.
pub fn load_model<M: Module>(model: M, bytes: Vec<u8>, origin: &Path) -> Result<M> {
    let rec = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{}: model section: {e:?}", origin.display()))?;
    model.try_load_record(rec).map_err(|e| {
        anyhow::anyhow!("{}: parameters do not fit this model (was the config changed?): {e:?}", origin.display())
    })
}

/// Model outputs as rows [R, K]: one per sequence (pooled) or one per step (`pool: none`).
pub fn outputs(model: &Model, batch: &crate::data::Batch, k: usize) -> Tensor<2> {
    let out = model.forward(batch.x.clone(), batch.lengths.as_deref()); // [B, L', K]
    let [b, l, _] = out.dims();
    out.reshape([b * l, k])
}

/// Evaluates `model` (in eval mode) on a split; metrics without prefix, or `None` when the
/// split yields no batch (an empty split or `limit_eval_batches: 0`), never zeros.
pub fn evaluate(
    model: &Model,
    split: &SeqData,
    task: &TaskConfig,
    k: usize,
    batch_size: usize,
    limit: Option<usize>,
    device: &Device,
) -> Option<BTreeMap<String, f64>> {
    evaluate_observed(model, split, task, k, (batch_size, limit), device, &mut |_, _| {})
}

/// [`evaluate`] that also shows `observe` each batch with the rows its metrics score on the host
/// (what the validation figures collect). `batches` is (batch size, limit).
pub fn evaluate_observed(
    model: &Model,
    split: &SeqData,
    task: &TaskConfig,
    k: usize,
    (batch_size, limit): (usize, Option<usize>),
    device: &Device,
    observe: &mut dyn FnMut(&crate::data::Batch, &[f32]),
) -> Option<BTreeMap<String, f64>> {
    let mut m = task.metrics();
    let mut terms = TermMetrics::default();
    let mut any = false;
    for idx in BatchIter::sequential(split.len(), batch_size).take(limit.unwrap_or(usize::MAX)) {
        any = true;
        let batch = split.batch(&idx, device);
        if let Some(lm) = model.loss_manager() {
            let (total, t) = managed_loss(model, lm, &batch, None);
            terms.update(total.into_scalar::<f64>(), &host_terms(t), idx.len());
            continue;
        }
        let out = outputs(model, &batch, k);
        let (loss, rows) = task.loss_and_rows(out, &batch);
        let rows_k = rows.dims()[1];
        let host: Vec<f32> = rows.try_into_vec_as::<f32>().expect("f32 outputs");
        m.update(&host, rows_k, &batch.y, loss.into_scalar::<f64>());
        observe(&batch, &host);
    }
    any.then(|| if model.loss_manager().is_some() { terms.finish() } else { m.finish() })
}

/// The loss manager's total and terms for a batch: runs the chain's `forward` command.
pub fn managed_loss(
    model: &Model,
    lm: &LossManager,
    batch: &crate::data::Batch,
    at: Option<At>,
) -> (Tensor<1>, Vec<(String, Tensor<1>)>) {
    let chain = model.as_chain().expect("a loss manager belongs to a chain");
    let (values, _) = chain.run(FORWARD, batch.x.clone(), batch.lengths.as_deref()).expect("`forward` (checked)");
    lm.loss(&values, &batch.y, at)
}

/// Terms as host values.
pub fn host_terms(terms: Vec<(String, Tensor<1>)>) -> Vec<(String, f64)> {
    terms.into_iter().map(|(n, t)| (n, t.into_scalar::<f64>())).collect()
}

/// Prefixes metric names with `split/`.
pub fn prefixed(split: &str, m: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    m.iter().map(|(k, v)| (format!("{split}/{k}"), *v)).collect()
}

/// One line of `k=v` pairs.
pub fn format_metrics(m: &BTreeMap<String, f64>) -> String {
    m.iter().map(|(k, v)| format!("{k}={v:.4}")).collect::<Vec<_>>().join(" ")
}

/// How to run `fit` beyond the config.
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    /// Continue the run in this folder from its `last.bpk`.
    pub resume: Option<PathBuf>,
    /// Stop (as if interrupted) after this many epochs in total have completed.
    pub stop_after_epochs: Option<usize>,
    /// Stop (as if Ctrl-C arrived) once this many optimizer steps in total are done, writing a
    /// mid-epoch checkpoint.
    pub stop_after_steps: Option<usize>,
    /// Print nothing but errors.
    pub quiet: bool,
    /// Start a new run from this checkpoint's weights (a `.bpk` or a run folder).
    pub init_from: Option<PathBuf>,
    /// With `init_from`: load the parameters both have, report the rest.
    pub partial: bool,
}

/// What a finished (or stopped) fit reports.
#[derive(Debug, Clone)]
pub struct FitSummary {
    /// The run folder.
    pub run: PathBuf,
    /// Epochs completed.
    pub epochs: usize,
    /// Optimizer steps taken.
    pub steps: usize,
    /// Best monitored value and its epoch.
    pub best: Option<(f64, usize)>,
    /// Training metrics of each completed epoch in this session (`train/loss`, …).
    pub train_history: Vec<BTreeMap<String, f64>>,
    /// Validation metrics of the last epoch.
    pub val: BTreeMap<String, f64>,
    /// Test metrics of the best checkpoint (when tested).
    pub test: Option<BTreeMap<String, f64>>,
    /// The run reached its end (epochs, steps or early stopping), not a stop or an interruption.
    pub finished: bool,
}

/// Trains as the config says; resumes from `opts.resume` when given (see [`super::trainer`]).
pub fn fit(cfg: &ExperimentConfig, opts: &FitOptions) -> Result<FitSummary> {
    super::trainer::Trainer::open(cfg, opts)?.fit()
}
