//! safetensors files (header and tensors).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wavessm::weights::st::parse(data);
});
