//! Stages: how a row's logits are read ([`Source`]) and how its results
//! are written ([`Sink`]). Every regime (`crate::regime`) takes one of
//! each as type parameters, so a new input form (an element type, a
//! scale, a mask) or output form is one type here, not a variant of every
//! regime.
//!
//! A source yields *keys*, whose maximum `m` is the row's shift, and the
//! exp argument `diff(key, m) ≤ 0` of each key:
//!
//! | source | key | `diff(key, m)` |
//! |---|---|---|
//! | [`F32Rows`] | `x` | `x − m` |
//! | [`ScaledRows`] (`softmax_scaled`) | `x` (α > 0) or `−x` (α < 0) | `\|α\|·(key − m)`, never overflowing while the result is finite |
//!
//! A sink chooses the sum it needs and writes each result from the row
//! constant `c` it derives from that sum:
//!
//! | sink | sum ([`crate::sum`]) | `c` | result |
//! |---|---|---|---|
//! | [`Prob`] (softmax) | [`PlainAcc`] | `1/Σ` | `e^d · c` |
//! | [`Log`] (log-softmax) | [`SplitAcc`] | `ln Σ` | `d − c` |
//!
//! Softmax may park its exps in the output and scale them there later
//! ([`Sink::PARKS`]); log-softmax recomputes `d` from the source.

use crate::isa::{Isa, load};
use crate::sum::{Acc, ExpSum, PlainAcc, SplitAcc};

/// How a row's logits are read. A row is named by a handle
/// ([`Source::Row`]: its address, and whatever else a form needs of it);
/// element `i` of a row is read with [`Source::load`] (a full vector) or
/// [`Source::load_tail`] (the last `rem` elements), which must be valid
/// for the regimes' reads (their callers guarantee it).
pub trait Source: Copy {
    /// The keys are the f32 values in memory, unchanged: a kernel may read
    /// them as memory operands (the AVX2 `asm!` loop).
    const RAW: bool;
    /// The row max prepared for [`Source::diff`].
    type Shift<S: Isa>: Copy;
    /// A row's handle.
    type Row: Copy;

    /// Row `r`'s handle, in a batch of rows `w` long (contiguous rows are
    /// `w` apart: the regimes pass `w`, a constant where they know it).
    fn row(&self, r: usize, w: usize) -> Self::Row;

    /// The handle of the `k`-th row after `row` (cheap for a constant `k`:
    /// the short regime names its group's rows this way).
    fn row_after(&self, row: Self::Row, k: usize, w: usize) -> Self::Row;

    /// Address of element `i` of `row` (for prefetches and the `asm!` loop;
    /// never dereferenced through this method).
    fn addr(&self, row: Self::Row, i: usize) -> *const f32;

    /// The keys of `row`, elements `i..i + F32_LANES`.
    ///
    /// # Safety
    /// Those elements are readable.
    unsafe fn load<S: Isa>(&self, s: S, row: Self::Row, i: usize) -> S::f32s;

    /// The keys of `row`, elements `i..i + rem` (`rem < F32_LANES`), the
    /// other lanes `pad` (a key: `−∞` or `+∞`).
    ///
    /// # Safety
    /// Those `rem` elements are readable.
    unsafe fn load_tail<S: Isa>(
        &self,
        s: S,
        row: Self::Row,
        i: usize,
        rem: usize,
        pad: f32,
    ) -> S::f32s;

    /// One key, for the scalar special-value paths.
    ///
    /// # Safety
    /// Element `i` of `row` is readable.
    unsafe fn key(&self, row: Self::Row, i: usize) -> f32;

    /// `m` (the row's max key, finite, in every lane) prepared for `diff`.
    fn shift<S: Isa>(&self, s: S, m: S::f32s) -> Self::Shift<S>;

    /// The exp argument of `key`: `≤ 0` for `key ≤ m`, exactly 0 at `m`.
    fn diff<S: Isa>(&self, s: S, key: S::f32s, sh: Self::Shift<S>) -> S::f32s;

    /// `−diff`, rounded the same way (so the two give bit-identical exps).
    fn neg_diff<S: Isa>(&self, s: S, key: S::f32s, sh: Self::Shift<S>) -> S::f32s;

    /// [`Source::diff`] of one key against the finite max `m`.
    fn diff1(&self, key: f32, m: f32) -> f32;

    /// `s` with `diff(key, m) ≈ s·(key − m)`: what a sum against one max
    /// is rescaled by, `e^(s·(m_old − m_new))`, when the max grows (the
    /// two-pass regime's running max). 1 unless the source scales.
    fn key_scale(&self) -> f64 {
        1.0
    }

    /// The max itself, for [`Source::RAW`] sources (whose shift is the
    /// max); `None` for the others.
    fn raw_max<S: Isa>(sh: Self::Shift<S>) -> Option<S::f32s> {
        let _ = sh;
        None
    }
}

