//! A second, independent accuracy oracle for the tests, in double-double
//! arithmetic (a value is an unevaluated sum `hi + lo` of two f64, about 106
//! significant bits), pure Rust, no dependencies. It owns:
//!
//! - [`Dd`] and the error-free transformations it is built on
//!   ([`two_sum`], [`fast_two_sum`], [`two_prod`]); `+`, `−`, `×` and `÷` of
//!   two `Dd` have a relative error of a few `u² = 2^-106` (Joldes, Muller and
//!   Popescu 2017 give 3u² for the sum, 5u² for the product and 15u² for the
//!   quotient; the quotient here does one more correction step than theirs).
//! - [`exp_dd`], [`expm1_dd`], [`ln_dd`] and [`ln1p_dd`]: relative error
//!   below `2^-100` (measured against mpmath on 30 000 random arguments
//!   each: worst `2^-105.3` for `exp_dd`, `2^-104.1` for `expm1_dd`,
//!   `2^-104.0` for `ln_dd`, `2^-104.4` for `ln1p_dd`) while
//!   the result and its low word are normal f64 (`e^x ≥ 2^-969`, about
//!   `x ≥ −671`; below that the low word is subnormal and the *absolute*
//!   error is `2^-1074`); `expm1_dd` and `ln1p_dd` keep that relative error
//!   for arguments down to the f64 normal range (`1e-300` included).
//! - Row functions on `&[f32]` ([`softmax`], [`log_softmax`], [`logsumexp`],
//!   [`softmax_scaled`], [`softmax_of_combination`]) and on double-double
//!   logits ([`softmax_dd`], [`log_softmax_dd`], [`logsumexp_dd`]): relative
//!   error about `(|x_i − m| + log2 n + 10)·2^-104` per entry, where the
//!   `|x_i − m|` term is only there when the shifted logit `x_i − m` is not
//!   exact (it is exact for plain f32 rows).
//! - The f32 ULP metric [`ulp_f32`] and [`err_ulp`].
//!
//! This oracle shares no code with `simd_softmax::reference` (an f64
//! computation with `libm`), so tests can check one against the other and
//! trust the double-double one where f64 itself is off by more than an f32
//! ULP. `tests/oracle_selftest.rs` checks it against constants computed with
//! mpmath. NaN and `+∞` inputs are outside its scope: callers filter those
//! rows (the results are then NaN or the `+∞` limit, but are not tested).
#![allow(dead_code)]

use std::cmp::Ordering;
use std::ops::{Add, Div, Mul, Neg, Sub};

// ---------------------------------------------------------------------------
// Error-free transformations
// ---------------------------------------------------------------------------

/// `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly (Knuth's
/// TwoSum, no precondition; exact unless `a + b` overflows).
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// `(s, e)` with `s = fl(a + b)` and `s + e = a + b` exactly, when
/// `|a| ≥ |b|` or `a = 0` (Dekker's FastTwoSum).
pub fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let e = b - (s - a);
    (s, e)
}

/// `(p, e)` with `p = fl(a·b)` and `p + e = a·b` exactly, via one fused
/// multiply-add (exact unless `a·b` overflows or `e` underflows).
pub fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let e = a.mul_add(b, -p);
    (p, e)
}

/// `2^k` as an f64, for `−1022 ≤ k ≤ 1023`.
fn pow2(k: i32) -> f64 {
    debug_assert!((-1022..=1023).contains(&k));
    f64::from_bits(((k + 1023) as u64) << 52)
}

// ---------------------------------------------------------------------------
// Double-double numbers
// ---------------------------------------------------------------------------

/// A double-double number: the exact sum `hi + lo` of two f64, normalized so
/// that `hi = fl(hi + lo)` (`|lo| ≤ ulp(hi)/2`). About 106 significant bits
/// while `lo` is a normal f64. Infinities are `{ hi: ±∞, lo: 0 }`.
///
/// The derived order compares `hi`, then `lo`, which is the numeric order of
/// normalized values.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Dd {
    /// The leading word, `fl(hi + lo)`.
    pub hi: f64,
    /// The trailing word, at most half an ulp of `hi`.
    pub lo: f64,
}

