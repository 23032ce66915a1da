//! AVX2+FMA (pulp `V3`, 8 lanes): its [`Isa`] choices and overrides.
//! - The exp: a `2^(j/8)` table in one register read by `vpermps`, a
//!   degree-3 polynomial, the power of two added to the table entry as an
//!   integer: 11 operations per vector (7 on the FMA pipes), against 14
//!   for the polynomial scheme. Evaluated on `m − key` ([`Isa::EXP_OF_NEGATED`]),
//!   so that the subtraction reads the key straight from memory.
//! - 16 registers: the batch sweep does not also carry the next row's
//!   range and the previous row's results (they spill; one loop of their
//!   own after the sweep costs less), and short rows are not pipelined.
//! - Four pairs per sweep iteration (one keeps moving the Fast2Sum
//!   accumulator between registers).
//! - Non-temporal stores, and the streaming batch's long-row loop as one
//!   `asm!` block (`late_asm`) where the `asm` feature is on.
//!
//! Figures for each: `docs/PERFORMANCE.md`.

use super::x86_exp::{exp, prefetch_t0};
use super::{Isa, LatePairs, cast};
use super::{portable_narrow2, portable_widen2};
use crate::convert::{Format, HalfFormat};
use core::arch::x86_64::{__m256, __m256d, _CMP_UNORD_Q};
use pulp::Simd;
use pulp::x86::V3;

impl Isa for V3 {
    const NAME: &'static str = "avx2";
    const SWEEP_PAIRS: usize = 4;
    const FUSED_SWEEP: bool = false;
    const HAS_STREAM: bool = true;
    const EXP_OF_NEGATED: bool = true;
    type Narrow = V3;

    #[inline(always)]
    fn narrow(self) -> V3 {
        self
    }

    #[inline(always)]
    fn convert_level<H: HalfFormat>(self) -> u8 {
        match H::FORMAT {
            Format::F16 => super::half_x86::v3_level_f16(),
            _ => 1,
        }
    }

    #[inline(always)]
    fn run_converting<H: HalfFormat, K: super::Kern>(self, level: u8, k: K) -> K::Output {
        match H::FORMAT {
            Format::F16 if level >= 1 && super::half_x86::has_f16c() => {
                // SAFETY: the CPU has F16C (checked just above).
                unsafe { super::half_x86::run_f16c(self, k) }
            }
            _ => self.run(k),
        }
    }

    #[inline(always)]
    unsafe fn widen2<H: HalfFormat, const LEVEL: u8>(
        self,
        v: pulp::f32x8,
    ) -> (pulp::f32x8, pulp::f32x8) {
        // SAFETY (the hardware levels): the caller's contract.
        match (LEVEL, H::FORMAT) {
            (0, _) => portable_widen2::<Self, H>(self, v),
            (_, Format::Bf16) => unsafe { super::half_x86::v3_widen2::<true>(self, v) },
            _ => unsafe { super::half_x86::v3_widen2::<false>(self, v) },
        }
    }

    #[inline(always)]
    unsafe fn narrow2<H: HalfFormat, const LEVEL: u8>(
        self,
        a: pulp::f32x8,
        b: pulp::f32x8,
    ) -> pulp::f32x8 {
        // SAFETY (the hardware levels): the caller's contract.
        match (LEVEL, H::FORMAT) {
            (0, _) => portable_narrow2::<Self, H>(self, a, b),
            (_, Format::Bf16) => unsafe { super::half_x86::v3_narrow2::<true>(self, a, b) },
            _ => unsafe { super::half_x86::v3_narrow2::<false>(self, a, b) },
        }
    }

    #[inline(always)]
    fn exp_nonpos<const IN_RANGE: bool>(self, x: pulp::f32x8) -> pulp::f32x8 {
        exp::<IN_RANGE, false, false>(self, x).0
    }

    #[inline(always)]
    fn exp_tiny(self, x: pulp::f32x8) -> (pulp::f32x8, pulp::m32x8) {
        exp::<false, false, true>(self, x)
    }

    #[inline(always)]
    fn exp_neg_nonpos<const IN_RANGE: bool>(self, y: pulp::f32x8) -> pulp::f32x8 {
        exp::<IN_RANGE, true, false>(self, y).0
    }

