//! Recurrent mode of S4: step mode and conv-mode state forwarding, for both kernels (`diag`: the
//! diagonal system; `nplr`: the bilinear DPLR recurrence of the stored half, on the host).

use burn::tensor::Tensor;
use burn::tensor::activation::glu;
use num_complex::Complex64 as C64;

use super::diagonal::discretize;
use super::dplr::{DplrRecurrence, map_outputs};
use super::recurrence::Recurrence;
use super::s4::{S4, S4Kernel};
use super::state::{SsmState, host_forwarding};
use super::stepper::{SsmStepper, StepError, check_input};
use crate::model::SeqLayer;
use crate::weights::names::{Layout, Map};

impl S4Kernel {
    /// The recurrence on the host that reproduces the kernel of length `l`.
    ///
    /// In `nplr` mode the trained `C̃` belongs to the FFT length the kernel of length `l` uses;
    /// the recurrence needs the effective `C` of that same length, or step mode and conv mode
    /// drift apart (the forward/step mismatch of state-spaces/s4 issue #135).
    pub fn recurrence(&self, l: usize) -> Recurrence {
        self.recurrence_with(l, true)
    }

    /// [`S4Kernel::recurrence`]; without `outputs` an `nplr` recurrence keeps `C̃` as its output
    /// map: fine where only its states are used, and it skips the conversion to the effective
    /// `C`, which costs O(H·N³·log L) (the powers of the dense `dA`).
    fn recurrence_with(&self, l: usize, outputs: bool) -> Recurrence {
        let (dt, a, b, c, p) = self.effective();
        let Some(p) = p else {
            return Recurrence::Diag(discretize(self.disc, dt, a, Some(b), c, l).recurrence());
        };
        let host = |t: Tensor<2>| t.try_into_vec_as::<f64>().expect("f64 data");
        let host3 = |t: Tensor<3>| t.try_into_vec_as::<f64>().expect("f64 data");
        let cx =
            |re: Vec<f64>, im: Vec<f64>| -> Vec<C64> { re.into_iter().zip(im).map(|(r, i)| C64::new(r, i)).collect() };
        let dt = dt.try_into_vec_as::<f64>().expect("f64 data");
        let (w, b, p) = (cx(host(a.0), host(a.1)), cx(host(b.0), host(b.1)), cx(host(p.0), host(p.1)));
        let ct = cx(host3(c.0), host3(c.1));
        let l_fft = self.fft_len(l);
        let c_eff = if outputs { map_outputs(&dt, &w, &p, &b, &ct, |sys, ci| sys.c_effective(ci, l_fft)) } else { ct };
        Recurrence::Dplr(DplrRecurrence::new(&dt, &w, &p, &b, &c_eff))
    }
}

impl S4 {
    /// The error for layers without a causal recurrence (two-sided kernel, liquid terms).
    fn causal(&self) -> Result<(), StepError> {
        let why = if self.bidirectional {
            "`bidirectional` looks at future inputs"
        } else if self.liquid.is_some() {
            "the `liquid_kernel` terms are products of inputs across time steps"
        } else {
            return Ok(());
        };
        Err(StepError::NoRecurrentForm { layer: "s4", why })
    }
}

impl SeqLayer for S4 {
    type Stepper = SsmStepper;
    type State = SsmState;
    const NAME: &'static str = "s4";

    /// Args: `u` [B, L, H]. Returns [B, L, H].
    fn forward(&self, u: Tensor<3>) -> Tensor<3> {
        self.mix(u, None)
    }

    /// Conv mode from an initial state (None: zero): the same outputs and final state as
    /// stepping through `u` from that state (see [`super::state`]). `diag`: tensor ops,
    /// differentiable; `nplr`: the outputs' input part is the usual (differentiable)
    /// convolution, but the initial state's response and the final state are stepped on the
    /// host, O(B·H·N·L), without gradient, so truncated backprop through chunks sees no
    /// gradient through the carried state.
    ///
    /// Args: `u` [B, L, H]; `state` [B, H, N2]. Returns ([B, L, H], the state after `u`).
    fn forward_state(&self, u: Tensor<3>, state: Option<&SsmState>) -> Result<(Tensor<3>, SsmState), StepError> {
        self.causal()?;
        let [b, l, h] = u.dims();
        let [_, hk, n2, _] = self.kernel.C.dims();
        check_input(u.dims(), hk)?;
        if let Some(s) = state {
            s.check([b, h, n2])?;
        }
        let (response, last) = match self.kernel.system(l) {
            Some(sys) => (state.map(|s| sys.state_response(s, l)), sys.final_state(u.clone(), state)),
            // The initial state's response needs the outputs of the recurrence; the final state
            // does not.
            None => host_forwarding(&self.kernel.recurrence_with(l, state.is_some()), u.clone(), state),
        };
        Ok((self.mix(u, response), last))
    }

    /// Prepares step mode for `batch` sequences from the zero state, reproducing conv mode over
    /// `l` steps (`nplr`: its output map is the effective `C` of that length's FFT; `diag` with
    /// `disc: dss`: the normalization over `l` steps). Errors for a two-sided kernel or the
    /// liquid terms, which have no causal recurrence.
    fn stepper(&self, batch: usize, l: usize) -> Result<SsmStepper, StepError> {
        self.causal()?;
        if l == 0 {
            return Err(StepError::ZeroLength);
        }
        let d = self.D.val().try_into_vec_as::<f64>().expect("f64 data");
        Ok(SsmStepper::new(self.kernel.recurrence(l), d, batch))
    }

    /// One recurrent step: the same map as [`S4::forward`] applied to the next time step.
    ///
    /// Args: `u` [B, H]. Returns [B, H].
    fn step(&self, s: &mut SsmStepper, u: Tensor<2>) -> Result<Tensor<2>, StepError> {
        let y = self.activation.apply(s.advance(u)?); // [B, C·H]
        Ok(glu(self.output_linear.forward(self.dropout.forward(y)), 1))
    }

    fn set_state(&self, s: &mut SsmStepper, state: &SsmState) -> Result<(), StepError> {
        s.set_state(state)
    }

    fn state(&self, s: &SsmStepper) -> Result<SsmState, StepError> {
        Ok(s.state(&self.D.device()))
    }

    fn set_rate(&mut self, rate: f64) {
        self.kernel.rate = rate;
    }

    fn share_kernel(&mut self, l: usize) -> Option<(Tensor<3>, Tensor<3>)> {
        let k = self.kernel.forward(l); // [C, H, L]
        let leaf = k.clone().detach().require_grad();
        self.shared_kernel = Some(leaf.clone());
        Some((k, leaf))
    }

    /// S4Block: the SSM is its FFTConv `layer`; output_linear = Sequential(Linear(C·H, 2H), GLU).
    fn torch_key(_: Layout, prefix: &str, block: usize, rest: &[&str]) -> Option<(String, Map)> {
        let same = |name: String| Some((name, Map::Same));
        match rest {
            ["D"] => same(format!("{prefix}.layer.D")),
            ["kernel", "inv_dt"] => Some((format!("{prefix}.layer.kernel.inv_dt"), Map::InvDt)),
            ["kernel", "C"] => Some((format!("{prefix}.layer.kernel.C"), Map::S4C { block })),
            ["kernel", k @ ("A_real" | "A_imag" | "B" | "P")] => same(format!("{prefix}.layer.kernel.{k}")),
            ["output_linear", "weight"] => Some((format!("{prefix}.output_linear.0.weight"), Map::Transpose)),
            ["output_linear", "bias"] => same(format!("{prefix}.output_linear.0.bias")),
            _ => None,
        }
    }
}