impl Dd {
    /// `0`.
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };
    /// `1`.
    pub const ONE: Dd = Dd { hi: 1.0, lo: 0.0 };
    /// `ln 2` to about `2^-160` relative as a triple of f64 (`ln2 = c0 + c1 +
    /// c2`), from mpmath at 400 bits: `c_i = float(ln 2 − c_0 − … − c_{i−1})`.
    const LN2_3: [f64; 3] = [
        std::f64::consts::LN_2,
        2.3190468138462996e-17,
        5.707708438416212e-34,
    ];
    /// `ln 2` as a double-double (the first two words of `LN2_3`).
    pub const LN2: Dd = Dd {
        hi: Self::LN2_3[0],
        lo: Self::LN2_3[1],
    };

    /// A double-double from a normalized pair (`hi = fl(hi + lo)`; checked in
    /// debug builds).
    pub fn new(hi: f64, lo: f64) -> Dd {
        debug_assert!(
            !hi.is_finite() || hi + lo == hi,
            "Dd::new({hi:e}, {lo:e}) not normalized"
        );
        Dd { hi, lo }
    }

    /// The exact value of an f64.
    pub fn from_f64(x: f64) -> Dd {
        Dd { hi: x, lo: 0.0 }
    }

    /// The exact sum `a + b` of two f64 (via [`two_sum`]).
    pub fn from_sum(a: f64, b: f64) -> Dd {
        let (hi, lo) = two_sum(a, b);
        if hi.is_finite() {
            Dd { hi, lo }
        } else {
            Dd::from_f64(hi)
        }
    }

    /// The exact product `a·b` of two f64 (via [`two_prod`]).
    pub fn from_prod(a: f64, b: f64) -> Dd {
        let (hi, lo) = two_prod(a, b);
        if hi.is_finite() {
            Dd { hi, lo }
        } else {
            Dd::from_f64(hi)
        }
    }

    /// The nearest f64 (`hi + lo`, correctly rounded up to a tie case).
    pub fn to_f64(self) -> f64 {
        self.hi + self.lo
    }

    /// `|self|`.
    pub fn abs(self) -> Dd {
        if self.hi < 0.0 { -self } else { self }
    }

    /// Whether `hi` is finite (then `lo` is too).
    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    /// Whether the value is NaN.
    pub fn is_nan(self) -> bool {
        self.hi.is_nan() || self.lo.is_nan()
    }

    /// Whether the value is `±0`.
    pub fn is_zero(self) -> bool {
        self.hi == 0.0
    }

    /// Numeric comparison (`None` when either is NaN).
    pub fn compare(self, other: Dd) -> Option<Ordering> {
        self.partial_cmp(&other)
    }

    /// `self · 2^k`, exact unless the result over- or underflows.
    pub fn ldexp(self, k: i32) -> Dd {
        let mut r = self;
        let mut k = k;
        while k != 0 {
            let step = k.clamp(-1000, 1000);
            let f = pow2(step);
            r = Dd {
                hi: r.hi * f,
                lo: r.lo * f,
            };
            k -= step;
        }
        if r.hi.is_finite() {
            r
        } else {
            Dd::from_f64(r.hi)
        }
    }

    /// `self · b` for an f64 `b`, relative error below `2u²`.
    pub fn mul_f64(self, b: f64) -> Dd {
        let (p, e) = two_prod(self.hi, b);
        if !p.is_finite() {
            return Dd::from_f64(p);
        }
        let (hi, lo) = fast_two_sum(p, self.lo.mul_add(b, e));
        Dd { hi, lo }
    }

    /// `self / b` for an f64 `b`, relative error below `3u²`.
    pub fn div_f64(self, b: f64) -> Dd {
        self / Dd::from_f64(b)
    }

    /// `self²`.
    pub fn sqr(self) -> Dd {
        self * self
    }
}

impl From<f64> for Dd {
    fn from(x: f64) -> Dd {
        Dd::from_f64(x)
    }
}

impl From<f32> for Dd {
    fn from(x: f32) -> Dd {
        Dd::from_f64(f64::from(x))
    }
}

impl From<Dd> for f64 {
    fn from(x: Dd) -> f64 {
        x.to_f64()
    }
}

/// Negation, exact.
impl Neg for Dd {
    type Output = Dd;
    fn neg(self) -> Dd {
        Dd {
            hi: -self.hi,
            lo: -self.lo,
        }
    }
}

