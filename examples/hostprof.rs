use std::time::Instant;
use wavessm::ops::host;
fn t(name: &str, mut f: impl FnMut()) { f(); let t0 = Instant::now(); for _ in 0..5 { f(); } println!("{name}: {:.1} ms", t0.elapsed().as_secs_f64()*200.0); }
fn main() {

    let (b, l, h) = (16, 1024, 128);
    let u: Vec<f32> = (0..b*l*h).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
    let k: Vec<f32> = (0..h*l).map(|i| ((i * 31) % 100) as f32 / 100.0).collect();
    let d = vec![0.5f32; h];
    t("blh_to_hbl", || { std::hint::black_box(host::blh_to_hbl(&u, b, l, h)); });
    t("hbl_to_blh", || { std::hint::black_box(host::hbl_to_blh(&u, b, l, h)); });
    t("conv id", || { std::hint::black_box(host::causal_conv(&u, &k, &d, false, b, l, h)); });
    t("conv gelu", || { std::hint::black_box(host::causal_conv(&u, &k, &d, true, b, l, h)); });
    let (_, spec, z) = host::causal_conv(&u, &k, &d, true, b, l, h);
    t("conv grad", || { std::hint::black_box(host::causal_conv_grad(&u, &k, &d, &spec, &z, &u, b, l, h)); });
    t("gelu map", || { std::hint::black_box(u.iter().map(|v| host::gelu(*v)).collect::<Vec<_>>()); });
}
#[allow(dead_code)]
pub fn fft_only() {
    use realfft::RealFftPlanner;
    let mut p = RealFftPlanner::<f32>::new();
    let f = p.plan_fft_forward(2048);
    let mut x = vec![0.5f32; 2048];
    let mut y = f.make_output_vec();
    let mut s = f.make_scratch_vec();
    let t0 = Instant::now();
    for _ in 0..4096 { f.process_with_scratch(&mut x, &mut y, &mut s).unwrap(); }
    println!("4096 rffts 2048: {:.1} ms", t0.elapsed().as_secs_f64()*1e3);
    let inv = p.plan_fft_inverse(2048);
    let mut s2 = inv.make_scratch_vec();
    let t0 = Instant::now();
    for _ in 0..4096 { y[0].im = 0.0; y[1024].im = 0.0; inv.process_with_scratch(&mut y, &mut x, &mut s2).unwrap(); }
    println!("4096 irffts 2048: {:.1} ms", t0.elapsed().as_secs_f64()*1e3);
}
