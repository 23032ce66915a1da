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
//! A sink's results go to an [`Output`], which owns every store: plain,
//! tail, non-temporal, one element ([`F32Out`]: f32 rows; [`Affine`]:
//! another output's results scaled and offset, cross-entropy's gradient).
//! A new output type is a new `Output`, and no regime changes.
//!
//! Softmax may park its exps and scale them later ([`Sink::PARKS`]): in
//! the output where it is f32 ([`Output::f32_row`]), in a stack row of
//! the streaming regime otherwise; log-softmax recomputes `d` from the
//! source.
//!
//! The terms' exps are taken here ([`Source::exp`], `term`): the
//! instruction set says which form of the exp it prefers
//! ([`Isa::EXP_OF_NEGATED`]) and the accumulator which terms it keeps
//! ([`Acc::KEEPS_TINY`]); neither knows the stages.

use crate::exp::EXP_LO;
use crate::isa::{Isa, elems_before_aligned, load, store};
use crate::sum::{Acc, ExpSum, PlainAcc, SplitAcc};

/// How a row's logits are read. A row is named by a handle
/// ([`Source::Row`]: its address, and whatever else a form needs of it);
/// element `i` of a row is read with [`Source::load`] (a full vector) or
/// [`Source::load_tail`] (the last `rem` elements), which must be valid
/// for the regimes' reads (their callers guarantee it).
pub trait Source: Copy {
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

    /// Asks for the cache line holding element `i` of `row` (a hint: any
    /// `i`, never faults).
    fn prefetch<S: Isa>(&self, s: S, row: Self::Row, i: usize);

    /// `row` as plain f32 keys in memory, where the keys are the stored
    /// values unchanged (the shift is then the max itself,
    /// [`Source::raw_max`]): hand-written loops read them as memory
    /// operands (the AVX2 `asm!` loop). `None` for every other source.
    fn raw_row(&self, row: Self::Row) -> Option<*const f32> {
        let _ = row;
        None
    }

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

    /// The max itself, where [`Source::raw_row`] gives rows (whose shift
    /// is the max); `None` for the others.
    fn raw_max<S: Isa>(sh: Self::Shift<S>) -> Option<S::f32s> {
        let _ = sh;
        None
    }

    /// `e^diff(key, m)`, in the form the instruction set prefers: the exp
    /// of `diff`, or [`Isa::exp_neg_nonpos`] of [`Source::neg_diff`]
    /// (the same bits). `IN_RANGE`: every argument is at least `EXP_LO`.
    #[inline(always)]
    fn exp<S: Isa, const IN_RANGE: bool>(&self, s: S, key: S::f32s, sh: Self::Shift<S>) -> S::f32s {
        if S::EXP_OF_NEGATED {
            s.exp_neg_nonpos::<IN_RANGE>(self.neg_diff(s, key, sh))
        } else {
            s.exp_nonpos::<IN_RANGE>(self.diff(s, key, sh))
        }
    }

    /// Whether every exp argument of a row whose key range is `(lo, m)` is
    /// at least `EXP_LO`, so its exps need no flush (rounding is monotonic,
    /// so `diff(key, m) ≥ diff(lo, m)` for every key). False for a `−∞` or
    /// NaN minimum, and where the minimum is not tracked.
    #[inline(always)]
    fn in_exp_range(&self, lo: f32, m: f32) -> bool {
        self.diff1(lo, m) >= EXP_LO
    }
}

/// The sum term of `key` for accumulator `A`: [`Isa::exp_tiny`]'s scaled
/// tiny terms where `A` keeps them and the row is not in the exp's range,
/// [`Source::exp`] otherwise.
#[inline(always)]
pub(crate) fn term<S: Isa, Src: Source, A: Acc<S>, const IN_RANGE: bool>(
    s: S,
    src: &Src,
    key: S::f32s,
    sh: Src::Shift<S>,
) -> A::Term {
    if A::KEEPS_TINY && !IN_RANGE {
        let (e, tiny) = s.exp_tiny(src.diff(s, key, sh));
        A::from_tiny(s, e, tiny)
    } else {
        A::from_exp(s, src.exp::<S, IN_RANGE>(s, key, sh))
    }
}

/// Plain f32 rows from `p`, contiguous or `stride` elements apart: the
/// keys are the values, `diff = x − m`.
#[derive(Clone, Copy)]
pub struct F32Rows {
    p: *const f32,
    stride: usize,
}

