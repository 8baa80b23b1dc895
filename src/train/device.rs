//! The compute device of a run: `trainer.device`, `trainer.devices` and `trainer.precision`.
//!
//! Every backend other than `flex` runs the layers through their generic tensor-op path
//! (`crate::ops::supported` is false there), but for the CubeCL kernels on wgpu
//! (`crate::ops::cube_kernels`); see the README's GPU section for what has been run where.

#[cfg(feature = "wgpu")]
use std::sync::OnceLock;

use anyhow::Result;
use burn::tensor::Device;

use super::{DeviceKind, Precision, TrainerConfig};
use crate::config::ConfigError;

/// A config error naming `trainer.<key>`.
fn key_error(key: &str, msg: String) -> anyhow::Error {
    ConfigError::Key { path: format!("trainer.{key}"), msg }.into()
}

/// The device for a trainer config (without autodiff). Errors name the key, and for a backend
/// that is not built in, the cargo feature that builds it.
pub fn device_for(t: &TrainerConfig) -> Result<Device> {
    let device = resolve_index(t.device, single_index(t)?)?;
    check_precision(t.precision, &device)?;
    Ok(device)
}

/// The default device of a kind (index 0), as [`device_for`] picks it.
pub fn resolve(kind: DeviceKind) -> Result<Device> {
    resolve_index(kind, 0)
}

fn resolve_index(kind: DeviceKind, index: usize) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => cpu(index, "device"),
        DeviceKind::Cuda => cuda(index),
        DeviceKind::Wgpu => wgpu(index),
        DeviceKind::Auto => auto(index),
    }
}

/// Which backend a device belongs to: `flex`, `cuda`, `wgpu`, or burn's own name for another.
pub fn backend_name(device: &Device) -> String {
    let inner = device.clone().inner();
    if inner == Device::flex() {
        return "flex".into();
    }
    let debug = format!("{inner:?}");
    for name in ["Cuda", "Wgpu", "Hip", "Cpu"] {
        if debug.contains(name) {
            return name.to_lowercase();
        }
    }
    debug
}

/// The one device index of `trainer.devices` (0 when null); more than one is refused: wavessm's
/// trainer steps one model on one device, and burn's data-parallel strategy needs collective
/// operations (all-reduce), which neither `flex` nor `wgpu` has. CUDA has them through NCCL,
/// but that path is not wired into the trainer and could not be tested here.
fn single_index(t: &TrainerConfig) -> Result<usize> {
    match t.devices.as_deref() {
        None => Ok(0),
        Some([i]) => Ok(*i),
        Some(list) => Err(key_error(
            "devices",
            format!(
                "{list:?} asks for data parallelism over {} devices; wavessm trains on one device \
                 (burn's DDP needs collective all-reduce, which flex and wgpu lack, and its CUDA/NCCL \
                 path is not wired in); give one index, e.g. [{}]",
                list.len(),
                list[0]
            ),
        )),
    }
}

/// The `flex` CPU backend; it has one device.
fn cpu(index: usize, key: &str) -> Result<Device> {
    if index != 0 {
        return Err(key_error("devices", format!("the CPU (`{key}: cpu`) has one device, index 0; got {index}")));
    }
    Ok(Device::flex())
}

/// CUDA device `index`; an error naming the feature in a build without it.
fn cuda(index: usize) -> Result<Device> {
    #[cfg(feature = "cuda")]
    return Ok(Device::cuda(index));
    #[cfg(not(feature = "cuda"))]
    {
        let _ = index;
        Err(key_error(
            "device",
            "`cuda` is not built in: build with `--features cuda` (needs network at build time)".into(),
        ))
    }
}

/// The wgpu device (index 0 only: wgpu picks its preferred adapter, overridable with
/// `CUBECL_WGPU_DEFAULT_DEVICE`); an error naming the feature in a build without it.
fn wgpu(index: usize) -> Result<Device> {
    if index != 0 {
        return Err(key_error(
            "devices",
            format!(
                "wgpu takes its preferred adapter (index 0; set CUBECL_WGPU_DEFAULT_DEVICE to pick another), got {index}"
            ),
        ));
    }
    #[cfg(feature = "wgpu")]
    return wgpu_adapter().map(|a| a.device.clone()).map_err(|e| key_error("device", format!("wgpu: {e}")));
    #[cfg(not(feature = "wgpu"))]
    Err(key_error("device", "`wgpu` is not built in: build with `--features wgpu`".into()))
}

/// The wgpu runtime once opened: its device, the adapter's description, and whether the adapter
/// is a software rasterizer (lavapipe, llvmpipe) rather than a GPU.
#[cfg(feature = "wgpu")]
pub struct WgpuAdapter {
    /// The burn device.
    pub device: Device,
    /// Adapter name and graphics API.
    pub description: String,
    /// Whether wgpu reports the adapter as a CPU (software Vulkan).
    pub software: bool,
}