/// Sum, relative error below `3u²` of the exact sum (AccurateDWPlusDW),
/// cancellation included.
impl Add for Dd {
    type Output = Dd;
    fn add(self, b: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, b.hi);
        if !s.is_finite() {
            return Dd::from_f64(s);
        }
        let (t, f) = two_sum(self.lo, b.lo);
        let (s, e) = fast_two_sum(s, e + t);
        let (hi, lo) = fast_two_sum(s, e + f);
        Dd { hi, lo }
    }
}

/// Difference, as `self + (−b)`.
impl Sub for Dd {
    type Output = Dd;
    fn sub(self, b: Dd) -> Dd {
        self + (-b)
    }
}

/// Product, relative error below `5u²` (DWTimesDW with fused multiply-adds).
impl Mul for Dd {
    type Output = Dd;
    fn mul(self, b: Dd) -> Dd {
        let (p, e) = two_prod(self.hi, b.hi);
        if !p.is_finite() {
            return Dd::from_f64(p);
        }
        let t = self.hi.mul_add(b.lo, self.lo * b.hi);
        let (hi, lo) = fast_two_sum(p, e + t);
        Dd { hi, lo }
    }
}

/// Quotient: three correction steps of long division in double-double,
/// relative error a few `u²`.
impl Div for Dd {
    type Output = Dd;
    fn div(self, b: Dd) -> Dd {
        let q1 = self.hi / b.hi;
        if !q1.is_finite() || q1 == 0.0 {
            return Dd::from_f64(q1);
        }
        let r = self - b.mul_f64(q1);
        let q2 = r.hi / b.hi;
        let r = r - b.mul_f64(q2);
        let q3 = r.hi / b.hi;
        let (hi, lo) = fast_two_sum(q1, q2);
        Dd { hi, lo } + Dd::from_f64(q3)
    }
}

// ---------------------------------------------------------------------------
// exp and ln
// ---------------------------------------------------------------------------

/// Taylor terms in [`expm1_small`]: the first omitted term `s^15/15!` is
/// below `2^-120·|s|` for `|s| ≤ 2^-7`.
const TAYLOR_TERMS: u32 = 14;
/// Halvings (then squarings) in [`expm1_small`] for `2^-8 ≤ |r| ≤ 1/2`.
const HALVINGS: i32 = 6;

/// `e^r − 1` for `|r| ≤ 1/2`: `s = r/2^6` (or `s = r` when `|r| < 2^-8`),
/// Horner's scheme `s(1 + s/2(1 + s/3(… (1 + s/14))))`, then six doublings
/// `E(2s) = 2E(s) + E(s)²` in the `e^s − 1` form (no `1 +` rounding). Each
/// step adds a few `u²` relative error and none amplifies it (`|E| ≤ 0.65`):
/// relative error about `20u² ≈ 2^-101.7` in the worst case, measured below
/// `2^-104`.
fn expm1_small(r: Dd) -> Dd {
    debug_assert!(r.hi.abs() <= 0.5 || r.is_nan());
    let j = if r.hi.abs() < 1.0 / 256.0 {
        0
    } else {
        HALVINGS
    };
    let s = r.ldexp(-j);
    let mut t = Dd::ONE;
    for n in (2..=TAYLOR_TERMS).rev() {
        t = Dd::ONE + (s * t).div_f64(f64::from(n));
    }
    let mut em = s * t;
    for _ in 0..j {
        em = em.ldexp(1) + em.sqr();
    }
    em
}

/// `x − k·ln 2` with `ln 2` to `2^-160` (three words): each `k·c_i` for the
/// two leading words is exact by [`two_prod`], `k·c_2` is below `2^-100`
/// and rounded once, and the differences are double-double sums whose
/// result is about `|x − k ln 2|`, so the reduced argument has an absolute
/// error of a few `u²·|x − k ln 2|`.
fn reduce_ln2(x: Dd, k: f64) -> Dd {
    let [c0, c1, c2] = Dd::LN2_3;
    x - Dd::from_prod(k, c0) - Dd::from_prod(k, c1) - Dd::from_f64(k * c2)
}

/// `k·ln 2` in double-double (`|k| ≤ 2^11`), absolute error below
/// `2^-150·|k|` plus the final rounding.
fn k_ln2(k: f64) -> Dd {
    let [c0, c1, c2] = Dd::LN2_3;
    Dd::from_prod(k, c0) + (Dd::from_prod(k, c1) + Dd::from_f64(k * c2))
}

