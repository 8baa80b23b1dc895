//! The golden cases: every reference file is dispatched on its name and checked on the test
//! device (`common::device`); sizes come from the file. Shared by the CPU suite (`golden.rs`) and
//! the GPU set (`gpu.rs`).

use std::path::Path;

use burn::tensor::{Device, Tensor};
use num_complex::Complex64 as C64;
use wavessm::model::rnn::CellKind;
use wavessm::model::ssm::conv::causal_conv;
use wavessm::model::ssm::diagonal::{Disc, DssVersion, discretize, dss_kernel, dss_system, kernel};
use wavessm::model::ssm::dplr::{DplrRecurrence, dplr_kernel, map_outputs};
use wavessm::model::ssm::hippo::{legs, legs_diagonal, legs_nplr};
use wavessm::model::ssm::liquid::{Liquid, LiquidKernel};
use wavessm::model::ssm::recurrence::{DiagonalRecurrence, Recurrence};
use wavessm::model::ssm::s4d::S4dInit;
use wavessm::model::ssm::state::{SsmState, host_forwarding};

use crate::common::{self, Golden, host, tensor};
use crate::{golden_baselines, golden_mamba, golden_mamba2, golden_rnn, golden_transformer};

/// Diagonal kernel `K [C,H,L]` from the file's effective parameters.
fn diagonal_kernel(g: &Golden, disc: Disc, l: usize, device: &Device) -> Tensor<3> {
    let pair2 =
        |k: &str| (tensor::<2>(g.input(&format!("{k}_re")), device), tensor::<2>(g.input(&format!("{k}_im")), device));
    let c = (tensor::<3>(g.input("C_re"), device), tensor::<3>(g.input("C_im"), device));
    kernel(disc, tensor(g.input("dt"), device), pair2("A"), Some(pair2("B")), c, l)
}

fn check_s4d_kernel(g: &Golden, disc: Disc) {
    let l = g.cfg_usize("L");
    let device = common::device();
    for (path, k) in common::on_kernel_paths(|| host(diagonal_kernel(g, disc, l, &device))) {
        g.check(&format!("K ({path})"), &k, g.output("K"));
    }
}

fn check_s4d_init(g: &Golden, init: S4dInit) {
    let n = g.cfg_usize("N");
    let a_im: Vec<f64> = init.imags(n).iter().map(|v| -v).collect();
    let a_re = vec![-0.5; n / 2];
    g.check("A_re", &a_re, g.output("A_re"));
    g.check("A_im", &a_im, g.output("A_im"));
    g.check("B_re", &vec![1.0; n / 2], g.output("B_re"));
    g.check("B_im", &vec![0.0; n / 2], g.output("B_im"));
}

fn check_s4d_step(g: &Golden) {
    let device = common::device();
    let u = g.input("u");
    let [b, h, l] = u.shape[..] else { panic!("u must be [B,H,L]") };
    let n2 = g.input("A_re").shape[1];
    let c = g.input("C_re").shape[0];
    // Conv mode: K [C,H,L] and a causal convolution per channel.
    let y_conv = conv_channels(u, diagonal_kernel(g, Disc::Zoh, l, &device), &device);
    g.check("y_conv", &y_conv, g.output("y_conv"));
    // Step mode from the same parameters, in f64 on the host.
    let d = |k: &str| g.input(k).data.clone();
    let (a, b_in, c_in) = ((d("A_re"), d("A_im")), (d("B_re"), d("B_im")), (d("C_re"), d("C_im")));
    let rec = DiagonalRecurrence::new(Disc::Zoh, h, n2, &d("dt"), (&a.0, &a.1), (&b_in.0, &b_in.1), (&c_in.0, &c_in.1))
        .expect("zoh has a step form");
    let (mut y_step, mut fs_re, mut fs_im) = (vec![0.0; b * c * h * l], vec![], vec![]);
    for bi in 0..b {
        let mut state = rec.zero_state();
        let y = rec.run(&mut state, &u.data[bi * h * l..][..h * l], l);
        y_step[bi * c * h * l..][..c * h * l].copy_from_slice(&y);
        let state = rec.export(&state);
        fs_re.extend(state.re);
        fs_im.extend(state.im);
    }
    g.check("y_step", &y_step, g.output("y_step"));
    g.check("final_state_re", &fs_re, g.output("final_state_re"));
    g.check("final_state_im", &fs_im, g.output("final_state_im"));
    // And the two modes agree with each other (to float32 conv precision).
    let worst = y_conv.iter().zip(&y_step).map(|(a, b)| (a - b).abs() / (1.0 + b.abs())).fold(0.0, f64::max);
    assert!(worst < 1e-4, "conv and step modes differ by {worst}");
    // Conv-mode state forwarding of the same system, in two chunks.
    let pair2 = |k: &str| {
        (tensor::<2>(g.input(&format!("{k}_re")), &device), tensor::<2>(g.input(&format!("{k}_im")), &device))
    };
    let c3 = (tensor::<3>(g.input("C_re"), &device), tensor::<3>(g.input("C_im"), &device));
    let sys = discretize(Disc::Zoh, tensor(g.input("dt"), &device), pair2("A"), Some(pair2("B")), c3, l);
    check_chunked(g, diagonal_kernel(g, Disc::Zoh, l, &device), |u, x0| {
        (x0.map(|s| sys.state_response(s, u.dims()[1])), sys.final_state(u, x0))
    });
}

