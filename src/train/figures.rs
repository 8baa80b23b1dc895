//! Figures a person reads: learning curves of runs on shared axes (`wavessm plot`); the
//! validation figures are in [`super::val_figures`]. PNG or SVG by the file's extension, drawn
//! with `plotters`.
//!
//! Text needs a TrueType font: `$WAVESSM_FONT`, else DejaVu Sans or Arial from the usual
//! system folders (Debian's `fonts-dejavu-core`), loaded once.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Where fonts usually are, in order of preference.
const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/local/share/fonts/DejaVuSans.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Registers a sans-serif font with plotters (once per process).
fn ensure_font() -> Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let candidates: Vec<String> =
            std::env::var("WAVESSM_FONT").into_iter().chain(FONT_PATHS.iter().map(|s| s.to_string())).collect();
        for path in &candidates {
            if let Ok(bytes) = crate::io::read_capped(std::path::Path::new(path), 64 << 20, "a font") {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font found for plot text: set WAVESSM_FONT to a .ttf file (looked in {})",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

/// One run's series: a label and, per metric, (x, y) points.
pub struct Curves {
    /// Legend label.
    pub label: String,
    /// `split/name` → points (x: epoch for per-epoch metrics, step for per-step ones).
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Curves {
    /// Reads a run's `metrics.csv`: per-epoch metrics at x = epoch (1-based), per-step ones
    /// (`train/loss_step`, `train/grad_norm`) at x = step. Non-finite values are left out.
    pub fn read(run: &Path, label: String) -> Result<Self> {
        let path = run.join("metrics.csv");
        let text = crate::io::read_text_capped(&path, crate::io::MAX_DATA_BYTES, "metrics.csv")
            .with_context(|| format!("reading {}", path.display()))?;
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for r in text.lines().skip(1).filter_map(super::run::MetricRow::parse) {
            if !r.value.is_finite() || r.split == "test" {
                continue;
            }
            let x = if r.per_step() { r.step as f64 } else { r.epoch as f64 + 1.0 };
            series.entry(format!("{}/{}", r.split, r.name)).or_default().push((x, r.value));
        }
        Ok(Self { label, series })
    }
}

/// A figure that can be drawn on any plotters backend.
pub(super) trait Figure {
    /// Canvas size in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// One panel per metric, two columns.
struct LearningCurves<'a> {
    runs: &'a [Curves],
    metrics: &'a [String],
}

impl Figure for LearningCurves<'_> {
    fn size(&self) -> (u32, u32) {
        let cols = self.metrics.len().min(2) as u32;
        (640 * cols, 420 * self.metrics.len().div_ceil(2) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let cols = self.metrics.len().min(2);
        let panels = root.split_evenly((self.metrics.len().div_ceil(cols), cols));
        for (panel, metric) in panels.iter().zip(self.metrics) {
            curve_panel(panel, self.runs, metric)?;
        }
        Ok(())
    }
}

/// Draws one panel per metric (two columns), every run a line in each; `out` is `.png` or
/// `.svg`.
pub fn learning_curves(runs: &[Curves], metrics: &[String], out: &Path) -> Result<()> {
    if metrics.is_empty() {
        bail!("no metrics to plot");
    }
    render(out, &LearningCurves { runs, metrics })
}

/// One metric's panel.
fn curve_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, runs: &[Curves], metric: &str) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let points: Vec<&(f64, f64)> = runs.iter().filter_map(|r| r.series.get(metric)).flatten().collect();
    if points.is_empty() {
        bail!("no run logged `{metric}` (metrics are split/name, e.g. val/accuracy, train/loss)");
    }
    let (x0, x1) = bounds(points.iter().map(|p| p.0));
    let (y0, y1) = bounds(points.iter().map(|p| p.1));
    let x_label = if metric.ends_with("loss_step") || metric.ends_with("grad_norm") { "step" } else { "epoch" };
    let mut chart = ChartBuilder::on(area)
        .caption(metric, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(pe)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_desc(metric)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .draw()
        .map_err(pe)?;
    for (i, run) in runs.iter().enumerate() {
        let Some(pts) = run.series.get(metric) else { continue };
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(pe)?
            .label(run.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        if pts.len() < 40 {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled()))).map_err(pe)?;
        }
    }
    // Away from where the curves end: losses fall to the lower right, scores rise to the upper.
    let at = if super::run_info::lower_is_better(metric) {
        SeriesLabelPosition::UpperRight
    } else {
        SeriesLabelPosition::LowerRight
    };
    draw_legend(&mut chart, at, 15)
}

/// Maps a plotters error into anyhow.
pub(super) fn pe<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// The series labels of every figure: a light box at `at`, `font` px sans-serif.
pub(super) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    at: SeriesLabelPosition,
    font: u32,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", font))
        .draw()
        .map_err(pe)
}

/// Range of values with 5% padding (a flat series gets ±0.5).
pub(super) fn bounds(v: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    if hi - lo < 1e-12 {
        return (lo - 0.5, hi + 0.5);
    }
    let pad = 0.05 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Draws `fig` into PNG bytes (for files written atomically and for loggers).
pub(super) fn png_bytes(fig: &impl Figure) -> Result<Vec<u8>> {
    ensure_font()?;
    let (w, h) = fig.size();
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(pe)?;
        fig.draw(&root)?;
        root.present().map_err(pe)?;
    }
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(&rgb)?;
    Ok(out)
}

/// Draws `fig` to a PNG or SVG file, chosen by `out`'s extension.
pub(super) fn render(out: &Path, fig: &impl Figure) -> Result<()> {
    ensure_font()?;
    let size = fig.size();
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("{}: {e}", out.display());
    match out.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(out, size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            fig.draw(&root)?;
            root.present().map_err(|e| err(&e))
        }
        Some("png") => {
            let root = BitMapBackend::new(out, size).into_drawing_area();
            root.fill(&WHITE).map_err(|e| err(&e))?;
            fig.draw(&root)?;
            root.present().map_err(|e| err(&e))
        }
        _ => bail!("{}: the plot file must end in .png or .svg", out.display()),
    }
}
