//! The portable vector exp (the default of [`Isa::exp_nonpos`](crate::isa::Isa::exp_nonpos) and
//! [`Isa::exp_tiny`](crate::isa::Isa::exp_tiny): scalar, NEON and the portable lanes) and the vector
//! `ln` of `logits_from_probs`. AVX2 and AVX-512 have table exps of their
//! own (`crate::isa::avx2`, `crate::isa::avx512`), with the same range
//! behaviour.
//!
//! The polynomial exp, about 14 vector operations:
//! 1. `k = round(x·log2 e)` with the "add 1.5·2^23" trick: after the FMA the
//!    low mantissa bits of `kf` hold `k`, no float→int conversion needed.
//! 2. Two-constant (Cody–Waite) reduction `r = x − k·ln2_hi − k·ln2_lo`,
//!    `ln2_hi` short enough that `k·ln2_hi` is exact; `|r| ≤ ln2/2`.
//! 3. `e^r ≈ 1 + r + c2·r² + … + c6·r⁶`, a relative-error minimax fit on
//!    `[−ln2/2, ln2/2]` (3.1e-9, 0.05 ULP): `c2 + … + c6·r⁴` in Estrin
//!    form, then two Horner steps.
//! 4. Scale by `2^k`, built by shifting `k + 127` into the exponent field
//!    (a multiply: an integer add into the result's exponent would let a
//!    NaN's payload bits turn it into a number).
//!
//! Range (every exp of the crate): `x = 0` gives exactly 1 and `x ≤ 0` at
//! most 1 (the compensated sums rely on both), NaN stays NaN, `x <`
//! [`EXP_LO`] gives `+0` (its value is below `2^-126`; flushing it keeps
//! the result independent of FTZ/DAZ), limits applied with `select`.
//!
//! Multiply-adds use `mul_add_e` (fused where the ISA has FMA, `a·b + c`
//! on the scalar and portable instantiations, where a software `fmaf`
//! would cost more than the whole exp); the reduction is exact either way.
//! Rejected forms (degree 5, plain Horner): see `docs/PERFORMANCE.md#exp`.

use pulp::Simd;

/// `1.5·2^23`: adding it rounds a float in `(−2^22, 2^22)` to an integer
/// held in the low mantissa bits.
pub(crate) const ROUND_MAGIC: f32 = 12_582_912.0;
pub(crate) const LOG2_E: f32 = core::f32::consts::LOG2_E;
/// `ln 2` split so that `k·LN2_HI` is exact for `|k| < 2^15`.
const LN2_HI: f32 = f32::from_bits(0x3f31_8000); // 0.693359375 = 355/512 exactly
const LN2_LO: f32 = -2.121_944_4e-4;
/// Below this, `e^x < 2^-126`: the exps flush it to `+0`.
pub const EXP_LO: f32 = -87.336_55;
/// Below this, even `e^x · 2^64` ([`Isa::exp_tiny`](crate::isa::Isa::exp_tiny)'s tiny lanes) is below
/// `2^-126`: flushed to `+0` (such a term is `2^-64` times smaller than
/// any that a sum of tiny terms could still resolve).
pub const EXP_TINY_LO: f32 = EXP_LO - 64.0 * core::f32::consts::LN_2;

const C2: f32 = 0.499_999_93;
const C3: f32 = 0.166_665_2;
const C4: f32 = 0.041_668_387;
const C5: f32 = 0.008_368_71;
const C6: f32 = 0.001_381_461_3;

/// Steps 1–3: `e^r` and `kf` (whose low mantissa bits hold `k`).
#[inline(always)]
fn poly<S: Simd>(s: S, x: S::f32s) -> (S::f32s, S::f32s) {
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

/// `p · 2^(k + extra)`: `(k + 127 + extra) << 23` as a float (the low bits
/// of `kf` are `k + 0x40_0000`; the extra bit and `ROUND_MAGIC`'s exponent
/// are shifted out).
#[inline(always)]
fn scale<S: Simd>(s: S, p: S::f32s, kf: S::f32s, bias: S::u32s) -> S::f32s {
    let biased = s.add_u32s(s.transmute_u32s_f32s(kf), bias);
    let two_k = s.wrapping_dyn_shl_u32s(biased, s.splat_u32s(23));
    s.mul_f32s(p, s.transmute_f32s_u32s(two_k))
}

/// The polynomial [`Isa::exp_nonpos`](crate::isa::Isa::exp_nonpos).
#[inline(always)]
pub fn poly_exp_nonpos<S: Simd, const IN_RANGE: bool>(s: S, x: S::f32s) -> S::f32s {
    let (p, kf) = poly(s, x);
    let v = scale(s, p, kf, s.splat_u32s(127));
    if IN_RANGE {
        return v;
    }
    let tiny = s.less_than_f32s(x, s.splat_f32s(EXP_LO));
    s.select_f32s(tiny, s.splat_f32s(0.0), v)
}

/// The polynomial [`Isa::exp_tiny`](crate::isa::Isa::exp_tiny): lanes below [`EXP_LO`] scaled by
/// `2^64` (their exponent bias raised by 64), `+0` below [`EXP_TINY_LO`].
#[inline(always)]
pub fn poly_exp_tiny<S: Simd>(s: S, x: S::f32s) -> (S::f32s, S::m32s) {
    let (p, kf) = poly(s, x);
    let tiny = s.less_than_f32s(x, s.splat_f32s(EXP_LO));
    let bias = s.select_u32s(tiny, s.splat_u32s(127 + 64), s.splat_u32s(127));
    let v = scale(s, p, kf, bias);
    let gone = s.less_than_f32s(x, s.splat_f32s(EXP_TINY_LO));
    (s.select_f32s(gone, s.splat_f32s(0.0), v), tiny)
}

const SQRT_2: f32 = core::f32::consts::SQRT_2;
const LN2_FULL_HI: f32 = 0.693_145_75;
const LN2_FULL_LO: f32 = 1.428_606_8e-6;

/// `ln x`: `−∞` for `±0`, `+∞` for `+∞`, NaN for negative or NaN inputs;
/// subnormal inputs exact (unless the CPU flushes them).
///
/// `x = 2^e · m` with `m ∈ [√½, √2)`; `ln m = 2·atanh(t)`, `t = (m − 1)/(m
/// + 1)`, `|t| ≤ 0.172`, by its odd series through `t⁹` (truncation below
/// 0.02 ULP), then `e·ln 2` added in two parts. The one division costs
/// less than the degree-10 polynomial in `m − 1` the same accuracy needs.
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
