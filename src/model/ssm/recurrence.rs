//! The recurrent (step) mode every SSM layer steps with: a diagonal recurrence (S4D, DSS, S4
//! `diag`) or S4's DPLR one, and the state as each steps it.
//!
//! Conv mode and step mode compute the same map (tests check it to 1e-4 relative).

pub use super::diagonal_step::DiagonalRecurrence;
use super::dplr::DplrRecurrence;

/// The complex state of one sequence, [H, N2] as (re, im).
#[derive(Debug, Clone, PartialEq)]
pub struct DiagonalState {
    /// Real parts, [H·N2].
    pub re: Vec<f64>,
    /// Imaginary parts, [H·N2].
    pub im: Vec<f64>,
}

/// A state as its recurrence steps it, which may differ from the state by a fixed factor per
/// mode (a diagonal system steps `x/dB`); `export` gives the state, `import` takes one.
#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    /// Real parts, [H·N2].
    pub(crate) re: Lanes<f64>,
    /// Imaginary parts, [H·N2].
    pub(crate) im: Lanes<f64>,
}

impl StepState {
    /// The state `x` itself as the stepped form.
    pub(crate) fn of(x: &DiagonalState) -> Self {
        Self { re: aligned(&x.re), im: aligned(&x.im) }
    }

    /// The stepped form as a plain state.
    pub(crate) fn plain(&self) -> DiagonalState {
        DiagonalState { re: self.re.to_vec(), im: self.im.to_vec() }
    }
}

/// A buffer aligned to 64 bytes (a cache line, one AVX-512 register), so that no vector load
/// of a host recurrence straddles two cache lines.
pub type Lanes<T> = aligned_vec::AVec<T, aligned_vec::ConstAlign<64>>;

/// `v` in a [`Lanes`] buffer.
pub(crate) fn aligned<T: Copy>(v: &[T]) -> Lanes<T> {
    Lanes::from_slice(64, v)
}

/// A layer's recurrence: diagonal (S4D, DSS, S4 `diag`) or dense bilinear on the stored half
/// (S4 `nplr`); both carry the stored half of the state, [H·N2].
#[derive(Debug, Clone)]
pub enum Recurrence {
    /// Elementwise diagonal recurrence.
    Diag(DiagonalRecurrence),
    /// DPLR recurrence.
    Dplr(DplrRecurrence),
}

impl Recurrence {
    /// The zero state.
    pub fn zero_state(&self) -> StepState {
        match self {
            Recurrence::Diag(r) => r.zero_state(),
            Recurrence::Dplr(r) => StepState::of(&r.zero_state()),
        }
    }

    /// The state `x` [H·N2] of a stepped one.
    pub fn export(&self, s: &StepState) -> DiagonalState {
        match self {
            Recurrence::Diag(r) => r.export(s),
            Recurrence::Dplr(_) => s.plain(),
        }
    }

    /// The stepped form of a state `x` [H·N2].
    pub fn import(&self, x: &DiagonalState) -> StepState {
        match self {
            Recurrence::Diag(r) => r.import(x),
            Recurrence::Dplr(_) => StepState::of(x),
        }
    }

    /// `(H, N2, C)`: width, stored modes per feature, output channels.
    pub fn dims(&self) -> (usize, usize, usize) {
        match self {
            Recurrence::Diag(r) => (r.width(), r.modes(), r.channels()),
            Recurrence::Dplr(r) => (r.width(), r.modes(), r.channels()),
        }
    }

    /// One step. Args: `u` [H]. Writes `y` [C, H].
    pub fn step(&self, state: &mut StepState, u: &[f64], y: &mut [f64]) {
        match self {
            Recurrence::Diag(r) => r.step(state, u, y),
            Recurrence::Dplr(r) => r.step_parts((&mut state.re, &mut state.im), u, y),
        }
    }

    /// Runs a whole sequence from `state`. Args: `u` [H, L]. Returns `y` [C, H, L].
    pub fn run(&self, state: &mut StepState, u: &[f64], l: usize) -> Vec<f64> {
        let (h, _, c) = self.dims();
        run_steps(h, c, u, l, |ut, yt| self.step(state, ut, yt))
    }
}

/// Feeds `u` [H, L] to `step` one time step at a time. Returns `y` [C, H, L].
pub(crate) fn run_steps(h: usize, c: usize, u: &[f64], l: usize, mut step: impl FnMut(&[f64], &mut [f64])) -> Vec<f64> {
    let mut y = vec![0.0; c * h * l];
    let (mut ut, mut yt) = (vec![0.0; h], vec![0.0; c * h]);
    for t in 0..l {
        for hi in 0..h {
            ut[hi] = u[hi * l + t];
        }
        step(&ut, &mut yt);
        for (j, v) in yt.iter().enumerate() {
            y[j * l + t] = *v;
        }
    }
    y
}
