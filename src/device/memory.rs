//! How the process heap treats kernel buffers. Every step allocates its intermediate
//! tensors anew (megabytes each for a convolutional network) and frees them at the end of
//! the step. glibc's defaults hand such blocks back to the kernel as soon as they are
//! freed (blocks over the dynamic mmap threshold are unmapped; free memory at the top of
//! a heap, the per-thread arenas' included, is trimmed once over the trim threshold), so
//! the next step takes a page fault and a page clear for every 4 KiB it writes: a fifth
//! of a small CNN's training step. [`keep_freed_buffers`] raises both thresholds once per
//! process, so the freed blocks stay in the heap and are reused by the next step, as
//! TensorFlow's own allocator keeps them, and a large buffer keeps the huge pages it is
//! mapped in (`tensor::alloc::back_by_huge_pages`).

use std::sync::Once;

/// Blocks up to this size come from the heap rather than their own mapping (glibc's
/// largest allowed value on 64-bit targets).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory a heap keeps before giving its top back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Makes the process heap keep freed kernel buffers for reuse (see the module docs);
/// called when a session is made, acts once per process, and does nothing on targets
/// other than glibc's.
pub fn keep_freed_buffers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only changes two tuning parameters of the allocator; glibc
        // takes its own lock and any value of them is valid.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_buffers_are_reused_without_new_page_faults() {
        keep_freed_buffers();
        keep_freed_buffers();
        // A 16 MiB buffer written, freed and allocated again: the second allocation comes
        // back from the heap, so writing it faults in (almost) no new pages.
        let touch = || {
            let mut v = vec![1u8; 16 << 20];
            v[12345] = 2;
            std::hint::black_box(&v);
        };
        touch();
        let before = minor_faults();
        touch();
        let faults = minor_faults() - before;
        if cfg!(all(target_os = "linux", target_env = "gnu")) {
            // Without the thresholds raised this is 4096 (one per 4 KiB page).
            assert!(faults < 512, "{faults} page faults");
        }
    }

    /// Minor page faults of this thread so far (0 where /proc is not there).
    fn minor_faults() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
        // Field 10 (minflt), counted after the parenthesised command name.
        stat.rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(7))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}
