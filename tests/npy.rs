//! `data=npy`: layouts, dtypes, and every header or content fault named by file and field.

mod common;

use std::path::Path;

use wavessm::data::npy_format::{read_npy, write_npy_f32};
use wavessm::data::{DataConfig, DataError, DataModule, Targets};

/// A raw `.npy` v1.0 file with `header` (padded as NumPy pads it) and `payload`.
fn raw(path: &Path, header: &str, payload: &[u8]) {
    let mut h = header.to_string();
    while !(10 + h.len() + 1).is_multiple_of(64) {
        h.push(' ');
    }
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(payload);
    std::fs::write(path, out).unwrap();
}

fn load(dir: &Path, extra: &str) -> Result<DataModule, DataError> {
    let named: wavessm::config::Named =
        serde_yaml::from_str(&format!("{{_name_: npy, path: {}{extra}}}", dir.display())).unwrap();
    DataConfig::from_named(&named, "data").unwrap().load()
}

/// Writes the three splits with `n` samples each of [n, C=2, L=3] (value = 100 i + 10 c + t).
fn write_splits(dir: &Path, n: usize) {
    for s in ["train", "val", "test"] {
        let x: Vec<f32> =
            (0..n).flat_map(|i| (0..2).flat_map(move |c| (0..3).map(move |t| (100 * i + 10 * c + t) as f32))).collect();
        write_npy_f32(&dir.join(format!("X_{s}.npy")), &[n, 2, 3], &x).unwrap();
        let y: Vec<f32> = (0..n).map(|i| (i % 2) as f32).collect();
        write_npy_f32(&dir.join(format!("y_{s}.npy")), &[n], &y).unwrap();
    }
}

#[test]
fn channels_first_become_features_per_step() {
    let dir = tempfile::tempdir().unwrap();
    write_splits(dir.path(), 4);
    let dm = load(dir.path(), "").unwrap();
    assert_eq!((dm.train.len(), dm.train.seq_len, dm.train.channels), (4, 3, 2));
    // Sample 1, step 2, channel 1 = 100 + 10 + 2.
    let row = dm.train.inputs.as_owned().unwrap();
    assert_eq!(row[6 + 2 * 2 + 1], 112.0);
    match &dm.test.targets {
        Targets::Classes { labels, n_classes } => assert_eq!((labels.as_slice(), *n_classes), (&[0, 1, 0, 1][..], 2)),
        t => panic!("{t:?}"),
    }
    // The same file read as [n, L, C]: no transpose.
    let dm = load(dir.path(), ", layout: nlc").unwrap();
    assert_eq!((dm.train.seq_len, dm.train.channels), (2, 3));
    assert_eq!(dm.train.inputs.as_owned().unwrap()[6 + 1], 101.0);
}

#[test]
fn integer_and_float64_arrays_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a.npy");
    let ints: Vec<u8> = [-3i16, 7, 300].iter().flat_map(|v| v.to_le_bytes()).collect();
    raw(&p, "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }", &ints);
    assert_eq!(read_npy(&p).unwrap().to_f64().unwrap(), vec![-3.0, 7.0, 300.0]);
    let f: Vec<u8> = [0.1f64, -2.5].iter().flat_map(|v| v.to_be_bytes()).collect();
    raw(&p, "{'descr': '>f8', 'fortran_order': False, 'shape': (1, 2), }", &f);
    let a = read_npy(&p).unwrap();
    assert_eq!((a.shape.clone(), a.to_f64().unwrap()), (vec![1, 2], vec![0.1, -2.5]));
}

#[test]
fn header_faults_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.npy");
    let four = [0u8; 16];
    let cases = [
        ("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", "`descr`"),
        ("{'descr': '<f4', 'fortran_order': True, 'shape': (4,), }", "`fortran_order`"),
        ("{'descr': '<f4', 'fortran_order': maybe, 'shape': (4,), }", "`fortran_order`"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", "`shape`"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (x,), }", "`shape`"),
        ("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }", "`shape`"),
        ("{'descr': '<f4', 'fortran_order': False, }", "`shape`"),
    ];
    for (header, field) in cases {
        raw(&p, header, &four);
        let e = read_npy(&p).unwrap_err().to_string();
        assert!(e.contains("bad.npy") && e.contains(field), "{header}: {e}");
    }
    std::fs::write(&p, b"PK\x03\x04not npy").unwrap();
    let e = read_npy(&p).unwrap_err().to_string();
    assert!(e.contains("bad.npy") && e.contains("magic"), "{e}");
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend_from_slice(&60000u16.to_le_bytes());
    std::fs::write(&p, v).unwrap();
    let e = read_npy(&p).unwrap_err().to_string();
    assert!(e.contains("header length"), "{e}");
}

#[test]
fn bad_content_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    write_splits(dir.path(), 4);
    // NaN in X.
    write_npy_f32(&dir.path().join("X_val.npy"), &[1, 2, 3], &[0.0, 1.0, f32::NAN, 0.0, 0.0, 0.0]).unwrap();
    let e = load(dir.path(), "").unwrap_err().to_string();
    assert!(e.contains("X_val.npy") && e.contains("NaN"), "{e}");
    // Fewer labels than samples.
    write_splits(dir.path(), 4);
    write_npy_f32(&dir.path().join("y_test.npy"), &[3], &[0.0, 1.0, 0.0]).unwrap();
    let e = load(dir.path(), "").unwrap_err().to_string();
    assert!(e.contains("y_test.npy") && e.contains("X_test.npy") && e.contains("3 samples"), "{e}");
    // A non-integral label, and a missing file.
    write_splits(dir.path(), 4);
    write_npy_f32(&dir.path().join("y_train.npy"), &[4], &[0.0, 0.5, 1.0, 0.0]).unwrap();
    let e = load(dir.path(), "").unwrap_err().to_string();
    assert!(e.contains("y_train.npy") && e.contains("0.5"), "{e}");
    std::fs::remove_file(dir.path().join("y_train.npy")).unwrap();
    assert!(matches!(load(dir.path(), ""), Err(DataError::Missing { .. })));
}

#[test]
fn shared_gw_arrays_load() {
    let dir = common::data_dir().join("gw");
    if !dir.join("X_train.npy").is_file() {
        println!("SKIP gw: {} not found (set WAVESSM_DATA_DIR)", dir.display());
        return;
    }
    let dm = load(&dir, "").unwrap();
    assert_eq!((dm.train.len(), dm.val.len(), dm.test.len()), (1000, 200, 200));
    assert_eq!((dm.train.seq_len, dm.train.channels), (2048, 2));
    let Targets::Classes { labels, n_classes: 2 } = &dm.train.targets else { panic!("binary labels") };
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 500);
}
