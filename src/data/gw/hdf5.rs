//! Strain in HDF5 (cargo feature `hdf5`), in the two layouts GW users have on disk:
//! - GWOSC's per-detector files: the series is `strain/Strain`, its sample spacing in seconds is
//!   the dataset's `Xspacing` attribute;
//! - aframe's background files: one 1-D dataset per detector at the root, named by the detector
//!   (`H1`, `L1`), the rate in a `sample_rate` attribute of the dataset or the file where present.
//!
//! Reads are lazy (a slice at a time), as for `.npy`.

use std::path::{Path, PathBuf};

use crate::data::DataError;

/// GWOSC's dataset path of the strain.
const GWOSC_STRAIN: &str = "strain/Strain";

/// One detector's series in an HDF5 file.
#[derive(Debug)]
pub struct H5Series {
    path: PathBuf,
    /// Dataset path inside the file, for messages.
    name: String,
    ds: hdf5::Dataset,
    len: usize,
    /// Sample rate recorded in the file, Hz.
    pub sample_rate: Option<f64>,
}

fn corrupt(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::Corrupt { path: path.to_path_buf(), msg: msg.into() }
}

/// A float attribute `name` of `loc`, if it has one; present but unreadable is an error.
fn attr_f64(path: &Path, loc: &hdf5::Location, name: &str, what: &str) -> Result<Option<f64>, DataError> {
    if !loc.attr_names().map_err(|e| corrupt(path, format!("{what}: {e}")))?.iter().any(|a| a == name) {
        return Ok(None);
    }
    let v = loc
        .attr(name)
        .and_then(|a| a.read_scalar::<f64>())
        .map_err(|e| corrupt(path, format!("attribute `{what}.{name}`: {e}")))?;
    Ok(Some(v))
}

impl H5Series {
    /// Opens detector `ifo` in `path`: the root dataset named `ifo` (aframe), else GWOSC's
    /// `strain/Strain` (a per-detector file).
    pub fn open(path: &Path, ifo: &str) -> Result<Self, DataError> {
        // A FIFO or device would block or never end inside the C library: only regular files.
        crate::io::open_regular(path).map_err(|e| DataError::from_io(path, "an HDF5 strain file", e))?;
        let file = hdf5::File::open(path).map_err(|e| corrupt(path, format!("not a readable HDF5 file ({e})")))?;
        let name = if file.link_exists(ifo) {
            ifo.to_string()
        } else if file.link_exists(GWOSC_STRAIN) {
            GWOSC_STRAIN.to_string()
        } else {
            return Err(corrupt(
                path,
                format!("no dataset `{ifo}` (aframe's layout) and no `{GWOSC_STRAIN}` (GWOSC's layout)"),
            ));
        };
        let ds = file.dataset(&name).map_err(|e| corrupt(path, format!("`{name}` is not a dataset ({e})")))?;
        let shape = ds.shape();
        let &[len] = shape.as_slice() else {
            return Err(corrupt(path, format!("dataset `{name}` has shape {shape:?}; expected [T]")));
        };
        let sample_rate = if name == GWOSC_STRAIN {
            match attr_f64(path, &ds, "Xspacing", &name)? {
                Some(dt) if dt.is_finite() && dt > 0.0 => Some(1.0 / dt),
                Some(dt) => {
                    return Err(corrupt(path, format!("attribute `{name}.Xspacing` = {dt}: not a positive spacing")));
                }
                None => None,
            }
        } else {
            match attr_f64(path, &ds, "sample_rate", &name)? {
                Some(fs) => Some(fs),
                None => attr_f64(path, &file, "sample_rate", "/")?,
            }
        };
        if let Some(fs) = sample_rate.filter(|fs| !(fs.is_finite() && *fs > 0.0)) {
            return Err(corrupt(path, format!("sample rate {fs} Hz recorded for `{name}`: not a positive rate")));
        }
        Ok(Self { path: path.to_path_buf(), name, ds, len, sample_rate })
    }

    /// Samples in the series.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the series is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Samples `start..start + count` as f64; NaN or infinity is an error naming the index.
    pub fn read(&self, start: usize, count: usize) -> Result<Vec<f64>, DataError> {
        let a = self.ds.read_slice_1d::<f64, _>(start..start + count).map_err(|e| {
            corrupt(&self.path, format!("dataset `{}` samples {start}..{}: {e}", self.name, start + count))
        })?;
        let out: Vec<f64> = a.iter().copied().collect();
        if let Some(i) = out.iter().position(|v| !v.is_finite()) {
            let msg = format!("dataset `{}`: value {} at index {}: NaN or infinity", self.name, out[i], start + i);
            return Err(corrupt(&self.path, msg));
        }
        Ok(out)
    }
}
