//! `-c` YAML config files, composed with the defaults and validated.
#![no_main]

use wavessm::config::sources::ConfigFile;

libfuzzer_sys::fuzz_target!(|text: &str| {
    let sources = wavessm::config::ConfigSources::embedded_only();
    let file = ConfigFile { origin: "fuzz.yaml".into(), text: text.to_string() };
    if let Ok(tree) = wavessm::config::compose::compose_files(&sources, &[file], &[]) {
        let _ = wavessm::experiment::ExperimentConfig::from_value(tree);
    }
});
