//! The C allocator's one setting Doodlebox changes: glibc's mmap threshold, fixed so that
//! the large, short-lived buffers of training and inference (libtorch's activations, a
//! batch's pixels, a chunk's logits) are mapped on their own and returned to the system
//! when freed.
//!
//! By default glibc raises the threshold each time such a mapped buffer is freed (up to
//! 32 MiB), after which buffers of that size come from the heap, and the holes they leave
//! stay resident: the peak then ratchets up with the number of batches rather than their
//! size. Measured on a capped training run over 1M drawings, where validation alone runs
//! about 1,300 chunks: the peak resident set fell from about 440 MiB to about 300 MiB, so
//! that it no longer grows with the dataset (issue 18).

/// Allocations of this many bytes or more get a mapping of their own. 1 MiB: well above
/// the many small allocations (strokes, records, strings), well below a batch's tensors.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes the mmap threshold at [`MMAP_THRESHOLD`]; answers whether the allocator took it
/// (false on other C libraries, which have no such setting). Call it first thing in
/// `main`: buffers allocated before it keep the old behaviour.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn fix_mmap_threshold() -> bool {
    // SAFETY: `mallopt` only changes the allocator's parameters, under the allocator's own
    // lock; it reads and writes no memory of ours.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1 }
}

/// Other C libraries: nothing to set.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn fix_mmap_threshold() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_takes_the_fixed_threshold_on_glibc() {
        assert_eq!(
            fix_mmap_threshold(),
            cfg!(all(target_os = "linux", target_env = "gnu"))
        );
        // Large buffers still work either way.
        let big = vec![7u8; MMAP_THRESHOLD * 3];
        assert_eq!(
            big.iter().map(|&b| usize::from(b)).sum::<usize>(),
            21 * MMAP_THRESHOLD
        );
    }
}