/// State forwarding against the step-mode reference: the first half of `u` from the zero
/// state, then the second half from the state it ends in, by convolution with `k` [C, H, L]
/// plus `forward`'s response to the state; its outputs are the second half of `y_step` and
/// its state `final_state`.
fn check_chunked(
    g: &Golden,
    k: Tensor<3>,
    forward: impl Fn(Tensor<3>, Option<&SsmState>) -> (Option<Tensor<3>>, SsmState),
) {
    let device = common::device();
    let u = g.input("u");
    let [b, h, l] = u.shape[..] else { panic!("u must be [B,H,L]") };
    let c = k.dims()[0];
    if l < 2 {
        return;
    }
    let m = l / 2;
    let u_blh: Tensor<3> = tensor::<3>(u, &device).swap_dims(1, 2); // [B, L, H]
    let (_, s1) = forward(u_blh.clone().narrow(1, 0, m), None);
    let u2 = u_blh.narrow(1, m, l - m);
    let (response, s2) = forward(u2.clone(), Some(&s1));
    let response = host(response.expect("a response to the initial state")); // [B, L-M, C·H]
    g.check("final_state_re (chunked conv mode)", &host(s2.re), g.output("final_state_re"));
    g.check("final_state_im (chunked conv mode)", &host(s2.im), g.output("final_state_im"));
    let (mut y2, mut expected) = (vec![0.0; b * c * h * (l - m)], vec![0.0; b * c * h * (l - m)]);
    let y_step = &g.output("y_step").data;
    for ci in 0..c {
        let kc = k.clone().narrow(0, ci, 1).narrow(2, 0, l - m).reshape([h, l - m]);
        let y = host(causal_conv(u2.clone(), kc, Tensor::zeros([h], &device), false)); // [B, L-M, H]
        for bi in 0..b {
            for t in 0..l - m {
                for hi in 0..h {
                    let i = ((bi * c + ci) * h + hi) * (l - m) + t;
                    y2[i] = y[(bi * (l - m) + t) * h + hi] + response[(bi * (l - m) + t) * c * h + ci * h + hi];
                    expected[i] = y_step[((bi * c + ci) * h + hi) * l + m + t];
                }
            }
        }
    }
    let shape = vec![b, c, h, l - m];
    g.check("y_step second half (chunked conv mode)", &y2, &common::Array { shape, data: expected });
}