/// Plain f32 rows, contiguous from `p`: the keys are the values, `diff =
/// x − m`.
#[derive(Clone, Copy)]
pub struct F32Rows {
    p: *const f32,
}

impl F32Rows {
    /// Contiguous rows from `p`.
    pub fn new(p: *const f32) -> Self {
        F32Rows { p }
    }
}

impl Source for F32Rows {
    const RAW: bool = true;
    type Shift<S: Isa> = S::f32s;
    type Row = *const f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *const f32 {
        self.p.wrapping_add(r * w)
    }
    #[inline(always)]
    fn row_after(&self, row: *const f32, k: usize, w: usize) -> *const f32 {
        row.wrapping_add(k * w)
    }
    #[inline(always)]
    fn addr(&self, row: *const f32, i: usize) -> *const f32 {
        row.wrapping_add(i)
    }
    #[inline(always)]
    unsafe fn load<S: Isa>(&self, _: S, row: *const f32, i: usize) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { load::<S>(row.add(i)) }
    }
    #[inline(always)]
    unsafe fn load_tail<S: Isa>(
        &self,
        s: S,
        row: *const f32,
        i: usize,
        rem: usize,
        pad: f32,
    ) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { s.load_tail(row.add(i), rem, pad) }
    }
    #[inline(always)]
    unsafe fn key(&self, row: *const f32, i: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { *row.add(i) }
    }
    #[inline(always)]
    fn shift<S: Isa>(&self, _: S, m: S::f32s) -> S::f32s {
        m
    }
    #[inline(always)]
    fn diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        s.sub_f32s(key, m)
    }
    #[inline(always)]
    fn neg_diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        s.sub_f32s(m, key)
    }
    #[inline(always)]
    fn diff1(&self, key: f32, m: f32) -> f32 {
        key - m
    }
    #[inline(always)]
    fn raw_max<S: Isa>(m: S::f32s) -> Option<S::f32s> {
        Some(m)
    }
}

/// `softmax(α·x)` for a finite, nonzero `α`: keys `x` for `α > 0` and
/// `−x` for `α < 0` (the softmin, stable via the min), `diff = |α|·(key −
/// m)`. Computed as `fl(h·key − h·m) · (|α|/h)` with `h = ½` when `|α| <
/// 1`: `h·key` and `h·m` are exact, so this rounds like `fl(key − m)·|α|`
/// (two roundings) but cannot overflow where `key − m` would while
/// `α·(key − m)` is moderate (`[3e38, −3e38]` at `α = 1e-38`); `h = 1`
/// otherwise (then `key − m` overflows only where the result does).
#[derive(Clone, Copy)]
pub struct ScaledRows {
    p: *const f32,
    sign: u32,
    h: f32,
    a: f32,
}

impl ScaledRows {
    /// Contiguous rows from `p`, scaled by `alpha` (finite, nonzero).
    pub fn new(p: *const f32, alpha: f32) -> Self {
        let h = if alpha.abs() < 1.0 { 0.5 } else { 1.0 };
        ScaledRows {
            p,
            sign: alpha.to_bits() & 0x8000_0000,
            h,
            a: alpha.abs() / h,
        }
    }
}

/// [`ScaledRows`]' prepared max: `−h·m` and the scale `|α|/h`.
#[derive(Clone, Copy)]
pub struct ScaledShift<S: Isa> {
    hm: S::f32s,
    a: S::f32s,
}