/// `e^x` in double-double.
///
/// `x = k ln2 + r` with `k = round(x/ln 2)` and `|r| ≤ 0.35` (reduction by a
/// three-word `ln 2`, see `reduce_ln2`), `e^r = 1 + expm1(r)` by a Taylor
/// series of `r/64` and six squarings, then the exact scaling by `2^k`.
/// Relative error below `2^-100` (bound: about `24u² ≈ 2^-101.4`; measured
/// below `2^-105` against mpmath) for `−671 ≤ x ≤ 709.78`, where the result
/// and its low word are normal. Below that the low word loses bits (absolute
/// error `2^-1074`); below `−746` the result is `0`, above `709.79` it is
/// `+∞`; `e^(−∞) = 0`, `e^(+∞) = +∞`, NaN gives NaN.
pub fn exp_dd(x: Dd) -> Dd {
    if x.is_nan() {
        return Dd::from_f64(f64::NAN);
    }
    if x.hi > 709.79 {
        return Dd::from_f64(f64::INFINITY);
    }
    if x.hi < -746.0 {
        return Dd::ZERO;
    }
    let k = (x.hi * std::f64::consts::LOG2_E).round();
    let r = reduce_ln2(x, k);
    (Dd::ONE + expm1_small(r)).ldexp(k as i32)
}

/// `e^x − 1` in double-double, relative error below `2^-100` for every `x`
/// with `|x| ≥ 2^-1020` up to `x ≤ 709.78` (no cancellation near 0: the
/// Taylor series of `expm1` is used directly for `|x| < 0.34`), `−1` for
/// `x < −746`.
pub fn expm1_dd(x: Dd) -> Dd {
    if x.hi.abs() < 0.34 {
        expm1_small(x)
    } else {
        exp_dd(x) - Dd::ONE
    }
}

/// `ln(1 + d)` for `−0.3 ≤ d ≤ 0.42` (so `|ln(1 + d)| ≤ 0.36`): two Newton
/// steps `y ← y + ((1 + d)e^(−y) − 1)` from the f64 `ln_1p`, with the
/// correction written as `d + E + d·E`, `E = expm1(−y)`, so that no term is
/// rounded against `1` and a tiny `d` keeps its relative precision. The f64
/// start is good to `2^-52`, one step squares that (already about
/// `2^-104`), the second step is a margin and leaves the rounding error of
/// the correction: a few `u²·|y|`.
fn ln1p_core(d: Dd) -> Dd {
    let mut y = Dd::from_f64(d.to_f64().ln_1p());
    for _ in 0..2 {
        let em = expm1_small(-y);
        let c = (d + em) + d * em;
        y = y + c;
    }
    y
}

/// `ln(1 + d)` in double-double, for `d > −1`: relative error below `2^-100`
/// (bound about `2^-101`, measured below `2^-104`), also for tiny `d` down to
/// the normal f64 range (`d = 1e-300` gives `1e-300` to the last bit). Near
/// `−1` the sum `1 + d` is formed first (exact to `3u²` of itself).
/// `d = −1` gives `−∞`, `d < −1` or NaN gives NaN.
pub fn ln1p_dd(d: Dd) -> Dd {
    if d.is_nan() || d.hi < -1.0 || (d.hi == -1.0 && d.lo < 0.0) {
        return Dd::from_f64(f64::NAN);
    }
    if d.hi >= -0.29 && d.hi <= 0.41 {
        ln1p_core(d)
    } else {
        ln_dd(Dd::ONE + d)
    }
}

/// `(e, f)` with `x = 2^e·f` and `√½ ≤ f.hi < √2` (exact scaling), for a
/// positive finite `x`.
fn split_exponent(x: Dd) -> (i32, Dd) {
    let (mut hi, mut shift) = (x.hi, 0);
    if hi < f64::MIN_POSITIVE {
        hi *= pow2(60);
        shift = 60;
    }
    // hi = m·2^e0 with m in [0.5, 1).
    let mut e = ((hi.to_bits() >> 52) & 0x7ff) as i32 - 1022 - shift;
    let m = f64::from_bits((hi.to_bits() & !(0x7ff << 52)) | (1022 << 52));
    if m < std::f64::consts::FRAC_1_SQRT_2 {
        e -= 1;
    }
    (e, x.ldexp(-e))
}

