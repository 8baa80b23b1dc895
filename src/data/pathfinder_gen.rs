//! Pathfinder generator: the procedure of Linsley et al. 2018 ("Learning long-range spatial
//! dependencies with horizontal gated recurrent units", github.com/drewlinsley/pathfinder,
//! `snakes2.py`) with the per-resolution settings Long Range Arena documents for its release.
//!
//! An image holds two target contours and a few shorter distractor contours, each a chain of
//! short line segments ("paddles"). A contour grows one paddle at a time: the next paddle starts
//! `2·margin` beyond the previous one and turns by Δ with weight cos²(min(Δ·continuity, π/2)).
//! Two circular markers go on contour ends: label 1 when both lie on the same target contour,
//! 0 when they lie on the two different ones.
//!
//! Where the published script only approximates its spacing rule (antialiased masks compared
//! against a threshold, the two seeds, the markers and each contour's newest paddle left
//! unchecked), this one enforces it on the drawn pixels: consecutive paddles of a contour lie
//! within [`PathfinderParams::link_radius`] of each other, and every pixel of any other contour
//! (markers included) lies farther away than that. So "the markers are connected" in the
//! picture, with gaps up to that radius bridged, is exactly the label. The wider spacing fits
//! fewer distractors into 32×32 images (about half of LRA's budget).

use std::f64::consts::PI;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::DataError;
use super::pathfinder_draw::{Ink, Pt, Px, along, center, degrees, draw_disc, draw_segment, nearest};

/// Tries per seed orientation (`max_paddle_retrial` + 1 in the script).
const PADDLE_TRIES: usize = 3;
/// Dead ends a target pair may back out of before the image starts over.
const BACKTRACKS: usize = 60;
/// Paddles a stuck target contour backs out by.
const BACKTRACK_DEPTH: usize = 4;
/// Tries per distractor contour (`max_distractor_contour_retrial` + 1).
const DISTRACTOR_TRIES: usize = 5;
/// Start positions tried per orientation when seeding a contour.
const TAIL_TRIES: usize = 16;
/// Distractors stop once less than this fraction of the image is free (`stop_with_availability`).
const MIN_FREE: f64 = 0.01;
/// Whole target pairs tried before giving up on an image (only reachable with bad settings).
const TARGET_TRIES: usize = 500;

/// Settings of the procedure (the script's `args`).
#[derive(Debug, Clone, PartialEq)]
pub struct PathfinderParams {
    /// Image side in pixels.
    pub side: usize,
    /// Border (pixels) no paddle may enter.
    pub padding: usize,
    /// Paddle margins (minimum spacing, pixels); each image draws one.
    pub margins: Vec<usize>,
    /// Paddle length (pixels).
    pub paddle_length: usize,
    /// Paddle thickness (pixels).
    pub thickness: f64,
    /// Marker radius (pixels).
    pub marker_radius: f64,
    /// Distance between the first paddles of the two target contours (pixels).
    pub seed_distance: usize,
    /// Turn penalty (higher: straighter contours).
    pub continuity: f64,
    /// Paddles per target contour.
    pub contour_length: usize,
    /// Paddles per distractor contour.
    pub distractor_length: usize,
    /// Distractor contours per image (fewer when the image fills up).
    pub distractors: usize,
    /// Brightness of target paddles (snake × paddle contrast).
    pub target_contrast: f64,
    /// Brightness of distractor paddles (snake contrast; markers are 1).
    pub distractor_contrast: f64,
}

