//! aarch64 backend: NEON (pulp `Neon`, 4 lanes; the generic passes unroll
//! four vectors, 16 floats, to hide FMA latency).
//!
//! Detection: with pulp's `std` feature (which `simd-softmax` enables, and
//! Cargo unifies into this crate) `Neon::try_new` asks
//! `std::arch::is_aarch64_feature_detected!("neon")`; without it, pulp falls
//! back to the compile-time `cfg!(target_feature = "neon")`, which every
//! `aarch64-unknown-linux-gnu` build has. Tested under QEMU user mode by
//! `scripts/test-aarch64.sh`.

/// NEON: 4 lanes.
pub mod neon {
    use crate::Kernel;
    use pulp::aarch64::Neon;

    /// The NEON kernel, or `None` when the CPU lacks NEON.
    #[inline]
    pub fn new() -> Option<Kernel<Neon>> {
        Neon::try_new().map(Kernel::from_simd)
    }

    /// Whether this CPU runs the NEON kernel.
    #[inline]
    pub fn is_available() -> bool {
        Neon::is_available()
    }
}
