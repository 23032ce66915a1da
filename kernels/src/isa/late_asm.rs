//! The streaming batch's long-row loop on AVX2
//! ([`Isa::late_pairs`](super::Isa::late_pairs)): one `asm!` block, and its
//! twin in intrinsics, which gives the same bits.
//!
//! Each pair of the loop computes four exps: two of the row being summed,
//! two of the due row being written. LLVM's register allocation of that
//! (two maxima, the scale, seven constants and two accumulators in AVX2's
//! 16 registers) spilled and rematerialized constants: 87 instructions per
//! pair, plus a separate pass for the next row's range. By hand, with
//! three constants (four when flushing) and the scale as memory operands
//! and every exp in the same three scratch registers (the core renames
//! them), 73, range included (`docs/PERFORMANCE.md#streaming-and-long-rows`).
//!
//! The `asm` cargo feature (on by default) selects the `asm!` block; without
//! it the twin runs. The twin is always compiled, and
//! [`crate::testing::late_pairs_both`] runs both on the same inputs so that
//! a test compares them bit for bit.

use super::x86_exp::exp;
use super::{Isa, LatePairs, fast_two_sum, load};
use pulp::Simd;
use pulp::x86::V3;
// The `asm!` block's constants and operand types.
#[cfg(feature = "asm")]
use {
    super::cast,
    super::x86_exp::{EXP2_EIGHTHS, LN2_8_HI, LN2_8_LO, LOG2_E_8, T2, T3},
    crate::exp::{EXP_LO, ROUND_MAGIC},
    core::arch::x86_64::__m256,
};

/// Runs every pair of `job` (the `asm!` loop, or the twin without the
/// `asm` feature) and returns their count.
///
/// # Safety
/// As the twin's.
#[inline(always)]
pub(crate) unsafe fn run(s: V3, job: &mut LatePairs<V3>) -> usize {
    // SAFETY: the caller's contract; `s` proves AVX2 and FMA.
    unsafe {
        #[cfg(feature = "asm")]
        match job.in_range {
            true => asm_loop::<true>(job),
            false => asm_loop::<false>(job),
        }
        #[cfg(not(feature = "asm"))]
        twin(s, job);
    }
    let _ = s;
    job.pairs
}

/// The loop in intrinsics: the same operations in the same order.
/// (Compiled always; run where the `asm` feature is off, and by the tests.)
///
/// # Safety
/// `x`, `next` and `lx` readable and `ly` writable for `pairs · 16`
/// floats; `ly` 32-byte aligned.
#[inline(always)]
#[cfg_attr(all(feature = "asm", not(feature = "testing")), allow(dead_code))]
pub(crate) unsafe fn twin(s: V3, job: &mut LatePairs<V3>) {
    match job.in_range {
        // SAFETY: the caller's contract.
        true => unsafe { twin_in::<true>(s, job) },
        false => unsafe { twin_in::<false>(s, job) },
    }
}

#[inline(always)]
#[cfg_attr(all(feature = "asm", not(feature = "testing")), allow(dead_code))]
unsafe fn twin_in<const IN_RANGE: bool>(s: V3, job: &mut LatePairs<V3>) {
    let l = 8;
    macro_rules! e {
        ($m:expr, $p:expr) => {
            exp::<IN_RANGE, true, false>(s, s.sub_f32s($m, load::<V3>($p))).0
        };
    }
    for p in 0..job.pairs {
        let i = 2 * l * p;
        // SAFETY (all accesses): pair `p` lies inside every row (the
        // caller's); `ly + i` is 32-byte aligned.
        unsafe {
            s.prefetch(job.next.wrapping_add(i + LATE_AHEAD));
            for j in [i, i + l] {
                let y = s.mul_f32s(e!(job.lm, job.lx.add(j)), job.c);
                s.store_stream(job.ly.add(j), y);
            }
            let (a, b) = (e!(job.m, job.x.add(i)), e!(job.m, job.x.add(i + l)));
            let v = s.add_f32s(a, b);
            job.err = s.add_f32s(job.err, fast_two_sum(s, &mut job.h, v));
            for j in [i, i + l] {
                let v = load::<V3>(job.next.add(j));
                job.hi = s.max_f32s(job.hi, v);
                job.lo = s.min_f32s(job.lo, v);
            }
        }
    }
}

