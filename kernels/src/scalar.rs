//! The scalar backend: the generic algorithm on pulp's one-lane `Scalar`
//! (plain Rust arithmetic, no SIMD). Runs on every CPU.

use crate::Kernel;
use pulp::Scalar;

/// The scalar kernel; always available.
#[inline]
pub fn new() -> Kernel<Scalar> {
    Kernel::from_simd(Scalar::new())
}
