//! Shared helpers of the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::{Device, Tensor, TensorData};
use serde::Deserialize;
use wavessm::model::SeqLayer;

/// The device of the device-generic tests: `flex` unless the test binary chose another.
static DEVICE: OnceLock<Device> = OnceLock::new();

/// The device the device-generic tests run on (`flex` unless [`use_device`] chose another).
pub fn device() -> Device {
    DEVICE.get_or_init(Device::flex).clone()
}

/// Makes `d` this test binary's device; every caller must pass the same device.
pub fn use_device(d: Device) {
    let got = DEVICE.get_or_init(|| d.clone());
    assert!(*got == d, "the test device is already {got:?}");
}

/// `run` on each path the test device has, labelled: the fused kernels and the tensor-op path on
/// `flex`, the tensor-op path alone elsewhere (the fused kernels are CPU-only).
pub fn on_paths<T>(run: impl Fn() -> T) -> Vec<(&'static str, T)> {
    if wavessm::ops::supported(&device()) {
        vec![("fused", run()), ("tensor ops", wavessm::ops::with_generic_ops(&run))]
    } else {
        vec![("tensor ops", run())]
    }
}

/// [`on_paths`] for the ops that also have CubeCL kernels (the Vandermonde kernel, the selective
/// scan): on wgpu, the kernels (`cubecl`) and the tensor-op path.
pub fn on_kernel_paths<T>(run: impl Fn() -> T) -> Vec<(&'static str, T)> {
    if wavessm::ops::cube_kernels(&device()) {
        vec![("cubecl", run()), ("tensor ops", wavessm::ops::with_generic_ops(&run))]
    } else {
        on_paths(run)
    }
}

/// Runs `check` with each path's label (see [`on_paths`]).
pub fn each_path(check: impl Fn(&'static str)) {
    if wavessm::ops::supported(&device()) {
        check("fused");
        wavessm::ops::with_generic_ops(|| check("tensor ops"));
    } else {
        check("tensor ops");
    }
}

/// Folder of the reference vectors: `$WAVESSM_GOLDEN_DIR`, default `../shared/golden`.
pub fn golden_dir() -> PathBuf {
    std::env::var_os("WAVESSM_GOLDEN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/golden"))
}

/// Folder of the shared datasets: `$WAVESSM_DATA_DIR`, default `../shared/data`.
pub fn data_dir() -> PathBuf {
    std::env::var_os("WAVESSM_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// One array of a golden file.
#[derive(Debug, Deserialize, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

/// A golden file (schema in `shared/golden/README.md`).
#[derive(Debug, Deserialize)]
pub struct Golden {
    pub name: String,
    pub config: BTreeMap<String, serde_json::Value>,
    pub inputs: BTreeMap<String, Array>,
    pub outputs: BTreeMap<String, Array>,
    pub atol: f64,
    pub rtol: f64,
}

impl Golden {
    pub fn input(&self, k: &str) -> &Array {
        self.inputs.get(k).unwrap_or_else(|| panic!("{}: no input `{k}`", self.name))
    }
    pub fn output(&self, k: &str) -> &Array {
        self.outputs.get(k).unwrap_or_else(|| panic!("{}: no output `{k}`", self.name))
    }
    pub fn cfg_usize(&self, k: &str) -> usize {
        self.config.get(k).and_then(|v| v.as_u64()).unwrap_or_else(|| panic!("{}: config `{k}`", self.name)) as usize
    }

    /// Asserts `|actual - expected| <= atol + rtol·|expected|` elementwise; returns the worst ratio.
    pub fn check(&self, what: &str, actual: &[f64], expected: &Array) -> f64 {
        assert_eq!(
            actual.len(),
            expected.data.len(),
            "{}: `{what}` has {} values, expected {}",
            self.name,
            actual.len(),
            expected.data.len()
        );
        let mut worst = 0f64;
        for (i, (a, e)) in actual.iter().zip(&expected.data).enumerate() {
            let tol = self.atol + self.rtol * e.abs();
            let err = (a - e).abs();
            assert!(err <= tol, "{}: `{what}`[{i}] = {a}, expected {e} (|diff| {err:.3e} > tol {tol:.3e})", self.name);
            worst = worst.max(err / tol);
        }
        worst
    }
}

/// Loads one golden file.
pub fn load(path: &std::path::Path) -> Golden {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An f32 tensor from an array (shape taken from the array).
pub fn tensor<const D: usize>(a: &Array, device: &Device) -> Tensor<D> {
    let data: Vec<f32> = a.data.iter().map(|v| *v as f32).collect();
    Tensor::from_data(TensorData::new(data, a.shape.clone()), device)
}

/// Host values of a tensor as f64.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.try_into_vec_as::<f64>().expect("float tensor")
}

/// Runs `step` over the time steps of `u` [B, L, H] (each call gets the step's [B, H]) and
/// gathers its [B, H] outputs back into [B, L, H] order on the host.
pub fn step_through(u: &Tensor<3>, mut step: impl FnMut(Tensor<2>) -> Tensor<2>) -> Vec<f64> {
    let [b, l, h] = u.dims();
    let mut out = vec![0.0; b * l * h];
    for ti in 0..l {
        let y = host(step(u.clone().narrow(1, ti, 1).reshape([b, h])));
        for bi in 0..b {
            for hi in 0..h {
                out[(bi * l + ti) * h + hi] = y[bi * h + hi];
            }
        }
    }
    out
}

/// An S4 layer stepped through `u` [B, L, H] from the zero state; [B, L, H] on the host.
pub fn step_s4(layer: &wavessm::model::ssm::s4::S4, u: &Tensor<3>) -> Vec<f64> {
    let [b, l, _] = u.dims();
    let mut stepper = layer.stepper(b, l).expect("has a step form");
    step_through(u, |ut| layer.step(&mut stepper, ut).expect("step"))
}

/// Random values with a fixed seed (xorshift), uniform in [-1, 1).
pub fn randn(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// burn's random generator is process-wide: tests of one binary that seed it and then draw
/// (layer init, dropout) take turns, so parallel tests do not interleave their draws.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes this test binary's turn for seeded draws.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An f32 tensor of `shape` from `v`.
pub fn t<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Largest absolute difference relative to the largest magnitude of `b`.
pub fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Central differences of `f` (the loss at parameter + s·v) against the autodiff directional
/// derivative `analytic` = ⟨∇f, v⟩; f32 forward passes need a step of 1e-2 to stay above rounding.
pub fn check_directional(what: &str, analytic: f64, f: impl Fn(f64) -> f64) {
    let eps = 1e-2;
    let numeric = (f(eps) - f(-eps)) / (2.0 * eps);
    let rel = (analytic - numeric).abs() / analytic.abs().max(1e-3);
    assert!(rel < 2e-2, "{what}: analytic {analytic} vs numeric {numeric} (rel {rel})");
}

/// ⟨a, b⟩ on the host.
pub fn dot<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    host(a).iter().zip(host(b)).map(|(x, y)| x * y).sum()
}

/// A scalar loss `Σ y·w` with fixed random weights `w` (a random cotangent for `y`).
pub fn probe<const D: usize>(y: Tensor<D>, seed: u64) -> Tensor<1> {
    let n = y.shape().num_elements();
    let w = Tensor::<1>::from_data(TensorData::new(randn(n, seed), [n]), &y.device()).reshape(y.dims());
    (y * w).sum()
}

/// Every parameter value of the sequence model (1 input, 10 classes: the embedded default's
/// digits) in a run's `last.bpk`, in visiting order.
pub fn last_params(cfg: &wavessm::experiment::ExperimentConfig, run: &std::path::Path) -> Vec<f32> {
    use wavessm::train::checkpoint::Checkpoint;
    let path = run.join("checkpoints/last.bpk");
    let model = wavessm::model::SequenceModel::new(&cfg.model, 1, 10, &Device::flex()).unwrap();
    let model = wavessm::train::fit::load_model(model, Checkpoint::load(&path).unwrap().model, &path).unwrap();
    named_params(&model).into_iter().flat_map(|(_, _, v)| v).collect()
}

/// Every float parameter of `m` in visiting order: its dotted path, whether it is trainable
/// (requires grad), and its values.
pub fn named_params(m: &impl burn::module::Module) -> Vec<(String, bool, Vec<f32>)> {
    struct V(Vec<String>, Vec<(String, bool, Vec<f32>)>);
    impl burn::module::ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
            self.1.push((self.0.join("."), p.is_require_grad(), p.val().try_into_vec_as::<f32>().unwrap()));
        }
    }
    let mut v = V(vec![], vec![]);
    m.visit(&mut v);
    v.1
}

