//! The CubeCL kernels (`wavessm::ops::cube`) on wgpu against the fused CPU ops on `flex`: value
//! and the gradient of every input, on small shapes that are not multiples of the 64-unit
//! workgroups.

use burn::tensor::{Device, Tensor};

use crate::common::{host, max_rel, randn, t};

/// `(output, gradient of each input)` of `f` at `inputs` on `device`, the loss being
/// `Σ f(inputs)·probe`.
fn value_and_grads<const D: usize>(
    device: &Device,
    inputs: &[(Vec<f32>, Vec<usize>)],
    probe: &[f32],
    f: impl Fn(&[Tensor<3>]) -> Tensor<D>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    // Every input travels as rank 3 (rank-2 inputs carry a leading 1) so one closure type fits.
    let xs: Vec<Tensor<3>> = inputs
        .iter()
        .map(|(v, s)| {
            let s3 = match s[..] {
                [a, b] => [1, a, b],
                [a, b, c] => [a, b, c],
                _ => panic!("rank 2 or 3"),
            };
            t(v.clone(), s3, device).require_grad()
        })
        .collect();
    let y = f(&xs);
    let shape = y.dims();
    let grads = (y.clone() * Tensor::<D>::from_data(burn::tensor::TensorData::new(probe.to_vec(), shape), device))
        .sum()
        .backward();
    let gs = xs.iter().map(|x| host(x.grad(&grads).expect("input gradient"))).collect();
    (host(y), gs)
}

/// Compares the wgpu kernel with the CPU op for one call `f`; `names` label the inputs.
fn check<const D: usize>(
    gpu: &Device,
    label: &str,
    names: &[&str],
    inputs: &[(Vec<f32>, Vec<usize>)],
    probe_len: usize,
    f: impl Fn(&[Tensor<3>]) -> Tensor<D>,
) {
    let probe = randn(probe_len, 99);
    let (y_cpu, g_cpu) = value_and_grads(&Device::flex().autodiff(), inputs, &probe, &f);
    let (y_gpu, g_gpu) = value_and_grads(&gpu.clone().autodiff(), inputs, &probe, &f);
    let ey = max_rel(&y_gpu, &y_cpu);
    println!("{label}: output max rel {ey:.2e}");
    assert!(ey < 1e-4, "{label}: output differs from the cpu by {ey}");
    for ((name, a), b) in names.iter().zip(&g_gpu).zip(&g_cpu) {
        let e = max_rel(a, b);
        println!("{label}: ∂{name} max rel {e:.2e}");
        assert!(e < 1e-4, "{label}: gradient of {name} differs from the cpu by {e}");
    }
}

/// The Vandermonde kernel on wgpu equals the fused CPU kernel in value and gradient.
pub fn vandermonde(gpu: &Device) {
    assert!(wavessm::ops::cube_kernels(gpu), "wgpu must take the CubeCL kernels");
    for (i, &(c, h, n2, l)) in [(1, 3, 5, 70), (2, 4, 7, 33)].iter().enumerate() {
        let s = 10 * i as u64;
        // Decaying modes as S4D has them: dtA = dt·(−0.5 + i·πn) with dt around 0.05.
        let dta_re: Vec<f32> = randn(h * n2, s + 1).iter().map(|v| -0.025 * (1.0 + 0.5 * v.abs())).collect();
        let dta_im: Vec<f32> = (0..h * n2).map(|k| 0.05 * std::f32::consts::PI * (k % n2) as f32).collect();
        let inputs = [
            (randn(c * h * n2, s + 2), vec![c, h, n2]),
            (randn(c * h * n2, s + 3), vec![c, h, n2]),
            (dta_re, vec![h, n2]),
            (dta_im, vec![h, n2]),
        ];
        let label = format!("vandermonde C={c} H={h} N2={n2} L={l}");
        check(gpu, &label, &["W re", "W im", "dtA re", "dtA im"], &inputs, c * h * l, |x| {
            let sq = |t: &Tensor<3>| t.clone().squeeze_dim::<2>(0);
            wavessm::ops::vandermonde(x[0].clone(), x[1].clone(), sq(&x[2]), sq(&x[3]), l)
        });
    }
}
