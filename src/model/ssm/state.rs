//! State forwarding in conv mode: a chunk's output from an initial state and the state after
//! it, equal to running step mode over the chunk, so a long sequence can be processed in
//! chunks (or a prompt by convolution, then generation by steps).
//!
//! For a linear recurrence `x_t = dA·x_{t-1} + dB·u_t`, `y_t = 2·Re Σ C·x_t` started from `x0`:
//! `y_t = (K * u)_t + 2·Re Σ C·dA^{t+1}·x0` and `x_{L-1} = dA^L·x0 + Σ_k dA^{L-1-k}·dB·u_k`.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::complex::{self, Complex};
use super::diagonal::DiagonalSystem;
use super::recurrence::{DiagonalState, Recurrence};
use super::stepper::StepError;
use super::vandermonde::vandermonde;

/// The SSM state of a batch: the stored half of each sequence's complex state, [B, H, N2].
#[derive(Debug, Clone)]
pub struct SsmState {
    /// Real parts, [B, H, N2].
    pub re: Tensor<3>,
    /// Imaginary parts, [B, H, N2].
    pub im: Tensor<3>,
}

impl SsmState {
    /// The zero state of `[B, H, N2]`.
    pub fn zeros(dims: [usize; 3], device: &Device) -> Self {
        Self { re: Tensor::zeros(dims, device), im: Tensor::zeros(dims, device) }
    }

    /// `[B, H, N2]`.
    pub fn dims(&self) -> [usize; 3] {
        self.re.dims()
    }

    /// Cuts the autodiff graph (truncated backpropagation through time).
    pub fn detach(self) -> Self {
        Self { re: self.re.detach(), im: self.im.detach() }
    }

    /// From host states, one per sequence, [H·N2] each.
    pub fn from_host(states: &[DiagonalState], h: usize, n2: usize, device: &Device) -> Self {
        let part = |f: fn(&DiagonalState) -> &Vec<f64>| {
            let v: Vec<f32> = states.iter().flat_map(|s| f(s).iter().map(|x| *x as f32)).collect();
            Tensor::from_data(TensorData::new(v, [states.len(), h, n2]), device)
        };
        Self { re: part(|s| &s.re), im: part(|s| &s.im) }
    }

    /// To host states, one per sequence, [H·N2] each.
    pub fn to_host(&self) -> Vec<DiagonalState> {
        let [b, h, n2] = self.dims();
        let m = h * n2;
        let re = self.re.clone().try_into_vec_as::<f64>().expect("f64 data");
        let im = self.im.clone().try_into_vec_as::<f64>().expect("f64 data");
        (0..b).map(|bi| DiagonalState { re: re[bi * m..][..m].to_vec(), im: im[bi * m..][..m].to_vec() }).collect()
    }

    /// Checks the shape against the layer's `[B, H, N2]`.
    pub fn check(&self, expected: [usize; 3]) -> Result<(), StepError> {
        if self.dims() == expected && self.im.dims() == expected {
            Ok(())
        } else {
            Err(StepError::Shape {
                what: "initial state [B, H, N2]",
                expected: expected.to_vec(),
                got: self.dims().to_vec(),
            })
        }
    }
}

impl DiagonalSystem {
    /// Conv-mode state forwarding of a layer's system: checks `state` against [B, H, N2], then
    /// returns the initial state's response (if any) and the final state.
    ///
    /// Args: `u` [B, L, H]; `state` [B, H, N2]. Returns ([B, L, C·H] if `state`, [B, H, N2]).
    pub fn forward_parts(
        &self,
        u: Tensor<3>,
        state: Option<&SsmState>,
    ) -> Result<(Option<Tensor<3>>, SsmState), StepError> {
        let [b, l, _] = u.dims();
        let [h, n2] = self.log_z.0.dims();
        if let Some(s) = state {
            s.check([b, h, n2])?;
        }
        let response = state.map(|s| self.state_response(s, l));
        Ok((response, self.final_state(u, state)))
    }

    /// The output caused by the initial state, `2·Re Σ_n C·dA^{t+1}·x0` (the input's part is
    /// the convolution). Differentiable in the parameters and `x0`.
    ///
    /// Args: `x0` [B, H, N2]. Returns [B, L, C·H] (channel-major features, as the layers
    /// concatenate their channels).
    pub fn state_response(&self, x0: &SsmState, l: usize) -> Tensor<3> {
        let [b, h, n2] = x0.dims();
        let c = self.c.0.dims()[0];
        let z = complex::exp(self.log_z.clone());
        let zx = complex::mul((x0.re.clone(), x0.im.clone()), (z.0.reshape([1, h, n2]), z.1.reshape([1, h, n2])));
        let cc = (self.c.0.clone().reshape([c, 1, h, n2]), self.c.1.clone().reshape([c, 1, h, n2]));
        let w = complex::mul(cc, (zx.0.reshape([1, b, h, n2]), zx.1.reshape([1, b, h, n2]))); // [C, B, H, N2]
        // Batch folded into the feature axis: [C, B·H, N2] against log dA tiled to [B·H, N2].
        let tile = |t: Tensor<2>| t.reshape([1, h, n2]).repeat_dim(0, b).reshape([b * h, n2]);
        let y = vandermonde(
            w.0.reshape([c, b * h, n2]),
            w.1.reshape([c, b * h, n2]),
            tile(self.log_z.0.clone()),
            tile(self.log_z.1.clone()),
            l,
        ); // [C, B·H, L]
        y.reshape([c, b, h, l]).permute([1, 3, 0, 2]).reshape([b, l, c * h])
    }

