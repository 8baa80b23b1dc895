//! The `wavessm` binary.

fn main() -> std::process::ExitCode {
    tune_allocator();
    wavessm::cli::main()
}

/// Training allocates and frees the same multi-megabyte buffers every step. glibc serves those
/// with fresh `mmap`s by default, and every page then faults in again (a fifth of the time of
/// `wavessm bench model`); keeping them on the heap lets them be reused.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
