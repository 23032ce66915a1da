//! The vector exp and ln every kernel shares, written once against pulp's
//! [`Simd`] so the AVX2, AVX-512, NEON and portable instantiations compute
//! the same results (AVX2 has its own exp for `x ≤ 0`, see below).
//!
//! exp scheme (polynomial; about 14 vector instructions per vector):
//! 1. `k = round(x·log2 e)` with the "add 1.5·2^23" trick: after the FMA the
//!    low mantissa bits of `kf` hold `k`, so no float→int conversion is needed.
//! 2. Two-constant (Cody–Waite) reduction `r = x − k·ln2_hi − k·ln2_lo`, with
//!    `ln2_hi` short enough that `k·ln2_hi` is exact for every `k` we keep;
//!    `|r| ≤ ln2/2`.
//! 3. `e^r ≈ 1 + r + c2·r² + … + c6·r⁶`, a relative-error minimax fit on
//!    `[−ln2/2, ln2/2]` (max relative error 3.1e-9, 0.05 ULP); the inner
//!    part `c2 + … + c6·r⁴` in Estrin form, then two Horner steps.
//! 4. Scale by `2^k`, built by shifting `k + 127` into the exponent field.
//!
//! [`exp_nonpos`] on AVX2 uses a table scheme instead: `2^(j/8)` from one
//! register with `vpermps` and a degree-3 polynomial (see
//! `exp_nonpos_avx2`): 7 FMA-pipe operations instead of 10, the most
//! expensive part of every softmax. AVX-512 has its own: `2^(j/16)` from
//! one 512-bit register and `vscalefps` (`exp_nonpos_avx512`, 10
//! operations instead of 14).
//!
//! Range: `x < ln 2^-126` gives exactly `+0` (SPEC §3 allows flushing results
//! below `2^-126`; it also keeps the result independent of FTZ/DAZ), `x > ln
//! f32::MAX` gives `+∞`, NaN stays NaN. Both limits are applied with `select`,
//! so no min/max whose NaN behaviour differs between ISAs is involved.
//!
//! Multiply-adds use `mul_add_e` (fused where the ISA has FMA, `a·b + c`
//! on the scalar and portable instantiations, where a software `fmaf` would
//! cost more than the whole exp); the two-constant reduction is exact either
//! way, so both stay within the same bound.
//!
//! Lost experiments (exp + sum + store over 4096 floats in L1, Zen 3, AVX2):
//! - a degree-5 polynomial (one FMA less) has 0.88 ULP of polynomial error
//!   on its own, which leaves too little of the SPEC's 4 ULP budget once the
//!   sum and reciprocal are added;
//! - the degree-6 polynomial in plain Horner form: 0.40 ns/element against
//!   0.365 for the Estrin form (the chain is 8 dependent FMAs instead of 6;
//!   the kernel is bound by latency and scheduler capacity, not by FMA
//!   throughput: ~9 cycles per vector for ~5 cycles of FMA work);
//! - scaling by an integer add of `k << 23` to the result (one multiply
//!   less): an input NaN's payload bits end up in the exponent field and can
//!   turn the NaN into a finite number, which breaks SPEC §3's NaN rows.
//!   The AVX2 table scheme adds the integer to the table entry instead,
//!   before the last FMA, where a NaN operand still wins;
//! - not tried: a 2^(j/4) table read with the in-lane `vpermilps` and a
//!   degree-4 polynomial takes as many FMA-pipe slots on Zen 3 as the
//!   8-entry table (one FMA more, a shuffle that costs one slot instead of
//!   about two) with a longer dependency chain.

use pulp::Simd;

/// `1.5·2^23`: adding it rounds a float in `(−2^22, 2^22)` to an integer held
/// in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
const LOG2_E: f32 = core::f32::consts::LOG2_E;
/// `ln 2` split so that `k·LN2_HI` is exact for `|k| < 2^15`.
const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375 = 355/512 exactly
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, `e^x < 2^-126`: the result is flushed to `+0`.
pub const EXP_LO: f32 = -87.336_55;
/// Above this, `e^x` overflows f32.
pub const EXP_HI: f32 = 88.722_84;

const C2: f32 = 0.499_999_93;
const C3: f32 = 0.166_665_2;
const C4: f32 = 0.041_668_387;
const C5: f32 = 0.008_368_71;
const C6: f32 = 0.001_381_461_3;

