//! Where config files come from: user folders first, then the `configs/` tree embedded in the
//! binary, so `wavessm` runs from any directory and a user file of the same name wins.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/configs");

/// An ordered search path of config folders, ending with the embedded configs.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    dirs: Vec<PathBuf>,
}

/// A config file's text and where it was read from.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// `path` on disk or `<embedded>/rel` for a built-in file.
    pub origin: String,
    /// The YAML text.
    pub text: String,
}

impl ConfigSources {
    /// Search path: `dirs` (e.g. `--config-dir`), then `$WAVESSM_CONFIG_DIR`, then embedded.
    pub fn new(mut dirs: Vec<PathBuf>) -> Self {
        if let Some(env) = std::env::var_os("WAVESSM_CONFIG_DIR") {
            dirs.push(PathBuf::from(env));
        }
        Self { dirs }
    }

    /// Only the embedded configs (for tests and `--print-config` of shipped experiments).
    pub fn embedded_only() -> Self {
        Self { dirs: Vec::new() }
    }

    /// Reads `rel` (like `model/s4d.yaml`) from the first source that has it.
    pub fn read(&self, rel: &str) -> Result<Option<ConfigFile>, std::io::Error> {
        for dir in &self.dirs {
            let p = dir.join(rel);
            if p.is_file() {
                let text = crate::io::read_text_capped(&p, crate::io::MAX_CONFIG_BYTES, "a config file")?;
                return Ok(Some(ConfigFile { origin: p.display().to_string(), text }));
            }
        }
        Ok(EMBEDDED.get_file(rel).map(|f| ConfigFile {
            origin: format!("<embedded>/{rel}"),
            text: String::from_utf8_lossy(f.contents()).into_owned(),
        }))
    }

    /// Whether `group` (like `model` or `model/layer`) is a config folder in any source.
    pub fn is_group(&self, group: &str) -> bool {
        self.dirs.iter().any(|d| d.join(group).is_dir()) || EMBEDDED.get_dir(group).is_some()
    }

    /// The options (file stems, with sub-folders as `a/b`) available in `group`, sorted.
    pub fn options(&self, group: &str) -> Vec<String> {
        let mut out = Vec::new();
        for dir in &self.dirs {
            collect_disk(&dir.join(group), Path::new(""), &mut out);
        }
        if let Some(d) = EMBEDDED.get_dir(group) {
            collect_embedded(d, group, &mut out);
        }
        out.sort();
        out.dedup();
        out
    }
}

fn collect_disk(dir: &Path, prefix: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = prefix.join(e.file_name());
        if p.is_dir() {
            collect_disk(&p, &name, out);
        } else if p.extension().is_some_and(|x| x == "yaml") {
            out.push(name.with_extension("").to_string_lossy().into_owned());
        }
    }
}

fn collect_embedded(d: &Dir<'static>, group: &str, out: &mut Vec<String>) {
    for f in d.files() {
        if f.path().extension().is_some_and(|x| x == "yaml")
            && let Ok(rel) = f.path().with_extension("").strip_prefix(group)
        {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    for sub in d.dirs() {
        collect_embedded(sub, group, out);
    }
}
