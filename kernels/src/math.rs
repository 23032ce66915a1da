//! The vector exp and ln every kernel shares, written once against pulp's
//! [`Simd`] so the AVX2, AVX-512, NEON and portable instantiations compute
//! the same results.
//!
//! exp scheme (about 13 vector instructions per vector):
//! 1. `k = round(x·log2 e)` with the "add 1.5·2^23" trick: after the FMA the
//!    low mantissa bits of `kf` hold `k`, so no float→int conversion is needed.
//! 2. Two-constant (Cody–Waite) reduction `r = x − k·ln2_hi − k·ln2_lo`, with
//!    `ln2_hi` short enough that `k·ln2_hi` is exact for every `k` we keep;
//!    `|r| ≤ ln2/2`.
//! 3. `e^r ≈ 1 + r + c2·r² + … + c6·r⁶`, a relative-error minimax fit on
//!    `[−ln2/2, ln2/2]` (max relative error 3.1e-9, 0.05 ULP), Horner form.
//! 4. Scale by `2^k`, built by shifting `k + 127` into the exponent field.
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
//! Lost experiments: a degree-5 polynomial (one FMA less) has 0.88 ULP of
//! polynomial error on its own, which leaves too little of the SPEC's 4 ULP
//! budget once the sum and reciprocal are added.

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
#[inline(always)]
pub fn exp_nonpos<S: Simd>(s: S, x: S::f32s) -> S::f32s {
    let v = exp_core(s, x);
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

    let mut p = s.splat_f32s(C6);
    p = s.mul_add_e_f32s(p, r, s.splat_f32s(C5));
    p = s.mul_add_e_f32s(p, r, s.splat_f32s(C4));
    p = s.mul_add_e_f32s(p, r, s.splat_f32s(C3));
    p = s.mul_add_e_f32s(p, r, s.splat_f32s(C2));
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