/// `e^x` for `x ≤ 0` or NaN, the case of every softmax (`x − max ≤ 0`).
/// Positive inputs are not range-checked: callers guarantee `x ≤ 0`.
/// On AVX2 and AVX-512 this is a table scheme (`exp_nonpos_avx2`,
/// `exp_nonpos_avx512`), elsewhere the polynomial scheme above; both return exactly `1` at `x = 0` and values
/// `≤ 1` for `x ≤ 0`, which the compensated sums rely on.
#[inline(always)]
pub fn exp_nonpos<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    exp_nonpos_checked::<S, false>(s, x)
}

/// [`exp_nonpos`] for inputs known to lie in `[EXP_LO, 0]` (or NaN): the
/// flush to `+0` below [`EXP_LO`] is skipped (two operations less per
/// vector). Callers check the row's minimum once.
#[inline(always)]
pub fn exp_nonpos_in_range<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    exp_nonpos_checked::<S, true>(s, x)
}

#[inline(always)]
fn exp_nonpos_checked<S: Simd, const IN_RANGE: bool>(s: S, x: S::f32s) -> S::f32s {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = crate::isa::as_v3(s) {
        return crate::isa::cast(exp_nonpos_avx2::<IN_RANGE, false>(v3, crate::isa::cast(x)));
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        return crate::isa::cast(exp_nonpos_avx512::<IN_RANGE>(v4, crate::isa::cast(x)));
    }
    let v = exp_core(s, x);
    if IN_RANGE {
        return v;
    }
    s.select_f32s(
        s.less_than_f32s(x, s.splat_f32s(EXP_LO)),
        s.splat_f32s(0.0),
        v,
    )
}

/// `e^x` on the whole f32 line: `+0` below [`EXP_LO`], `+∞` above
/// [`EXP_HI`], NaN for NaN.
#[inline(always)]
pub fn exp<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let v = exp_core(s, x);
    let v = s.select_f32s(
        s.greater_than_f32s(x, s.splat_f32s(EXP_HI)),
        s.splat_f32s(f32::INFINITY),
        v,
    );
    s.select_f32s(
        s.less_than_f32s(x, s.splat_f32s(EXP_LO)),
        s.splat_f32s(0.0),
        v,
    )
}

/// `2^(j/8)`, `j = 0..8`, rounded to f32 (relative error ≤ 0.54·2^-24;
/// the even entries of AVX-512's [`EXP2_SIXTEENTHS`]), each minus `j << 20`
/// as an integer: adding `k << 20` (whose bits 20..23 are `j = k & 7` and
/// whose bits 23.. are `k >> 3`) then gives the entry with `k >> 3` added
/// to its exponent, no masking needed.
#[cfg(target_arch = "x86_64")]
const EXP2_EIGHTHS: [u32; 8] = {
    let mut out = [0u32; 8];
    let mut j = 0;
    while j < 8 {
        out[j] = EXP2_SIXTEENTHS[2 * j].wrapping_sub((j as u32) << 20);
        j += 1;
    }
    out
};
/// `8·log2 e`.
#[cfg(target_arch = "x86_64")]
const LOG2_E_8: f32 = 11.541_56;
/// `ln2/8` rounded to f32, and the rest: `LN2_8_HI + LN2_8_LO = ln2/8` to
/// about `2^-50`.
#[cfg(target_arch = "x86_64")]
const LN2_8_HI: f32 = f32::from_bits(0x3db1_7218); // 0.086643398
#[cfg(target_arch = "x86_64")]
const LN2_8_LO: f32 = f32::from_bits(0xaf82_e308); // -2.3808178e-10
/// `e^r − 1 ≈ r + r²·(T2 + T3·r)` on `|r| ≤ ln2/16`: relative-error minimax
/// fit (0.43·2^-24 with these f32 coefficients).
#[cfg(target_arch = "x86_64")]
const T2: f32 = 0.500_064_55;
#[cfg(target_arch = "x86_64")]
const T3: f32 = 0.166_668_58;

