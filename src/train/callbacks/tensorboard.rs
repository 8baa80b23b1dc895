//! `logger: {tensorboard: {log_every_n_epochs}}`: TensorBoard event files under `<run>/tb/`.
//! Scalars (every metric, each group's learning rate, gradient norm, samples/s), the resolved
//! config as text, HParams (the flattened config against the final metrics, so the HParams tab
//! compares runs), parameter histograms every `log_every_n_epochs`, images and texts (the
//! validation figures and text samples).

use std::collections::BTreeMap;

use anyhow::Result;
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::tfevents::{
    Dim, Event, EventWriter, Experiment, HParamInfo, HParamsData, HParamsPluginData, HistogramProto, Image, Kind,
    MetricInfo, MetricName, PluginData, ProtoKind, ProtoValue, SessionEndInfo, SessionLog, SessionStartInfo,
    SummaryMetadata, TensorProto, TensorShapeProto, Value, What, now_secs,
};
use crate::config::ConfigError;
use crate::experiment::ExperimentConfig;
use crate::train::callback::{Callback, EpochEnd, FitEnd, FitStart, FitStatus};

/// Options of the TensorBoard logger.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TensorBoardConfig {
    /// Parameter histograms every N epochs (null: off).
    #[serde(default)]
    pub log_every_n_epochs: Option<usize>,
}

impl TensorBoardConfig {
    /// Checks the ranges, naming `{path}.<key>`.
    pub fn validate(&self, path: &str) -> Result<(), ConfigError> {
        if self.log_every_n_epochs == Some(0) {
            return Err(ConfigError::Key {
                path: format!("{path}.log_every_n_epochs"),
                msg: "must be at least 1 or null".into(),
            });
        }
        Ok(())
    }
}

/// The TensorBoard logger.
pub struct TensorBoard {
    histograms_every: Option<usize>,
    hparams: BTreeMap<String, ProtoValue>,
    config_yaml: String,
    writer: Option<EventWriter>,
    experiment_written: bool,
}

impl TensorBoard {
    /// From `logger.tensorboard`, if set.
    pub fn from_config(cfg: &ExperimentConfig) -> Result<Option<Box<dyn Callback>>> {
        let Some(tb) = &cfg.logger.tensorboard else { return Ok(None) };
        let hparams = super::flat_config(cfg).into_iter().map(|(k, v)| (k, proto_value(&v))).collect();
        Ok(Some(Box::new(TensorBoard {
            histograms_every: tb.log_every_n_epochs,
            hparams,
            config_yaml: cfg.to_yaml(),
            writer: None,
            experiment_written: false,
        })))
    }

    fn writer(&mut self) -> Result<&mut EventWriter> {
        self.writer.as_mut().ok_or_else(|| anyhow::anyhow!("tensorboard: the fit has not started"))
    }

    /// Scalars at `step`, one summary.
    fn scalars<'a>(&mut self, step: usize, values: impl IntoIterator<Item = (&'a str, f64)>) -> Result<()> {
        let value = values.into_iter().map(|(tag, v)| scalar(tag, v)).collect();
        self.writer()?.summary(step, value)
    }

    /// The HParams columns: every config key, and the metrics seen so far.
    fn write_experiment(&mut self, step: usize, metrics: impl IntoIterator<Item = String>) -> Result<()> {
        let hparam_infos = self
            .hparams
            .iter()
            .map(|(name, v)| HParamInfo {
                name: name.clone(),
                r#type: match v.kind {
                    Some(ProtoKind::NumberValue(_)) => 3,
                    Some(ProtoKind::BoolValue(_)) => 2,
                    _ => 1,
                },
            })
            .collect();
        let metric_infos = metrics
            .into_iter()
            .map(|tag| MetricInfo { name: Some(MetricName { group: String::new(), tag }) })
            .collect();
        let data = HParamsData::Experiment(Experiment { hparam_infos, metric_infos });
        self.writer()?.summary(step, vec![hparams_value("_hparams_/experiment", data)])
    }
}