/// `ln x` in double-double, for `x > 0`.
///
/// `x = 2^e·f` with `√½ ≤ f < √2`, `ln x = e·ln 2 + ln1p(f − 1)` where
/// `f − 1` is exact and `ln1p` is two Newton steps on [`expm1_dd`]'s series
/// from the f64 logarithm (see `ln1p_core`). So `x = 1 + δ` given as a
/// double-double (`Dd { hi: 1.0, lo: δ }`) keeps `δ`'s relative precision:
/// `ln(1 + 2^-60) = 2^-60 − 2^-121 + …` to the last bit. Relative error below
/// `2^-100` for every positive normal `x` (bound about `2^-101`, measured
/// below `2^-104`). `ln 0 = −∞`, `ln(+∞) = +∞`, negative or NaN gives NaN.
pub fn ln_dd(x: Dd) -> Dd {
    if x.is_nan() || x.hi < 0.0 {
        return Dd::from_f64(f64::NAN);
    }
    if x.hi == 0.0 {
        return Dd::from_f64(f64::NEG_INFINITY);
    }
    if x.hi == f64::INFINITY {
        return x;
    }
    let (e, f) = split_exponent(x);
    let y = ln1p_core(f - Dd::ONE);
    if e == 0 { y } else { k_ln2(f64::from(e)) + y }
}

// ---------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------

/// Pairwise sum (error grows with `log2 n`, not `n`).
fn pairwise_sum(v: &[Dd]) -> Dd {
    match v.len() {
        0 => Dd::ZERO,
        1 => v[0],
        n => pairwise_sum(&v[..n / 2]) + pairwise_sum(&v[n / 2..]),
    }
}

/// How a row of shifted logits is classified before the arithmetic.
enum Class {
    /// A NaN somewhere: every output NaN.
    Nan,
    /// `k` entries are `+∞`: the limit shares the mass among them.
    PosInf(usize),
    /// Empty or all `−∞`.
    Empty,
    /// Ordinary: the shifted logits (`≤ 0`, at least one exactly `0`).
    Ok(Vec<Dd>),
}

/// The largest finite entry of `z`, if it has one.
pub fn finite_max(z: &[Dd]) -> Option<Dd> {
    z.iter()
        .copied()
        .filter(|v| v.is_finite())
        .reduce(|a, b| if b > a { b } else { a })
}

/// Classify double-double logits and shift them by their max in
/// double-double (the max entry gives exactly `0`).
fn classify(z: &[Dd]) -> Class {
    if z.iter().any(|v| v.is_nan()) {
        return Class::Nan;
    }
    let k = z.iter().filter(|v| v.hi == f64::INFINITY).count();
    if k > 0 {
        return Class::PosInf(k);
    }
    let Some(m) = finite_max(z) else {
        return Class::Empty;
    };
    Class::Ok(
        z.iter()
            .map(|&v| if v.is_finite() { v - m } else { v })
            .collect(),
    )
}

/// `e^(d_i)` for each shifted logit, and `k`, the count of exact zeros.
fn terms(d: &[Dd]) -> (Vec<Dd>, usize) {
    let e: Vec<Dd> = d.iter().map(|&v| exp_dd(v)).collect();
    (e, d.iter().filter(|v| v.is_zero()).count())
}

/// `ln Σ e^(d_i)` for shifted logits, as `ln k + ln1p(δ/k)`: `k` entries are
/// exactly `0` (the maxima), `δ` is the pairwise sum of the others' `e^(d_i)`
/// (never rounded against `k`, so `δ` down to `1e-300` keeps its relative
/// precision).
fn lse_of_shifted(d: &[Dd]) -> Dd {
    let (e, k) = terms(d);
    lse_of_terms(d, &e, k)
}

/// `ln Σ e^(d_i)` (see [`lse_of_shifted`]) from terms already computed.
fn lse_of_terms(d: &[Dd], e: &[Dd], k: usize) -> Dd {
    let rest: Vec<Dd> = e
        .iter()
        .zip(d)
        .filter(|(_, v)| !v.is_zero())
        .map(|(t, _)| *t)
        .collect();
    let delta = pairwise_sum(&rest);
    let k = k as f64;
    ln_dd(Dd::from_f64(k)) + ln1p_dd(delta.div_f64(k))
}

fn softmax_of_shifted(d: &[Dd]) -> Vec<Dd> {
    let (e, _) = terms(d);
    softmax_of_terms(&e)
}

fn softmax_of_terms(e: &[Dd]) -> Vec<Dd> {
    let s = pairwise_sum(e);
    e.iter().map(|&t| t / s).collect()
}