/// [`exp_nonpos`] on AVX2: `k = round(8·x·log2 e)` (same rounding trick),
/// `r = x − k·ln2/8`, `e^x = 2^(k>>3) · 2^((k&7)/8) · e^r`. `2^((k&7)/8)`
/// comes from a table held in one register and read with one `vpermps`
/// (its index is the low bits of `kf`), `2^(k>>3)` is added to that entry's
/// exponent field as an integer, and `e^r` needs only a degree-3
/// polynomial, applied as `t + t·(e^r − 1)` in one FMA.
///
/// `NEG`: the argument is `−x ≥ 0` instead of `x ≤ 0` (`m − v` rather than
/// `v − m`), with every sign below flipped to match, so that the caller's
/// subtraction can take its vector straight from memory (`vsubps` reads
/// its second operand from memory; `v − m` would need a separate load).
/// Both forms round identically (round-to-nearest is symmetric), so they
/// give bit-identical results.
///
/// Reduction: `r_hi = x − k·LN2_8_HI` in one FMA, then `r = r_hi −
/// k·LN2_8_LO` in another (each one rounding of at most `2^-28` absolute,
/// since `|r| < 2^-4`).
/// The polynomial's nonlinear terms take `r` too, but `r²` and `T2 + T3·r`
/// no longer wait for each other: the dependency chain is 26 cycles on
/// Zen 3 (4-cycle FMAs) against the 30 of the earlier form, which split
/// `ln2/8` into a 9-bit head (so that `k·head` was exact) and a tail that
/// then had to be applied before anything else.
///
/// Cost per vector: 11 instructions (7 FMA-pipe operations, one `vpermps`,
/// a shift, an integer add, the `k` subtraction) against the polynomial
/// scheme's 14 (degree 6 and a scaling multiply). Error: table rounding
/// 0.54·2^-24, polynomial 0.43·2^-24, reduction ≤ 0.13·2^-24, final
/// rounding ≤ 2^-24, so ≤ 1.1 ULP against the polynomial scheme's 0.55.
///
/// `exp_neg_asm!` repeats the `NEG` form's operations in `asm!` for
/// [`exp_late_pairs_avx2`]: a change here goes there too (the streaming
/// test compares the two bit for bit).
///
/// NaN: `e^r − 1` is NaN, and the final FMA returns NaN whatever the table
/// entry and the integer scaling made of the NaN's payload bits. `x` below
/// [`EXP_LO`] (including `−∞`) selects `+0`; above it `k ≥ −1008`, so the
/// scaled entry `2^(k>>3)·t ≥ 2^-126` is normal and only the last rounding
/// can go subnormal.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn exp_nonpos_avx2<const IN_RANGE: bool, const NEG: bool>(
    s: pulp::x86::V3,
    x: pulp::f32x8,
) -> pulp::f32x8 {
    use crate::isa::cast;
    use core::arch::x86_64::__m256;
    let f = s.fma;
    let c = |v: f32| -> __m256 { cast(s.splat_f32s(v)) };
    let xv: __m256 = cast(x);
    let magic = c(ROUND_MAGIC);
    // kf = magic + 8·x·log2 e; its low mantissa bits hold k.
    let kf = if NEG {
        f._mm256_fnmadd_ps(xv, c(LOG2_E_8), magic)
    } else {
        f._mm256_fmadd_ps(xv, c(LOG2_E_8), magic)
    };
    let k = s.avx._mm256_sub_ps(kf, magic);
    // NEG: every value below is the negation of the plain form's.
    let rr = if NEG {
        let r = f._mm256_fmadd_ps(k, c(LN2_8_HI), xv);
        f._mm256_fmadd_ps(k, c(LN2_8_LO), r)
    } else {
        let r = f._mm256_fnmadd_ps(k, c(LN2_8_HI), xv);
        f._mm256_fnmadd_ps(k, c(LN2_8_LO), r)
    };
    let r2 = s.avx._mm256_mul_ps(rr, rr);
    let em1 = if NEG {
        let q = f._mm256_fnmadd_ps(c(T3), rr, c(T2));
        f._mm256_fmsub_ps(q, r2, rr)
    } else {
        let q = f._mm256_fmadd_ps(c(T3), rr, c(T2));
        f._mm256_fmadd_ps(q, r2, rr)
    };

    // The low bits of `kf` are `k + 0x40_0000`; `kf << 20` is `k << 20`.
    let kb = s.transmute_u32s_f32s(cast(kf));
    let table: pulp::f32x8 = pulp::bytemuck::cast(EXP2_EIGHTHS);
    let t = crate::isa::permute8(s, table, kb);
    let e = s.wrapping_dyn_shl_u32s(kb, s.splat_u32s(20));
    let ts: __m256 = cast(s.add_u32s(s.transmute_u32s_f32s(t), e));
    let v: pulp::f32x8 = cast(f._mm256_fmadd_ps(ts, em1, ts));
    if IN_RANGE {
        return v;
    }
    // `+0` below EXP_LO: an and-not with the compare mask (pulp's select
    // would first move the mask into sign bits, one more operation).
    let tiny = if NEG {
        s.greater_than_f32s(x, s.splat_f32s(-EXP_LO))
    } else {
        s.less_than_f32s(x, s.splat_f32s(EXP_LO))
    };
    let tiny = s.transmute_u32s_m32s(tiny);
    s.transmute_f32s_u32s(s.and_u32s(s.not_u32s(tiny), s.transmute_u32s_f32s(v)))
}

