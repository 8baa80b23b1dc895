//! Prepared shards: preamble, JSON header and sections.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((_, split)) = wavessm::data::shard::parse(data, std::path::Path::new("fuzz.wsd")) {
        let _ = split.inputs.to_vec();
    }
});