    /// The state after the sequence, `dA^L·x0 + dB·Σ_k dA^{L-1-k}·u_k`, by one batched matmul
    /// over time. Differentiable in the parameters, the input and `x0`.
    ///
    /// Args: `u` [B, L, H]; `x0` [B, H, N2] (None: zero). Returns [B, H, N2].
    pub fn final_state(&self, u: Tensor<3>, x0: Option<&SsmState>) -> SsmState {
        let [_, l, h] = u.dims();
        let n2 = self.log_z.0.dims()[1];
        let device = u.device();
        // Exponents L-1-k for k = 0..L-1, [1, L, 1].
        let e = (Tensor::<1, Int>::arange(0..l as i64, &device).float() * -1.0 + (l - 1) as f64).reshape([1, l, 1]);
        // |dB| goes into the exponent: a growing mode (Re log dA > 0, DSS-softmax's shifted
        // dB) would overflow f32 as |dA|^(L-1-k) before a tiny dB scales it back.
        let db_sq = self.db.0.clone().square() + self.db.1.clone().square();
        let log_db = db_sq.clone().clamp_min(1e-38).log() * 0.5; // [H, N2]
        let mag = (self.log_z.0.clone().reshape([h, 1, n2]) * e.clone() + log_db.reshape([h, 1, n2])).exp(); // [H, L, N2]
        let ang = self.log_z.1.clone().reshape([h, 1, n2]) * e;
        let ut = u.permute([2, 0, 1]); // [H, B, L]
        let s = (
            ut.clone().matmul(mag.clone() * ang.clone().cos()).swap_dims(0, 1),
            ut.matmul(mag * ang.sin()).swap_dims(0, 1),
        ); // [B, H, N2]
        let abs_db = db_sq.clamp_min(1e-38).sqrt(); // the floor of `log_db`, so mag·unit = dB
        let unit = |t: Tensor<2>| (t / abs_db.clone()).reshape([1, h, n2]);
        let mut x: Complex<3> = complex::mul(s, (unit(self.db.0.clone()), unit(self.db.1.clone())));
        if let Some(x0) = x0 {
            let zl = complex::exp(complex::scale(self.log_z.clone(), l as f64));
            let zl = (zl.0.reshape([1, h, n2]), zl.1.reshape([1, h, n2]));
            let carried = complex::mul((x0.re.clone(), x0.im.clone()), zl);
            x = (x.0 + carried.0, x.1 + carried.1);
        }
        SsmState { re: x.0, im: x.1 }
    }
}

/// State forwarding by stepping on the host, for the dense (DPLR) recurrence: the response to
/// `x0` with a zero input, and the final state. Costs O(B·H·N2·N·L) and carries no gradient.
///
/// Args: `u` [B, L, H]; `x0` [B, H, N2]. Returns (response [B, L, C·H] if `x0`, final state).
pub fn host_forwarding(rec: &Recurrence, u: Tensor<3>, x0: Option<&SsmState>) -> (Option<Tensor<3>>, SsmState) {
    let [b, l, h] = u.dims();
    let device = u.device();
    let (_, n2, c) = rec.dims();
    let u_host = u.try_into_vec_as::<f64>().expect("f64 data"); // [B, L, H]
    let init = x0.map(SsmState::to_host);
    let zeros = vec![0.0; h * l];
    let mut response = x0.map(|_| vec![0f32; b * l * c * h]);
    let mut finals = Vec::with_capacity(b);
    for bi in 0..b {
        let start = init.as_ref().map_or_else(|| rec.zero_state(), |s| rec.import(&s[bi]));
        if let Some(r) = response.as_mut() {
            let y = rec.run(&mut start.clone(), &zeros, l); // [C·H, L]
            for (j, row) in y.chunks(l).enumerate() {
                for (t, v) in row.iter().enumerate() {
                    r[(bi * l + t) * c * h + j] = *v as f32;
                }
            }
        }
        let ub: Vec<f64> = (0..h * l).map(|i| u_host[(bi * l + i % l) * h + i / l]).collect(); // [H, L]
        let mut state = start;
        rec.run(&mut state, &ub, l);
        finals.push(rec.export(&state));
    }
    let response = response.map(|r| Tensor::from_data(TensorData::new(r, [b, l, c * h]), &device));
    (response, SsmState::from_host(&finals, h, n2, &device))
}
