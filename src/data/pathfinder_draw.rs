//! Drawing for the Pathfinder generator: antialiased paddles (line segments) and markers
//! (discs) as lists of lit pixels, plus the little plane geometry the generator needs.

use std::f64::consts::PI;

/// Sub-samples per pixel side when drawing (antialiasing).
const SUPERSAMPLE: usize = 4;
/// Drawn pixels below this fraction of an element's peak are left dark, so every lit pixel
/// belongs to a known contour.
const INK_FLOOR: f32 = 0.25;

/// A point (row, column) in pixel units; pixel (i, j) is centered at (i, j).
pub type Pt = (f64, f64);
/// A pixel position that may lie outside the image.
pub type Px = (i64, i64);

/// `p + d·(sin θ, cos θ)`. The script rounds such points up (and candidate ends down), which
/// drifts each contour and widens its gaps by up to two pixels; points stay exact here.
pub fn along(p: Pt, theta: f64, d: f64) -> Pt {
    (p.0 + d * theta.sin(), p.1 + d * theta.cos())
}

/// The center of pixel `p`.
pub fn center(p: Px) -> Pt {
    (p.0 as f64, p.1 as f64)
}

/// The pixel under `p`.
pub fn nearest(p: Pt) -> Px {
    (p.0.round() as i64, p.1.round() as i64)
}

/// Whole degrees in radians (the script samples angles in whole degrees).
pub fn degrees(d: i32) -> f64 {
    d as f64 * PI / 180.0
}

fn seg_dist2(p: Pt, a: Pt, b: Pt) -> f64 {
    let (dy, dx) = (b.0 - a.0, b.1 - a.1);
    let len2 = dy * dy + dx * dx;
    let t = if len2 > 0.0 { (((p.0 - a.0) * dy + (p.1 - a.1) * dx) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (ey, ex) = (p.0 - a.0 - t * dy, p.1 - a.1 - t * dx);
    ey * ey + ex * ex
}

/// The lit pixels of one drawn element, with their bounding box.
#[derive(Debug, Clone)]
pub struct Ink {
    /// (row, column, value).
    pub px: Vec<(i64, i64, f32)>,
    /// Smallest row and column.
    pub lo: Px,
    /// Largest row and column.
    pub hi: Px,
}

/// Draws the points within `r` of a shape (`dist2`: squared distance to it) inside the box
/// `lo..=hi`, supersampled; values are scaled so the element's brightest pixel is `contrast`
/// (the script rescales each element to full range too).
fn rasterize(side: usize, lo: Pt, hi: Pt, r: f64, contrast: f64, dist2: impl Fn(Pt) -> f64) -> Ink {
    let clamp = |v: f64| (v.max(0.0) as i64).min(side as i64 - 1);
    let step = 1.0 / SUPERSAMPLE as f64;
    // Sub-samples lie within this distance of their pixel's center.
    let reach = (0.5 - step / 2.0) * std::f64::consts::SQRT_2;
    let (outer, inner) = ((r + reach).powi(2), (r - reach).max(0.0).powi(2));
    let full = (SUPERSAMPLE * SUPERSAMPLE) as f32;
    let mut cov = Vec::new();
    for i in clamp(lo.0.floor())..=clamp(hi.0.ceil()) {
        for j in clamp(lo.1.floor())..=clamp(hi.1.ceil()) {
            let d = dist2(center((i, j)));
            let hits = if d > outer {
                continue;
            } else if r > reach && d <= inner {
                full
            } else {
                let mut hits = 0;
                for si in 0..SUPERSAMPLE {
                    for sj in 0..SUPERSAMPLE {
                        let p = (i as f64 - 0.5 + (si as f64 + 0.5) * step, j as f64 - 0.5 + (sj as f64 + 0.5) * step);
                        hits += (dist2(p) <= r * r) as usize;
                    }
                }
                hits as f32
            };
            if hits > 0.0 {
                cov.push((i, j, hits));
            }
        }
    }
    let peak = cov.iter().map(|c| c.2).fold(0.0, f32::max);
    cov.retain(|c| c.2 >= INK_FLOOR * peak);
    let (mut lo, mut hi) = ((i64::MAX, i64::MAX), (i64::MIN, i64::MIN));
    for c in &mut cov {
        c.2 *= contrast as f32 / peak;
        (lo, hi) = ((lo.0.min(c.0), lo.1.min(c.1)), (hi.0.max(c.0), hi.1.max(c.1)));
    }
    Ink { px: cov, lo, hi }
}

/// A paddle from `a` to `b`.
pub fn draw_segment(side: usize, a: Pt, b: Pt, half_width: f64, contrast: f64) -> Ink {
    let pad = half_width + 1.0;
    let lo = (a.0.min(b.0) - pad, a.1.min(b.1) - pad);
    let hi = (a.0.max(b.0) + pad, a.1.max(b.1) + pad);
    rasterize(side, lo, hi, half_width, contrast, |p| seg_dist2(p, a, b))
}

/// A marker: the disc of radius `r` around `c`, at brightness 1.
pub fn draw_disc(side: usize, c: Pt, r: f64) -> Ink {
    let lo = (c.0 - r - 1.0, c.1 - r - 1.0);
    let hi = (c.0 + r + 1.0, c.1 + r + 1.0);
    rasterize(side, lo, hi, r, 1.0, |p| (p.0 - c.0).powi(2) + (p.1 - c.1).powi(2))
}
