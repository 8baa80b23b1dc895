//! The CubeCL kernels (`wavessm::ops::cube`) on wgpu against the fused CPU ops on `flex`: value
//! and the gradient of every input, on small shapes that are not multiples of the 64-unit
//! workgroups.

use burn::tensor::{Device, Tensor};

use wavessm::ops::scan::{ScanArgs, selective_scan};

use crate::common::{host, max_rel, randn, t};

/// `(output, gradient of each input)` of `f` at `inputs` on `device`, the loss being
/// `Σ f(inputs)·probe` (None: the input does not reach the output).
fn value_and_grads<const D: usize>(
    device: &Device,
    inputs: &[(Vec<f32>, Vec<usize>)],
    probe: &[f32],
    f: impl Fn(&[Tensor<3>]) -> Tensor<D>,
) -> (Vec<f64>, Vec<Option<Vec<f64>>>) {
    // Every input travels as rank 3 (lower ranks carry leading 1s) so one closure type fits.
    let xs: Vec<Tensor<3>> = inputs
        .iter()
        .map(|(v, s)| {
            let s3 = match s[..] {
                [a] => [1, 1, a],
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
    let gs = xs.iter().map(|x| x.grad(&grads).map(host)).collect();
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
        let (a, b) = match (a, b) {
            (Some(a), Some(b)) => (a, b),
            (None, None) => continue,
            _ => panic!("{label}: {name} has a gradient on one device only"),
        };
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

/// Rank-3 carrier `x` back to rank 2.
fn r2(x: &Tensor<3>) -> Tensor<2> {
    x.clone().squeeze_dim::<2>(0)
}

/// Rank-3 carrier `x` back to rank 1.
fn r1(x: &Tensor<3>) -> Tensor<1> {
    r2(x).squeeze_dim::<1>(0)
}

/// The selective scan on wgpu equals the fused CPU scan in value (output and last state) and in
/// the gradient of every input; with and without gate and softplus, over two chunks of the
/// backward recomputation.
pub fn selective_scan_kernel(gpu: &Device) {
    assert!(wavessm::ops::cube_kernels(gpu), "wgpu must take the CubeCL kernels");
    for (i, &(b, l, e, n, gated)) in [(2, 70, 5, 3, true), (1, 33, 67, 4, false)].iter().enumerate() {
        let s = 100 * i as u64;
        let a: Vec<f32> = randn(e * n, s + 1).iter().map(|v| -(0.5 * v).exp()).collect();
        let delta: Vec<f32> = if gated {
            randn(b * l * e, s + 2).iter().map(|v| 0.5 * v - 1.0).collect()
        } else {
            randn(b * l * e, s + 2).iter().map(|v| 0.05 + 0.05 * v.abs()).collect()
        };
        let small = |len: usize, seed: u64| randn(len, seed).iter().map(|v| 0.1 * v).collect::<Vec<f32>>();
        let inputs = [
            (randn(b * l * e, s + 3), vec![b, l, e]),
            (delta, vec![b, l, e]),
            (a, vec![e, n]),
            (randn(b * l * n, s + 4), vec![b, l, n]),
            (randn(b * l * n, s + 5), vec![b, l, n]),
            (randn(e, s + 6), vec![e]),
            (randn(b * l * e, s + 7), vec![b, l, e]),
            (small(e, s + 8), vec![e]),
            (randn(b * e * n, s + 9), vec![b, e, n]),
        ];
        let args = |x: &[Tensor<3>]| ScanArgs {
            u: x[0].clone(),
            delta: x[1].clone(),
            a: r2(&x[2]),
            b: x[3].clone(),
            c: x[4].clone(),
            d: Some(r1(&x[5])),
            z: gated.then(|| x[6].clone()),
            delta_bias: Some(r1(&x[7])),
            delta_softplus: gated,
            h0: Some(x[8].clone()),
        };
        let label = format!("selective scan B={b} L={l} E={e} N={n} gated={gated}");
        let names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0"];
        check(gpu, &label, &names, &inputs, b * l * e, |x| selective_scan(args(x)).0);
        let last = |device: &Device| {
            let xs: Vec<Tensor<3>> = inputs
                .iter()
                .map(|(v, sh)| {
                    let s3 = match sh[..] {
                        [a] => [1, 1, a],
                        [a, b] => [1, a, b],
                        [a, b, c] => [a, b, c],
                        _ => unreachable!(),
                    };
                    t(v.clone(), s3, device)
                })
                .collect();
            host(selective_scan(args(&xs)).1)
        };
        let err = max_rel(&last(gpu), &last(&Device::flex()));
        println!("{label}: last state max rel {err:.2e}");
        assert!(err < 1e-4, "{label}: last state differs from the cpu by {err}");
    }
}
