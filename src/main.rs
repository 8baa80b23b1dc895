//! The `wavessm` binary.

fn main() -> std::process::ExitCode {
    tune_allocator();
    wavessm::cli::main()
}

/// Training allocates and frees the same multi-megabyte buffers every step. glibc serves those
/// with fresh `mmap`s by default, and every page then faults in again (a fifth of the time of
/// `wavessm bench model`); keeping them on the heap lets them be reused. Nor is the heap ever
/// trimmed: at L = 2^20 a step frees gigabytes at once, glibc handed them back to the kernel,
/// and the next step faulted them in again, zeroed (bench length: 1M steps from ~60 to ~48 s).
/// A run's peak heap is held until it exits, as PyTorch's caching allocator holds its peak.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, -1); // -1: never trim (mallopt(3))
    }
}
