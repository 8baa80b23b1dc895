//! Loads a reference state_dict (safetensors) into a built model: every expected key must be
//! present with the reference's shape; missing, unexpected and mis-shaped keys are reported by
//! name, all at once.

use std::collections::BTreeSet;
use std::path::Path;

use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::{Bytes, DType, Tensor, TensorData};
use num_complex::Complex64 as C64;

use super::export::plural;
use super::names::{DtTransform, Layout, Map, l_kernel_key, torch_name};
use super::st::{self, HostTensor};
use super::{TorchError, our_tensors};
use crate::model::ssm::dplr::map_outputs;
use crate::model::{Layer, SequenceModel};

/// Which of our parameters to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Select {
    /// Every parameter.
    #[default]
    All,
    /// Only the state-space parameters of the sequence layers (`kernel.*` and `D`); the rest
    /// keeps its initialization and the file's other keys are not looked at.
    Ssm,
}

/// How to read the file.
#[derive(Debug, Clone, Copy)]
pub struct ImportOptions {
    /// The reference model the keys follow.
    pub layout: Layout,
    /// How the file stores S4's `inv_dt` (None: the layout's default).
    pub dt_transform: Option<DtTransform>,
    /// Which parameters to load.
    pub select: Select,
    /// Keep the initialization of parameters whose key is missing or that the layout cannot
    /// name, and ignore unexpected keys (wrong shapes are still errors).
    pub partial: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Reference keys loaded.
    pub loaded: Vec<String>,
    /// Our parameters left at their initialization (not selected, or missing under `partial`).
    pub kept: Vec<String>,
    /// Keys of the file not used (only under `partial` or `Select::Ssm`).
    pub ignored: Vec<String>,
}

/// The largest kernel length a file's `l_kernel` may give (2^24 steps).
const MAX_L_KERNEL: f64 = 16_777_216.0;

/// Loads the safetensors file `path` into `model` (freshly built from the config the weights
/// belong to). Returns the model and what was loaded.
pub fn import(
    mut model: SequenceModel,
    path: &Path,
    opts: &ImportOptions,
) -> Result<(SequenceModel, ImportReport), TorchError> {
    let dt = opts.dt_transform.unwrap_or(opts.layout.default_dt_transform());
    super::check_s4d_transform(&model, path)?;
    let file = st::read(path)?;
    let mut report = ImportReport::default();
    let (mut missing, mut unmapped, mut wrong, mut nonfinite) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut used = BTreeSet::new();
    let mut pack = Vec::new();
    let mut rebase = Vec::new(); // (block, length the file's C̃ is for)
    for (ours, shape, _) in our_tensors(&model) {
        if opts.select == Select::Ssm && !is_ssm(&ours) {
            report.kept.push(ours);
            continue;
        }
        let Some((key, map)) = torch_name(opts.layout, &ours) else {
            unmapped.push(ours);
            continue;
        };
        if map == Map::Zero {
            // The reference has no such tensor: it is zero there.
            let zeros = vec![0f32; shape.iter().product()];
            pack.push(PackTensor::new(ours, DType::F32, shape, None, Bytes::from_elems(zeros)));
            continue;
        }
        let Some(t) = file.get(&key) else {
            missing.push(key);
            report.kept.push(ours);
            continue;
        };
        used.insert(key.clone());
        let want = map.torch_shape(&shape);
        if t.shape != want {
            wrong.push(format!("`{key}`: expected {want:?}, found {:?}", t.shape));
            continue;
        }
        if let Map::S4C { block } = map
            && matches!(&model.layers[block].layer, Layer::S4(s4) | Layer::LiquidS4(s4) if s4.kernel.P.is_some())
        {
            let lk = l_kernel_key(&key);
            match file.get(&lk) {
                Some(HostTensor { shape, data, .. })
                    if shape.is_empty() && data[0].fract() == 0.0 && (0.0..=MAX_L_KERNEL).contains(&data[0]) =>
                {
                    used.insert(lk);
                    rebase.push((block, data[0] as usize));
                }
                Some(t) => wrong.push(format!(
                    "`{lk}`: expected a length (an integer scalar in 0..={MAX_L_KERNEL}), found shape {:?} value {:?}",
                    t.shape,
                    t.data.first()
                )),
                // Without it `C` cannot be read (C̃ for an unknown length, or plain C): an error
                // even under `partial`, which would otherwise load a wrong kernel silently.
                None => wrong.push(format!("`{lk}` is missing: the kernel length `{key}` is for")),
            }
        }
        let values: Vec<f32> = map.to_ours(&shape, &t.data, dt).into_iter().map(|v| v as f32).collect();
        // The file's values are finite (st::parse checks), but the transform to our
        // parameterization (a log, an inverse softplus) or f32 may not be.
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            nonfinite.push(format!("`{key}`: value number {i} becomes {} in this model's parameterization", values[i]));
            continue;
        }
        pack.push(PackTensor::new(ours, DType::F32, shape, None, Bytes::from_elems(values)));
        report.loaded.push(key);
    }
    let unexpected: Vec<String> = match opts.select {
        Select::All => file.keys().filter(|k| !used.contains(*k)).cloned().collect(),
        Select::Ssm => Vec::new(),
    };
    let mut problems = Vec::new();
    if !wrong.is_empty() {
        problems.push(format!("wrong shapes: {}", wrong.join("; ")));
    }
    if !nonfinite.is_empty() {
        problems.push(format!("non-finite values: {}", nonfinite.join("; ")));
    }
    if !opts.partial {
        if !missing.is_empty() {
            problems.push(format!("missing {}: {}", plural(missing.len(), "key"), missing.join(", ")));
        }
        if !unmapped.is_empty() {
            problems.push(format!(
                "layout {} has no key for {}: {}",
                opts.layout,
                plural(unmapped.len(), "parameter"),
                unmapped.join(", ")
            ));
        }
        if !unexpected.is_empty() {
            problems.push(format!("unexpected {}: {}", plural(unexpected.len(), "key"), unexpected.join(", ")));
        }
    }
    if !problems.is_empty() {
        let hint = if opts.partial { "" } else { " (--partial loads what matches)" };
        return Err(TorchError::file(path, format!("does not fit this model{hint}: {}", problems.join(" | "))));
    }
    report.kept.extend(unmapped);
    report.ignored = if opts.select == Select::All { unexpected } else { Vec::new() };
    let result = model.apply(pack, None, None, false);
    if !result.errors.is_empty() {
        let errs: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        return Err(TorchError::file(path, errs.join("; ")));
    }
    for (block, from) in rebase {
        rebase_c_tilde(&mut model, block, from);
    }
    Ok((model, report))
}