impl F32Rows {
    /// Contiguous rows from `p`.
    pub fn new(p: *const f32) -> Self {
        F32Rows { p, stride: 0 }
    }

    /// Rows from `p`, each `stride` elements after the one before (`stride`
    /// at least the row length; the elements between rows are never read).
    pub fn strided(p: *const f32, stride: usize) -> Self {
        F32Rows { p, stride }
    }
}

/// The distance between rows of `w` whose stride is `stride` (0:
/// contiguous, `w`; a constant where the regime's `w` is one).
#[inline(always)]
fn pitch(stride: usize, w: usize) -> usize {
    if stride == 0 { w } else { stride }
}

impl Source for F32Rows {
    type Shift<S: Isa> = S::f32s;
    type Row = *const f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *const f32 {
        self.p.wrapping_add(r * pitch(self.stride, w))
    }
    #[inline(always)]
    fn row_after(&self, row: *const f32, k: usize, w: usize) -> *const f32 {
        row.wrapping_add(k * pitch(self.stride, w))
    }
    #[inline(always)]
    fn prefetch<S: Isa>(&self, s: S, row: *const f32, i: usize) {
        s.prefetch(row.wrapping_add(i));
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
    fn raw_row(&self, row: *const f32) -> Option<*const f32> {
        Some(row)
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
    fn prefetch<S: Isa>(&self, s: S, row: *const f32, i: usize) {
        s.prefetch(row.wrapping_add(i));
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

/// Where a sink's results go: every store of a result (a full vector,
/// a tail, a non-temporal vector, one element) and the hints for the
/// lines they will write. A row is named by a handle, as a source's.
pub trait Output: Copy {
    /// Whether the output is f32 memory ([`Output::f32_row`] is `Some`).
    const F32: bool;
    /// An output row's handle.
    type Row: Copy;

    /// Output row `r`'s handle, in a batch of rows `w` long.
    fn row(&self, r: usize, w: usize) -> Self::Row;

    /// The handle of the `k`-th row after `row`.
    fn row_after(&self, row: Self::Row, k: usize, w: usize) -> Self::Row;

    /// Stores `v` as the results of elements `i..i + F32_LANES` of `row`.
    ///
    /// # Safety
    /// Those elements writable.
    unsafe fn store<S: Isa>(&self, s: S, row: Self::Row, i: usize, v: S::f32s);

    /// Stores the first `rem < F32_LANES` lanes of `v` as elements `i..i +
    /// rem` of `row`.
    ///
    /// # Safety
    /// Those elements writable.
    unsafe fn store_tail<S: Isa>(&self, s: S, row: Self::Row, i: usize, rem: usize, v: S::f32s);

    /// [`Output::store`], non-temporally where the instruction set has
    /// such stores ([`Isa::HAS_STREAM`]; the caller fences,
    /// [`Isa::stream_fence`]).
    ///
    /// # Safety
    /// As [`Output::store`], and element `i` at or after
    /// [`Output::stream_head`] of the row by a whole number of vectors.
    unsafe fn store_stream<S: Isa>(&self, s: S, row: Self::Row, i: usize, v: S::f32s);

    /// How many of the `n` elements from `i` come before the first one
    /// that [`Output::store_stream`] may store (an aligned address), at
    /// most `n`.
    fn stream_head<S: Isa>(&self, row: Self::Row, i: usize, n: usize) -> usize;

    /// Stores `v` as element `i` of `row`.
    ///
    /// # Safety
    /// That element writable.
    unsafe fn store1(&self, row: Self::Row, i: usize, v: f32);

    /// Asks for the line that element `i` of `row` is stored to, in a
    /// writable state (a hint: any `i`, never faults).
    fn prefetch_w<S: Isa>(&self, s: S, row: Self::Row, i: usize);

    /// `row` as f32 memory, where the output is f32 ([`Output::F32`]): the
    /// exps may be parked there, and hand-written loops may store to it.
    /// `None` for other element types.
    fn f32_row(&self, row: Self::Row) -> Option<*mut f32>;
}

/// f32 results, rows from `p`, contiguous or `stride` elements apart.
#[derive(Clone, Copy)]
pub struct F32Out {
    p: *mut f32,
    stride: usize,
}

impl F32Out {
    /// Contiguous rows from `p`.
    pub fn new(p: *mut f32) -> Self {
        F32Out { p, stride: 0 }
    }

    /// Rows from `p`, each `stride` elements after the one before (`stride`
    /// at least the row length; the elements between rows are never
    /// written).
    pub fn strided(p: *mut f32, stride: usize) -> Self {
        F32Out { p, stride }
    }
}

impl Output for F32Out {
    const F32: bool = true;
    type Row = *mut f32;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> *mut f32 {
        self.p.wrapping_add(r * pitch(self.stride, w))
    }
    #[inline(always)]
    fn row_after(&self, row: *mut f32, k: usize, w: usize) -> *mut f32 {
        row.wrapping_add(k * pitch(self.stride, w))
    }
    #[inline(always)]
    unsafe fn store<S: Isa>(&self, _: S, row: *mut f32, i: usize, v: S::f32s) {
        // SAFETY: the caller's contract.
        unsafe { store::<S>(row.add(i), v) }
    }
    #[inline(always)]
    unsafe fn store_tail<S: Isa>(&self, s: S, row: *mut f32, i: usize, rem: usize, v: S::f32s) {
        // SAFETY: the caller's contract.
        unsafe { s.store_tail(row.add(i), rem, v) }
    }
    #[inline(always)]
    unsafe fn store_stream<S: Isa>(&self, s: S, row: *mut f32, i: usize, v: S::f32s) {
        // SAFETY: the caller's contract (an aligned address, see
        // `stream_head`).
        unsafe { s.store_stream(row.add(i), v) }
    }
    #[inline(always)]
    fn stream_head<S: Isa>(&self, row: *mut f32, i: usize, n: usize) -> usize {
        elems_before_aligned::<S, f32>(row.wrapping_add(i), n)
    }
    #[inline(always)]
    unsafe fn store1(&self, row: *mut f32, i: usize, v: f32) {
        // SAFETY: the caller's contract.
        unsafe { *row.add(i) = v }
    }
    #[inline(always)]
    fn prefetch_w<S: Isa>(&self, s: S, row: *mut f32, i: usize) {
        s.prefetch_w(row.wrapping_add(i));
    }
    #[inline(always)]
    fn f32_row(&self, row: *mut f32) -> Option<*mut f32> {
        Some(row)
    }
}

/// Another output's results mapped by `v ↦ scale·v + offset`, one fused
/// multiply-add per element inside the store: cross-entropy's gradient
/// `g·(p − q)` written by softmax's output pass as `g·p − g·ε/N` (the
/// target entry fixed up afterwards), with no second pass over the rows.
/// Not f32 memory as far as the regimes know ([`Output::F32`] false), so
/// no exp is ever parked in it; only the output pass of a finished state
/// (`Kernel::softmax_affine_piece`) writes through it.
#[derive(Clone, Copy)]
pub struct Affine<O: Output> {
    out: O,
    scale: f32,
    offset: f32,
}

impl<O: Output> Affine<O> {
    /// `out` receiving `scale·v + offset` for each result `v`.
    pub fn new(out: O, scale: f32, offset: f32) -> Self {
        Affine { out, scale, offset }
    }

    /// `scale·v + offset`, rounded once.
    #[inline(always)]
    fn map<S: Isa>(&self, s: S, v: S::f32s) -> S::f32s {
        s.mul_add_f32s(v, s.splat_f32s(self.scale), s.splat_f32s(self.offset))
    }
}

impl<O: Output> Output for Affine<O> {
    const F32: bool = false;
    type Row = O::Row;

    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> O::Row {
        self.out.row(r, w)
    }
    #[inline(always)]
    fn row_after(&self, row: O::Row, k: usize, w: usize) -> O::Row {
        self.out.row_after(row, k, w)
    }
    #[inline(always)]
    unsafe fn store<S: Isa>(&self, s: S, row: O::Row, i: usize, v: S::f32s) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.out.store(s, row, i, self.map(s, v)) }
    }
    #[inline(always)]
    unsafe fn store_tail<S: Isa>(&self, s: S, row: O::Row, i: usize, rem: usize, v: S::f32s) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.out.store_tail(s, row, i, rem, self.map(s, v)) }
    }
    #[inline(always)]
    unsafe fn store_stream<S: Isa>(&self, s: S, row: O::Row, i: usize, v: S::f32s) {
        // SAFETY: the caller's contract, passed on.
        unsafe { self.out.store_stream(s, row, i, self.map(s, v)) }
    }
    #[inline(always)]
    fn stream_head<S: Isa>(&self, row: O::Row, i: usize, n: usize) -> usize {
        self.out.stream_head::<S>(row, i, n)
    }
    #[inline(always)]
    unsafe fn store1(&self, row: O::Row, i: usize, v: f32) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            self.out
                .store1(row, i, libm::fmaf(v, self.scale, self.offset))
        }
    }
    #[inline(always)]
    fn prefetch_w<S: Isa>(&self, s: S, row: O::Row, i: usize) {
        self.out.prefetch_w(s, row, i);
    }
    #[inline(always)]
    fn f32_row(&self, _: O::Row) -> Option<*mut f32> {
        None
    }
}