/// HiPPO-LegS: dense `A`, `B` and the NPLR form `w`, `P`, `B` for both sizes.
fn check_hippo_legs(g: &Golden) {
    let n = g.cfg_usize("N_small");
    let (a, b) = legs(n);
    g.check("A", &a, g.output("A"));
    g.check("B", &b, g.output("B"));
    for (size, key) in [(n, "small"), (g.cfg_usize("N_large"), "large")] {
        let w = legs_diagonal(size);
        g.check(&format!("w_{key}_re"), &w.iter().map(|v| v.0).collect::<Vec<_>>(), g.output(&format!("w_{key}_re")));
        g.check(&format!("w_{key}_im"), &w.iter().map(|v| v.1).collect::<Vec<_>>(), g.output(&format!("w_{key}_im")));
        // S4D-LegS stores exactly this diagonal.
        let imags = S4dInit::Legs.imags(size);
        g.check(
            &format!("S4D-LegS A_im ({key})"),
            &imags.iter().map(|v| -v).collect::<Vec<_>>(),
            g.output(&format!("w_{key}_im")),
        );
        let nplr = legs_nplr(size, 2.0);
        for (name, v) in [("w", &nplr.w), ("P", &nplr.p), ("B", &nplr.b)] {
            g.check(
                &format!("{name}_{key}_re"),
                &v.iter().map(|z| z.re).collect::<Vec<_>>(),
                g.output(&format!("{name}_{key}_re")),
            );
            g.check(
                &format!("{name}_{key}_im"),
                &v.iter().map(|z| z.im).collect::<Vec<_>>(),
                g.output(&format!("{name}_{key}_im")),
            );
        }
    }
}

/// Complex values of `<key>_re`/`<key>_im`, flattened.
fn complex_input(g: &Golden, key: &str) -> Vec<C64> {
    let (re, im) = (g.input(&format!("{key}_re")), g.input(&format!("{key}_im")));
    re.data.iter().zip(&im.data).map(|(a, b)| C64::new(*a, *b)).collect()
}

/// `C̃` [C·H·N2] for an FFT length `l_fft` from the file's effective `C` (host, f64).
fn c_tilde(g: &Golden, l_fft: usize) -> Vec<C64> {
    let (dt, w, p, b, c) = (
        &g.input("dt").data,
        complex_input(g, "w"),
        complex_input(g, "P"),
        complex_input(g, "B"),
        complex_input(g, "C"),
    );
    map_outputs(dt, &w, &p, &b, &c, |sys, ci| sys.c_tilde(ci, l_fft))
}

/// DPLR kernel `K [C,H,L]` from the file's parameters, through `C̃` at the next power of two.
fn s4_kernel(g: &Golden, l: usize, device: &Device) -> Tensor<3> {
    let l_fft = l.next_power_of_two();
    let ct = c_tilde(g, l_fft);
    let shape = g.input("C_re").shape.clone();
    let arr = |v: Vec<f64>| common::Array { shape: shape.clone(), data: v };
    let ct = (
        tensor::<3>(&arr(ct.iter().map(|z| z.re).collect()), device),
        tensor::<3>(&arr(ct.iter().map(|z| z.im).collect()), device),
    );
    let [h, n2] = g.input("w_re").shape[..] else { panic!("w must be [H, N2]") };
    // P is stored [rank=1, H, N2].
    let pair = |k: &str| complex_hn(g, k, [h, n2], device);
    dplr_kernel(tensor(g.input("dt"), device), pair("w"), pair("P"), pair("B"), ct, l_fft).narrow(2, 0, l)
}

/// `<key>_re`/`<key>_im` as [H, N2] tensors, whatever leading unit axes the file gives them
/// (`P` is [rank=1, H, N2], Liquid-S4's `C` [1, H, N2]).
fn complex_hn(g: &Golden, key: &str, hn: [usize; 2], device: &Device) -> (Tensor<2>, Tensor<2>) {
    let part = |x: &str| {
        let arr = g.input(&format!("{key}_{x}"));
        common::tensor::<1>(&common::Array { shape: vec![arr.data.len()], data: arr.data.clone() }, device).reshape(hn)
    };
    (part("re"), part("im"))
}

/// `y [B, C, H, L]` = causal convolution of `u [B, H, L]` with each channel of `k [C, H, L]`.
fn conv_channels(u: &common::Array, k: Tensor<3>, device: &Device) -> Vec<f64> {
    let [b, h, l] = u.shape[..] else { panic!("u must be [B,H,L]") };
    let c = k.dims()[0];
    let u_t: Tensor<3> = tensor::<3>(u, device).swap_dims(1, 2); // [B, L, H]
    let mut y_conv = vec![0.0; b * c * h * l];
    for ci in 0..c {
        let kc = k.clone().narrow(0, ci, 1).reshape([h, l]);
        let y = host(causal_conv(u_t.clone(), kc, Tensor::zeros([h], device), false)); // [B, L, H]
        for bi in 0..b {
            for t in 0..l {
                for hi in 0..h {
                    y_conv[((bi * c + ci) * h + hi) * l + t] = y[(bi * l + t) * h + hi];
                }
            }
        }
    }
    y_conv
}