/// The `metrics.csv` rows of a run whose line contains `needle` (e.g. `,val,loss,`).
pub fn csv_rows(run: &std::path::Path, needle: &str) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines().filter(|l| l.contains(needle)).map(str::to_string).collect()
}

/// Asserts that stepping `layer` from the state `s1` forwarded over the first `m` steps of `x`
/// [B, L, H] reproduces the tail of its whole-sequence output `y` (a prompt, then generation).
pub fn check_steps_after_state<L: SeqLayer>(layer: &L, x: &Tensor<3>, s1: &L::State, y: &[f64], m: usize, name: &str) {
    let [b, l, h] = x.dims();
    let mut resumed = layer.stepper(b, l).expect("stepper");
    layer.set_state(&mut resumed, s1).expect("state shape");
    let tail = step_through(&x.clone().narrow(1, m, l - m), |xt| layer.step(&mut resumed, xt).expect("step"));
    let y_tail: Vec<f64> = (0..b).flat_map(|bi| y[(bi * l + m) * h..(bi + 1) * l * h].to_vec()).collect();
    assert!(max_rel(&tail, &y_tail) < 1e-5, "{name}: steps after a forwarded state {}", max_rel(&tail, &y_tail));
}

/// The virtualenv's Python with `module` importable; `None` (skip) outside CI, a failure in CI.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let py = std::env::var_os("WAVESSM_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/wavessm-venv/bin/python")
    });
    let ok = std::process::Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(py);
    }
    let why = format!("{} cannot import `{module}` (set WAVESSM_PYTHON; .ci/run makes the virtualenv)", py.display());
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    None
}

/// Whether the parameter at `path` falls in one of `groups`, matched as the optimizer matches
/// it (`suffix_regex`: the group's names as suffixes of the path).
pub fn in_groups(groups: &[wavessm::model::ssm::hyper::SsmGroup], path: &str) -> bool {
    let re = |g: &wavessm::model::ssm::hyper::SsmGroup| {
        regex::Regex::new(&wavessm::train::optim::suffix_regex(g.names)).expect("escaped names")
    };
    groups.iter().any(|g| re(g).is_match(path))
}

/// Asserts that `r` is a config error naming the key `key`.
pub fn assert_key_error<T: std::fmt::Debug>(r: Result<T, wavessm::config::ConfigError>, key: &str) {
    assert!(matches!(r, Err(wavessm::config::ConfigError::Key { ref path, .. }) if path == key), "{r:?}");
}
