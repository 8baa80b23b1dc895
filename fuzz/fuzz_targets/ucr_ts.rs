//! UCR/UEA `.ts` files.
#![no_main]

libfuzzer_sys::fuzz_target!(|text: &str| {
    let _ = wavessm::data::ucr::parse_ts(text, std::path::Path::new("fuzz.ts"));
});
