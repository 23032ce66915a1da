//! x86-64 half-precision conversions for [`Isa::widen2`] and
//! [`Isa::narrow2`] on AVX2 (`V3`) and AVX-512 (`V4`), and the two runtime
//! checks they need beyond pulp's tokens:
//!
//! | format | AVX2 | AVX-512 |
//! |---|---|---|
//! | `f16` | F16C `vcvtph2ps`/`vcvtps2ph` (level 1; pulp's `V3` does not check F16C, so it is checked here, and the conversion loops run in a function that enables it, `run_f16c`) | AVX-512F's 16-lane `vcvtph2ps`/`vcvtps2ph` (level 1) |
//! | `bf16` widen | zero-extend, shift (level 1) | the same, 16 lanes (levels 1, 2) |
//! | `bf16` narrow | integer round-to-nearest-even, `vpackusdw` (level 1) | integer rounding, `vpmovdw` (level 1); `AVX512_BF16`'s `vcvtne2ps2bf16` where the CPU has it (level 2, in a function that enables it, `run_avx512_bf16`), with the integer rounding for a pair that holds an f32 subnormal, which the instruction flushes to 0 whatever MXCSR says |
//!
//! Every level gives [`crate::convert`]'s bits (the tests compare all
//! 65,536 half patterns and all 2^32 f32 patterns).
//!
//! [`Isa::widen2`]: super::Isa::widen2
//! [`Isa::narrow2`]: super::Isa::narrow2

use super::cast;
use core::arch::x86_64::{__m128i, __m256, __m256i, __m512, __m512i};
use core::sync::atomic::{AtomicU8, Ordering};
use pulp::x86::{V3, V4};

const KNOWN: u8 = 1;
const HAS_F16C: u8 = 2;
const HAS_AVX512_BF16: u8 = 4;

/// The CPU's F16C and `AVX512_BF16` bits, read once.
static FEATURES: AtomicU8 = AtomicU8::new(0);

fn features() -> u8 {
    let f = FEATURES.load(Ordering::Relaxed);
    if f & KNOWN != 0 {
        return f;
    }
    // SAFETY: `cpuid` exists on every x86-64 CPU; leaf 7 sub-leaf 1 is
    // read only where leaf 0 says leaf 7 exists.
    #[allow(unused_unsafe)]
    let f = unsafe {
        use core::arch::x86_64::{__cpuid, __cpuid_count};
        let max = __cpuid(0).eax;
        let f16c = (__cpuid(1).ecx >> 29) & 1 == 1;
        let bf16 = max >= 7 && (__cpuid_count(7, 1).eax >> 5) & 1 == 1;
        KNOWN | if f16c { HAS_F16C } else { 0 } | if bf16 { HAS_AVX512_BF16 } else { 0 }
    };
    FEATURES.store(f, Ordering::Relaxed);
    f
}

/// Whether the CPU has F16C (every AVX2 CPU made so far has).
pub fn has_f16c() -> bool {
    features() & HAS_F16C != 0
}

/// Whether the CPU has `AVX512_BF16` (Zen 4, Zen 5, Intel Cooper Lake and
/// Sapphire Rapids on).
pub fn has_avx512_bf16() -> bool {
    features() & HAS_AVX512_BF16 != 0
}

// ---------------------------------------------------------------- AVX2

/// 8 `f16` to f32 (F16C).
///
/// # Safety
/// The CPU has F16C.
#[inline(always)]
unsafe fn cvtph2ps_256(h: __m128i) -> __m256 {
    // SAFETY: the caller's contract.
    unsafe { core::arch::x86_64::_mm256_cvtph_ps(h) }
}

/// 8 f32 to `f16`, round to nearest even (by the immediate, not MXCSR).
///
/// # Safety
/// The CPU has F16C.
#[inline(always)]
unsafe fn cvtps2ph_256(v: __m256) -> __m128i {
    // SAFETY: the caller's contract.
    unsafe { core::arch::x86_64::_mm256_cvtps_ph::<0>(v) }
}

/// Runs `k` in the `V3` context plus F16C, where the F16C intrinsics
/// above inline.
///
/// # Safety
/// The CPU has F16C.
#[target_feature(enable = "avx,avx2,fma,bmi1,bmi2,lzcnt,popcnt,f16c")]
pub(super) unsafe fn run_f16c<K: super::Kern>(s: V3, k: K) -> K::Output {
    k.run(s)
}

/// Runs `k` in the `V4` context plus `AVX512_BF16`, where
/// `vcvtne2ps2bf16` inlines.
///
/// # Safety
/// The CPU has `AVX512_BF16`.
#[target_feature(
    enable = "avx,avx2,fma,bmi1,bmi2,lzcnt,popcnt,f16c,avx512f,avx512bw,avx512cd,avx512dq,avx512vl,avx512bf16"
)]
pub(super) unsafe fn run_avx512_bf16<K: super::Kern>(s: V4, k: K) -> K::Output {
    k.run(s)
}

