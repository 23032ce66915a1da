//! aarch64 backend: NEON (pulp `Neon`, 4 lanes; the generic passes unroll
//! four vectors, 16 floats, to hide FMA latency).

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