/// S4 conv mode (DPLR kernel) and step mode (dense bilinear recurrence) against the reference.
fn check_s4_step(g: &Golden) {
    let device = common::device();
    let u = g.input("u");
    let [b, h, l] = u.shape[..] else { panic!("u must be [B,H,L]") };
    let y_conv = conv_channels(u, s4_kernel(g, l, &device), &device);
    g.check("y_conv", &y_conv, g.output("y_conv"));
    let (w, p, bb, c) = (complex_input(g, "w"), complex_input(g, "P"), complex_input(g, "B"), complex_input(g, "C"));
    let rec = DplrRecurrence::new(&g.input("dt").data, &w, &p, &bb, &c);
    let ch = c.len() / w.len();
    let (mut y_step, mut fs_re, mut fs_im) = (vec![0.0; b * ch * h * l], vec![], vec![]);
    let mut yt = vec![0.0; ch * h];
    for bi in 0..b {
        let mut state = rec.zero_state();
        for t in 0..l {
            let ut: Vec<f64> = (0..h).map(|hi| u.data[(bi * h + hi) * l + t]).collect();
            rec.step(&mut state, &ut, &mut yt);
            for (j, v) in yt.iter().enumerate() {
                y_step[(bi * ch * h + j) * l + t] = *v;
            }
        }
        fs_re.extend(state.re);
        fs_im.extend(state.im);
    }
    g.check("y_step", &y_step, g.output("y_step"));
    g.check("final_state_re", &fs_re, g.output("final_state_re"));
    g.check("final_state_im", &fs_im, g.output("final_state_im"));
    let rec = Recurrence::Dplr(rec);
    check_chunked(g, s4_kernel(g, l, &device), |u, x0| host_forwarding(&rec, u, x0));
    // C̃ → C recovers the effective C (what step mode needs from a trained C̃).
    let l_fft = l.next_power_of_two();
    let ct = c_tilde(g, l_fft);
    let back = map_outputs(&g.input("dt").data, &w, &p, &bb, &ct, |sys, ci| sys.c_effective(ci, l_fft));
    g.check("C from C~ (re)", &back.iter().map(|z| z.re).collect::<Vec<_>>(), g.input("C_re"));
    g.check("C from C~ (im)", &back.iter().map(|z| z.im).collect::<Vec<_>>(), g.input("C_im"));
}

/// Liquid-S4: the S4 kernel, the plain SSM output, and the output with the liquid terms.
fn check_liquid(g: &Golden) {
    let device = common::device();
    let u = g.input("u");
    let [_, h, l] = u.shape[..] else { panic!("u must be [B,H,L]") };
    let k = s4_kernel(g, l, &device); // [1, H, L]
    g.check("K", &host(k.clone()), g.output("K"));
    let y_ssm = conv_channels(u, k.clone(), &device);
    g.check("y_ssm", &y_ssm, g.output("y_ssm"));
    let kernel = match g.config.get("liquid_kernel").and_then(|v| v.as_str()) {
        Some("kb") => LiquidKernel::Kb,
        Some("polyb") => LiquidKernel::Polyb,
        other => panic!("{}: liquid_kernel {other:?}", g.name),
    };
    let allcombs = g.config.get("allcombs").and_then(|v| v.as_bool()).expect("allcombs");
    let liquid = Liquid { kernel, degree: g.cfg_usize("liquid_degree"), allcombs };
    let n2 = g.input("w_re").shape[1];
    let pair = |k: &str| complex_hn(g, k, [h, n2], &device);
    let (sigma, gh) = Liquid::coefficients(tensor(g.input("dt"), &device), pair("w"), pair("B"), pair("C"));
    let corr = liquid.correction(tensor::<3>(u, &device), k.reshape([h, l]), sigma, gh);
    let y: Vec<f64> = y_ssm.iter().zip(host(corr)).map(|(a, b)| a + b).collect();
    g.check("y", &y, g.output("y"));
}

