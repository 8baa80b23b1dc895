//! Command-line overrides, one per line, applied to the default config and validated.
#![no_main]

use wavessm::config::compose::{Item, classify};

libfuzzer_sys::fuzz_target!(|text: &str| {
    let sources = wavessm::config::ConfigSources::embedded_only();
    let Ok(mut tree) = wavessm::config::ConfigRequest::default().compose() else { return };
    for token in text.lines().take(8) {
        if let Ok(Some(Item::Key(o))) = classify(&sources, token) {
            let _ = o.apply(&mut tree);
        }
    }
    let _ = wavessm::experiment::ExperimentConfig::from_value(tree);
});
