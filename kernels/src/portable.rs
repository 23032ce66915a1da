//! Portable multi-lane instantiations (pulp's `Scalar128b`, `Scalar256b`,
//! `Scalar512b`: 4, 8 and 16 lanes of plain Rust). They run everywhere and
//! follow the same lane counts and tail masks as NEON, AVX2 and AVX-512, so
//! tests can exercise that logic on a CPU that lacks the instruction set.
//! Not fast; not a production backend.

use crate::Kernel;
use pulp::{Scalar128b, Scalar256b, Scalar512b};

/// 4 portable lanes (NEON's shape).
#[inline]
pub fn lanes4() -> Kernel<Scalar128b> {
    Kernel::from_simd(Scalar128b)
}

/// 8 portable lanes (AVX2's shape).
#[inline]
pub fn lanes8() -> Kernel<Scalar256b> {
    Kernel::from_simd(Scalar256b)
}

/// 16 portable lanes (AVX-512's shape).
#[inline]
pub fn lanes16() -> Kernel<Scalar512b> {
    Kernel::from_simd(Scalar512b)
}