impl Source for ScaledRows {
    const RAW: bool = false;
    type Shift<S: Isa> = ScaledShift<S>;
    type Row = *const f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *const f32 {
        self.p.wrapping_add(r * w)
    }
    #[inline(always)]
    fn row_after(&self, row: *const f32, k: usize, w: usize) -> *const f32 {
        row.wrapping_add(k * w)
    }
    #[inline(always)]
    fn addr(&self, row: *const f32, i: usize) -> *const f32 {
        row.wrapping_add(i)
    }
    #[inline(always)]
    unsafe fn load<S: Isa>(&self, s: S, row: *const f32, i: usize) -> S::f32s {
        // SAFETY: the caller's contract.
        let v = unsafe { load::<S>(row.add(i)) };
        s.transmute_f32s_u32s(s.xor_u32s(s.transmute_u32s_f32s(v), s.splat_u32s(self.sign)))
    }
    #[inline(always)]
    unsafe fn load_tail<S: Isa>(
        &self,
        s: S,
        row: *const f32,
        i: usize,
        rem: usize,
        pad: f32,
    ) -> S::f32s {
        // The pad is a key: flip it with the values.
        let raw_pad = f32::from_bits(pad.to_bits() ^ self.sign);
        // SAFETY: the caller's contract.
        let v = unsafe { s.load_tail(row.add(i), rem, raw_pad) };
        s.transmute_f32s_u32s(s.xor_u32s(s.transmute_u32s_f32s(v), s.splat_u32s(self.sign)))
    }
    #[inline(always)]
    unsafe fn key(&self, row: *const f32, i: usize) -> f32 {
        // SAFETY: the caller's contract.
        f32::from_bits(unsafe { *row.add(i) }.to_bits() ^ self.sign)
    }
    #[inline(always)]
    fn shift<S: Isa>(&self, s: S, m: S::f32s) -> ScaledShift<S> {
        ScaledShift {
            hm: s.mul_f32s(m, s.splat_f32s(-self.h)),
            a: s.splat_f32s(self.a),
        }
    }
    #[inline(always)]
    fn diff<S: Isa>(&self, s: S, key: S::f32s, sh: ScaledShift<S>) -> S::f32s {
        let half = s.mul_add_e_f32s(s.splat_f32s(self.h), key, sh.hm);
        s.mul_f32s(half, sh.a)
    }
    #[inline(always)]
    fn neg_diff<S: Isa>(&self, s: S, key: S::f32s, sh: ScaledShift<S>) -> S::f32s {
        let half = s.mul_add_e_f32s(s.splat_f32s(-self.h), key, s.neg_f32s(sh.hm));
        s.mul_f32s(half, sh.a)
    }
    #[inline(always)]
    fn diff1(&self, key: f32, m: f32) -> f32 {
        (self.h * key + -(self.h * m)) * self.a
    }
    #[inline(always)]
    fn key_scale(&self) -> f64 {
        // |α| = h·a exactly.
        self.h as f64 * self.a as f64
    }
}

/// How a row's results are written, and from which sum.
pub trait Sink: Copy {
    /// The sum this sink's row constant comes from.
    type Acc<S: Isa>: Acc<S>;
    /// Whether the exps may be parked in the output during the sum sweep
    /// and turned into results there ([`Sink::from_parked`]).
    const PARKS: bool;
    /// Whether the results are `e^d · c` in f32 from the plain sum, so
    /// that a hand-written loop ([`Isa::late_pairs`]) may compute them.
    const EXP_TIMES_C: bool;
    /// An output row's handle.
    type Row: Copy;

    /// Output row `r`'s handle, in a batch of rows `w` long.
    fn row(&self, r: usize, w: usize) -> Self::Row;

    /// The handle of the `k`-th row after `row`.
    fn row_after(&self, row: Self::Row, k: usize, w: usize) -> Self::Row;

    /// Address of element `i` of an output row.
    fn out(&self, row: Self::Row, i: usize) -> *mut f32;

    /// The row constant from the row's sum (NaN for a NaN sum, which
    /// makes every result of the row NaN).
    fn constant(sum: ExpSum) -> f32;

    /// The result from a parked exp.
    fn from_parked<S: Isa>(s: S, e: S::f32s, c: S::f32s) -> S::f32s;

    /// The result from a key, its exp recomputed where needed.
    fn from_key<S: Isa, Src: Source, const IN_RANGE: bool>(
        s: S,
        src: &Src,
        key: S::f32s,
        sh: Src::Shift<S>,
        c: S::f32s,
    ) -> S::f32s;

    /// The row constants of `R` short rows of `N` vectors held in
    /// registers, from their terms (padded lanes hold terms of 0), in
    /// every lane: the form [`Sink::from_short`] takes; and whether any of
    /// them is NaN (lane 0 of that row's constant tells which).
    fn short_constants<S: Isa, const N: usize, const R: usize>(
        s: S,
        t: &[[Term<S, Self>; N]; R],
    ) -> ([S::f32s; R], bool);

    /// A short row's result from its key, term and [`Sink::short_constants`].
    fn from_short<S: Isa, Src: Source, const N: usize>(
        s: S,
        src: &Src,
        key: S::f32s,
        sh: Src::Shift<S>,
        t: Term<S, Self>,
        c: S::f32s,
    ) -> S::f32s;

    /// The special-value limits for a row whose max is not finite, with `k` keys
    /// equal to it: `(share, nothing)`, what each of the `k` keys gets when
    /// the max is `+∞`, and what every other key gets (all of them when
    /// the row is fully masked).
    fn limits(k: f64) -> (f32, f32);
}

/// The term type of a sink's sum.
pub type Term<S, Snk> = <<Snk as Sink>::Acc<S> as Acc<S>>::Term;

/// Softmax's results, f32: `e^d / Σ`.
#[derive(Clone, Copy)]
pub struct Prob {
    p: *mut f32,
}

impl Prob {
    /// Contiguous rows from `p`.
    pub fn new(p: *mut f32) -> Self {
        Prob { p }
    }
}