/// How a row's results are computed, from which sum, and where they go
/// (its [`Output`], whose stores and row handles it passes on).
pub trait Sink: Copy {
    /// The sum this sink's row constant comes from.
    type Acc<S: Isa>: Acc<S>;
    /// Whether each result is a function of its exp alone
    /// ([`Sink::from_parked`]), so that the exps may be parked during the
    /// sum sweep: in the output where it is f32, otherwise where a regime
    /// has room (the streaming regime's stack row).
    const PARKS: bool;
    /// Whether the results are `e^d · c` in f32 from the plain sum, so
    /// that a hand-written loop ([`Isa::late_pairs`]) may compute them.
    const EXP_TIMES_C: bool;
    /// Whether the exps are parked in the output itself ([`Sink::PARKS`]
    /// and an f32 output, [`Output::f32_row`]).
    const PARKS_IN_OUTPUT: bool = Self::PARKS && Self::Out::F32;
    /// Where the results go.
    type Out: Output<Row = Self::Row>;
    /// An output row's handle (the output's).
    type Row: Copy;

    /// The sink writing its results to `out`.
    fn to(out: Self::Out) -> Self;

    /// The output.
    fn output(&self) -> &Self::Out;

    /// Output row `r`'s handle, in a batch of rows `w` long.
    #[inline(always)]
    fn row(&self, r: usize, w: usize) -> Self::Row {
        self.output().row(r, w)
    }

