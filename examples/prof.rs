use std::time::Instant;
use burn::tensor::{Device, Distribution, Tensor};
use wavessm::model::ssm::s4d::*;
use wavessm::model::ssm::conv::fft_conv;

fn t(name: &str, n: usize, mut f: impl FnMut()) {
    f();
    let t0 = Instant::now();
    for _ in 0..n { f(); }
    println!("{name}: {:.1} ms", t0.elapsed().as_secs_f64() * 1e3 / n as f64);
}

fn main() {
    let device = Device::flex().autodiff();
    let (b, h, l) = (16, 128, 1024);
    let cfg = S4dConfig { d_state: 64, dt_min: 1e-3, dt_max: 1e-1, lr: None, init: S4dInit::Lin, activation: Activation::Gelu, dropout: 0.0 };
    let layer = cfg.init(h, &device);
    let u = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &device);
    let ut = Tensor::<3>::random([b, h, l], Distribution::Normal(0.0, 1.0), &device);
    t("kernel fwd", 3, || { let _ = layer.kernel.forward(l).into_data(); });
    t("kernel fwd+bwd", 3, || { let _ = layer.kernel.forward(l).sum().backward(); });
    let k = Tensor::<2>::random([h, l], Distribution::Normal(0.0, 1.0), &device).require_grad();
    t("fftconv fwd", 3, || { let _ = fft_conv(ut.clone(), k.clone()).into_data(); });
    t("fftconv fwd+bwd", 3, || { let _ = fft_conv(ut.clone(), k.clone()).sum().backward(); });
    let d = Tensor::<1>::random([h], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let ur = u.clone().require_grad();
    t("causal_conv fwd", 3, || { let _ = wavessm::ops::causal_conv(ur.clone(), k.clone(), d.clone(), true).into_data(); });
    t("causal_conv fwd+bwd", 3, || { let _ = wavessm::ops::causal_conv(ur.clone(), k.clone(), d.clone(), true).sum().backward(); });
    t("gelu fwd+bwd", 3, || { let _ = burn::tensor::activation::gelu(ur.clone()).sum().backward(); });
    t("square mean fwd+bwd", 3, || { let _ = ur.clone().square().mean().backward(); });
    t("linear fwd+bwd", 3, || { let _ = layer.output_linear.forward(ur.clone()).sum().backward(); });
    let u2 = Tensor::<3>::random([b, l, 2*h], Distribution::Normal(0.0, 1.0), &device).require_grad();
    t("glu fwd+bwd", 3, || { let _ = burn::tensor::activation::glu(u2.clone(), 2).sum().backward(); });
    t("sigmoid fwd+bwd", 3, || { let _ = burn::tensor::activation::sigmoid(ur.clone()).sum().backward(); });
    let ln = burn::nn::LayerNormConfig::new(h).init(&device);
    t("layernorm fwd+bwd", 3, || { let _ = ln.forward(ur.clone()).sum().backward(); });
    t("add fwd+bwd", 3, || { let _ = (ur.clone() + ur.clone()).sum().backward(); });
    t("layer fwd", 3, || { let _ = layer.forward(u.clone()).into_data(); });
    t("layer fwd+bwd", 3, || { let _ = layer.forward(u.clone()).square().mean().backward(); });
    t("linear+glu fwd+bwd", 3, || { let _ = burn::tensor::activation::glu(layer.output_linear.forward(u.clone()), 2).sum().backward(); });

    let pd = Device::flex();
    let a = Tensor::<3>::random([b, h, l], Distribution::Normal(0.0, 1.0), &pd);
    t("plain mul", 10, || { let _ = (a.clone() * a.clone()).into_data(); });
    t("plain exp", 10, || { let _ = a.clone().exp().into_data(); });
    t("plain rfft", 10, || { let _ = burn::signal::rfft(a.clone(), 2, Some(2048)).0.into_data(); });
    t("plain swap contiguous", 10, || { let _ = (a.clone().swap_dims(1,2) * 1.0).into_data(); });
    let w = Tensor::<2>::random([h, 2*h], Distribution::Normal(0.0, 1.0), &pd);
    let a2 = Tensor::<3>::random([b, l, h], Distribution::Normal(0.0, 1.0), &pd);
    t("plain matmul", 10, || { let _ = a2.clone().matmul(w.clone().unsqueeze_dim(0)).into_data(); });
}
