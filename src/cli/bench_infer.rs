//! `wavessm bench infer`: streaming-inference throughput in seconds of strain per second, for
//! aframe's detector on two detectors at 2048 Hz: 1 s windows every 0.125 s (aframe's 4 Hz is
//! half that work), a 64 s PSD before each chunk, over 256 s of white noise read from disk.

use anyhow::Result;
use burn::tensor::Device;

use super::bench::BenchArgs;
use super::infer::scan;
use crate::config::Named;
use crate::data::gw::stream::{StrainSource, StreamConfig};
use crate::data::npy_format::write_npy_f32;
use crate::model::ClassifierConfig;

const FS: usize = 2048;
const SECONDS: usize = 64 + 256;

/// Times the stream for the CI-sized and aframe-sized ResNet1D; prints one line each.
pub fn run(a: &BenchArgs) -> Result<()> {
    let path = std::env::temp_dir().join(format!("wavessm-bench-infer-{}.npy", std::process::id()));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<f32> = (0..2 * SECONDS * FS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    write_npy_f32(&path, &[2, SECONDS * FS], &noise)?;
    let g = StreamConfig {
        fs: FS as f64,
        window: FS,
        stride: FS / 8,
        fduration: 1.0,
        psd_length: 64 * FS,
        nperseg: 2 * FS,
        highpass: Some(32.0),
        chunk: 256,
    };
    let device = Device::flex();
    for (name, options) in
        [("resnet1d [1,1] w32", "{layers: [1, 1], base_width: 32}"), ("resnet1d [3,4,6,3] w64", "{}")]
    {
        let named = Named { name: "resnet1d".into(), options: serde_yaml::from_str(options)? };
        device.seed(0);
        let model = ClassifierConfig::from_named(&named, "model.options")?.init(2, 2, &device)?;
        let ifos = ["H1".to_string(), "L1".to_string()];
        let ms = super::bench::median_ms(a.steps, a.verbose, &device, || {
            let mut src = StrainSource::open(&path, &ifos).expect("the bench strain");
            scan(&model, &mut src, &g, &[0.0], &device).expect("scan");
        });
        let strain_s = (SECONDS - 64) as f64;
        println!(
            "infer: {name}: {:.1} s of strain/s ({ms:.0} ms for {strain_s:.0} s, 2 detectors, {FS} Hz, stride 0.125 s)",
            strain_s / (ms / 1e3)
        );
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
