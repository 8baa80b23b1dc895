//! File helpers every floor uses: atomic writes with temp names unique to the writing process,
//! and safe reads of untrusted files: only regular files (a device such as `/dev/zero`, a FIFO
//! or a folder is refused before it is opened, so nothing blocks or reads forever), never more
//! than a cap, and numbers in text that must be finite.

use std::fs::File;
use std::io::{self, Read};
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

/// The most a YAML config file may hold (configs are a few KB).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The most a JSON header (shard, safetensors) may hold.
pub const MAX_HEADER_BYTES: u64 = 100 << 20;
/// The most a data file read whole into memory may hold (the largest raw dataset file, a
/// CIFAR-10 batch or MNIST's images, is ~50 MB; text corpora like WikiText-103 ~540 MB).
pub const MAX_DATA_BYTES: u64 = 4 << 30;

/// An `InvalidInput` error with `msg`.
fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Opens `path` for reading if it is a regular file (after following links), and its size.
/// A device, FIFO, socket or folder is refused without being opened: opening a FIFO blocks
/// and reading `/dev/zero` never ends.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let md = std::fs::metadata(path)?;
    if !md.is_file() {
        let kind = if md.is_dir() { "a folder" } else { "a device, FIFO or socket" };
        return Err(invalid(format!("not a regular file ({kind})")));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Should the path be swapped for a FIFO between the check and the open, do not block.
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path)?;
    let md = file.metadata()?;
    if !md.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    Ok((file, md.len()))
}

/// Checks that `path` is a regular file small enough to read whole into the memory this
/// machine has available (where that is known); its size.
pub fn check_whole_file(path: &Path) -> io::Result<u64> {
    let (_, size) = open_regular(path)?;
    if let Some(avail) = mem_available()
        && size > avail
    {
        return Err(invalid(format!(
            "{} file, more than the {} of memory available",
            human_bytes(size),
            human_bytes(avail)
        )));
    }
    Ok(size)
}

/// The whole of regular file `path`, refused when larger than `cap` bytes (also when it grows
/// past the cap while being read). `what` names the limit in the message.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    let (file, size) = open_regular(path)?;
    let too_big = |n: u64| invalid(format!("{n} bytes or more, larger than the {cap}-byte limit for {what}"));
    if size > cap {
        return Err(too_big(size));
    }
    let mut out = Vec::with_capacity(size as usize);
    file.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(too_big(out.len() as u64));
    }
    Ok(out)
}

/// [`read_capped`] as UTF-8 text (an `InvalidData` error otherwise).
pub fn read_text_capped(path: &Path, cap: u64, what: &str) -> io::Result<String> {
    String::from_utf8(read_capped(path, cap, what)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text ({})", e.utf8_error())))
}

/// Reads `reader` to its end, refusing more than `cap` bytes (a decompression bomb stops at
/// the cap instead of exhausting memory).
pub fn read_to_end_capped(reader: impl Read, cap: u64, what: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(invalid(format!("more than the {cap}-byte limit for {what}")));
    }
    Ok(out)
}

/// Parses a decimal number that must be finite: `nan`, `inf` and values that overflow f32
/// (`1e39`) are errors that quote the text.
pub fn parse_finite_f32(text: &str) -> Result<f32, String> {
    let v: f32 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
    if v.is_finite() { Ok(v) } else { Err(format!("`{text}` is not a finite number (f32 holds up to ±3.4e38)")) }
}

/// Memory available to new allocations (`MemAvailable` of /proc/meminfo), None where unknown.
pub fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// Bytes in a human unit (`1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n} B") } else { format!("{v:.1} {}", units[i]) }
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

    #[test]
    fn devices_and_folders_are_refused_without_reading() {
        for p in ["/dev/zero", "/dev/null", "/"] {
            let e = read_capped(Path::new(p), 10, "a test").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{p}: {e}");
        }
    }

    #[test]
    fn the_cap_is_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [1u8; 11]).unwrap();
        assert!(read_capped(&p, 10, "a test").unwrap_err().to_string().contains("10-byte limit"));
        assert_eq!(read_capped(&p, 11, "a test").unwrap().len(), 11);
        assert!(read_to_end_capped(&[0u8; 5][..], 4, "x").is_err());
        assert_eq!(read_to_end_capped(&[0u8; 4][..], 4, "x").unwrap().len(), 4);
    }

    #[test]
    fn non_finite_numbers_are_errors() {
        for t in ["nan", "NaN", "inf", "-infinity", "1e39", "-3.5e38"] {
            assert!(parse_finite_f32(t).is_err(), "{t}");
        }
        assert_eq!(parse_finite_f32("-1.5e3"), Ok(-1500.0));
        assert!(parse_finite_f32("x").unwrap_err().contains("not a number"));
    }

    #[test]
    fn human_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