/// AVX2 level for `f16`: 1 with F16C, else 0.
#[inline(always)]
pub(super) fn v3_level_f16() -> u8 {
    has_f16c() as u8
}

/// 8 `bf16` (NaN quieted) to f32: zero-extended, shifted.
#[inline(always)]
fn v3_widen_bf16(s: V3, h: __m128i) -> pulp::f32x8 {
    let (x, a2) = (s.avx, s.avx2);
    let w = a2._mm256_cvtepu16_epi32(h);
    let nan = a2._mm256_cmpgt_epi32(
        a2._mm256_and_si256(w, x._mm256_set1_epi32(0x7fff)),
        x._mm256_set1_epi32(0x7f80),
    );
    let q = a2._mm256_and_si256(nan, x._mm256_set1_epi32(0x0040));
    cast(a2._mm256_slli_epi32::<16>(a2._mm256_or_si256(w, q)))
}

/// The integer round-to-nearest-even of 8 f32 lanes to `bf16`, in the low
/// half of each 32-bit lane (NaN quieted).
#[inline(always)]
fn v3_bf16_round(s: V3, v: pulp::f32x8) -> __m256i {
    let (x, a2) = (s.avx, s.avx2);
    let v: __m256i = cast(v);
    let lsb = a2._mm256_and_si256(a2._mm256_srli_epi32::<16>(v), x._mm256_set1_epi32(1));
    let up = a2._mm256_add_epi32(a2._mm256_add_epi32(v, x._mm256_set1_epi32(0x7fff)), lsb);
    let rounded = a2._mm256_srli_epi32::<16>(up);
    let nan = a2._mm256_cmpgt_epi32(
        a2._mm256_and_si256(v, x._mm256_set1_epi32(0x7fff_ffff)),
        x._mm256_set1_epi32(0x7f80_0000),
    );
    let quiet = a2._mm256_or_si256(a2._mm256_srli_epi32::<16>(v), x._mm256_set1_epi32(0x40));
    a2._mm256_blendv_epi8(rounded, quiet, nan)
}

/// [`super::Isa::widen2`] on AVX2 at level ≥ 1.
///
/// # Safety
/// For `f16` (`!BF16`), the CPU has F16C.
#[inline(always)]
pub(super) unsafe fn v3_widen2<const BF16: bool>(
    s: V3,
    v: pulp::f32x8,
) -> (pulp::f32x8, pulp::f32x8) {
    let v: __m256i = cast(v);
    let (x, a2) = (s.avx, s.avx2);
    let lo = x._mm256_castsi256_si128(v);
    let hi = a2._mm256_extracti128_si256::<1>(v);
    if BF16 {
        (v3_widen_bf16(s, lo), v3_widen_bf16(s, hi))
    } else {
        // SAFETY: the caller's contract (f16: F16C).
        unsafe { (cast(cvtph2ps_256(lo)), cast(cvtph2ps_256(hi))) }
    }
}

/// [`super::Isa::narrow2`] on AVX2 at level ≥ 1.
///
/// # Safety
/// For `f16` (`!BF16`), the CPU has F16C.
#[inline(always)]
pub(super) unsafe fn v3_narrow2<const BF16: bool>(
    s: V3,
    a: pulp::f32x8,
    b: pulp::f32x8,
) -> pulp::f32x8 {
    let (x, a2) = (s.avx, s.avx2);
    if BF16 {
        // Lanes hold values below 2^16: the saturating pack is exact; it
        // interleaves 128-bit halves, which the permute puts back in order.
        let p = a2._mm256_packus_epi32(v3_bf16_round(s, a), v3_bf16_round(s, b));
        cast(a2._mm256_permute4x64_epi64::<0b11_01_10_00>(p))
    } else {
        // SAFETY: the caller's contract (f16: F16C).
        let (lo, hi) = unsafe { (cvtps2ph_256(cast(a)), cvtps2ph_256(cast(b))) };
        cast(x._mm256_set_m128i(hi, lo))
    }
}

// ---------------------------------------------------------------- AVX-512

/// AVX-512 level for `bf16`: 2 with `AVX512_BF16`, else 1.
#[inline(always)]
pub(super) fn v4_level_bf16() -> u8 {
    1 + has_avx512_bf16() as u8
}

/// 16 `bf16` (NaN quieted) to f32: zero-extended, shifted.
#[inline(always)]
fn v4_widen_bf16(s: V4, h: __m256i) -> pulp::f32x16 {
    let f = s.avx512f;
    let w = f._mm512_cvtepu16_epi32(h);
    let nan = f._mm512_cmpgt_epi32_mask(
        f._mm512_and_si512(w, f._mm512_set1_epi32(0x7fff)),
        f._mm512_set1_epi32(0x7f80),
    );
    let w = f._mm512_mask_or_epi32(w, nan, w, f._mm512_set1_epi32(0x0040));
    cast(f._mm512_slli_epi32::<16>(w))
}

