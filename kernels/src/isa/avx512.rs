//! AVX-512 F/BW/CD/DQ/VL (pulp `V4`, 16 lanes): its [`Isa`] choices and
//! overrides. Cores with two 512-bit pipes (ports 0 and 5 take every
//! 512-bit operation) are bound by the operations issued, so most choices
//! here remove operations:
//! - the exp: a `2^(j/16)` table in one register, `vscalefps` for the
//!   power of two, the flush as a compare into a mask register (10
//!   operations per vector, against 16 for the polynomial);
//! - no minimum in the ranges (the flush costs the compare it would save);
//! - tails by masked moves with a mask register (no pulp trampoline);
//! - four short rows share their reductions' shuffles; short rows are
//!   pipelined (32 registers hold two groups);
//! - `prefetchw` ahead of the in-cache sweep's stores (the batches of
//!   about 2^18 elements fill a 2 MiB L2, so each store waited for its
//!   line from L3);
//! - rows of at most 8 floats run on the AVX2 kernel (half a 512-bit vector
//!   would be padding).
//!
//! Figures for each: `docs/PERFORMANCE.md`.

use super::x86_exp::EXP2_SIXTEENTHS;
use super::{Isa, cast};
use crate::convert::{Format, HalfFormat};
use crate::exp::{EXP_LO, EXP_TINY_LO, LOG2_E};
use core::arch::x86_64::{__m256, __m512, _CMP_NLT_UQ, _CMP_UNORD_Q};
use pulp::Simd;
use pulp::x86::{V3, V4};

/// `1.5·2^19`: adding it rounds a float in `(−2^18, 2^18)` to a multiple
/// of `1/16`, held (times 16) in the low mantissa bits.
const ROUND_MAGIC_16: f32 = 786_432.0;
/// `ln 2` rounded to f32, and the rest (`LN2_R_HI + LN2_R_LO = ln 2` to
/// about `2^-52`).
const LN2_R_HI: f32 = f32::from_bits(0x3f31_7218); // 0.69314718
const LN2_R_LO: f32 = f32::from_bits(0xb102_e308); // -1.9046542e-9
/// `e^r − 1 ≈ r + r²·(U2 + U3·r)` on `|r| ≤ ln2/32`: relative-error
/// minimax fit (0.03·2^-24 with these f32 coefficients).
const U2: f32 = 0.500_016_15;
const U3: f32 = 0.166_667_2;

/// The exp: `q = round(16·x·log2 e)` (the rounding trick at `1/16`
/// granularity: `kq = q/16` comes out as a float, the low 4 bits of `kf`
/// are `j = q & 15`), `r = x − kq·ln2`, `e^x = 2^⌊kq⌋ · 2^(j/16) · e^r`:
/// `2^(j/16)` by one `vpermps` from [`EXP2_SIXTEENTHS`] (it reads the low 4
/// bits of each index), `e^r` a degree-3 polynomial on `|r| ≤ ln2/32`, and
/// `2^⌊kq⌋` one `vscalefps`, which floors its second operand itself.
///
/// `TINY`: lanes below `EXP_LO` get `2^(⌊kq⌋ + 64)` (a masked add) and
/// the flush moves to `EXP_TINY_LO`; the mask of those lanes is returned
/// (else an empty mask).
///
/// Error: table 0.8·2^-24, polynomial 0.03·2^-24, reduction ≤ 0.07·2^-24,
/// final rounding ≤ 2^-24. `x = 0` gives exactly 1 and `x ≤ 0` at most 1.
/// NaN stays NaN (`r` is NaN, and so every later step); above `EXP_LO`,
/// `⌊kq⌋ ≥ −126` and only the scaled result can go subnormal.
#[inline(always)]
fn exp<const IN_RANGE: bool, const TINY: bool>(s: V4, x: pulp::f32x16) -> (pulp::f32x16, u16) {
    let f = s.avx512f;
    let c = |v: f32| -> __m512 { f._mm512_set1_ps(v) };
    let xv: __m512 = cast(x);
    let magic = c(ROUND_MAGIC_16);
    // kf = magic + x·log2 e rounded to 1/16; kq = q/16 exactly.
    let kf = f._mm512_fmadd_ps(xv, c(LOG2_E), magic);
    let kq = f._mm512_sub_ps(kf, magic);
    let r = f._mm512_fnmadd_ps(kq, c(LN2_R_HI), xv);
    let r = f._mm512_fnmadd_ps(kq, c(LN2_R_LO), r);
    let r2 = f._mm512_mul_ps(r, r);
    let q = f._mm512_fmadd_ps(c(U3), r, c(U2));
    let em1 = f._mm512_fmadd_ps(q, r2, r);
    let table: __m512 = cast(EXP2_SIXTEENTHS);
    let t = f._mm512_permutexvar_ps(f._mm512_castps_si512(kf), table);
    let p = f._mm512_fmadd_ps(t, em1, t);
    if IN_RANGE {
        return (cast(f._mm512_scalef_ps(p, kq)), 0);
    }
    if TINY {
        let tiny = f._mm512_cmp_ps_mask::<{ core::arch::x86_64::_CMP_LT_OQ }>(xv, c(EXP_LO));
        let kq = f._mm512_mask_add_ps(kq, tiny, kq, c(64.0));
        let keep = f._mm512_cmp_ps_mask::<_CMP_NLT_UQ>(xv, c(EXP_TINY_LO));
        return (cast(f._mm512_maskz_scalef_ps(keep, p, kq)), tiny);
    }
    // `+0` below EXP_LO, `−∞` included (NaN compares false and stays NaN).
    let keep = f._mm512_cmp_ps_mask::<_CMP_NLT_UQ>(xv, c(EXP_LO));
    (cast(f._mm512_maskz_scalef_ps(keep, p, kq)), 0)
}

