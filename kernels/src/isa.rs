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

#[cfg(target_arch = "x86_64")]
use core::any::TypeId;
use pulp::Simd;

/// Whether `S` is the instruction set `T`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn is<S: Simd, T: Simd>() -> bool {
    TypeId::of::<S>() == TypeId::of::<T>()
}

/// Whether `S` is pulp's `V3` (AVX2+FMA); `false` off x86-64.
#[inline(always)]
pub(crate) fn is_v3<S: Simd>() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is::<S, pulp::x86::V3>();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// Whether `S` is pulp's `V4` (AVX-512); `false` off x86-64.
#[inline(always)]
pub(crate) fn is_v4<S: Simd>() -> bool {
    #[cfg(target_arch = "x86_64")]
    return is::<S, pulp::x86::V4>();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// The token of instruction set `T`, if `S` is `T`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn as_isa<S: Simd, T: Simd>(s: S) -> Option<T> {
    if is::<S, T>() {
        // SAFETY: `S` is `T` (same `TypeId`), so this copies a `T` into a `T`.
        Some(unsafe { core::mem::transmute_copy::<S, T>(&s) })
    } else {
        None
    }
}

/// The AVX2+FMA token, if `S` is pulp's `V3`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn as_v3<S: Simd>(s: S) -> Option<pulp::x86::V3> {
    as_isa(s)
}

/// The AVX-512 token, if `S` is pulp's `V4`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn as_v4<S: Simd>(s: S) -> Option<pulp::x86::V4> {
    as_isa(s)
}

/// Reinterprets a vector as another plain-data type of the same size (the
/// same register seen through two type names); panics on a size mismatch,
/// which the callers rule out by checking the instruction set first.
#[cfg(target_arch = "x86_64")]
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

/// `op` over all lanes of `v`, the result in every lane (a butterfly of
/// `log2(lanes)` steps, each combining a vector with a shuffled copy; all
/// lanes group the same pairs, so they hold bit-identical results). AVX2
/// uses its three cheap shuffles (swap 128-bit halves, swap pairs, swap
/// neighbours); other instruction sets rotate by half, quarter, ... of the
/// lanes (pulp's `rotate_right`, one permute on AVX-512 and NEON).
#[inline(always)]
pub(crate) fn all_lanes<S: Simd>(
    s: S,
    v: S::f32s,
    op: impl Fn(S::f32s, S::f32s) -> S::f32s,
) -> S::f32s {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = as_v3(s) {
        use core::arch::x86_64::__m256;
        let sh = |a: S::f32s, f: fn(pulp::x86::V3, __m256) -> __m256| -> S::f32s {
            cast(f(v3, cast(a)))
        };
        let v = op(
            v,
            sh(v, |v3, a| v3.avx._mm256_permute2f128_ps::<0x01>(a, a)),
        );
        let v = op(v, sh(v, |v3, a| v3.avx._mm256_permute_ps::<0x4e>(a)));
        return op(v, sh(v, |v3, a| v3.avx._mm256_permute_ps::<0xb1>(a)));
    }
    let mut v = v;
    let mut k = S::F32_LANES / 2;
    while k > 0 {
        v = op(v, s.rotate_right_f32s(v, k));
        k /= 2;
    }
    v
}

/// Lane 0 of `v`.
#[inline(always)]
pub(crate) fn first_lane<S: Simd>(v: S::f32s) -> f32 {
    pulp::bytemuck::cast_slice::<S::f32s, f32>(core::slice::from_ref(&v))[0]
}

/// Asks the cache hierarchy for the line holding `p` (a hint: it never
/// faults and has no visible effect; a no-op where we have no prefetch).
#[inline(always)]
pub(crate) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` (SSE, baseline on x86-64) reads nothing
    // architecturally and cannot fault, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for the line holding `p` in a writable state (`prefetchw`: the
/// read-for-ownership of a later store, done early); a hint like
/// [`prefetch`].
#[inline(always)]
pub(crate) fn prefetch_w(p: *mut f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetchw` reads and writes nothing architecturally and
    // cannot fault, whatever the address.
    unsafe {
        core::arch::asm!("prefetchw [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `Σ_lanes (hi − base) + lo` in f64, for the compensated sums' `(hi, lo)`
/// lane pairs (`hi − base` is exact for the small integer `base ≤ hi <
/// 2^24`; every lane converts to f64 exactly, so only the f64 additions
/// round). AVX2 and AVX-512 convert and add whole vectors (`vcvtps2pd`);
/// other instruction sets go lane by lane. (AVX-512 lane by lane, 32
/// conversions and additions in one dependent chain per row: 2048×128 at
/// 0.59–0.60 ns/element against 0.50–0.51, interleaved runs on an Intel
/// Xeon.)
#[inline(always)]
pub(crate) fn fold_f64<S: Simd>(s: S, hi: S::f32s, lo: S::f32s, base: f32) -> f64 {
    let h = s.sub_f32s(hi, s.splat_f32s(base));
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = as_v3(s) {
        use core::arch::x86_64::__m256;
        let wide = |v: S::f32s| {
            let v: __m256 = cast(v);
            v3.avx._mm256_add_pd(
                v3.avx._mm256_cvtps_pd(v3.avx._mm256_castps256_ps128(v)),
                v3.avx._mm256_cvtps_pd(v3.avx._mm256_extractf128_ps::<1>(v)),
            )
        };
        let q = v3.avx._mm256_add_pd(wide(h), wide(lo));
        let p = v3.sse2._mm_add_pd(
            v3.avx._mm256_castpd256_pd128(q),
            v3.avx._mm256_extractf128_pd::<1>(q),
        );
        return v3
            .sse2
            ._mm_cvtsd_f64(v3.sse2._mm_add_sd(p, v3.sse2._mm_unpackhi_pd(p, p)));
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = as_v4(s) {
        use core::arch::x86_64::{__m256, __m512};
        let f = v4.avx512f;
        let wide = |v: S::f32s| {
            let v: __m512 = cast(v);
            let hi: __m256 = cast(f._mm512_extractf64x4_pd::<1>(f._mm512_castps_pd(v)));
            f._mm512_add_pd(
                f._mm512_cvtps_pd(f._mm512_castps512_ps256(v)),
                f._mm512_cvtps_pd(hi),
            )
        };
        return f._mm512_reduce_add_pd(f._mm512_add_pd(wide(h), wide(lo)));
    }
    let h: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&h));
    let e: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&lo));
    h.iter().zip(e).map(|(&h, &e)| h as f64 + e as f64).sum()
}