/// `2^(j/16)`, `j = 0..16`, rounded to f32 (relative error ≤ 0.8·2^-24):
/// AVX-512's table, one 512-bit register.
#[cfg(target_arch = "x86_64")]
const EXP2_SIXTEENTHS: [u32; 16] = [
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
/// `1.5·2^19`: adding it rounds a float in `(−2^18, 2^18)` to a multiple
/// of `1/16`, held (times 16) in the low mantissa bits.
#[cfg(target_arch = "x86_64")]
const ROUND_MAGIC_16: f32 = 786_432.0;
/// `ln 2` rounded to f32, and the rest (`LN2_R_HI + LN2_R_LO = ln 2` to
/// about `2^-52`).
#[cfg(target_arch = "x86_64")]
const LN2_R_HI: f32 = f32::from_bits(0x3f31_7218); // 0.69314718
#[cfg(target_arch = "x86_64")]
const LN2_R_LO: f32 = f32::from_bits(0xb102_e308); // -1.9046542e-9
/// `e^r − 1 ≈ r + r²·(U2 + U3·r)` on `|r| ≤ ln2/32`: relative-error
/// minimax fit (0.03·2^-24 with these f32 coefficients; Taylor's `1/2`,
/// `1/6` would give 0.16·2^-24).
#[cfg(target_arch = "x86_64")]
const U2: f32 = 0.500_016_15;
#[cfg(target_arch = "x86_64")]
const U3: f32 = 0.166_667_2;

/// [`exp_nonpos`] on AVX-512: a table scheme like [`exp_nonpos_avx2`]'s,
/// with twice its table and `vscalefps`. `q = round(16·x·log2 e)` (the
/// rounding trick at `1/16` granularity: `kq = q/16` comes out as a
/// float, the low 4 bits of `kf` are `j = q & 15`), `r = x − kq·ln2`,
/// `e^x = 2^⌊kq⌋ · 2^(j/16) · e^r`: `2^(j/16)` from a 16-entry table held
/// in one 512-bit register and read with one `vpermps` (it uses the low 4
/// bits of each index), `e^r` a degree-3 polynomial on `|r| ≤ ln2/32`
/// (16 times more accurate than AVX2's on twice that interval), and
/// `2^⌊kq⌋` one `vscalefps`, which floors its second operand itself.
///
/// 10 operations per vector (7 FMA-pipe arithmetic, the `vpermps`, the
/// `kq` subtraction, the `vscalefps`); the flush below [`EXP_LO`] is one
/// compare into a mask register and the scaling's zero-masking. Against
/// the polynomial scheme's 14 (16 with the flush) and 11 for the AVX2
/// scheme's integer scaling (`k << 19` added to a pre-biased table
/// entry, a shift and an add where `vscalefps` is one operation). On
/// Intel cores with two 512-bit pipes (ports 0 and 5) the operation count
/// is the throughput. Measured on an Intel Xeon (interleaved runs,
/// ns/element), polynomial → this table: 8192×32 0.42 → 0.35, 2048×128
/// 0.54 → 0.47, 262×1000 0.39–0.41 → 0.34–0.36; `vscalefps` against the
/// shift and add: within the noise (kept: one operation less).
///
/// Error: table 0.8·2^-24, polynomial 0.03·2^-24, reduction ≤ 0.07·2^-24,
/// final rounding ≤ 2^-24. `x = 0` gives exactly 1 and `x ≤ 0` at most 1.
/// NaN stays NaN (`r` is NaN, and so every later step); above `EXP_LO`,
/// `⌊kq⌋ ≥ −126` and only the scaled result can go subnormal (as the FMA
/// of the AVX2 scheme: the same values either way, FTZ/DAZ included).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn exp_nonpos_avx512<const IN_RANGE: bool>(
    s: pulp::x86::V4,
    x: pulp::f32x16,
) -> pulp::f32x16 {
    use crate::isa::cast;
    use core::arch::x86_64::__m512;
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
        return cast(f._mm512_scalef_ps(p, kq));
    }
    // `+0` below EXP_LO, `−∞` included (NaN compares false and stays NaN).
    let keep = f._mm512_cmp_ps_mask::<{ core::arch::x86_64::_CMP_NLT_UQ }>(xv, c(EXP_LO));
    cast(f._mm512_maskz_scalef_ps(keep, p, kq))
}

