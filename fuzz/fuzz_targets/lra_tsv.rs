//! LRA TSV files: ListOps and AAN pairs; the first byte picks the padded length.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let path = std::path::Path::new("fuzz.tsv");
    let _ = wavessm::data::listops::parse_tsv(text, path, len as usize + 1);
    let _ = wavessm::data::aan::parse_pairs(text, path, len as usize + 1);
});
