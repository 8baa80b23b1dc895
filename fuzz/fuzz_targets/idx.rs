//! IDX files (raw or gzip, any number of members) of rank 1 and 3.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    for rank in [1, 3] {
        let _ = wavessm::data::idx::from_bytes(data, rank);
    }
});
