//! CIFAR-10 binary batches, RGB and grayscale.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for gray in [false, true] {
        let _ = wavessm::data::cifar::decode(data, gray, std::path::Path::new("fuzz.bin"));
    }
});