fn log_softmax_of_shifted(d: &[Dd]) -> Vec<Dd> {
    let l = lse_of_shifted(d);
    d.iter().map(|&v| v - l).collect()
}

/// `x_i − max x` exactly (a difference of two f32 is exact in
/// double-double); `−∞` entries stay `−∞`. `Empty` for an empty row or one
/// with no finite entry.
fn classify_f32(x: &[f32]) -> Class {
    if x.iter().any(|v| v.is_nan()) {
        return Class::Nan;
    }
    let k = x.iter().filter(|&&v| v == f32::INFINITY).count();
    if k > 0 {
        return Class::PosInf(k);
    }
    let Some(m) = x.iter().copied().filter(|v| v.is_finite()).reduce(f32::max) else {
        return Class::Empty;
    };
    let m = f64::from(m);
    Class::Ok(
        x.iter()
            .map(|&v| {
                if v.is_finite() {
                    Dd::from_sum(f64::from(v), -m)
                } else {
                    Dd::from_f64(f64::from(v))
                }
            })
            .collect(),
    )
}

/// The softmax of one classified row of length `n`.
fn softmax_class(c: Class, n: usize, posinf: impl Fn(usize) -> bool) -> Vec<Dd> {
    match c {
        Class::Nan => vec![Dd::from_f64(f64::NAN); n],
        Class::PosInf(k) => (0..n)
            .map(|i| {
                if posinf(i) {
                    Dd::ONE.div_f64(k as f64)
                } else {
                    Dd::ZERO
                }
            })
            .collect(),
        Class::Empty => vec![Dd::ZERO; n],
        Class::Ok(d) => softmax_of_shifted(&d),
    }
}

/// The log-softmax of one classified row of length `n`.
fn log_softmax_class(c: Class, n: usize, posinf: impl Fn(usize) -> bool) -> Vec<Dd> {
    match c {
        Class::Nan => vec![Dd::from_f64(f64::NAN); n],
        Class::PosInf(k) => (0..n)
            .map(|i| {
                if posinf(i) {
                    -ln_dd(Dd::from_f64(k as f64))
                } else {
                    Dd::from_f64(f64::NEG_INFINITY)
                }
            })
            .collect(),
        Class::Empty => vec![Dd::from_f64(f64::NEG_INFINITY); n],
        Class::Ok(d) => log_softmax_of_shifted(&d),
    }
}

/// Softmax of an f32 row: `r_i = e^(x_i − m) / Σ_j e^(x_j − m)`, `m` the
/// max, with `x_i − m` exact, `e^(x_i − m)` by [`exp_dd`] and a pairwise
/// double-double sum. Relative error per entry below about
/// `(log2 n + 10)·2^-104` (entries that underflow f64, `x_i − m < −745`,
/// are `0`; below about `−671` they lose relative precision, see
/// [`exp_dd`]). `−∞` entries give `0`; an empty row gives an empty vector,
/// an all-`−∞` row all zeros. (NaN rows give NaN, `+∞` entries share the
/// mass; not tested.)
pub fn softmax(x: &[f32]) -> Vec<Dd> {
    softmax_class(classify_f32(x), x.len(), |i| x[i] == f32::INFINITY)
}

/// Log-softmax of an f32 row: `(x_i − m) − ln Σ_j e^(x_j − m)` with
/// `x_i − m` exact and the log of the sum as `ln k + ln1p(δ/k)` (`k` maxima,
/// `δ` the sum of the other terms), so the max entry, `−ln(1 + δ)` for a
/// single max, is right to about `2^-100` relative even for `δ = 1e-300`.
/// Absolute error about `2^-104·(|x_i − m| + 1)`, relative error below
/// `2^-100` (the two parts have the same sign). `−∞` entries and all-`−∞`
/// rows give `−∞`.
pub fn log_softmax(x: &[f32]) -> Vec<Dd> {
    log_softmax_class(classify_f32(x), x.len(), |i| x[i] == f32::INFINITY)
}

/// [`softmax`] and [`log_softmax`] of one row, with one `exp_dd` per entry
/// instead of two (the long rows of the chunked-state tests).
pub fn softmax_and_log_softmax(x: &[f32]) -> (Vec<Dd>, Vec<Dd>) {
    match classify_f32(x) {
        Class::Ok(d) => {
            let (e, k) = terms(&d);
            let l = lse_of_terms(&d, &e, k);
            (softmax_of_terms(&e), d.iter().map(|&v| v - l).collect())
        }
        _ => (softmax(x), log_softmax(x)),
    }
}