/// The constants the loop reads as memory operands, one vector each
/// (32-byte aligned: no load splits a cache line).
#[cfg(feature = "asm")]
#[repr(C, align(32))]
struct ExpMemConsts {
    ln2_8_hi: [f32; 8],
    ln2_8_lo: [f32; 8],
    t2: [f32; 8],
    neg_exp_lo: [f32; 8],
}

#[cfg(feature = "asm")]
static EXP_MEM: ExpMemConsts = ExpMemConsts {
    ln2_8_hi: [LN2_8_HI; 8],
    ln2_8_lo: [LN2_8_LO; 8],
    t2: [T2; 8],
    neg_exp_lo: [-EXP_LO; 8],
};

/// One `super::x86_exp::exp` (`NEG`) of `m − v`, `v` at `$addr`: the same
/// operations in the same order (so bit-identical results), in fixed
/// registers; `in_range`, or `flush` (below `EXP_LO` to `+0`, its compare
/// in ymm9). ymm0–ymm2 are scratch, the result is left in `$q`; ymm12
/// table, ymm13 `T3`, ymm14 `8·log2 e`, ymm15 `ROUND_MAGIC`, `{k}` the
/// [`ExpMemConsts`].
#[cfg(feature = "asm")]
macro_rules! exp_neg_asm {
    (in_range, $m:literal, $addr:literal, $q:literal) => {
        concat!(exp_neg_asm!(dn, $m, $addr), exp_neg_asm!(core, $q))
    };
    (flush, $m:literal, $addr:literal, $q:literal) => {
        concat!(
            exp_neg_asm!(dn, $m, $addr),
            // tiny = dn > −EXP_LO (ordered: false for NaN)
            "vcmpps ymm9, ymm0, [{k} + 96], 0x1e\n",
            exp_neg_asm!(core, $q),
            // e = tiny ? +0 : e
            "vandnps ",
            $q,
            ", ymm9, ",
            $q,
            "\n",
        )
    };
    // dn = m − v
    (dn, $m:literal, $addr:literal) => {
        concat!("vsubps ymm0, ", $m, ", ", $addr, "\n")
    };
    (core, $q:literal) => {
        concat!(
            // kf = magic − dn·8·log2 e
            "vmovaps ymm1, ymm14\n",
            "vfnmadd213ps ymm1, ymm0, ymm15\n",
            // k = kf − magic
            "vsubps ymm2, ymm1, ymm15\n",
            // rr = dn + k·ln2/8 (head, then tail)
            "vfmadd231ps ymm0, ymm2, [{k}]\n",
            "vfmadd231ps ymm0, ymm2, [{k} + 32]\n",
            // r2 = rr·rr
            "vmulps ymm2, ymm0, ymm0\n",
            // q = T2 − T3·rr; em1 = q·r2 − rr
            "vmovaps ",
            $q,
            ", ymm13\n",
            "vfnmadd213ps ",
            $q,
            ", ymm0, [{k} + 64]\n",
            "vfmsub213ps ",
            $q,
            ", ymm2, ymm0\n",
            // ts = table[kf & 7] + (kf << 20)
            "vpermps ymm2, ymm1, ymm12\n",
            "vpslld ymm1, ymm1, 20\n",
            "vpaddd ymm1, ymm1, ymm2\n",
            // e = em1·ts + ts
            "vfmadd213ps ",
            $q,
            ", ymm1, ymm1\n",
        )
    };
}