/// Opens the wgpu runtime once per process (burn refuses a second initialization); the answer,
/// an adapter or the reason there is none, is kept.
#[cfg(feature = "wgpu")]
pub fn wgpu_adapter() -> Result<&'static WgpuAdapter, String> {
    static ADAPTER: OnceLock<Result<WgpuAdapter, String>> = OnceLock::new();
    ADAPTER
        .get_or_init(|| {
            let (device, setup) = Device::wgpu_options().init_with_setup().map_err(|e| e.to_string())?;
            let info = setup.adapter.get_info();
            Ok(WgpuAdapter {
                device,
                description: format!("{} ({:?})", info.name, info.backend),
                software: info.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// `trainer.device: auto`: `BURN_DEVICE` when set (burn's names; `cpu` is wavessm's CPU, flex),
/// else CUDA, else a wgpu GPU (a software adapter does not count), else the CPU. Prints which.
fn auto(index: usize) -> Result<Device> {
    if let Ok(name) = std::env::var("BURN_DEVICE") {
        let device = match name.to_lowercase().as_str() {
            "flex" | "cpu" => cpu(index, "BURN_DEVICE")?,
            "cuda" => cuda(index)?,
            "wgpu" | "vulkan" => wgpu(index)?,
            other => {
                return Err(key_error(
                    "device",
                    format!("`auto` with BURN_DEVICE={other}: this build has flex (cpu), wgpu and cuda at most"),
                ));
            }
        };
        eprintln!("trainer.device auto: BURN_DEVICE={name} -> {}", backend_name(&device));
        return Ok(device);
    }
    let (device, why) = auto_probe(index)?;
    eprintln!("trainer.device auto: {} ({why})", backend_name(&device));
    Ok(device)
}

/// The first GPU backend built in that has a device, else the CPU, and why.
fn auto_probe(index: usize) -> Result<(Device, String)> {
    let mut tried = Vec::new();
    for probe in [probe_cuda, probe_wgpu] {
        match probe(index) {
            Ok(found) => return Ok(found),
            Err(why) => tried.push(why),
        }
    }
    Ok((cpu(index, "device")?, tried.join("; ")))
}

/// CUDA device `index` if it opens (it opens lazily: touch it, and take a panic as "no device").
fn probe_cuda(index: usize) -> Result<(Device, String), String> {
    #[cfg(feature = "cuda")]
    return std::panic::catch_unwind(|| {
        let d = Device::cuda(index);
        burn::tensor::Tensor::<1>::zeros([1], &d).into_data();
        d
    })
    .map(|d| (d, format!("CUDA device {index}")))
    .map_err(|_| "cuda: no device".to_string());
    #[cfg(not(feature = "cuda"))]
    {
        let _ = index;
        Err("cuda: not built in".into())
    }
}

/// The wgpu adapter, unless it is a software rasterizer (slower than `flex` on the same CPU).
fn probe_wgpu(index: usize) -> Result<(Device, String), String> {
    #[cfg(feature = "wgpu")]
    return match wgpu_adapter() {
        Ok(a) if a.software => Err(format!("wgpu: only the software adapter {}", a.description)),
        Ok(a) if index == 0 => Ok((a.device.clone(), format!("adapter {}", a.description))),
        Ok(_) => Err(format!("wgpu: no device index {index}")),
        Err(e) => Err(format!("wgpu: {e}")),
    };
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = index;
        Err("wgpu: not built in".into())
    }
}

/// Refuses mixed precision, saying why: `flex` computes in f32 only; burn 0.22 has no autocast
/// (a device has one default float dtype), so f16/bf16 compute with f32 master weights and
/// f32 SSM kernels, as the references keep them, is not available on any backend yet.
fn check_precision(p: Precision, device: &Device) -> Result<()> {
    if p == Precision::F32 {
        return Ok(());
    }
    let backend = backend_name(device);
    let why = if backend == "flex" {
        "the CPU backend (flex) computes in f32 only".to_string()
    } else {
        format!(
            "not available on {backend}: burn 0.22 has no autocast (one float dtype per device), so f16/bf16 \
             compute with f32 master weights and f32 SSM kernels cannot be expressed yet"
        )
    };
    Err(key_error("precision", format!("`{p}` is refused: {why}; use 32")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trainer(yaml: &str) -> TrainerConfig {
        serde_yaml::from_str(&format!("max_epochs: 1\n{yaml}")).expect("trainer config")
    }

    fn error(yaml: &str) -> String {
        format!("{:#}", device_for(&trainer(yaml)).expect_err(yaml))
    }

    #[test]
    fn cpu_is_flex() {
        let d = device_for(&trainer("device: cpu")).expect("cpu");
        assert_eq!(backend_name(&d), "flex");
        assert_eq!(backend_name(&d.autodiff()), "flex");
    }

    #[test]
    fn several_devices_are_refused_naming_the_key() {
        let e = error("devices: [0, 1]");
        assert!(e.contains("trainer.devices") && e.contains("collective"), "{e}");
        assert!(error("devices: [1]").contains("trainer.devices"));
    }

    #[test]
    fn mixed_precision_is_refused_on_flex() {
        for p in ["16-mixed", "bf16-mixed"] {
            let e = error(&format!("precision: {p}"));
            assert!(e.contains("trainer.precision") && e.contains("f32 only"), "{e}");
        }
        assert!(device_for(&trainer("precision: 32")).is_ok());
        let bad = serde_yaml::from_str::<TrainerConfig>("max_epochs: 1\nprecision: 8-mixed").expect_err("8-mixed");
        assert!(bad.to_string().contains("16-mixed"), "{bad}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_names_it() {
        let e = error("device: cuda");
        assert!(e.contains("trainer.device") && e.contains("--features cuda"), "{e}");
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn wgpu_without_the_feature_names_it() {
        let e = error("device: wgpu");
        assert!(e.contains("trainer.device") && e.contains("--features wgpu"), "{e}");
    }

    #[cfg(not(any(feature = "cuda", feature = "wgpu")))]
    #[test]
    fn auto_without_a_gpu_backend_is_the_cpu() {
        if std::env::var_os("BURN_DEVICE").is_none() {
            assert_eq!(backend_name(&device_for(&trainer("device: auto")).expect("auto")), "flex");
        }
    }
}
