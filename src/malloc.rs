//! Process-wide allocator settings for the student's hot loops, applied at the binary edge.
//!
//! burn's flex backend allocates a fresh buffer for every op's output. With glibc's defaults a
//! buffer of a few MB is `mmap`ed, and given back to the kernel when freed, so the next one of
//! the same size faults in fresh pages that the kernel must zero first: on this project's
//! 2-core machine that page zeroing was 16–22 % of a profile, and a 512² matmul through burn ran
//! at 154 GFLOP/s against 235 with the settings below (the gemm crate called directly: 250).
//! Buffers up to 32 MiB (glibc's largest allowed threshold) now come from the heap, and freed
//! memory is kept for reuse instead of being trimmed, so a training step reuses the pages of
//! the last one. Peak memory is unchanged (the same buffers are live at the peak); the
//! process just does not shrink between steps.

/// Applies the settings (glibc only; elsewhere the system allocator is left as it is). Call it
/// first thing in `main`, before the first large allocation.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads
    // allocate, and bad values are rejected by returning 0 (ignored: the defaults then stay).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