/// `ln Σ e^(x_i)` of an f32 row, as `m + ln k + ln1p(δ/k)` (see
/// [`log_softmax`]), relative error below about `2^-100` unless `m` and the
/// log of the shifted sum nearly cancel (then absolute error about
/// `2^-104·(|m| + 1)`). `−∞` for an empty or all-`−∞` row.
pub fn logsumexp(x: &[f32]) -> Dd {
    match classify_f32(x) {
        Class::Nan => Dd::from_f64(f64::NAN),
        Class::PosInf(_) => Dd::from_f64(f64::INFINITY),
        Class::Empty => Dd::from_f64(f64::NEG_INFINITY),
        Class::Ok(d) => {
            let m = x
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f32::NEG_INFINITY, f32::max);
            Dd::from(m) + lse_of_shifted(&d)
        }
    }
}

/// Softmax of the scaled row `α·x` (a temperature `1/α`):
/// `e^(α(x_i − m)) / Σ_j e^(α(x_j − m))` with `m` the max of `x` for
/// `α > 0`, the min for `α < 0`, so that `α(x_i − m) ≤ 0`. The difference
/// `x_i − m` is exact and its product with `α` is rounded once in
/// double-double (relative `2^-105`), so each entry's relative error is about
/// `2^-104·(|α(x_i − m)| + log2 n + 10)`. `α = 0` gives the uniform `1/n` on
/// every entry. `−∞` entries give `0` for `α > 0`; for `α < 0` they are
/// `+∞` logits, which share the mass (not tested).
pub fn softmax_scaled(x: &[f32], alpha: f32) -> Vec<Dd> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    if alpha == 0.0 {
        return vec![Dd::ONE.div_f64(n as f64); n];
    }
    if alpha.is_nan() || x.iter().any(|v| v.is_nan()) {
        return vec![Dd::from_f64(f64::NAN); n];
    }
    // The entries whose scaled logit is +∞.
    let top = if alpha > 0.0 {
        f32::INFINITY
    } else {
        f32::NEG_INFINITY
    };
    let k = x.iter().filter(|&&v| v == top).count();
    if k > 0 {
        return softmax_class(Class::PosInf(k), n, |i| x[i] == top);
    }
    let finite = x.iter().copied().filter(|v| v.is_finite());
    let m = if alpha > 0.0 {
        finite.reduce(f32::max)
    } else {
        finite.reduce(f32::min)
    };
    let Some(m) = m else {
        return vec![Dd::ZERO; n];
    };
    let (a, m) = (f64::from(alpha), f64::from(m));
    let d: Vec<Dd> = x
        .iter()
        .map(|&v| {
            if v.is_finite() {
                Dd::from_sum(f64::from(v), -m).mul_f64(a)
            } else {
                Dd::from_f64(f64::NEG_INFINITY)
            }
        })
        .collect();
    softmax_of_shifted(&d)
}

/// `Σ_k p_k` for f64 values, exact as a floating-point expansion
/// (Shewchuk's grow-expansion, non-overlapping components) and then
/// compressed to double-double from the smallest component up: relative
/// error a few `u²` of the exact sum, however much the terms cancel.
fn sum_exact(p: &[f64]) -> Dd {
    let mut expansion: Vec<f64> = Vec::new();
    for &v in p {
        let mut q = v;
        let mut next = Vec::with_capacity(expansion.len() + 1);
        for &c in &expansion {
            let (s, e) = two_sum(q, c);
            if e != 0.0 {
                next.push(e);
            }
            q = s;
        }
        if q != 0.0 {
            next.push(q);
        }
        expansion = next;
    }
    expansion
        .iter()
        .fold(Dd::ZERO, |acc, &c| acc + Dd::from_f64(c))
}