/// The constants [`exp_late_pairs_avx2`] reads as memory operands, one
/// vector each (32-byte aligned: no load splits a cache line).
#[cfg(target_arch = "x86_64")]
#[repr(C, align(32))]
struct ExpMemConsts {
    ln2_8_hi: [f32; 8],
    ln2_8_lo: [f32; 8],
    t2: [f32; 8],
    neg_exp_lo: [f32; 8],
}

#[cfg(target_arch = "x86_64")]
static EXP_MEM: ExpMemConsts = ExpMemConsts {
    ln2_8_hi: [LN2_8_HI; 8],
    ln2_8_lo: [LN2_8_LO; 8],
    t2: [T2; 8],
    neg_exp_lo: [-EXP_LO; 8],
};

/// One [`exp_nonpos_avx2`] (`NEG`) of `m − v`, `v` at `$addr`: the same
/// operations in the same order (so bit-identical results), in fixed
/// registers; `in_range`, or `flush` (below `EXP_LO` to `+0`, its compare
/// in ymm9). ymm0–ymm2 are scratch, the result is left in `$q`; ymm12
/// table, ymm13 `T3`, ymm14 `8·log2 e`, ymm15 `ROUND_MAGIC`, `{k}` the
/// [`ExpMemConsts`].
#[cfg(target_arch = "x86_64")]
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

/// The inner loop of the streaming batch's long rows (`crate::batch`,
/// `Late`) on AVX2. For each of `pairs` pairs of vectors:
/// - `e^(lx − lm) · c` streamed to `ly` (the previous row's output);
/// - `e^(x − m)` of this row added to the compensated sum `(h, err)`
///   exactly as `batch::sweep_impl`'s pairs do (`v = a + b`, Fast2Sum into
///   `h`, the error into `err`);
/// - the next row's `(hi, lo)` range, from memory, prefetched
///   [`LATE_AHEAD`] floats ahead.
///
/// `IN_RANGE`: both rows' exps skip the flush to `+0` below `EXP_LO`, as in
/// [`exp_nonpos_avx2`] (the caller's `LATE_IN`); otherwise both flush.
///
/// One `asm!` block because LLVM's register allocation of the four exps per
/// pair (two rows, two maxima, the scale, seven constants and two
/// accumulators in AVX2's 16 registers) spilled and rematerialized
/// constants: 87 instructions per pair, then a separate pass for the next
/// row's range, against 73 for this loop in range, range included
/// (523×128256 under callgrind: 6.1 → 4.7 instructions per element in
/// all; the flushing form adds 2 per exp). Here three constants (four
/// when flushing) and the late row's scale are memory operands, and every
/// exp runs in the same three scratch registers (the core renames them;
/// its out-of-order window overlaps consecutive exps).
/// The exp is [`exp_nonpos_avx2`]'s (`NEG`), operation for operation, so
/// the results are bit-identical to the intrinsics' path.
///
/// # Safety
/// AVX2 and FMA available; `x`, `next` and `lx` readable and `ly` writable
/// for `pairs · 16` floats; `ly` 32-byte aligned; `pairs > 0`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn exp_late_pairs_avx2<const IN_RANGE: bool>(
    x: *const f32,
    next: *const f32,
    lx: *const f32,
    ly: *mut f32,
    pairs: usize,
    m: pulp::f32x8,
    lm: pulp::f32x8,
    c: pulp::f32x8,
    h: &mut pulp::f32x8,
    err: &mut pulp::f32x8,
    hi: &mut pulp::f32x8,
    lo: &mut pulp::f32x8,
) {
    use crate::isa::cast;
    use core::arch::x86_64::{__m256, _mm256_set1_ps};
    let bytes = pairs * 64;
    let (mut hv, mut ev): (__m256, __m256) = (cast(*h), cast(*err));
    let (mut hi_v, mut lo_v): (__m256, __m256) = (cast(*hi), cast(*lo));
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
    (*h, *err) = (cast(hv), cast(ev));
    (*hi, *lo) = (cast(hi_v), cast(lo_v));
}