impl Callback for TensorBoard {
    fn name(&self) -> &'static str {
        "tensorboard"
    }

    fn on_fit_start(&mut self, start: &FitStart) -> Result<()> {
        let mut w = EventWriter::create(&start.run.root.join("tb"))?;
        if start.resumed {
            // Readers drop what a crashed process logged after the checkpoint it resumes from.
            let what = Some(What::SessionLog(SessionLog { status: 1 }));
            w.write(&Event { wall_time: now_secs(), step: start.step as i64 + 1, what })?;
        }
        self.writer = Some(w);
        let config = format!("```yaml\n{}\n```", self.config_yaml.trim_end());
        let mut about = format!(
            "run: `{}`  \nparameters: {}  \nstarted at step {}",
            start.run.root.display(),
            start.num_params,
            start.step
        );
        if let Some(wb) = &start.cfg.wandb {
            about.push_str(&format!("  \nwandb: {}", super::wandb::tags(wb).join(", ")));
        }
        let session = HParamsData::SessionStartInfo(SessionStartInfo {
            hparams: self.hparams.clone(),
            start_time_secs: now_secs(),
        });
        let values =
            vec![text("config", &config), text("run", &about), hparams_value("_hparams_/session_start_info", session)];
        let w = self.writer()?;
        w.summary(start.step, values)?;
        w.flush()
    }

    fn on_train_step(&mut self, step: usize, _epoch: usize, loss: f64, grad_norm: f64) -> Result<()> {
        self.scalars(step, [("train/loss_step", loss), ("train/grad_norm", grad_norm)])
    }

    fn on_epoch_end(&mut self, end: &EpochEnd, _state: &mut serde_json::Value) -> Result<bool> {
        let lrs: Vec<(String, f64)> =
            end.groups.iter().zip(end.lrs).map(|(g, lr)| (format!("train/lr/{}", g.name), *lr)).collect();
        let values = end
            .train
            .iter()
            .chain(end.val)
            .map(|(k, v)| (k.as_str(), *v))
            .chain(lrs.iter().map(|(k, v)| (k.as_str(), *v)))
            .chain([("train/samples_per_sec", end.samples_per_sec), ("epoch", (end.epoch + 1) as f64)]);
        self.scalars(end.step, values)?;
        if !self.experiment_written && !end.val.is_empty() {
            // Readers keep a tag's first plugin metadata, so the columns are written once,
            // with the test metrics the run will end with (the validation ones, renamed).
            // (A first validation within an epoch has no training metrics yet: the same names.)
            let renamed = |to: &'static str| {
                end.val.keys().filter_map(|k| k.strip_prefix("val/")).map(move |k| format!("{to}/{k}"))
            };
            let train: Vec<String> = if end.mid_epoch {
                renamed("train").filter(|k| !k.contains('@')).collect()
            } else {
                end.train.keys().cloned().collect()
            };
            let metrics = train.into_iter().chain(end.val.keys().cloned()).chain(renamed("test")).collect::<Vec<_>>();
            self.write_experiment(end.step, metrics)?;
            self.experiment_written = true;
        }
        if !end.mid_epoch && self.histograms_every.is_some_and(|n| (end.epoch + 1).is_multiple_of(n)) {
            let value = parameters(end.model)
                .into_iter()
                .map(|(path, v)| Value { tag: format!("params/{path}"), metadata: None, kind: Some(histogram(&v)) })
                .collect();
            self.writer()?.summary(end.step, value)?;
        }
        self.writer()?.flush()?;
        Ok(false)
    }

    fn on_image(&mut self, tag: &str, png: &[u8], step: usize) -> Result<()> {
        let (width, height, colorspace) =
            png_header(png).ok_or_else(|| anyhow::anyhow!("tensorboard: image `{tag}` is not a PNG file"))?;
        let image =
            Image { height: height as i32, width: width as i32, colorspace, encoded_image_string: png.to_vec() };
        let w = self.writer()?;
        w.summary(step, vec![Value { tag: tag.into(), metadata: None, kind: Some(Kind::Image(image)) }])?;
        w.flush()
    }

    fn on_text(&mut self, tag: &str, markdown: &str, step: usize) -> Result<()> {
        let w = self.writer()?;
        w.summary(step, vec![text(tag, markdown)])?;
        w.flush()
    }

    fn on_fit_end(&mut self, end: &FitEnd) -> Result<()> {
        if self.writer.is_none() {
            return Ok(());
        }
        let step = end.state.step;
        if let Some(test) = end.test {
            self.scalars(step, test.iter().map(|(k, v)| (k.as_str(), *v)))?;
        }
        // Readers keep the first session end they see, and a stopped or failed run may still
        // be resumed to the end: only a finished run says how it ended.
        if end.status == FitStatus::Finished {
            let info = HParamsData::SessionEndInfo(SessionEndInfo { status: 1, end_time_secs: now_secs() });
            self.writer()?.summary(step, vec![hparams_value("_hparams_/session_end_info", info)])?;
        }
        self.writer()?.flush()
    }
}

/// A scalar summary value.
fn scalar(tag: &str, v: f64) -> Value {
    Value { tag: tag.into(), metadata: None, kind: Some(Kind::SimpleValue(v as f32)) }
}

/// Metadata naming a plugin.
fn plugin(name: &str, content: Vec<u8>) -> Option<SummaryMetadata> {
    Some(SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.into(), content }) })
}

