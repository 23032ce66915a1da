//! `simd-softmax-kernels`: the no_std SIMD kernels behind `simd-softmax`.
//!
//! The algorithm lives once, in [`generic`], written against pulp's `Simd`
//! trait; [`math`] holds the vector exp and ln it uses. Each instruction set
//! is a thin module that only knows how to obtain its SIMD token:
//! [`scalar`], `x86_64::{avx2, avx512}`, `aarch64::neon`, and [`portable`]
//! (pulp's 4/8/16-lane portable types, used by tests to exercise the lane and
//! tail logic of the NEON/AVX2/AVX-512 instantiations on any CPU).
//!
//! Most users want the safe, dispatched API of the `simd-softmax` crate.
#![no_std]
#![warn(missing_docs)]

mod batch;
pub mod family;
pub mod generic;
mod isa;
pub mod math;
pub mod portable;
pub mod scalar;
mod small;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;

pub use family::{Anchor, ProbScan};
pub use generic::Kernel;
pub use pulp;