/// [`super::Isa::widen2`] on AVX-512.
#[inline(always)]
pub(super) fn v4_widen2<const BF16: bool>(s: V4, v: pulp::f32x16) -> (pulp::f32x16, pulp::f32x16) {
    let f = s.avx512f;
    let v: __m512i = cast(v);
    let lo = f._mm512_castsi512_si256(v);
    let hi = f._mm512_extracti64x4_epi64::<1>(v);
    if BF16 {
        (v4_widen_bf16(s, lo), v4_widen_bf16(s, hi))
    } else {
        (cast(f._mm512_cvtph_ps(lo)), cast(f._mm512_cvtph_ps(hi)))
    }
}

/// The integer round-to-nearest-even of 16 f32 lanes to `bf16`, in the
/// low half of each 32-bit lane.
#[inline(always)]
fn v4_bf16_round(s: V4, v: __m512i) -> __m512i {
    let f = s.avx512f;
    let lsb = f._mm512_and_si512(f._mm512_srli_epi32::<16>(v), f._mm512_set1_epi32(1));
    let up = f._mm512_add_epi32(f._mm512_add_epi32(v, f._mm512_set1_epi32(0x7fff)), lsb);
    let rounded = f._mm512_srli_epi32::<16>(up);
    let nan = f._mm512_cmpgt_epi32_mask(
        f._mm512_and_si512(v, f._mm512_set1_epi32(0x7fff_ffff)),
        f._mm512_set1_epi32(0x7f80_0000),
    );
    let quiet = f._mm512_or_si512(f._mm512_srli_epi32::<16>(v), f._mm512_set1_epi32(0x40));
    f._mm512_mask_blend_epi32(nan, rounded, quiet)
}

/// `a` and `b` rounded to `bf16` by `vcvtne2ps2bf16` (`a` in the low
/// half). An `asm!` block (its intrinsic is newer than the crate's MSRV)
/// in a function of its own that enables the feature, so that it inlines
/// into `run_avx512_bf16`'s loops.
///
/// # Safety
/// The CPU has `AVX512_BF16`.
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
unsafe fn cvtne2ps2bf16(a: __m512, b: __m512) -> __m512i {
    let out: __m512i;
    // SAFETY: the caller's contract; registers only, no memory, no flags.
    unsafe {
        core::arch::asm!(
            "vcvtne2ps2bf16 {o}, {b}, {a}",
            o = out(zmm_reg) out,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

/// [`super::Isa::narrow2`] on AVX-512; `LEVEL` 2 for `bf16` takes
/// `AVX512_BF16`.
///
/// # Safety
/// At `LEVEL` 2, the CPU has `AVX512_BF16`.
#[inline(always)]
pub(super) unsafe fn v4_narrow2<const BF16: bool, const LEVEL: u8>(
    s: V4,
    a: pulp::f32x16,
    b: pulp::f32x16,
) -> pulp::f32x16 {
    let f = s.avx512f;
    let (a, b): (__m512, __m512) = (cast(a), cast(b));
    if BF16 {
        if LEVEL >= 2 {
            // A nonzero f32 subnormal (exponent field 0) would be flushed:
            // such a pair takes the integer rounding.
            let (ai, bi): (__m512i, __m512i) = (cast(a), cast(b));
            let (mag, exp) = (
                f._mm512_set1_epi32(0x7fff_ffff),
                f._mm512_set1_epi32(0x7f80_0000),
            );
            let sub_a = f._mm512_mask_testn_epi32_mask(f._mm512_test_epi32_mask(ai, mag), ai, exp);
            let sub_b = f._mm512_mask_testn_epi32_mask(f._mm512_test_epi32_mask(bi, mag), bi, exp);
            if sub_a | sub_b == 0 {
                // SAFETY: the caller's contract (level 2: AVX512_BF16).
                return cast(unsafe { cvtne2ps2bf16(a, b) });
            }
        }
        let lo = f._mm512_cvtepi32_epi16(v4_bf16_round(s, cast(a)));
        let hi = f._mm512_cvtepi32_epi16(v4_bf16_round(s, cast(b)));
        cast(f._mm512_inserti64x4::<1>(f._mm512_castsi256_si512(lo), hi))
    } else {
        // Round to nearest even by the immediate, exceptions suppressed.
        let lo = f._mm512_cvtps_ph::<0x08>(a);
        let hi = f._mm512_cvtps_ph::<0x08>(b);
        cast(f._mm512_inserti64x4::<1>(f._mm512_castsi256_si512(lo), hi))
    }
}
