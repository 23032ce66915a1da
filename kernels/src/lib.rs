//! `simd-softmax-kernels`: the `no_std` SIMD kernels behind `simd-softmax`.
//!
//! **An internal part of [`simd-softmax`](https://docs.rs/simd-softmax),
//! with no stable API of its own.** It is published only because
//! `simd-softmax` depends on it; its items may change in any release,
//! patch releases included, and semver does not cover them. Depend on
//! `simd-softmax`, whose API is safe, dispatched and versioned. The
//! instruction-set layer (the kernels' generic handle, the per-ISA
//! constructors, the SIMD trait they are written against, which comes from
//! `pulp`) is hidden from these docs: no `pulp` type is part of either
//! crate's documented API.
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
//! (`isa::Isa`: pulp's `Simd` plus the capabilities that differ between
//! instruction sets), the source and the sink. `Kernel` is the safe
//! handle of one instruction set; `backend` makes one per instruction
//! set this build has. `docs/ARCHITECTURE.md` in the repository describes
//! them.
#![no_std]
#![warn(missing_docs)]

pub mod attention;
pub mod convert;
mod edge;
#[doc(hidden)]
pub mod exp;
mod family;
pub mod fpenv;
#[doc(hidden)]
pub mod isa;
mod kernel;
mod keys;
pub use keys::Terms;
pub mod plan;
#[doc(hidden)]
pub mod portable;
mod regime;
#[doc(hidden)]
pub mod stage;
#[doc(hidden)]
pub mod sum;
#[cfg(feature = "testing")]
pub mod testing;

pub use edge::{Elems, ElemsMut, TILE};
pub use family::{Anchor, MAX_BLOCK, ProbScan};
#[doc(hidden)]
pub use kernel::Kernel;
#[doc(hidden)]
pub use pulp;
pub use regime::pipeline::SCRATCH_LEN;
pub use regime::two_pass::{BLOCK_VECTORS, CHUNK, RowState};

/// A [`Kernel`] per instruction set of this build; the SIMD ones only
/// where the CPU has them.
#[doc(hidden)]
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
