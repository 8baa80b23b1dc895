//! Moving weights to and from PyTorch: our parameters under the reference state_dict keys in
//! `.safetensors` files (`safetensors.torch.save_file(model.state_dict(), path)` on the
//! PyTorch side). [`names`] maps keys and layouts, [`import`] loads a file into a built model,
//! [`export`] writes one.

pub mod export;
pub mod import;
pub mod names;
pub mod st;

use std::path::{Path, PathBuf};

pub use export::export;
pub use import::{ImportOptions, ImportReport, Select, import};
pub use names::{DtTransform, Layout};

/// Why weights could not be moved; always names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {msg}", path.display())]
pub struct TorchError {
    /// The safetensors file.
    pub path: PathBuf,
    /// What went wrong, naming the keys.
    pub msg: String,
}

impl TorchError {
    /// An error about `path`.
    pub fn file(path: &Path, msg: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), msg: msg.into() }
    }
}

/// s4d.py stores `log(-Re A)`: an `s4d` layer with another `real_transform` has no such tensor.
pub(crate) fn check_s4d_transform(model: &crate::model::SequenceModel, path: &Path) -> Result<(), TorchError> {
    use crate::model::ssm::diagonal::RealTransform;
    for (i, block) in model.layers.iter().enumerate() {
        if let crate::model::Layer::S4d(m) = &block.layer
            && m.kernel.real_transform != RealTransform::Exp
        {
            return Err(TorchError::file(
                path,
                format!(
                    "layer {i}: s4d.py's `log_A_real` is log(-Re A), but this model's s4d uses real_transform {:?} \
                     (use real_transform: exp, or model.layer: s4 with mode: diag, whose `A_real` has s4.py's transform)",
                    m.kernel.real_transform
                ),
            ));
        }
    }
    Ok(())
}

/// Our parameters as (path, shape, row-major f32 values widened to f64), in visiting order.
pub(crate) fn our_tensors(model: &crate::model::SequenceModel) -> Vec<(String, Vec<usize>, Vec<f64>)> {
    use burn::store::ModuleSnapshot;
    model
        .collect(None, None, false)
        .into_iter()
        .map(|t| {
            let (name, dtype, shape, _, bytes) = t.into_parts().expect("resident parameters read back");
            assert_eq!(dtype, burn::tensor::DType::F32, "`{name}`: models are built in f32");
            let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4")) as f64).collect();
            (name, shape.to_vec(), data)
        })
        .collect()
}
