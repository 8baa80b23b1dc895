//! HDF5 strain (feature `hdf5`): files written by `h5py` in GWOSC's per-detector layout and in
//! aframe's one-file layout give exactly the windows and streamed samples the same `.npy`
//! strain gives, and bad files are errors naming the file.
#![cfg(feature = "hdf5")]

mod common;

use std::path::Path;

use wavessm::config::Named;
use wavessm::data::gw::stream::StrainSource;
use wavessm::data::npy_format::write_npy_f32;
use wavessm::data::{DataConfig, DataModule};

const FS: usize = 256;
const SECS: usize = 60;

/// Runs `script` (with `sys.argv[1]` = `dir`) in the virtualenv's Python with h5py; `false` to skip.
fn h5py(dir: &Path, script: &str) -> bool {
    let Some(py) = common::python_with("h5py") else { return false };
    let out = std::process::Command::new(py).args(["-c", script]).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    true
}

/// `H1.npy`, `L1.npy` of unit noise in `dir`.
fn npy_strain(dir: &Path) {
    for (i, ifo) in ["H1", "L1"].iter().enumerate() {
        let x = common::randn(SECS * FS, 21 + i as u64);
        write_npy_f32(&dir.join(format!("{ifo}.npy")), &[x.len()], &x).unwrap();
    }
}

/// Writes, from the `.npy` files in the folder, GWOSC files `gwosc/<IFO>.hdf5` (float64
/// `strain/Strain` with `Xspacing`, L1's spacing scaled by `argv[2]`) and aframe's
/// `background.hdf5` (datasets `H1`, `L1`, float32, `sample_rate` on the file).
const WRITE: &str = r#"
import sys, os, numpy as np, h5py
d = sys.argv[1]; fs = float(sys.argv[2]); l1_scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
os.makedirs(f"{d}/gwosc", exist_ok=True)
with h5py.File(f"{d}/background.hdf5", "w") as bg:
    bg.attrs["sample_rate"] = fs
    for ifo in ["H1", "L1"]:
        x = np.load(f"{d}/{ifo}.npy")
        bg.create_dataset(ifo, data=x.astype(np.float32))
        with h5py.File(f"{d}/gwosc/{ifo}.hdf5", "w") as f:
            s = f.create_dataset("strain/Strain", data=x.astype(np.float64))
            s.attrs["Xspacing"] = (l1_scale if ifo == "L1" else 1.0) / fs
            s.attrs["Xstart"] = 1240579783.0
            f.create_dataset("meta/Detector", data=ifo)
"#;

fn write(dir: &Path, l1_scale: f64) -> bool {
    let script = format!("import sys; sys.argv += ['{FS}', '{l1_scale}']\n{WRITE}");
    h5py(dir, &script)
}

/// `gw_strain` on `path` with the keys of the YAML mapping `extra` replaced.
fn load(path: &Path, extra: &str) -> Result<DataModule, String> {
    let yaml = format!(
        "{{_name_: gw_strain, path: {}, sample_rate: {FS}, psd_length: 4, kernel_length: 1, fduration: 1, \
         highpass: 20, snr_min: 20, snr_max: 30, split: [0.6, 0.2, 0.2], n_train: 8, n_val: 4, n_test: 4}}",
        path.display()
    );
    let mut map: serde_yaml::Mapping = serde_yaml::from_str(&yaml).unwrap();
    map.extend(serde_yaml::from_str::<serde_yaml::Mapping>(if extra.is_empty() { "{}" } else { extra }).unwrap());
    let named: Named = serde_yaml::from_value(serde_yaml::Value::Mapping(map)).unwrap();
    DataConfig::from_named(&named, "data").map_err(|e| e.to_string())?.load().map_err(|e| e.to_string())
}

#[test]
fn hdf5_layouts_give_the_npy_windows_and_samples() {
    let dir = tempfile::tempdir().unwrap();
    npy_strain(dir.path());
    if !write(dir.path(), 1.0) {
        return;
    }
    let want = load(dir.path(), "").unwrap();
    for path in [dir.path().join("gwosc"), dir.path().join("background.hdf5")] {
        let got = load(&path, "").unwrap();
        for (a, b) in [(&want.train, &got.train), (&want.val, &got.val), (&want.test, &got.test)] {
            assert_eq!(a.inputs.to_vec(), b.inputs.to_vec(), "{}", path.display());
            assert_eq!(format!("{:?}", a.targets), format!("{:?}", b.targets));
        }
    }
    let ifos = ["H1".to_string(), "L1".to_string()];
    let mut npy = StrainSource::open(dir.path(), &ifos).unwrap();
    let mut h5 = StrainSource::open(&dir.path().join("gwosc"), &ifos).unwrap();
    assert_eq!(h5.sample_rate().map(|r| r.0), Some(FS as f64));
    assert_eq!(npy.sample_rate(), None);
    // A read across the end wraps around (a time slide), slice by slice.
    let (start, count, shift) = (SECS * FS - 100, 300, 7);
    for c in 0..2 {
        assert_eq!(npy.read(c, start, count, shift).unwrap(), h5.read(c, start, count, shift).unwrap());
    }
}

#[test]
fn bad_hdf5_strain_is_named() {
    let dir = tempfile::tempdir().unwrap();
    npy_strain(dir.path());
    if !write(dir.path(), 2.0) {
        return;
    }
    let gwosc = dir.path().join("gwosc");
    let e = load(&gwosc, "").unwrap_err();
    assert!(e.contains("gwosc/L1.hdf5") && e.contains("share one rate"), "{e}");
    let e = load(&dir.path().join("background.hdf5"), &format!("{{sample_rate: {}}}", 2 * FS)).unwrap_err();
    assert!(e.contains("background.hdf5") && e.contains("data.sample_rate"), "{e}");
    let script = "import sys, h5py\nwith h5py.File(sys.argv[1] + '/gwosc/L1.hdf5', 'a') as f:\n    \
                  f['strain/Strain'][777] = float('nan')\n    f['strain/Strain'].attrs['Xspacing'] = 1 / 256";
    assert!(h5py(dir.path(), script));
    let e = load(&gwosc, "").unwrap_err();
    assert!(e.contains("L1.hdf5") && e.contains("strain/Strain") && e.contains("777"), "{e}");
    std::fs::write(gwosc.join("L1.hdf5"), b"not hdf5 at all").unwrap();
    let e = load(&gwosc, "").unwrap_err();
    assert!(e.contains("L1.hdf5") && e.contains("HDF5"), "{e}");
    let e = load(&dir.path().join("background.hdf5"), "{ifos: [H1, V1]}").unwrap_err();
    assert!(e.contains("V1"), "{e}");
}
