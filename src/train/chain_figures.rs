//! Validation figures of a chain's other commands, run on the first validation batch when its
//! config defines them: `reconstruct` (the first sequences' input beside their reconstruction,
//! first channel), `encode` (each sequence's code, first two features, coloured by class) and
//! `generate` (sequences the model makes, e.g. a VAE's decoder on draws from its prior).

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::figures::{Figure, bounds, draw_legend, pe, png_bytes};
use crate::data::{Batch, BatchTargets};
use crate::model::chain::Chain;

/// The command whose output is drawn against the input.
pub const RECONSTRUCT: &str = "reconstruct";
/// The command whose output is drawn as points.
pub const ENCODE: &str = "encode";
/// The command whose output is drawn as sequences of their own.
pub const GENERATE: &str = "generate";
/// Sequences the reconstruction figure shows.
const MAX_SEQUENCES: usize = 4;

/// What one of a chain's commands gave for a validation batch.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainFigure {
    /// Per sequence: input and reconstruction, first channel, one value per step.
    Reconstruction(Vec<(Vec<f32>, Vec<f32>)>),
    /// Generated sequences, first channel, one value per step.
    Samples(Vec<Vec<f32>>),
    /// Per sequence: the code's first two features (the second 0 for one feature) and the class
    /// (-1 when the batch has none).
    Codes(Vec<(f32, f32, i64)>),
}

/// Every figure `chain` has commands for, from `batch` (run in eval mode by the caller).
pub fn collect(chain: &Chain, batch: &Batch) -> Vec<ChainFigure> {
    let mut out = Vec::new();
    let [b, l, _] = batch.x.dims();
    let run = |command: &str| {
        let (mut values, last) = chain.run(command, batch.x.clone(), batch.lengths.as_deref())?;
        Some(values.remove(&last).expect("the last step's output")) // [B, L', K]
    };
    if let Some(rec) = run(RECONSTRUCT).filter(|r| r.dims()[1] == l) {
        let pairs = first_channels(batch.x.clone()).into_iter().zip(first_channels(rec));
        out.push(ChainFigure::Reconstruction(pairs.collect()));
    }
    if let Some(generated) = run(GENERATE) {
        out.push(ChainFigure::Samples(first_channels(generated)));
    }
    if let Some(code) = run(ENCODE) {
        let [_, lc, z] = code.dims();
        let last_step: Vec<f32> =
            code.narrow(1, lc - 1, 1).reshape([b * z]).try_into_vec_as::<f32>().expect("f32 codes"); // [B·Z]
        let labels: Vec<i64> = match &batch.y {
            BatchTargets::Classes(t) if t.dims()[0] == b => t.clone().try_into_vec_as::<i64>().expect("int labels"),
            _ => vec![-1; b],
        };
        let points = (0..b).map(|i| {
            let row = &last_step[i * z..(i + 1) * z];
            (row[0], row.get(1).copied().unwrap_or(0.0), labels[i])
        });
        out.push(ChainFigure::Codes(points.collect()));
    }
    out
}

/// The first channel of the first [`MAX_SEQUENCES`] sequences. Args: `t` [B, L, K].
fn first_channels(t: Tensor<3>) -> Vec<Vec<f32>> {
    let [b, l, _] = t.dims();
    let n = b.min(MAX_SEQUENCES);
    let v: Vec<f32> = t.narrow(0, 0, n).narrow(2, 0, 1).reshape([n * l]).try_into_vec_as().expect("f32 values"); // [n·L]
    v.chunks(l.max(1)).map(<[f32]>::to_vec).collect()
}

impl ChainFigure {
    /// The figure's name in tags and file names.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reconstruction(_) => "reconstruction",
            Self::Samples(_) => "samples",
            Self::Codes(_) => "codes",
        }
    }

    /// Draws the figure under `title` as PNG bytes.
    pub fn png(&self, title: &str) -> Result<Vec<u8>> {
        match self {
            Self::Reconstruction(seqs) if !seqs.is_empty() => {
                let seqs: Vec<(&[f32], &[f32])> = seqs.iter().map(|(x, r)| (x.as_slice(), r.as_slice())).collect();
                png_bytes(&Lines { seqs: &seqs, label: "reconstruction", title })
            }
            Self::Samples(seqs) if !seqs.is_empty() => {
                let seqs: Vec<(&[f32], &[f32])> = seqs.iter().map(|s| (&[][..], s.as_slice())).collect();
                png_bytes(&Lines { seqs: &seqs, label: "generated", title })
            }
            Self::Codes(points) if !points.is_empty() => png_bytes(&Codes { points, title }),
            _ => bail!("no validation sequences to draw"),
        }
    }
}

/// One panel per sequence: the input (when there is one) and the command's output.
struct Lines<'a> {
    seqs: &'a [(&'a [f32], &'a [f32])],
    label: &'static str,
    title: &'a str,
}

impl Figure for Lines<'_> {
    fn size(&self) -> (u32, u32) {
        (900, 60 + 220 * self.seqs.len() as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(self.title, ("sans-serif", 22)).map_err(pe)?;
        let blue = RGBColor(31, 119, 180);
        for (i, (area, &(x, r))) in root.split_evenly((self.seqs.len(), 1)).iter().zip(self.seqs).enumerate() {
            let (lo, hi) = bounds(x.iter().chain(r).map(|&v| v as f64).filter(|v| v.is_finite()));
            let steps = x.len().max(r.len()).max(1) as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(format!("sequence {}", i + 1), ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(0f64..steps, lo..hi)
                .map_err(pe)?;
            chart.configure_mesh().light_line_style(WHITE).label_style(("sans-serif", 13)).draw().map_err(pe)?;
            let line = |v: &[f32]| v.iter().enumerate().map(|(t, &y)| (t as f64, y as f64)).collect::<Vec<_>>();
            let grey = BLACK.mix(0.5);
            if !x.is_empty() {
                chart
                    .draw_series(LineSeries::new(line(x), grey.stroke_width(2)))
                    .map_err(pe)?
                    .label("input")
                    .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], grey.stroke_width(2)));
            }
            chart
                .draw_series(LineSeries::new(line(r), blue.stroke_width(2)))
                .map_err(pe)?
                .label(self.label)
                .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], blue.stroke_width(2)));
            if i == 0 {
                draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 14)?;
            }
        }
        Ok(())
    }
}

/// Codes as points, coloured by class.
struct Codes<'a> {
    points: &'a [(f32, f32, i64)],
    title: &'a str,
}

impl Figure for Codes<'_> {
    fn size(&self) -> (u32, u32) {
        (680, 640)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let finite = |v: f32| v.is_finite().then_some(v as f64);
        let (x0, x1) = bounds(self.points.iter().filter_map(|p| finite(p.0)));
        let (y0, y1) = bounds(self.points.iter().filter_map(|p| finite(p.1)));
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(pe)?;
        chart
            .configure_mesh()
            .x_desc("code feature 0")
            .y_desc("code feature 1")
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .draw()
            .map_err(pe)?;
        let colour = |c: i64| if c < 0 { BLACK.to_rgba() } else { Palette99::pick(c as usize).to_rgba() };
        let pts =
            self.points.iter().map(|&(a, b, c)| Circle::new((a as f64, b as f64), 4, colour(c).mix(0.7).filled()));
        chart.draw_series(pts).map_err(pe)?;
        Ok(())
    }
}