impl PathfinderParams {
    /// LRA's settings for a resolution (32, 64, 128 or 256) and contour length (14 in LRA;
    /// the script's other difficulties use 6 and 9). Distractors are `contour_length / 3`
    /// paddles long, as many as LRA's paddle budget for the resolution allows.
    pub fn lra(side: usize, contour_length: usize) -> Result<Self, DataError> {
        // (padding, margins, paddle length, thickness, marker radius, seed distance,
        //  continuity, distractor paddle budget, snake contrast, paddle contrast)
        let (
            padding,
            margins,
            paddle_length,
            thickness,
            marker_radius,
            seed_distance,
            continuity,
            budget,
            snake,
            paddle,
        ) = match side {
            32 => (1, vec![1], 2, 0.5, 1.5, 7, 1.0, 20, 2.0, 0.75),
            64 => (1, vec![1], 5, 1.0, 2.5, 12, 1.8, 22, 0.8, 1.0),
            128 => (1, vec![2, 3], 5, 1.5, 3.0, 20, 1.8, 35, 0.9, 1.0),
            256 => (22, vec![3], 5, 2.0, 5.0, 27, 1.8, 30, 1.0, 1.0),
            _ => {
                return Err(DataError::Invalid(format!(
                    "Pathfinder resolution must be 32, 64, 128 or 256, got {side}"
                )));
            }
        };
        let distractor_length = contour_length / 3;
        if !(3..=30).contains(&contour_length) {
            return Err(DataError::Invalid(format!(
                "Pathfinder contour length must be in 3..=30, got {contour_length}"
            )));
        }
        Ok(Self {
            side,
            padding,
            margins,
            paddle_length,
            thickness,
            marker_radius,
            seed_distance,
            continuity,
            contour_length,
            distractor_length,
            distractors: (budget / distractor_length).min(62),
            target_contrast: snake * paddle,
            distractor_contrast: snake,
        })
    }

    /// The difficulty folder name the LRA release uses for this contour length.
    pub fn difficulty(&self) -> String {
        match self.contour_length {
            6 => "curv_baseline".into(),
            n => format!("curv_contour_length_{n}"),
        }
    }

    /// Pixels of the same contour chain within this distance (pixel centers); pixels of
    /// different contours are always farther apart.
    pub fn link_radius(margin: usize) -> usize {
        2 * margin + 1
    }
}

/// One generated image.
#[derive(Debug, Clone, PartialEq)]
pub struct PathfinderSample {
    /// Grayscale pixels, row-major [side, side].
    pub pixels: Vec<u8>,
    /// 1: both markers on the same contour; 0: on the two different target contours.
    pub label: u8,
    /// Marker centers as (row, column).
    pub markers: [(usize, usize); 2],
    /// The margin drawn for this image.
    pub margin: usize,
}

/// A contour under construction.
struct Snake {
    /// Bit of this contour in the zone map.
    id: u32,
    /// Center of the circle the next paddle's far end is drawn on (the script's pivot).
    pivot: Pt,
    /// Direction of the last paddle (radians).
    orientation: f64,
    /// Start of the first paddle.
    tail: Px,
    /// End of the last paddle.
    head: Pt,
    paddles: Vec<Ink>,
    /// (pivot, orientation, head) after each paddle, to back out of dead ends.
    states: Vec<(Pt, f64, Pt)>,
}

impl Snake {
    fn push(&mut self, ink: Ink, pivot: Pt, orientation: f64, head: Pt) {
        self.paddles.push(ink);
        self.states.push((pivot, orientation, head));
        (self.pivot, self.orientation, self.head) = (pivot, orientation, head);
    }

    /// Removes up to `k` paddles, never the first.
    fn pop(&mut self, k: usize) {
        let keep = self.paddles.len().saturating_sub(k).max(1);
        self.paddles.truncate(keep);
        self.states.truncate(keep);
        (self.pivot, self.orientation, self.head) = self.states[keep - 1];
    }
}

/// The image being drawn and, per pixel, which drawn contours lie within the link radius.
struct Canvas<'a> {
    p: &'a PathfinderParams,
    margin: usize,
    /// Link radius and its square.
    link: i64,
    link2: i64,
    /// Offsets within the link radius.
    disc: Vec<Px>,
    image: Vec<f32>,
    /// Bit `c` set: contour `c` has a lit pixel within the link radius.
    zone: Vec<u64>,
}