/// How far ahead of its range [`exp_late_pairs_avx2`] prefetches the next
/// row, in floats (2 KiB, about 30 pairs of the loop: more than a memory
/// latency). 256, 1024 and 2048 measured the same on 523×128256.
#[cfg(target_arch = "x86_64")]
const LATE_AHEAD: usize = 512;

/// Below this, `e^x` rounds to `+0` even with gradual underflow.
pub const EXP_SUBNORMAL_LO: f32 = -103.972_08;

/// `e^x` for `x ≤ 0` with gradual underflow: results below `2^-126` are the
/// correctly scaled subnormals instead of `0` (unless the CPU flushes them).
/// For log-softmax and logsumexp, where `ln(1 + δ)` at the max entry needs
/// every term of `δ`, however small (`[100, 17.9, …]`: `δ ≈ 1.5e-36` is a
/// sum of terms that straddle `2^-126`). Two more multiplies and selects
/// than [`exp_nonpos`]: the scale is split as `2^(k+64) · 2^-64`.
#[inline(always)]
pub fn exp_nonpos_gradual<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let (p, kf) = exp_poly(s, x);
    let tiny = s.less_than_f32s(x, s.splat_f32s(EXP_LO));
    let bias = s.select_u32s(tiny, s.splat_u32s(127 + 64), s.splat_u32s(127));
    let biased = s.add_u32s(s.transmute_u32s_f32s(kf), bias);
    let scale = s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23));
    let v = s.mul_f32s(p, s.transmute_f32s_u32s(scale));
    let v = s.select_f32s(
        tiny,
        s.mul_f32s(v, s.splat_f32s(f32::from_bits(0x1f80_0000))),
        v,
    );
    s.select_f32s(
        s.less_than_f32s(x, s.splat_f32s(EXP_SUBNORMAL_LO)),
        s.splat_f32s(0.0),
        v,
    )
}

/// Steps 1–4 without the range limits; valid for `EXP_LO ≤ x ≤ EXP_HI`.
#[inline(always)]
fn exp_core<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let (p, kf) = exp_poly(s, x);
    // The low bits of `kf` are `k + 0x40_0000`; the extra bit and the
    // exponent of ROUND_MAGIC are shifted out, leaving `(k + 127) << 23`.
    let bits = s.transmute_u32s_f32s(kf);
    let biased = s.add_u32s(bits, s.splat_u32s(127));
    let scale = s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23));
    s.mul_f32s(p, s.transmute_f32s_u32s(scale))
}

/// Steps 1–3: `e^r` and `kf` (whose low mantissa bits hold `k`).
#[inline(always)]
fn exp_poly<S: Simd>(s: S, x: S::f32s) -> (S::f32s, S::f32s) {
    let magic = s.splat_f32s(ROUND_MAGIC);
    let kf = s.mul_add_e_f32s(x, s.splat_f32s(LOG2_E), magic);
    let k = s.sub_f32s(kf, magic);
    let r = s.mul_add_e_f32s(k, s.splat_f32s(-LN2_HI), x);
    let r = s.mul_add_e_f32s(k, s.splat_f32s(-LN2_LO), r);

    // Estrin: c2 + c3·r + r²·(c4 + c5·r + c6·r²), then two Horner steps.
    let r2 = s.mul_f32s(r, r);
    let a = s.mul_add_e_f32s(s.splat_f32s(C3), r, s.splat_f32s(C2));
    let b = s.mul_add_e_f32s(s.splat_f32s(C5), r, s.splat_f32s(C4));
    let b = s.mul_add_e_f32s(s.splat_f32s(C6), r2, b);
    let mut p = s.mul_add_e_f32s(b, r2, a);
    let one = s.splat_f32s(1.0);
    p = s.mul_add_e_f32s(p, r, one);
    p = s.mul_add_e_f32s(p, r, one);
    (p, kf)
}