    /// Whole vectors converted (`vcvtps2pd`), not 16 dependent scalar
    /// steps per fold.
    #[inline(always)]
    fn fold_f64(self, hi: pulp::f32x8, lo: pulp::f32x8, base: f32) -> f64 {
        let (avx, sse2) = (self.avx, self.sse2);
        let h = self.sub_f32s(hi, self.splat_f32s(base));
        let wide = |v: pulp::f32x8| {
            let v: __m256 = cast(v);
            avx._mm256_add_pd(
                avx._mm256_cvtps_pd(avx._mm256_castps256_ps128(v)),
                avx._mm256_cvtps_pd(avx._mm256_extractf128_ps::<1>(v)),
            )
        };
        let q = avx._mm256_add_pd(wide(h), wide(lo));
        let p = sse2._mm_add_pd(
            avx._mm256_castpd256_pd128(q),
            avx._mm256_extractf128_pd::<1>(q),
        );
        sse2._mm_cvtsd_f64(sse2._mm_add_sd(p, sse2._mm_unpackhi_pd(p, p)))
    }

    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32, v: pulp::f32x8) {
        // SAFETY: the caller's contract (32-byte aligned, writable).
        unsafe { self.avx._mm256_stream_ps(p, cast(v)) }
    }

    #[inline(always)]
    fn stream_fence(self) {
        self.sse._mm_sfence();
    }

    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        prefetch_t0(p);
    }

    /// The butterfly with AVX2's three cheap shuffles: swap 128-bit halves,
    /// swap pairs, swap neighbours.
    #[inline(always)]
    fn all_lanes(
        self,
        v: pulp::f32x8,
        op: impl Fn(pulp::f32x8, pulp::f32x8) -> pulp::f32x8,
    ) -> pulp::f32x8 {
        let avx = self.avx;
        let v = op(
            v,
            cast(avx._mm256_permute2f128_ps::<0x01>(cast(v), cast(v))),
        );
        let v = op(v, cast(avx._mm256_permute_ps::<0x4e>(cast(v))));
        op(v, cast(avx._mm256_permute_ps::<0xb1>(cast(v))))
    }

    /// [`Isa::recip_sums`]' first level by whole vectors (the f32 pairs,
    /// or for one vector its two 128-bit halves, then `vcvtps2pd`); four
    /// rows then share the rest: one `vperm2f128` pair and add per two
    /// rows (lane `j` with `j + 2`), one `vhaddpd` for four (`j` with `j +
    /// 1`), one `vdivpd` and one conversion, and a `vpermps` per row
    /// broadcasts its constant. Rows outside a group of four take the same
    /// pairs by per-row shuffles.
    #[inline(always)]
    fn recip_sums<const N: usize, const R: usize>(
        self,
        t: &[[pulp::f32x8; N]; R],
    ) -> ([pulp::f32x8; R], bool) {
        let (avx, avx2) = (self.avx, self.avx2);
        let low = |v: __m256| avx._mm256_castps256_ps128(v);
        let high = |v: __m256| avx._mm256_extractf128_ps::<1>(v);
        // Lane j of a[r]: q_j of the first level.
        let mut a = [avx._mm256_setzero_pd(); R];
        for r in 0..R {
            let t = &t[r];
            a[r] = if N == 1 {
                let v: __m256 = cast(t[0]);
                avx._mm256_cvtps_pd(self.sse._mm_add_ps(low(v), high(v)))
            } else {
                let p: __m256 = cast(self.add_f32s(t[0], t[1]));
                let (mut lo, mut hi) = (avx._mm256_cvtps_pd(low(p)), avx._mm256_cvtps_pd(high(p)));
                if N >= 3 {
                    let p2: __m256 = cast(if N == 3 {
                        t[2]
                    } else {
                        self.add_f32s(t[2], t[3])
                    });
                    lo = avx._mm256_add_pd(lo, avx._mm256_cvtps_pd(low(p2)));
                    hi = avx._mm256_add_pd(hi, avx._mm256_cvtps_pd(high(p2)));
                }
                avx._mm256_add_pd(lo, hi)
            };
        }
        let one = avx._mm256_set1_pd(1.0);
        let mut out = [self.splat_f32s(0.0); R];
        let mut nan = 0;
        let mut g = 0;
        while g + 4 <= R {
            // Lane j with j + 2: rows 0 and 1 in one vector (row 0 in its
            // low half), rows 2 and 3 in another.
            let pair = |x: __m256d, y: __m256d| {
                avx._mm256_add_pd(
                    avx._mm256_permute2f128_pd::<0x20>(x, y),
                    avx._mm256_permute2f128_pd::<0x31>(x, y),
                )
            };
            let (t01, t23) = (pair(a[g], a[g + 1]), pair(a[g + 2], a[g + 3]));
            // Lane j with j + 1: the sums of rows 0, 2, 1, 3.
            let c = avx._mm256_div_pd(one, avx._mm256_hadd_pd(t01, t23));
            nan |= avx._mm256_movemask_pd(avx._mm256_cmp_pd::<_CMP_UNORD_Q>(c, c));
            let c = avx._mm256_castps128_ps256(avx._mm256_cvtpd_ps(c));
            for (r, at) in [0, 2, 1, 3].into_iter().enumerate() {
                let at = avx._mm256_set1_epi32(at);
                out[g + r] = cast(avx2._mm256_permutevar8x32_ps(c, at));
            }
            g += 4;
        }
        for r in g..R {
            let b = avx._mm256_add_pd(a[r], avx._mm256_permute2f128_pd::<0x01>(a[r], a[r]));
            let b = avx._mm256_add_pd(b, avx._mm256_permute_pd::<0b0101>(b));
            let c = avx._mm256_div_pd(one, b);
            nan |= avx._mm256_movemask_pd(avx._mm256_cmp_pd::<_CMP_UNORD_Q>(c, c));
            out[r] = cast(avx2._mm256_broadcastss_ps(avx._mm256_cvtpd_ps(c)));
        }
        (out, nan != 0)
    }

    #[inline(always)]
    unsafe fn late_pairs(self, job: &mut LatePairs<Self>) -> usize {
        // SAFETY: the caller's contract, forwarded; AVX2 and FMA are
        // available (`self` proves it).
        unsafe { super::late_asm::run(self, job) }
    }
}
