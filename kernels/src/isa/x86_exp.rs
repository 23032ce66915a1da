//! What the x86 modules share: the `2^(j/16)` table (AVX-512's exp reads
//! it whole, AVX2's its even entries), AVX2's table exp in intrinsics
//! (the AVX2 instruction set's exp, and the reference that the `asm!` loop
//! of `late_asm` repeats instruction for instruction), its constants, and
//! the `prefetcht0` hint. Kept here, below `avx2`, `avx512` and
//! `late_asm`, so that none of those three needs another's items.

use super::cast;
use crate::exp::{EXP_LO, EXP_TINY_LO, ROUND_MAGIC};
use core::arch::x86_64::{__m256, __m256i};
use pulp::Simd;
use pulp::x86::V3;

/// `2^(j/16)`, `j = 0..16`, rounded to f32 (relative error ≤ 0.8·2^-24):
/// the table of AVX-512's exp, one 512-bit register. AVX2's eighths are its even
/// entries.
pub(crate) const EXP2_SIXTEENTHS: [u32; 16] = [
    0x3f80_0000,
    0x3f85_aac3,
    0x3f8b_95c2,
    0x3f91_c3d3,
    0x3f98_37f0,
    0x3f9e_f532,
    0x3fa5_fed7,
    0x3fad_583f,
    0x3fb5_04f3,
    0x3fbd_08a4,
    0x3fc5_672a,
    0x3fce_248c,
    0x3fd7_44fd,
    0x3fe0_ccdf,
    0x3fea_c0c7,
    0x3ff5_257d,
];

/// `2^(j/8)`, `j = 0..8`, rounded to f32 (the even entries of AVX-512's
/// `2^(j/16)`; relative error ≤ 0.54·2^-24), each minus `j << 20` as an
/// integer: adding `k << 20` (bits 20..23 are `j = k & 7`, bits 23.. are
/// `k >> 3`) then gives the entry with `k >> 3` added to its exponent.
pub(crate) const EXP2_EIGHTHS: [u32; 8] = {
    let mut out = [0u32; 8];
    let mut j = 0;
    while j < 8 {
        out[j] = EXP2_SIXTEENTHS[2 * j].wrapping_sub((j as u32) << 20);
        j += 1;
    }
    out
};
/// `8·log2 e`.
pub(crate) const LOG2_E_8: f32 = 11.541_56;
/// `ln2/8` rounded to f32, and the rest (to about `2^-50`).
pub(crate) const LN2_8_HI: f32 = f32::from_bits(0x3db1_7218); // 0.086643398
pub(crate) const LN2_8_LO: f32 = f32::from_bits(0xaf82_e308); // -2.3808178e-10
/// `e^r − 1 ≈ r + r²·(T2 + T3·r)` on `|r| ≤ ln2/16`: relative-error
/// minimax fit (0.43·2^-24 with these f32 coefficients).
pub(crate) const T2: f32 = 0.500_064_55;
pub(crate) const T3: f32 = 0.166_668_58;

