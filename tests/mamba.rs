//! Mamba: the fused selective scan against its tensor-op formulation (values and gradients).

mod common;

use burn::tensor::{Device, Tensor};
use common::{host, max_rel, probe, randn, t};
use wavessm::model::ssm::selective::{ScanArgs, selective_scan_tensor_ops};

/// Random scan inputs: `b` batch, `l` steps (several backward chunks), `e` channels (more than
/// one block, the last one partial), `n` states; negative `A`.
fn scan_inputs(b: usize, l: usize, e: usize, n: usize, gate: bool, h0: bool, dev: &Device) -> ScanArgs {
    let leaf3 = |v: Vec<f32>, s: [usize; 3]| t(v, s, dev).require_grad();
    let leaf1 = |v: Vec<f32>, s: [usize; 1]| t(v, s, dev).require_grad();
    let a: Vec<f32> = randn(e * n, 3).iter().map(|v| -0.2 - 1.5 * v.abs()).collect();
    ScanArgs {
        u: leaf3(randn(b * l * e, 1), [b, l, e]),
        delta: leaf3(randn(b * l * e, 2).iter().map(|v| 2.0 * v - 1.0).collect(), [b, l, e]),
        a: t(a, [e, n], dev).require_grad(),
        b: leaf3(randn(b * l * n, 4), [b, l, n]),
        c: leaf3(randn(b * l * n, 5), [b, l, n]),
        d: Some(leaf1(randn(e, 6), [e])),
        z: gate.then(|| leaf3(randn(b * l * e, 7).iter().map(|v| 2.0 * v).collect(), [b, l, e])),
        delta_bias: Some(leaf1(randn(e, 8).iter().map(|v| v - 1.0).collect(), [e])),
        delta_softplus: true,
        h0: h0.then(|| leaf3(randn(b * e * n, 9), [b, e, n])),
    }
}

/// Output, last state, and the gradients of `Σ out·w` for every input that has one.
fn run_scan(s: &ScanArgs, fused: bool) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
    let (out, last) = if fused {
        wavessm::model::ssm::selective::selective_scan(s.clone())
    } else {
        selective_scan_tensor_ops(s.clone())
    };
    let (value, state) = (host(out.clone()), host(last));
    let g = probe(out, 11).backward();
    let mut grads: Vec<Vec<f64>> = vec![
        host(s.u.grad(&g).unwrap()),
        host(s.delta.grad(&g).unwrap()),
        host(s.a.grad(&g).unwrap()),
        host(s.b.grad(&g).unwrap()),
        host(s.c.grad(&g).unwrap()),
    ];
    grads.extend([&s.d, &s.delta_bias].into_iter().flatten().map(|p| host(p.grad(&g).unwrap())));
    grads.extend([&s.z, &s.h0].into_iter().flatten().map(|p| host(p.grad(&g).unwrap())));
    (value, state, grads)
}

#[test]
fn fused_scan_matches_tensor_ops_in_value_and_gradient() {
    let dev = Device::flex().autodiff();
    for (gate, h0, softplus) in [(true, false, true), (false, true, true), (true, true, false)] {
        let mut s = scan_inputs(2, 150, 20, 4, gate, h0, &dev);
        if !softplus {
            // Without the softplus Δ = delta + bias must stay positive.
            s.delta = t(randn(2 * 150 * 20, 2).iter().map(|v| 0.05 + 0.1 * v.abs()).collect(), [2, 150, 20], &dev)
                .require_grad();
            s.delta_bias = Some(t(vec![0.01; 20], [20], &dev).require_grad());
            s.delta_softplus = false;
        }
        let (v1, s1, g1) = run_scan(&s, true);
        let (v2, s2, g2) = wavessm::ops::with_generic_ops(|| run_scan(&s, false));
        let case = format!("gate {gate}, h0 {h0}, softplus {softplus}");
        assert!(max_rel(&v1, &v2) < 1e-5, "{case}: out {}", max_rel(&v1, &v2));
        assert!(max_rel(&s1, &s2) < 1e-5, "{case}: last state {}", max_rel(&s1, &s2));
        assert_eq!(g1.len(), g2.len());
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(max_rel(a, b) < 1e-4, "{case}: gradient {i}: {}", max_rel(a, b));
        }
    }
}

#[test]
fn scan_in_two_parts_equals_one_scan() {
    // The last state of the first half, as the initial state of the second half.
    let dev = Device::flex().autodiff();
    let s = scan_inputs(2, 37, 5, 3, true, false, &dev);
    let (whole, last) = wavessm::model::ssm::selective::selective_scan(s.clone());
    let m = 20;
    let part = |from: usize, len: usize, h0: Option<Tensor<3>>| {
        let cut = |x: &Tensor<3>| x.clone().narrow(1, from, len);
        wavessm::model::ssm::selective::selective_scan(ScanArgs {
            u: cut(&s.u),
            delta: cut(&s.delta),
            b: cut(&s.b),
            c: cut(&s.c),
            z: s.z.as_ref().map(cut),
            h0,
            ..s.clone()
        })
    };
    let (y1, h1) = part(0, m, None);
    let (y2, h2) = part(m, 37 - m, Some(h1));
    let joined = host(Tensor::cat(vec![y1, y2], 1));
    assert!(max_rel(&joined, &host(whole)) < 1e-6);
    assert!(max_rel(&host(h2), &host(last)) < 1e-6);
}
