//! File helpers every floor uses: atomic writes with temp names unique to the writing process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file operation that failed, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

/// Suffix of every temp file [`write_atomic`] makes (`<name>.tmp.<pid>.<n>`), so stale ones
/// left by a crash can be recognized and removed.
pub const TMP_INFIX: &str = ".tmp.";

/// A temp path beside `path`, unique to this process and call: two processes (or threads)
/// writing the same file never share a temp file.
pub fn temp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!("{TMP_INFIX}{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    PathBuf::from(tmp)
}

/// Writes a file through a temp file: either the old file or the complete new one exists,
/// never a partial one. On error the temp file is removed and the old file is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), FileError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        write(&mut f)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(path);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|source| FileError { path: path.to_path_buf(), source })
}

/// Persists a rename in `path`'s folder; not every platform can open a folder, so best effort.
pub fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Removes temp files that [`write_atomic`] left in `dir` when a process died mid-write.
/// Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().contains(TMP_INFIX) || e.file_name().to_string_lossy().ends_with(".tmp")
        })
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn failed_write_keeps_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("last.bpk");
        write_atomic(&p, |f| f.write_all(b"good")).unwrap();
        let err = write_atomic(&p, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("simulated crash"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("simulated crash") && err.to_string().contains("last.bpk"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"good");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "temp file is cleaned up");
    }

    #[test]
    fn temp_names_are_unique_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x");
        let (a, b) = (temp_path(&p), temp_path(&p));
        assert_ne!(a, b);
        std::fs::write(&a, b"left by a crash").unwrap();
        std::fs::write(dir.path().join("best.bpk.tmp"), b"old style").unwrap();
        std::fs::write(&p, b"kept").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), 2);
        assert!(p.exists());
    }
}