/// The loop in `asm!`: for each of `job.pairs` pairs of vectors,
/// - `e^(lx − lm) · c` streamed to `ly` (the due row's results);
/// - `e^(x − m)` of this row added to the compensated sum `(h, err)`
///   exactly as the generic sweep's pairs do (`v = a + b`, Fast2Sum into
///   `h`, the error into `err`);
/// - the next row's `(hi, lo)` range, from memory, prefetched
///   [`LATE_AHEAD`] floats ahead.
///
/// `IN_RANGE`: both rows' exps skip the flush to `+0` below `EXP_LO`;
/// otherwise both flush. The exp is `super::x86_exp::exp`'s `NEG` form,
/// operation for operation.
///
/// # Safety
/// AVX2 and FMA available; `x`, `next` and `lx` readable and `ly` writable
/// for `pairs · 16` floats; `ly` 32-byte aligned; `pairs > 0`.
#[cfg(feature = "asm")]
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn asm_loop<const IN_RANGE: bool>(job: &mut LatePairs<V3>) {
    use core::arch::x86_64::_mm256_set1_ps;
    let LatePairs {
        x,
        next,
        lx,
        ly,
        pairs,
        m,
        lm,
        c,
        ..
    } = *job;
    let bytes = pairs * 64;
    let (mut hv, mut ev): (__m256, __m256) = (cast(job.h), cast(job.err));
    let (mut hi_v, mut lo_v): (__m256, __m256) = (cast(job.hi), cast(job.lo));
    let table: __m256 = cast(EXP2_EIGHTHS);
    let (m, lm): (__m256, __m256) = (cast(m), cast(lm));
    let (t3, l2e, magic) = (
        _mm256_set1_ps(T3),
        _mm256_set1_ps(LOG2_E_8),
        _mm256_set1_ps(ROUND_MAGIC),
    );
    // The late row's scale, a memory operand (ymm9 holds the flush's mask;
    // `__m256` is 32-byte aligned).
    let cm: __m256 = cast(c);
    let end = pairs * 16;
    macro_rules! body {
        ($kind:ident) => {
            // SAFETY: the caller's contract: every access is `base + bytes
            // + i` with `i` from `−bytes` to `−64` in steps of 64, inside
            // the rows; the streaming stores are 32-byte aligned; every
            // register written is declared (the flags too, by default).
            unsafe {
                core::arch::asm!(
                    "2:",
                    "prefetcht0 [{nx} + {i} + {ahead}]",
                    exp_neg_asm!($kind, "ymm10", "[{lx} + {i}]", "ymm3"),
                    "vmulps ymm3, ymm3, [{c}]",
                    "vmovntps [{ly} + {i}], ymm3",
                    exp_neg_asm!($kind, "ymm10", "[{lx} + {i} + 32]", "ymm3"),
                    "vmulps ymm3, ymm3, [{c}]",
                    "vmovntps [{ly} + {i} + 32], ymm3",
                    exp_neg_asm!($kind, "ymm11", "[{x} + {i}]", "ymm4"),
                    exp_neg_asm!($kind, "ymm11", "[{x} + {i} + 32]", "ymm3"),
                    // v = a + b; t = h + v; err += v − (t − h); h = t
                    "vaddps ymm4, ymm4, ymm3",
                    "vaddps ymm3, ymm8, ymm4",
                    "vsubps ymm0, ymm3, ymm8",
                    "vsubps ymm0, ymm4, ymm0",
                    "vaddps ymm7, ymm7, ymm0",
                    "vmovaps ymm8, ymm3",
                    // The next row's range (the accumulator first, as
                    // pulp's `max_f32s`/`min_f32s`).
                    "vmaxps ymm5, ymm5, [{nx} + {i}]",
                    "vminps ymm6, ymm6, [{nx} + {i}]",
                    "vmaxps ymm5, ymm5, [{nx} + {i} + 32]",
                    "vminps ymm6, ymm6, [{nx} + {i} + 32]",
                    "add {i}, 64",
                    "jnz 2b",
                    i = inout(reg) bytes.wrapping_neg() => _,
                    x = in(reg) x.add(end),
                    nx = in(reg) next.add(end),
                    lx = in(reg) lx.add(end),
                    ly = in(reg) ly.add(end),
                    k = in(reg) &EXP_MEM,
                    c = in(reg) &cm,
                    ahead = const 4 * LATE_AHEAD,
                    out("ymm0") _,
                    out("ymm1") _,
                    out("ymm2") _,
                    out("ymm3") _,
                    out("ymm4") _,
                    inout("ymm5") hi_v,
                    inout("ymm6") lo_v,
                    inout("ymm7") ev,
                    inout("ymm8") hv,
                    out("ymm9") _,
                    in("ymm10") lm,
                    in("ymm11") m,
                    in("ymm12") table,
                    in("ymm13") t3,
                    in("ymm14") l2e,
                    in("ymm15") magic,
                    options(nostack),
                );
            }
        };
    }
    if IN_RANGE {
        body!(in_range);
    } else {
        body!(flush);
    }
    (job.h, job.err) = (cast(hv), cast(ev));
    (job.hi, job.lo) = (cast(hi_v), cast(lo_v));
}

/// How far ahead of its range the loop prefetches the next row, in floats
/// (2 KiB, about 30 pairs of the loop: more than a memory latency; see
/// `docs/PERFORMANCE.md#thresholds`).
const LATE_AHEAD: usize = 512;