/// The exp: `k = round(8·x·log2 e)` (the rounding trick), `r = x −
/// k·ln2/8`, `e^x = 2^(k>>3) · 2^((k&7)/8) · e^r`. The table entry comes
/// from one `vpermps` (its index is the low bits of `kf`), `2^(k>>3)` is
/// added to its exponent field as an integer, and `e^r` is a degree-3
/// polynomial applied as `t + t·(e^r − 1)` in one FMA. The reduction is
/// two FMAs with `ln2/8` split in f32 head and tail, so `r²` and `T2 +
/// T3·r` do not wait for each other (26 cycles of latency on Zen 3).
///
/// `NEG`: the argument is `−x ≥ 0` (`m − key`), every sign below flipped
/// to match; round-to-nearest is symmetric, so both forms give the same
/// bits. `TINY` (not with `NEG`): lanes below `EXP_LO` get `2^64` more in
/// their exponent and flush only below `EXP_TINY_LO`; their mask is
/// returned (else an empty mask). `super::late_asm` repeats the `NEG` form
/// operation for operation (a test compares the two bit for bit).
///
/// Error: table 0.54·2^-24, polynomial 0.43·2^-24, reduction ≤
/// 0.13·2^-24, final rounding ≤ 2^-24: ≤ 1.1 ULP. NaN: `e^r − 1` is NaN,
/// and the final FMA returns NaN whatever the integer scaling made of the
/// table entry. Below `EXP_LO` (`−∞` included) the result is `+0`; above
/// it `k ≥ −1008`, so the scaled entry is normal and only the last
/// rounding can go subnormal.
#[inline(always)]
pub(crate) fn exp<const IN_RANGE: bool, const NEG: bool, const TINY: bool>(
    s: V3,
    x: pulp::f32x8,
) -> (pulp::f32x8, pulp::m32x8) {
    let f = s.fma;
    let c = |v: f32| -> __m256 { cast(s.splat_f32s(v)) };
    let xv: __m256 = cast(x);
    let magic = c(ROUND_MAGIC);
    // kf = magic + 8·x·log2 e; its low mantissa bits hold k.
    let kf = match NEG {
        true => f._mm256_fnmadd_ps(xv, c(LOG2_E_8), magic),
        false => f._mm256_fmadd_ps(xv, c(LOG2_E_8), magic),
    };
    let k = s.avx._mm256_sub_ps(kf, magic);
    // NEG: every value below is the negation of the plain form's.
    let rr = match NEG {
        true => f._mm256_fmadd_ps(k, c(LN2_8_LO), f._mm256_fmadd_ps(k, c(LN2_8_HI), xv)),
        false => f._mm256_fnmadd_ps(k, c(LN2_8_LO), f._mm256_fnmadd_ps(k, c(LN2_8_HI), xv)),
    };
    let r2 = s.avx._mm256_mul_ps(rr, rr);
    let em1 = match NEG {
        true => f._mm256_fmsub_ps(f._mm256_fnmadd_ps(c(T3), rr, c(T2)), r2, rr),
        false => f._mm256_fmadd_ps(f._mm256_fmadd_ps(c(T3), rr, c(T2)), r2, rr),
    };
    // The low bits of `kf` are `k + 0x40_0000`; `kf << 20` is `k << 20`.
    let kb = s.transmute_u32s_f32s(cast(kf));
    let (table, idx): (__m256, __m256i) = (cast(EXP2_EIGHTHS), cast(kb));
    let t: pulp::f32x8 = cast(s.avx2._mm256_permutevar8x32_ps(table, idx));
    let mut tb = s.add_u32s(
        s.transmute_u32s_f32s(t),
        s.wrapping_dyn_shl_u32s(kb, s.splat_u32s(20)),
    );
    let below = |lo: f32| match NEG {
        true => s.greater_than_f32s(x, s.splat_f32s(-lo)),
        false => s.less_than_f32s(x, s.splat_f32s(lo)),
    };
    let tiny = below(EXP_LO);
    if TINY {
        let bias = s.and_u32s(s.transmute_u32s_m32s(tiny), s.splat_u32s(64 << 23));
        tb = s.add_u32s(tb, bias);
    }
    let ts: __m256 = cast(tb);
    let v: pulp::f32x8 = cast(f._mm256_fmadd_ps(ts, em1, ts));
    if IN_RANGE {
        return (v, tiny);
    }
    // `+0` below the limit: an and-not with the compare mask (pulp's
    // select would first move the mask into sign bits).
    let gone = s.transmute_u32s_m32s(if TINY { below(EXP_TINY_LO) } else { tiny });
    let v = s.transmute_f32s_u32s(s.and_u32s(s.not_u32s(gone), s.transmute_u32s_f32s(v)));
    (v, tiny)
}

/// `prefetcht0` of the line holding `p` (SSE, baseline on x86-64).
#[inline(always)]
pub(crate) fn prefetch_t0(p: *const f32) {
    // SAFETY: a prefetch reads nothing architecturally and cannot fault,
    // whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
}
