//! Compile-time specialization of the generic kernels: which instruction
//! set a generic function was instantiated for, and casts between its
//! vectors and that instruction set's own types.
//!
//! The algorithms are written once against pulp's [`Simd`]; where one
//! instruction set has a cheaper way to do a step (AVX2's 8-entry
//! `vpermps` table lookup, non-temporal stores), the generic code asks
//! [`as_v3`] and takes that branch. The test is a comparison of two
//! constant `TypeId`s, folded away when the function is monomorphized, so
//! each instantiation contains exactly one of the two paths.

use core::any::TypeId;
use pulp::Simd;

/// Whether `S` is the instruction set `T`.
#[inline(always)]
pub(crate) fn is<S: Simd, T: Simd>() -> bool {
    TypeId::of::<S>() == TypeId::of::<T>()
}

/// The AVX2+FMA token, if `S` is pulp's `V3`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn as_v3<S: Simd>(s: S) -> Option<pulp::x86::V3> {
    if is::<S, pulp::x86::V3>() {
        // SAFETY: `S` is `V3` (same `TypeId`), so this copies a `V3` into a `V3`.
        Some(unsafe { core::mem::transmute_copy::<S, pulp::x86::V3>(&s) })
    } else {
        None
    }
}

/// Reinterprets a vector as another plain-data type of the same size (the
/// same register seen through two type names); panics on a size mismatch,
/// which the callers rule out by checking the instruction set first.
#[inline(always)]
pub(crate) fn cast<A: pulp::bytemuck::Pod, B: pulp::bytemuck::Pod>(a: A) -> B {
    pulp::bytemuck::cast(a)
}

/// `table[idx & 7]` per lane: one `vpermps` (AVX2's 8-entry lookup).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn permute8(v3: pulp::x86::V3, table: pulp::f32x8, idx: pulp::u32x8) -> pulp::f32x8 {
    use core::arch::x86_64::{__m256, __m256i};
    let (t, i): (__m256, __m256i) = (cast(table), cast(idx));
    cast(v3.avx2._mm256_permutevar8x32_ps(t, i))
}