fn check_s4_kernel(g: &Golden) {
    let l = g.cfg_usize("L");
    let device = common::device();
    for (path, k) in common::on_paths(|| host(s4_kernel(g, l, &device))) {
        g.check(&format!("K ({path})"), &k, g.output("K"));
    }
}

fn check_dss_kernel(g: &Golden, version: DssVersion) {
    let l = g.cfg_usize("L");
    let device = common::device();
    let run = || {
        let lambda = (tensor::<1>(g.input("Lambda_re"), &device), tensor::<1>(g.input("Lambda_im"), &device));
        let w = (tensor::<3>(g.input("W_re"), &device), tensor::<3>(g.input("W_im"), &device));
        host(dss_kernel(version, tensor(g.input("dt"), &device), lambda, w, l))
    };
    for (path, k) in common::on_kernel_paths(run) {
        g.check(&format!("K ({path})"), &k, g.output("K"));
    }
    // Step mode: the recurrence's impulse response is the kernel (of this length, for softmax).
    let lambda = (tensor::<1>(g.input("Lambda_re"), &device), tensor::<1>(g.input("Lambda_im"), &device));
    let w = (tensor::<3>(g.input("W_re"), &device), tensor::<3>(g.input("W_im"), &device));
    let rec = dss_system(version, tensor(g.input("dt"), &device), lambda, w, l).recurrence();
    let h = rec.width();
    let mut impulse = vec![0.0; h * l];
    for hi in 0..h {
        impulse[hi * l] = 1.0;
    }
    let k_step = rec.run(&mut rec.zero_state(), &impulse, l); // [C, H, L]
    g.check("K (impulse response in step mode)", &k_step, g.output("K"));
}

/// Checks every golden file in `dir` that a case covers; returns the cases checked and the
/// files no case covers yet.
pub fn check_all(dir: &Path) -> (Vec<String>, Vec<String>) {
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e} (set WAVESSM_GOLDEN_DIR)", dir.display()));
    let mut files: Vec<_> =
        rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    let (mut checked, mut pending) = (Vec::new(), Vec::new());
    for path in files {
        let case = path.file_stem().unwrap().to_string_lossy().into_owned();
        let g = common::load(&path);
        let clock = std::time::Instant::now();
        match case.as_str() {
            "s4d_kernel_zoh" => check_s4d_kernel(&g, Disc::Zoh),
            "s4d_kernel_bilinear" => check_s4d_kernel(&g, Disc::Bilinear),
            "s4d_kernel_dss" => check_s4d_kernel(&g, Disc::Dss),
            "s4d_init_lin" => check_s4d_init(&g, S4dInit::Lin),
            "s4d_init_inv" => check_s4d_init(&g, S4dInit::Inv),
            "s4d_step" => check_s4d_step(&g),
            "dss_kernel_exp" => check_dss_kernel(&g, DssVersion::Exp),
            "dss_kernel_softmax" => check_dss_kernel(&g, DssVersion::Softmax),
            "hippo_legs" => check_hippo_legs(&g),
            "s4_kernel_dplr" => check_s4_kernel(&g),
            "s4_step" => check_s4_step(&g),
            c if c.starts_with("liquid_s4_") => check_liquid(&g),
            "lstm" => golden_rnn::check_recurrent(&g, CellKind::Lstm),
            "gru" => golden_rnn::check_recurrent(&g, CellKind::Gru),
            "wave_rnn" => golden_rnn::check_wave_rnn(&g),
            "mamba_selective_scan" => golden_mamba::check_scan(&g),
            "mamba_block" => golden_mamba::check_block(&g),
            "mamba2_ssd" => golden_mamba2::check_ssd(&g),
            "transformer_layer" => golden_transformer::check(&g),
            "unicornn" => golden_baselines::check_unicornn(&g),
            "lipschitz_rnn" => golden_baselines::check_lipschitz(&g),
            _ => {
                pending.push(case);
                continue;
            }
        }
        println!("{case}: {:.1} s", clock.elapsed().as_secs_f64());
        checked.push(case);
    }
    (checked, pending)
}