impl<'a> Canvas<'a> {
    fn new(p: &'a PathfinderParams, margin: usize) -> Self {
        let r = PathfinderParams::link_radius(margin) as i64;
        let disc = (-r..=r).flat_map(|dy| (-r..=r).map(move |dx| (dy, dx))).filter(|(y, x)| y * y + x * x <= r * r);
        let n = p.side * p.side;
        Self { p, margin, link: r, link2: r * r, disc: disc.collect(), image: vec![0.0; n], zone: vec![0; n] }
    }

    /// The index of pixel `q`, if inside the image.
    fn index(&self, q: Px) -> Option<usize> {
        let s = self.p.side as i64;
        ((0..s).contains(&q.0) && (0..s).contains(&q.1)).then(|| (q.0 * s + q.1) as usize)
    }

    fn in_border(&self, q: Px) -> bool {
        let (s, pad) = (self.p.side as i64, self.p.padding as i64);
        q.0 < pad || q.1 < pad || q.0 >= s - pad || q.1 >= s - pad
    }

    /// Whether pixel `q` lies near no drawn contour other than `id`.
    fn free_for(&self, q: Px, id: u32) -> bool {
        self.index(q).is_some_and(|i| self.zone[i] & !(1u64 << id) == 0)
    }

    /// Whether some pixels of `a` and `b` lie within the link radius.
    fn near(&self, a: &Ink, b: &Ink) -> bool {
        let r = self.link;
        if a.lo.0 - b.hi.0 > r || b.lo.0 - a.hi.0 > r || a.lo.1 - b.hi.1 > r || b.lo.1 - a.hi.1 > r {
            return false;
        }
        a.px.iter().any(|p| b.px.iter().any(|q| (p.0 - q.0).pow(2) + (p.1 - q.1).pow(2) <= self.link2))
    }

    /// Whether `ink` may become the next paddle of `snake`: inside the border, clear of every
    /// drawn contour, of the not yet drawn `rival` and of the snake's older paddles, and linked
    /// to its newest one.
    fn accepts(&self, snake: &Snake, ink: &Ink, rival: Option<&Snake>) -> bool {
        if ink.px.is_empty()
            || ink.px.iter().any(|p| self.in_border((p.0, p.1)) || !self.free_for((p.0, p.1), snake.id))
        {
            return false;
        }
        if rival.is_some_and(|r| r.paddles.iter().any(|o| self.near(ink, o))) {
            return false;
        }
        match snake.paddles.split_last() {
            None => true,
            Some((last, older)) => self.near(ink, last) && !older.iter().any(|o| self.near(ink, o)),
        }
    }

    /// Draws `ink` and marks its neighborhood as near contour `id`.
    fn commit(&mut self, ink: &Ink, id: u32) {
        for &(y, x, v) in &ink.px {
            let i = self.index((y, x)).expect("ink lies inside");
            self.image[i] = self.image[i].max(v);
            for &(dy, dx) in &self.disc {
                if let Some(j) = self.index((y + dy, x + dx)) {
                    self.zone[j] |= 1u64 << id;
                }
            }
        }
    }

    fn paddle(&self, from: Pt, to: Pt, contrast: f64) -> Ink {
        draw_segment(self.p.side, from, to, self.p.thickness / 2.0, contrast)
    }