/// A text-plugin value (markdown).
fn text(tag: &str, markdown: &str) -> Value {
    let tensor = TensorProto {
        dtype: 7,
        tensor_shape: Some(TensorShapeProto { dim: vec![Dim { size: 1 }] }),
        float_val: vec![],
        string_val: vec![markdown.as_bytes().to_vec()],
    };
    Value { tag: tag.into(), metadata: plugin("text", vec![]), kind: Some(Kind::Tensor(tensor)) }
}

/// An hparams-plugin value (the payload is in the metadata; the tensor is a placeholder, as
/// TensorBoard's own writer does).
fn hparams_value(tag: &str, data: HParamsData) -> Value {
    use prost::Message;
    let content = HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
    let tensor = TensorProto { dtype: 1, tensor_shape: None, float_val: vec![0.0], string_val: vec![] };
    Value { tag: tag.into(), metadata: plugin("hparams", content), kind: Some(Kind::Tensor(tensor)) }
}

/// A config value as an HParams value (numbers stay numbers, so the tab can sort and plot them).
fn proto_value(v: &serde_yaml::Value) -> ProtoValue {
    let kind = match v {
        serde_yaml::Value::Number(n) => ProtoKind::NumberValue(n.as_f64().unwrap_or(f64::NAN)),
        serde_yaml::Value::Bool(b) => ProtoKind::BoolValue(*b),
        other => ProtoKind::StringValue(super::value_text(other)),
    };
    ProtoValue { kind: Some(kind) }
}

/// Buckets of a histogram: equal widths between the smallest and largest value.
const BUCKETS: usize = 30;

/// A histogram of `v` (non-finite values are left out).
fn histogram(v: &[f32]) -> Kind {
    let finite: Vec<f64> = v.iter().map(|&x| x as f64).filter(|x| x.is_finite()).collect();
    let (min, max) = finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    let mut h = HistogramProto {
        min: if finite.is_empty() { 0.0 } else { min },
        max: if finite.is_empty() { 0.0 } else { max },
        num: finite.len() as f64,
        sum: finite.iter().sum(),
        sum_squares: finite.iter().map(|x| x * x).sum(),
        ..Default::default()
    };
    if !finite.is_empty() {
        let width = (max - min) / BUCKETS as f64;
        if width > 0.0 {
            h.bucket = vec![0.0; BUCKETS];
            h.bucket_limit = (1..=BUCKETS).map(|i| min + width * i as f64).collect();
            h.bucket_limit[BUCKETS - 1] = max;
            for x in &finite {
                h.bucket[(((x - min) / width) as usize).min(BUCKETS - 1)] += 1.0;
            }
        } else {
            (h.bucket_limit, h.bucket) = (vec![max], vec![finite.len() as f64]);
        }
    }
    Kind::Histo(h)
}

/// Every float parameter as `(module path, values)`.
fn parameters<M: Module>(model: &M) -> Vec<(String, Vec<f32>)> {
    struct Collect {
        path: Vec<String>,
        out: Vec<(String, Vec<f32>)>,
    }
    impl ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Ok(v) = param.val().try_into_vec_as::<f32>() {
                self.out.push((self.path.join("."), v));
            }
        }
    }
    let mut c = Collect { path: vec![], out: vec![] };
    model.visit(&mut c);
    c.out
}

/// Width, height and channel count from a PNG's IHDR chunk.
fn png_header(png: &[u8]) -> Option<(u32, u32, i32)> {
    if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().expect("4 bytes"));
    let channels = match png[25] {
        0 => 1,
        4 => 2,
        2 | 3 => 3,
        6 => 4,
        _ => return None,
    };
    Some((be(16), be(20), channels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_finite_value_once() {
        let v: Vec<f32> = (0..100).map(|i| i as f32 / 7.0).chain([f32::NAN]).collect();
        let Kind::Histo(h) = histogram(&v) else { panic!() };
        assert_eq!(h.num, 100.0);
        assert_eq!(h.bucket.iter().sum::<f64>(), 100.0);
        assert_eq!(h.bucket.len(), h.bucket_limit.len());
        assert_eq!(*h.bucket_limit.last().unwrap(), h.max);
        assert!(h.bucket_limit.windows(2).all(|w| w[0] < w[1]));
        let Kind::Histo(c) = histogram(&[2.0; 5]) else { panic!() };
        assert_eq!((c.bucket, c.bucket_limit), (vec![5.0], vec![2.0]));
    }

    #[test]
    fn png_header_reads_size_and_channels() {
        let mut png = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png, 3, 2);
            enc.set_color(png::ColorType::Rgb);
            enc.write_header().unwrap().write_image_data(&[0; 18]).unwrap();
        }
        assert_eq!(png_header(&png), Some((3, 2, 3)));
        assert_eq!(png_header(b"not a png at all, not at all"), None);
    }
}