/// A state-space parameter of a sequence layer (`layers.{i}.layer.{Variant}.kernel.*` or `.D`).
fn is_ssm(path: &str) -> bool {
    let s: Vec<&str> = path.split('.').collect();
    matches!(s.as_slice(), ["layers", _, "layer", _, "kernel", ..] | ["layers", _, "layer", _, "D"])
}

/// Re-expresses an S4 `nplr` block's `C` from C̃ for length `from` (0: plain C, as s4.py stores
/// it before its first forward) to C̃ for our kernel length.
fn rebase_c_tilde(model: &mut SequenceModel, block: usize, from: usize) {
    let (Layer::S4(s4) | Layer::LiquidS4(s4)) = &mut model.layers[block].layer else { return };
    let to = s4.kernel.l_kernel;
    if from == to {
        return;
    }
    let (dt, a, b, c, p) = s4.kernel.effective();
    let Some(p) = p else { return };
    let host = |t: Tensor<2>| t.try_into_vec_as::<f64>().expect("f64 data");
    let cx = |re: Vec<f64>, im: Vec<f64>| -> Vec<C64> { re.into_iter().zip(im).map(|(r, i)| C64::new(r, i)).collect() };
    let (w, b, p) = (cx(host(a.0), host(a.1)), cx(host(b.0), host(b.1)), cx(host(p.0), host(p.1)));
    let ct = cx(c.0.try_into_vec_as::<f64>().expect("f64"), c.1.try_into_vec_as::<f64>().expect("f64"));
    let dt = dt.try_into_vec_as::<f64>().expect("f64 data");
    let mapped = map_outputs(&dt, &w, &p, &b, &ct, |sys, ci| {
        let plain = if from == 0 { ci.to_vec() } else { sys.c_effective(ci, from) };
        sys.c_tilde(&plain, to)
    });
    let data: Vec<f32> = mapped.iter().flat_map(|z| [z.re as f32, z.im as f32]).collect();
    let (shape, device) = (s4.kernel.C.dims(), s4.kernel.C.device());
    // `map` keeps the parameter's id and gradient setting.
    s4.kernel.C = s4.kernel.C.clone().map(|_| Tensor::from_data(TensorData::new(data, shape.to_vec()), &device));
}

#[cfg(test)]
mod tests {
    #[test]
    fn ssm_paths() {
        assert!(super::is_ssm("layers.3.layer.S4.kernel.inv_dt"));
        assert!(super::is_ssm("layers.0.layer.Dss.D"));
        assert!(!super::is_ssm("layers.0.layer.S4.output_linear.weight"));
        assert!(!super::is_ssm("encoder.weight"));
    }
}