    /// Grows `snake` by one paddle as the script's `extend_snake`: candidate far ends on a
    /// circle of radius `length + margin` around the next pivot, weighted by continuity. The
    /// script draws up to three candidates and gives up; here rejected candidates are dropped
    /// and the rest redrawn, so only true dead ends fail.
    fn extend(&self, rng: &mut ChaCha8Rng, snake: &mut Snake, rival: Option<&Snake>, contrast: f64) -> bool {
        let (len, m) = (self.p.paddle_length as f64, self.margin as f64);
        let pivot = along(snake.pivot, snake.orientation, len + 2.0 * m);
        let radius = len + m;
        // One candidate per pixel of arc, as the script's `get_coords_cmf`.
        let n = (2.0 * PI * radius).ceil() as usize;
        let (mut cands, mut weights) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for k in 0..n {
            let o = k as f64 * 2.0 * PI / n as f64;
            let head = along(pivot, o, radius);
            let q = nearest(head);
            if self.index(q).is_none() {
                continue;
            }
            let d = (o - snake.orientation).rem_euclid(2.0 * PI);
            let turn = (d.min(2.0 * PI - d) * self.p.continuity).min(PI / 2.0);
            let open = !self.in_border(q) && self.free_for(q, snake.id);
            cands.push((head, o));
            weights.push(if open { turn.cos().max(0.0).powi(2) } else { 0.0 });
        }
        let mut total: f64 = weights.iter().sum();
        while total > 1e-4 {
            let r = rng.random::<f64>() * total;
            let mut acc = 0.0;
            let k = weights
                .iter()
                .position(|w| {
                    acc += w;
                    acc > r
                })
                .unwrap_or(weights.len() - 1);
            let (head, o) = cands[k];
            let ink = self.paddle(along(head, o, -len), head, contrast);
            if self.accepts(snake, &ink, rival) {
                snake.push(ink, pivot, o, head);
                return true;
            }
            total -= weights[k];
            weights[k] = 0.0;
        }
        false
    }

    /// A one-paddle contour starting at `tail` in direction `theta`, if it fits.
    fn seed_at(&self, id: u32, tail: Px, theta: f64, rival: Option<&Snake>, contrast: f64) -> Option<Snake> {
        let (len, m) = (self.p.paddle_length as f64, self.margin as f64);
        let head = along(center(tail), theta, len);
        let pivot = along(head, theta + PI, len + m);
        if [tail, nearest(head), nearest(pivot)].iter().any(|q| self.index(*q).is_none()) {
            return None;
        }
        let ink = self.paddle(center(tail), head, contrast);
        let mut snake = Snake { id, pivot, orientation: theta, tail, head, paddles: Vec::new(), states: Vec::new() };
        if !self.accepts(&snake, &ink, rival) {
            return None;
        }
        snake.push(ink, pivot, theta, head);
        Some(snake)
    }

