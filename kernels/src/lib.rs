//! `simd-softmax-kernels`: the `no_std` SIMD kernels behind `simd-softmax`.
//!
//! The softmax of a row is read, reduced, transformed and written:
//! ```text
//! keys    = source(row)                     stage::Source: f32, scaled, ...
//! m       = max keys                        sum::Range
//! Σ       = Σ e^(diff(key, m))              isa::Isa::exp_*, sum::Acc
//! results = sink(keys, e, c = f(Σ))         stage::Sink: softmax, log-softmax
//! output  = stores of the results           stage::Output: f32 rows
//! ```
//! [`plan`] picks a regime for each batch (short rows in registers, a
//! pipeline over the batch, its streaming form, two passes for huge rows;
//! `regime`), each written once, generic over the instruction set
//! ([`isa::Isa`]: pulp's `Simd` plus the capabilities that differ between
//! instruction sets), the source and the sink. [`Kernel`] is the safe
//! handle of one instruction set; [`backend`] makes one per instruction
//! set this build has.
//!
//! Most users want the safe, dispatched API of the `simd-softmax` crate.
#![no_std]
#![warn(missing_docs)]

pub mod attention;
pub mod convert;
mod edge;
pub mod exp;
mod family;
pub mod fpenv;
pub mod isa;
mod kernel;
mod keys;
pub mod plan;
pub mod portable;
mod regime;
pub mod stage;
pub mod sum;
#[cfg(feature = "testing")]
pub mod testing;

pub use edge::{Elems, ElemsMut, TILE};
pub use family::{Anchor, MAX_BLOCK, ProbScan};
pub use kernel::Kernel;
pub use pulp;
pub use regime::pipeline::SCRATCH_LEN;
pub use regime::two_pass::{BLOCK_VECTORS, CHUNK, RowState};

/// A [`Kernel`] per instruction set of this build; the SIMD ones only
/// where the CPU has them.
pub mod backend {
    use crate::Kernel;

    /// The scalar kernel; always available.
    #[inline]
    pub fn scalar() -> Kernel<pulp::Scalar> {
        Kernel::from_simd(pulp::Scalar::new())
    }

    /// AVX2+FMA, or `None` when the CPU lacks them.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn avx2() -> Option<Kernel<pulp::x86::V3>> {
        pulp::x86::V3::try_new().map(Kernel::from_simd)
    }

    /// AVX-512 F/BW/CD/DQ/VL, or `None` when the CPU lacks them.
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub fn avx512() -> Option<Kernel<pulp::x86::V4>> {
        pulp::x86::V4::try_new().map(Kernel::from_simd)
    }

    /// NEON, or `None` when the CPU lacks it. With pulp's `std` feature
    /// (which `simd-softmax` enables) detection asks the OS; without it,
    /// the compile-time target features, which every
    /// `aarch64-unknown-linux-gnu` build has.
    #[cfg(target_arch = "aarch64")]
    #[inline]
    pub fn neon() -> Option<Kernel<pulp::aarch64::Neon>> {
        pulp::aarch64::Neon::try_new().map(Kernel::from_simd)
    }
}