/// The logits `z_i = Σ_k α_k·x_{k,i}` of a linear combination of f32 rows
/// (e.g. classifier-free guidance `(1 − w)·u + w·c`), each product exact in
/// f64 (an f32 times an f32 has at most 48 significant bits) and the sum
/// exact to a few `u²` (see `sum_exact`). A `±∞` product gives a `±∞`
/// logit, both signs give NaN.
///
/// # Panics
/// If the rows differ in length.
pub fn combination(terms: &[(f32, &[f32])]) -> Vec<Dd> {
    let n = terms.first().map_or(0, |t| t.1.len());
    assert!(
        terms.iter().all(|t| t.1.len() == n),
        "combination: rows of different lengths"
    );
    (0..n)
        .map(|i| {
            let p: Vec<f64> = terms
                .iter()
                .map(|&(a, x)| f64::from(a) * f64::from(x[i]))
                .collect();
            let pos = p.contains(&f64::INFINITY);
            let neg = p.contains(&f64::NEG_INFINITY);
            if p.iter().any(|v| v.is_nan()) || (pos && neg) {
                Dd::from_f64(f64::NAN)
            } else if pos {
                Dd::from_f64(f64::INFINITY)
            } else if neg {
                Dd::from_f64(f64::NEG_INFINITY)
            } else {
                sum_exact(&p)
            }
        })
        .collect()
}

/// Softmax of `z = Σ_k α_k·x_k` (see [`combination`]), then
/// [`softmax_dd`]: the huge partial products of e.g.
/// `2·[f32::MAX, 1] + 2·[−f32::MAX, 0]` cancel exactly (`S([0, 2])`).
///
/// # Panics
/// If the rows differ in length.
pub fn softmax_of_combination(terms: &[(f32, &[f32])]) -> Vec<Dd> {
    softmax_dd(&combination(terms))
}

/// Softmax of double-double logits: `z_i − max z` in double-double
/// (relative error `3u²` of the difference, so the entry's relative error
/// grows by about `2^-104·|z_i − m|`), then as [`softmax`]. `−∞` logits give
/// `0`, an all-`−∞` or empty row zeros.
pub fn softmax_dd(z: &[Dd]) -> Vec<Dd> {
    softmax_class(classify(z), z.len(), |i| z[i].hi == f64::INFINITY)
}

/// Log-softmax of double-double logits (see [`softmax_dd`] and
/// [`log_softmax`]).
pub fn log_softmax_dd(z: &[Dd]) -> Vec<Dd> {
    log_softmax_class(classify(z), z.len(), |i| z[i].hi == f64::INFINITY)
}

/// `ln Σ e^(z_i)` of double-double logits (see [`logsumexp`]).
pub fn logsumexp_dd(z: &[Dd]) -> Dd {
    match classify(z) {
        Class::Nan => Dd::from_f64(f64::NAN),
        Class::PosInf(_) => Dd::from_f64(f64::INFINITY),
        Class::Empty => Dd::from_f64(f64::NEG_INFINITY),
        Class::Ok(d) => {
            let m = finite_max(z).expect("an ordinary row has a finite entry");
            m + lse_of_shifted(&d)
        }
    }
}

// ---------------------------------------------------------------------------
// The f32 ULP metric
// ---------------------------------------------------------------------------

/// The ulp of the f32 nearest `r` (round to nearest even): `2^(e−23)` for a
/// normal f32 `2^e·1.f`, `2^-149` for a subnormal or zero one, `2^104` (the
/// ulp of `f32::MAX`) when `r` rounds to `±∞`, NaN for NaN. An `r` just
/// below a power of two that rounds up to it gets the larger ulp.
pub fn ulp_f32(r: f64) -> f64 {
    let f = (r as f32).abs();
    if f.is_nan() {
        f64::NAN
    } else if f.is_infinite() {
        pow2(104)
    } else if f < f32::MIN_POSITIVE {
        pow2(-149)
    } else {
        let e = ((f.to_bits() >> 23) & 0xff) as i32 - 127;
        pow2(e - 23)
    }
}

/// `|y − r| / ulp_f32(r)`, with the difference in double-double (exact to
/// `3u²`, so an error of `1e-30` ulp is still measured). Same infinities
/// give `0`, an infinity against anything else `+∞`; two NaN give `0`, one
/// NaN `+∞` (so `err_ulp(..) <= bound` fails loudly).
pub fn err_ulp(y: f32, r: Dd) -> f64 {
    let y = f64::from(y);
    match (y.is_nan(), r.is_nan()) {
        (true, true) => return 0.0,
        (true, false) | (false, true) => return f64::INFINITY,
        _ => {}
    }
    if !y.is_finite() || !r.is_finite() {
        return if y == r.hi { 0.0 } else { f64::INFINITY };
    }
    let d = (Dd::from_f64(y) - r).abs();
    d.to_f64() / ulp_f32(r.to_f64())
}