/// AVX-512's mask of lanes `0..rem` (`rem < 16`).
#[inline(always)]
fn lanes(rem: usize) -> u16 {
    ((1u32 << rem) - 1) as u16
}

impl Isa for V4 {
    const NAME: &'static str = "avx512";
    const SWEEP_PAIRS: usize = 4;
    const TRACK_MIN: bool = false;
    const PIPELINE_SHORT: bool = true;
    const HAS_STREAM: bool = true;
    const STORE_AHEAD: usize = 512;
    const PREFETCH_AHEAD: usize = 1024;
    const NARROW_MAX: usize = 8;
    type Narrow = V3;

    #[inline(always)]
    fn narrow(self) -> V3 {
        *self
    }

    #[inline(always)]
    fn convert_level<H: HalfFormat>(self) -> u8 {
        match H::FORMAT {
            Format::Bf16 => super::half_x86::v4_level_bf16(),
            _ => 1,
        }
    }

    #[inline(always)]
    fn run_converting<H: HalfFormat, K: super::Kern>(self, level: u8, k: K) -> K::Output {
        match H::FORMAT {
            Format::Bf16 if level >= 2 && super::half_x86::has_avx512_bf16() => {
                // SAFETY: the CPU has AVX512_BF16 (checked just above).
                unsafe { super::half_x86::run_avx512_bf16(self, k) }
            }
            _ => self.run(k),
        }
    }

    #[inline(always)]
    unsafe fn widen2<H: HalfFormat, const LEVEL: u8>(
        self,
        v: pulp::f32x16,
    ) -> (pulp::f32x16, pulp::f32x16) {
        match H::FORMAT {
            Format::Bf16 => super::half_x86::v4_widen2::<true>(self, v),
            _ => super::half_x86::v4_widen2::<false>(self, v),
        }
    }

    #[inline(always)]
    unsafe fn narrow2<H: HalfFormat, const LEVEL: u8>(
        self,
        a: pulp::f32x16,
        b: pulp::f32x16,
    ) -> pulp::f32x16 {
        // SAFETY: the caller's contract.
        match H::FORMAT {
            Format::Bf16 => unsafe { super::half_x86::v4_narrow2::<true, LEVEL>(self, a, b) },
            _ => unsafe { super::half_x86::v4_narrow2::<false, LEVEL>(self, a, b) },
        }
    }

    #[inline(always)]
    fn exp_nonpos<const IN_RANGE: bool>(self, x: pulp::f32x16) -> pulp::f32x16 {
        exp::<IN_RANGE, false>(self, x).0
    }

    #[inline(always)]
    fn exp_tiny(self, x: pulp::f32x16) -> (pulp::f32x16, pulp::b16) {
        let (v, tiny) = exp::<false, true>(self, x);
        (v, pulp::b16(tiny))
    }

    /// Whole vectors converted (`vcvtps2pd`), not 32 dependent scalar
    /// steps per fold.
    #[inline(always)]
    fn fold_f64(self, hi: pulp::f32x16, lo: pulp::f32x16, base: f32) -> f64 {
        let f = self.avx512f;
        let h = self.sub_f32s(hi, self.splat_f32s(base));
        let wide = |v: pulp::f32x16| {
            let v: __m512 = cast(v);
            let top: __m256 = cast(f._mm512_extractf64x4_pd::<1>(f._mm512_castps_pd(v)));
            f._mm512_add_pd(
                f._mm512_cvtps_pd(f._mm512_castps512_ps256(v)),
                f._mm512_cvtps_pd(top),
            )
        };
        f._mm512_reduce_add_pd(f._mm512_add_pd(wide(h), wide(lo)))
    }

