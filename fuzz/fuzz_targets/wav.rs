//! WAV clips (headers and samples).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = wavessm::data::speech::decode_wav(std::io::Cursor::new(data), 16_000);
});
