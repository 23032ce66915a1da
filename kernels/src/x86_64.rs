//! x86-64 backends: AVX2+FMA (pulp `V3`) and AVX-512 F/BW/CD/DQ/VL (pulp
//! `V4`). Both compile on every x86-64 build; the CPU is checked at runtime.

/// AVX2+FMA: 8 lanes, `vmaskmovps` tails.
pub mod avx2 {
    use crate::Kernel;
    use pulp::x86::V3;

    /// The AVX2+FMA kernel, or `None` when the CPU lacks AVX2 or FMA.
    #[inline]
    pub fn new() -> Option<Kernel<V3>> {
        V3::try_new().map(Kernel::from_simd)
    }

    /// Whether this CPU runs the AVX2+FMA kernel.
    #[inline]
    pub fn is_available() -> bool {
        V3::is_available()
    }
}

/// AVX-512: 16 lanes, mask-register tails.
pub mod avx512 {
    use crate::Kernel;
    use pulp::x86::V4;

    /// The AVX-512 kernel, or `None` when the CPU lacks AVX-512 F/BW/CD/DQ/VL.
    #[inline]
    pub fn new() -> Option<Kernel<V4>> {
        V4::try_new().map(Kernel::from_simd)
    }

    /// Whether this CPU runs the AVX-512 kernel.
    #[inline]
    pub fn is_available() -> bool {
        V4::is_available()
    }
}