    #[inline(always)]
    unsafe fn load_tail(self, p: *const f32, rem: usize, fill: f32) -> pulp::f32x16 {
        let f = self.avx512f;
        // SAFETY: a masked load touches (and can fault on) only the `rem`
        // active lanes, which the caller guarantees readable.
        cast(unsafe { f._mm512_mask_loadu_ps(f._mm512_set1_ps(fill), lanes(rem), p) })
    }

    #[inline(always)]
    unsafe fn store_tail(self, p: *mut f32, rem: usize, v: pulp::f32x16) {
        // SAFETY: a masked store writes only the `rem` active lanes, which
        // the caller guarantees writable.
        unsafe { self.avx512f._mm512_mask_storeu_ps(p, lanes(rem), cast(v)) }
    }

    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32, v: pulp::f32x16) {
        // SAFETY: the caller's contract (64-byte aligned, writable).
        unsafe { self.avx512f._mm512_stream_ps(p, cast(v)) }
    }

    #[inline(always)]
    fn stream_fence(self) {
        self.sse._mm_sfence();
    }

    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        super::x86_exp::prefetch_t0(p);
    }

    #[inline(always)]
    fn prefetch_w(self, p: *mut f32) {
        // SAFETY: `prefetchw` reads and writes nothing architecturally and
        // cannot fault, whatever the address.
        unsafe {
            core::arch::asm!("prefetchw [{p}]", p = in(reg) p, options(nostack, preserves_flags, readonly))
        };
    }

    /// Four rows at a time, the four reductions sharing their shuffles:
    /// two 128-bit-lane shuffles and one `op` pair the 256-bit halves of two
    /// rows; two more and one `op` pair the quarters of four rows, so that
    /// 128-bit lane `r` of one vector holds row `r`; two in-lane steps
    /// finish, and one shuffle per row broadcasts its lane: 17 operations
    /// for four rows against the butterflies' 32. The pairs are the
    /// butterfly's (lane `i` with `i + 8`, then `+ 4`, `+ 2`, `+ 1`) and
    /// `op` is commutative, so the bits are the butterflies'.
    #[inline(always)]
    fn rows_all_lanes<const R: usize>(
        self,
        v: [pulp::f32x16; R],
        op: impl Fn(pulp::f32x16, pulp::f32x16) -> pulp::f32x16,
    ) -> [pulp::f32x16; R] {
        let mut out = v;
        if !R.is_multiple_of(4) {
            for r in 0..R {
                out[r] = self.all_lanes(v[r], &op);
            }
            return out;
        }
        let f = self.avx512f;
        let opm = |a: __m512, b: __m512| -> __m512 { cast(op(cast(a), cast(b))) };
        for g in (0..R).step_by(4) {
            let x: [__m512; 4] = [cast(v[g]), cast(v[g + 1]), cast(v[g + 2]), cast(v[g + 3])];
            // Halves: rows 0 and 1 in one vector (row 0 in its low 256
            // bits), rows 2 and 3 in another.
            let t01 = opm(
                f._mm512_shuffle_f32x4::<0b01_00_01_00>(x[0], x[1]),
                f._mm512_shuffle_f32x4::<0b11_10_11_10>(x[0], x[1]),
            );
            let t23 = opm(
                f._mm512_shuffle_f32x4::<0b01_00_01_00>(x[2], x[3]),
                f._mm512_shuffle_f32x4::<0b11_10_11_10>(x[2], x[3]),
            );
            // Quarters: 128-bit lane r holds row r.
            let u = opm(
                f._mm512_shuffle_f32x4::<0b10_00_10_00>(t01, t23),
                f._mm512_shuffle_f32x4::<0b11_01_11_01>(t01, t23),
            );
            let u = opm(u, f._mm512_permute_ps::<0b01_00_11_10>(u));
            let u = opm(u, f._mm512_permute_ps::<0b10_11_00_01>(u));
            out[g] = cast(f._mm512_shuffle_f32x4::<0x00>(u, u));
            out[g + 1] = cast(f._mm512_shuffle_f32x4::<0x55>(u, u));
            out[g + 2] = cast(f._mm512_shuffle_f32x4::<0xaa>(u, u));
            out[g + 3] = cast(f._mm512_shuffle_f32x4::<0xff>(u, u));
        }
        out
    }

    /// [`Isa::recip_sums`]' first level by whole vectors (the f32 pairs,
    /// or for one vector its two 256-bit halves, then `vcvtps2pd`); four
    /// rows then share the rest of the tree as in [`Isa::rows_all_lanes`]
    /// (lane `j` with `j + 4` by 128-bit-lane shuffles that also pair the
    /// rows, `j + 2` likewise, `j + 1` in-lane), one `vdivpd` and one
    /// conversion, and a `vpermps` per row broadcasts its constant. Rows
    /// outside a group of four take the same pairs by per-row shuffles.
    #[inline(always)]
    fn recip_sums<const N: usize, const R: usize>(
        self,
        t: &[[pulp::f32x16; N]; R],
    ) -> ([pulp::f32x16; R], bool) {
        let f = self.avx512f;
        let low = |v: __m512| -> __m256 { f._mm512_castps512_ps256(v) };
        let high = |v: __m512| -> __m256 { cast(f._mm512_extractf64x4_pd::<1>(cast(v))) };
        // Lane j of a[r]: q_j of the first level.
        let mut a = [f._mm512_setzero_pd(); R];
        for r in 0..R {
            let t = &t[r];
            a[r] = if N == 1 {
                let v: __m512 = cast(t[0]);
                f._mm512_cvtps_pd(self.avx._mm256_add_ps(low(v), high(v)))
            } else {
                let p: __m512 = cast(self.add_f32s(t[0], t[1]));
                let (mut lo, mut hi) = (f._mm512_cvtps_pd(low(p)), f._mm512_cvtps_pd(high(p)));
                if N >= 3 {
                    let p2: __m512 = cast(if N == 3 {
                        t[2]
                    } else {
                        self.add_f32s(t[2], t[3])
                    });
                    lo = f._mm512_add_pd(lo, f._mm512_cvtps_pd(low(p2)));
                    hi = f._mm512_add_pd(hi, f._mm512_cvtps_pd(high(p2)));
                }
                f._mm512_add_pd(lo, hi)
            };
        }
        let one = f._mm512_set1_pd(1.0);
        let mut out = [self.splat_f32s(0.0); R];
        let mut nan = 0u8;
        let mut g = 0;
        while g + 4 <= R {
            let (a0, a1, a2, a3) = (a[g], a[g + 1], a[g + 2], a[g + 3]);
            // Lane j with j + 4: rows 0 and 1 in one vector, 2 and 3 in
            // another.
            let t01 = f._mm512_add_pd(
                f._mm512_shuffle_f64x2::<0b01_00_01_00>(a0, a1),
                f._mm512_shuffle_f64x2::<0b11_10_11_10>(a0, a1),
            );
            let t23 = f._mm512_add_pd(
                f._mm512_shuffle_f64x2::<0b01_00_01_00>(a2, a3),
                f._mm512_shuffle_f64x2::<0b11_10_11_10>(a2, a3),
            );
            // Lane j with j + 2: 128-bit lane r holds row r.
            let u = f._mm512_add_pd(
                f._mm512_shuffle_f64x2::<0b10_00_10_00>(t01, t23),
                f._mm512_shuffle_f64x2::<0b11_01_11_01>(t01, t23),
            );
            // Lane j with j + 1, in both lanes of the pair.
            let u = f._mm512_add_pd(u, f._mm512_permute_pd::<0x55>(u));
            let c = f._mm512_div_pd(one, u);
            nan |= f._mm512_cmp_pd_mask::<_CMP_UNORD_Q>(c, c);
            // Row r's constant in f32 lanes 2r and 2r + 1.
            let c = f._mm512_cvtpd_pslo(c);
            for r in 0..4 {
                let at = f._mm512_set1_epi32(2 * r as i32);
                out[g + r] = cast(f._mm512_permutexvar_ps(at, c));
            }
            g += 4;
        }
        for r in g..R {
            let b = f._mm512_add_pd(a[r], f._mm512_shuffle_f64x2::<0b01_00_11_10>(a[r], a[r]));
            let b = f._mm512_add_pd(b, f._mm512_shuffle_f64x2::<0b10_11_00_01>(b, b));
            let b = f._mm512_add_pd(b, f._mm512_permute_pd::<0x55>(b));
            let c = f._mm512_div_pd(one, b);
            nan |= f._mm512_cmp_pd_mask::<_CMP_UNORD_Q>(c, c);
            out[r] =
                cast(f._mm512_permutexvar_ps(f._mm512_setzero_si512(), f._mm512_cvtpd_pslo(c)));
        }
        (out, nan != 0)
    }
}