    /// The handle of the `k`-th row after `row`.
    #[inline(always)]
    fn row_after(&self, row: Self::Row, k: usize, w: usize) -> Self::Row {
        self.output().row_after(row, k, w)
    }

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

/// Softmax's results, `e^d / Σ`, to output `O`.
#[derive(Clone, Copy)]
pub struct Probs<O: Output> {
    out: O,
}

/// Softmax's results to f32 rows.
pub type Prob = Probs<F32Out>;

impl Prob {
    /// Contiguous f32 rows from `p`.
    pub fn new(p: *mut f32) -> Self {
        Probs::to(F32Out::new(p))
    }
}

impl<O: Output> Sink for Probs<O> {
    type Acc<S: Isa> = PlainAcc<S>;
    const PARKS: bool = true;
    const EXP_TIMES_C: bool = true;
    type Out = O;
    type Row = O::Row;

    #[inline(always)]
    fn to(out: O) -> Self {
        Probs { out }
    }
    #[inline(always)]
    fn output(&self) -> &O {
        &self.out
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
        s.mul_f32s(src.exp::<S, IN_RANGE>(s, key, sh), c)
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

/// Log-softmax's results, `d − ln Σ`, to output `O`.
#[derive(Clone, Copy)]
pub struct LogProbs<O: Output> {
    out: O,
}

/// Log-softmax's results to f32 rows.
pub type Log = LogProbs<F32Out>;

impl Log {
    /// Contiguous f32 rows from `p`.
    pub fn new(p: *mut f32) -> Self {
        LogProbs::to(F32Out::new(p))
    }
}

impl<O: Output> Sink for LogProbs<O> {
    type Acc<S: Isa> = SplitAcc<S>;
    const PARKS: bool = false;
    const EXP_TIMES_C: bool = false;
    type Out = O;
    type Row = O::Row;

    #[inline(always)]
    fn to(out: O) -> Self {
        LogProbs { out }
    }
    #[inline(always)]
    fn output(&self) -> &O {
        &self.out
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