impl Sink for Prob {
    type Acc<S: Isa> = PlainAcc<S>;
    const PARKS: bool = true;
    const EXP_TIMES_C: bool = true;
    type Row = *mut f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *mut f32 {
        self.p.wrapping_add(r * w)
    }
    #[inline(always)]
    fn row_after(&self, row: *mut f32, k: usize, w: usize) -> *mut f32 {
        row.wrapping_add(k * w)
    }
    #[inline(always)]
    fn out(&self, row: *mut f32, i: usize) -> *mut f32 {
        row.wrapping_add(i)
    }
    #[inline(always)]
    fn constant(sum: ExpSum) -> f32 {
        (1.0 / sum.total()) as f32
    }
    #[inline(always)]
    fn from_parked<S: Isa>(s: S, e: S::f32s, c: S::f32s) -> S::f32s {
        s.mul_f32s(e, c)
    }
    #[inline(always)]
    fn from_key<S: Isa, Src: Source, const IN_RANGE: bool>(
        s: S,
        src: &Src,
        key: S::f32s,
        sh: Src::Shift<S>,
        c: S::f32s,
    ) -> S::f32s {
        s.mul_f32s(s.exp_diff::<Src, IN_RANGE>(src, key, sh), c)
    }
    /// `1/Σ` from the sum in f64 ([`Isa::recip_sums`]): the max's exact 1
    /// never absorbs the small terms, and the constant rounds once.
    #[inline(always)]
    fn short_constants<S: Isa, const N: usize, const R: usize>(
        s: S,
        e: &[[S::f32s; N]; R],
    ) -> ([S::f32s; R], bool) {
        s.recip_sums::<N, R>(e)
    }
    #[inline(always)]
    fn from_short<S: Isa, Src: Source, const N: usize>(
        s: S,
        _: &Src,
        _: S::f32s,
        _: Src::Shift<S>,
        e: S::f32s,
        c: S::f32s,
    ) -> S::f32s {
        s.mul_f32s(e, c)
    }
    #[inline(always)]
    fn limits(k: f64) -> (f32, f32) {
        ((1.0 / k) as f32, 0.0)
    }
}

/// Log-softmax's results, f32: `d − ln Σ`.
#[derive(Clone, Copy)]
pub struct Log {
    p: *mut f32,
}

impl Log {
    /// Contiguous rows from `p`.
    pub fn new(p: *mut f32) -> Self {
        Log { p }
    }
}

impl Sink for Log {
    type Acc<S: Isa> = SplitAcc<S>;
    const PARKS: bool = false;
    const EXP_TIMES_C: bool = false;
    type Row = *mut f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *mut f32 {
        self.p.wrapping_add(r * w)
    }
    #[inline(always)]
    fn row_after(&self, row: *mut f32, k: usize, w: usize) -> *mut f32 {
        row.wrapping_add(k * w)
    }
    #[inline(always)]
    fn out(&self, row: *mut f32, i: usize) -> *mut f32 {
        row.wrapping_add(i)
    }
    #[inline(always)]
    fn constant(sum: ExpSum) -> f32 {
        sum.ln() as f32
    }
    #[inline(always)]
    fn from_parked<S: Isa>(_: S, e: S::f32s, _: S::f32s) -> S::f32s {
        // Never called: `PARKS` is false.
        e
    }
    #[inline(always)]
    fn from_key<S: Isa, Src: Source, const IN_RANGE: bool>(
        s: S,
        src: &Src,
        key: S::f32s,
        sh: Src::Shift<S>,
        c: S::f32s,
    ) -> S::f32s {
        s.sub_f32s(src.diff(s, key, sh), c)
    }
    /// Each row's [`SplitAcc`] folded into f64 and its `ln`, in scalar:
    /// the result at the max entry is `−ln(1 + δ/k)`, which needs `δ` to
    /// its last bits.
    #[inline(always)]
    fn short_constants<S: Isa, const N: usize, const R: usize>(
        s: S,
        t: &[[Term<S, Self>; N]; R],
    ) -> ([S::f32s; R], bool) {
        let (mut c, mut nan) = ([s.splat_f32s(0.0); R], false);
        for r in 0..R {
            let mut acc = SplitAcc::new(s);
            for &t in &t[r] {
                acc.add::<false>(s, t);
            }
            let cr = Self::constant(acc.fold::<false>(s));
            nan |= cr.is_nan();
            c[r] = s.splat_f32s(cr);
        }
        (c, nan)
    }
    #[inline(always)]
    fn from_short<S: Isa, Src: Source, const N: usize>(
        s: S,
        src: &Src,
        key: S::f32s,
        sh: Src::Shift<S>,
        _: Term<S, Self>,
        c: S::f32s,
    ) -> S::f32s {
        s.sub_f32s(src.diff(s, key, sh), c)
    }
    #[inline(always)]
    fn limits(k: f64) -> (f32, f32) {
        (-libm::log(k) as f32, f32::NEG_INFINITY)
    }
}