const SQRT_2: f32 = core::f32::consts::SQRT_2;
const LN2_FULL_HI: f32 = 0.693_145_75;
const LN2_FULL_LO: f32 = 1.428_606_8e-6;

/// `ln x`: `−∞` for `±0`, `+∞` for `+∞`, NaN for negative or NaN inputs;
/// subnormal inputs are handled exactly (unless the CPU flushes them).
///
/// Scheme: `x = 2^e · m` with `m ∈ [√½, √2)`; `ln m = 2·atanh(s)`,
/// `s = (m − 1)/(m + 1)`, `|s| ≤ 0.172`, by its odd series through `s⁹`
/// (truncation below 0.02 ULP), then `e·ln 2` added in two parts. The one
/// division costs less than the degree-10 polynomial in `m − 1` that the
/// same accuracy would need (fitted: degree 8 still has 4.4 ULP).
#[inline(always)]
pub fn ln<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    // Scale subnormals into the normal range first.
    let tiny = s.less_than_f32s(x, s.splat_f32s(f32::MIN_POSITIVE));
    let xs = s.select_f32s(tiny, s.mul_f32s(x, s.splat_f32s(8_388_608.0)), x);
    let e_adj = s.select_f32s(tiny, s.splat_f32s(-23.0), s.splat_f32s(0.0));

    let bits = s.transmute_u32s_f32s(xs);
    let mant = s.or_u32s(
        s.and_u32s(bits, s.splat_u32s(0x007f_ffff)),
        s.splat_u32s(0x3f80_0000),
    );
    let m1 = s.transmute_f32s_u32s(mant); // in [1, 2)
    // Biased exponent as a float: 2^23 + field, exactly, minus 2^23 + 127.
    let ef = s.transmute_f32s_u32s(s.or_u32s(
        s.wrapping_dyn_shr_u32s(bits, s.splat_u32s(23)),
        s.splat_u32s(0x4b00_0000),
    ));
    let mut e = s.add_f32s(s.sub_f32s(ef, s.splat_f32s(8_388_735.0)), e_adj);
    let big = s.greater_than_or_equal_f32s(m1, s.splat_f32s(SQRT_2));
    let m = s.select_f32s(big, s.mul_f32s(m1, s.splat_f32s(0.5)), m1);
    e = s.select_f32s(big, s.add_f32s(e, s.splat_f32s(1.0)), e);

    let one = s.splat_f32s(1.0);
    let t = s.div_f32s(s.sub_f32s(m, one), s.add_f32s(m, one));
    let t2 = s.mul_f32s(t, t);
    let mut q = s.splat_f32s(1.0 / 9.0);
    q = s.mul_add_e_f32s(q, t2, s.splat_f32s(1.0 / 7.0));
    q = s.mul_add_e_f32s(q, t2, s.splat_f32s(1.0 / 5.0));
    q = s.mul_add_e_f32s(q, t2, s.splat_f32s(1.0 / 3.0));
    q = s.mul_f32s(q, t2);
    let two_t = s.add_f32s(t, t);
    let ln_m = s.mul_add_e_f32s(two_t, q, two_t);
    let lo = s.mul_add_e_f32s(e, s.splat_f32s(LN2_FULL_LO), ln_m);
    let v = s.mul_add_e_f32s(e, s.splat_f32s(LN2_FULL_HI), lo);

    // Limits: 0 → −∞, +∞ → +∞, negative → NaN (NaN stays NaN through the math).
    let v = s.select_f32s(
        s.equal_f32s(x, s.splat_f32s(0.0)),
        s.splat_f32s(f32::NEG_INFINITY),
        v,
    );
    let v = s.select_f32s(
        s.equal_f32s(x, s.splat_f32s(f32::INFINITY)),
        s.splat_f32s(f32::INFINITY),
        v,
    );
    s.select_f32s(
        s.less_than_f32s(x, s.splat_f32s(0.0)),
        s.splat_f32s(f32::NAN),
        v,
    )
}