    /// The two target contours, grown in turns; their first paddles `seed_distance` apart
    /// near the image center (the script's `two_snakes`). Where the script starts the image
    /// over at a dead end, this backs the stuck contour out by a few paddles and goes on,
    /// which draws long contours in small images many times faster.
    fn targets(&mut self, rng: &mut ChaCha8Rng) -> Option<[Snake; 2]> {
        let (sd, side) = (self.p.seed_distance as i64, self.p.side as i64);
        let (lo, hi) = (2 * sd, side - 2 * sd);
        let reach = (self.p.paddle_length + self.margin) as f64;
        let central = |v: f64| v >= lo as f64 && v <= (hi - 1) as f64;
        let mut first = None;
        'seed: for _ in 0..PADDLE_TRIES {
            let theta = degrees(rng.random_range(-180..180));
            for _ in 0..TAIL_TRIES {
                let tail = (rng.random_range(lo..hi), rng.random_range(lo..hi));
                let end = along(center(tail), theta, reach);
                if central(end.0) && central(end.1) {
                    first = self.seed_at(0, tail, theta, None, self.p.target_contrast);
                    if first.is_some() {
                        break 'seed;
                    }
                }
            }
        }
        let a = first?;
        let mut b = None;
        for _ in 0..PADDLE_TRIES {
            let phi = degrees(rng.random_range(0..360));
            let tail = nearest(along(center(a.tail), phi, sd as f64));
            b = self.seed_at(1, tail, degrees(rng.random_range(-180..180)), Some(&a), self.p.target_contrast);
            if b.is_some() {
                break;
            }
        }
        let mut pair = [a, b?];
        let mut backtracks = 0;
        while pair.iter().any(|s| s.paddles.len() < self.p.contour_length) {
            for i in 0..2 {
                let [a, b] = &mut pair;
                let (grow, rival) = if i == 0 { (a, &*b) } else { (b, &*a) };
                if grow.paddles.len() < self.p.contour_length
                    && !self.extend(rng, grow, Some(rival), self.p.target_contrast)
                {
                    backtracks += 1;
                    if backtracks > BACKTRACKS {
                        return None;
                    }
                    grow.pop(BACKTRACK_DEPTH);
                }
            }
        }
        for s in &pair {
            for ink in &s.paddles {
                self.commit(ink, s.id);
            }
        }
        Some(pair)
    }

    /// One distractor contour, drawn only when complete (the script's `make_snake`).
    fn distractor(&mut self, rng: &mut ChaCha8Rng, id: u32) -> bool {
        let contrast = self.p.distractor_contrast;
        let s = self.p.side as i64;
        let free: Vec<Px> = (0..s * s)
            .map(|i| (i / s, i % s))
            .filter(|&q| !self.in_border(q) && self.zone[(q.0 * s + q.1) as usize] == 0)
            .collect();
        if (free.len() as f64) < MIN_FREE * self.zone.len() as f64 {
            return false;
        }
        let mut snake = None;
        'seed: for _ in 0..PADDLE_TRIES {
            let theta = degrees(rng.random_range(-180..180));
            for _ in 0..TAIL_TRIES {
                snake = self.seed_at(id, free[rng.random_range(0..free.len())], theta, None, contrast);
                if snake.is_some() {
                    break 'seed;
                }
            }
        }
        let Some(mut snake) = snake else { return false };
        for _ in 1..self.p.distractor_length {
            if !self.extend(rng, &mut snake, None, contrast) {
                return false;
            }
        }
        for ink in &snake.paddles {
            self.commit(ink, id);
        }
        true
    }
}

/// Generates image `index` of the data set `seed`: the same pair always gives the same image,
/// independent of which other images are generated.
pub fn generate_sample(p: &PathfinderParams, seed: u64, index: u64) -> Result<PathfinderSample, DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let label = rng.random_range(0..2u8);
    let margin = p.margins[rng.random_range(0..p.margins.len())];
    'image: for _ in 0..TARGET_TRIES {
        let mut canvas = Canvas::new(p, margin);
        let Some(targets) = canvas.targets(&mut rng) else { continue };
        // Markers: the first end of one target, then the far end of the same or the other one.
        let origin = rng.random_range(0..2usize);
        let terminal = if label == 1 { origin } else { 1 - origin };
        let ends = [(targets[origin].tail, origin as u32), (nearest(targets[terminal].head), terminal as u32)];
        for (c, id) in ends {
            let ink = draw_disc(p.side, center(c), p.marker_radius);
            if !ink.px.iter().all(|q| canvas.free_for((q.0, q.1), id)) {
                continue 'image;
            }
            canvas.commit(&ink, id);
        }
        for k in 0..p.distractors {
            for _ in 0..DISTRACTOR_TRIES {
                if canvas.distractor(&mut rng, 2 + k as u32) {
                    break;
                }
            }
        }
        let peak = canvas.image.iter().copied().fold(0.0, f32::max);
        let pixels = canvas.image.iter().map(|v| (v / peak * 255.0).round() as u8).collect();
        let markers = ends.map(|(c, _)| (c.0 as usize, c.1 as usize));
        return Ok(PathfinderSample { pixels, label, markers, margin });
    }
    Err(DataError::Invalid(format!(
        "Pathfinder: no two target contours of {} paddles fit a {}×{} image after {TARGET_TRIES} tries",
        p.contour_length, p.side, p.side
    )))
}
