//! Writes a model's weights under a reference layout's state_dict keys.

use std::collections::BTreeMap;
use std::path::Path;

use super::names::{Layout, Map, l_kernel_key, torch_name};
use super::st::{self, HostTensor};
use super::{DtTransform, TorchError, our_tensors};
use crate::model::{Layer, SequenceModel};

/// Writes `model`'s parameters to the safetensors file `path` under `layout`'s keys (S4's
/// `inv_dt` by `dt`, default the layout's). A parameter the layout has no key for is an error
/// naming it, unless `partial` (then it is left out and returned). Returns the keys written
/// and the parameters left out.
pub fn export(
    model: &SequenceModel,
    path: &Path,
    layout: Layout,
    dt: Option<DtTransform>,
    partial: bool,
) -> Result<(Vec<String>, Vec<String>), TorchError> {
    let dt = dt.unwrap_or(layout.default_dt_transform());
    super::check_s4d_transform(model, path)?;
    let mut out = BTreeMap::new();
    let mut unmapped = Vec::new();
    for (ours, shape, data) in our_tensors(model) {
        let Some((key, map)) = torch_name(layout, &ours) else {
            unmapped.push(ours);
            continue;
        };
        if map == Map::Zero {
            // The reference lacks it; only a zero one has a faithful counterpart.
            if data.iter().any(|v| *v != 0.0) {
                unmapped.push(ours);
            }
            continue;
        }
        if let Map::S4C { block } = map
            && let Layer::S4(s4) | Layer::LiquidS4(s4) = &model.layers[block].layer
            && s4.kernel.P.is_some()
        {
            // Our C̃ is for `l_kernel`; the reference reads that length from this buffer.
            let l = HostTensor { shape: vec![], data: vec![s4.kernel.l_kernel as f64], int: true };
            out.insert(l_kernel_key(&key), l);
        }
        let t = HostTensor { shape: map.torch_shape(&shape), data: map.to_torch(&shape, &data, dt), int: false };
        out.insert(key, t);
    }
    if !unmapped.is_empty() && !partial {
        return Err(TorchError::file(
            path,
            format!(
                "layout {layout} has no key for {} (pass --partial to leave them out): {}",
                plural(unmapped.len(), "parameter"),
                unmapped.join(", ")
            ),
        ));
    }
    let dt_name = match dt {
        DtTransform::Exp => "exp",
        DtTransform::Softplus => "softplus",
    };
    st::write(path, &out, &[("wavessm_layout", layout.to_string()), ("wavessm_dt_transform", dt_name.into())])?;
    Ok((out.into_keys().collect(), unmapped))
}

/// `n thing(s)`.
pub(crate) fn plural(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}
