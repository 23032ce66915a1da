//! [`Kernel`], the safe handle of one instruction set, and its
//! softmax-shaped functions: each builds a [`Source`] and a [`Sink`] for
//! its slices and runs the regime [`plan`] picks, in that regime's own
//! target-feature function.

use crate::fpenv::DefaultEnv;
use crate::isa::{Isa, Kern};
use crate::keys::ScaledKeys;
use crate::plan::{IsaShape, Regime, STREAM_MIN, plan};
use crate::regime::two_pass::{self, CHUNK, RowState};
use crate::regime::{pipeline, short, special_piece};
use crate::stage::{Affine, F32Out, F32Rows, Log, Prob, Probs, ScaledRows, Sink, Source};
use crate::sum::ExpSum;

/// The whole kernel family on one instruction set, selected by the token
/// `S` (pulp's `Scalar`, `V3`, `V4`, `Neon`, or a portable `ScalarNNNb`).
/// Holding an `S` proves the CPU supports it, so every method is safe.
/// Methods panic on mismatched lengths; the `simd-softmax` crate checks
/// its arguments first, so through it they never do.
///
/// ```
/// let k = simd_softmax_kernels::portable::scalar();
/// let mut y = [0.0f32; 3];
/// k.softmax(&[1.0, 2.0, 3.0], &mut y);
/// assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Kernel<S: Isa> {
    simd: S,
}

impl<S: Isa> Kernel<S> {
    /// Wraps a SIMD token; the token itself is the proof of CPU support.
    #[inline]
    pub const fn from_simd(simd: S) -> Self {
        Self { simd }
    }

    /// The SIMD token this kernel runs on.
    #[inline]
    pub fn simd(self) -> S {
        self.simd
    }

    /// f32 lanes per vector.
    pub const LANES: usize = S::F32_LANES;

    /// The instruction set's short name.
    #[inline]
    pub fn name(self) -> &'static str {
        S::NAME
    }

    /// The regime a batch of `len` elements in rows of `row_len` takes.
    #[inline]
    pub fn plan(self, len: usize, row_len: usize) -> Regime {
        plan(IsaShape::of::<S>(), len, row_len)
    }

    /// `output = softmax(input)`.
    #[inline]
    pub fn softmax(self, input: &[f32], output: &mut [f32]) {
        let _env = DefaultEnv::enter();
        assert_eq!(input.len(), output.len(), "length mismatch");
        let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.batch(F32Rows::new(x), Prob::new(y), (n > 0) as usize, n);
    }

    /// `data = softmax(data)`.
    #[inline]
    pub fn softmax_in_place(self, data: &mut [f32]) {
        let _env = DefaultEnv::enter();
        let (p, n) = (data.as_mut_ptr(), data.len());
        self.batch(F32Rows::new(p), Prob::new(p), (n > 0) as usize, n);
    }

    /// `output = log_softmax(input)`.
    #[inline]
    pub fn log_softmax(self, input: &[f32], output: &mut [f32]) {
        let _env = DefaultEnv::enter();
        assert_eq!(input.len(), output.len(), "length mismatch");
        let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.batch(F32Rows::new(x), Log::new(y), (n > 0) as usize, n);
    }

    /// `data = log_softmax(data)`.
    #[inline]
    pub fn log_softmax_in_place(self, data: &mut [f32]) {
        let _env = DefaultEnv::enter();
        let (p, n) = (data.as_mut_ptr(), data.len());
        self.batch(F32Rows::new(p), Log::new(p), (n > 0) as usize, n);
    }

    /// Softmax of each `row_len`-long row of `input` into `output`.
    #[inline]
    pub fn softmax_rows(self, input: &[f32], output: &mut [f32], row_len: usize) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), row_len);
        let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.batch(F32Rows::new(x), Prob::new(y), n / row_len, row_len);
    }

    /// Softmax of each `row_len`-long row of `data`, in place.
    #[inline]
    pub fn softmax_rows_in_place(self, data: &mut [f32], row_len: usize) {
        let _env = DefaultEnv::enter();
        check(data.len(), data.len(), row_len);
        let (p, n) = (data.as_mut_ptr(), data.len());
        self.batch(F32Rows::new(p), Prob::new(p), n / row_len, row_len);
    }

    /// Log-softmax of each `row_len`-long row of `input` into `output`.
    #[inline]
    pub fn log_softmax_rows(self, input: &[f32], output: &mut [f32], row_len: usize) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), row_len);
        let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.batch(F32Rows::new(x), Log::new(y), n / row_len, row_len);
    }

    /// Log-softmax of each `row_len`-long row of `data`, in place.
    #[inline]
    pub fn log_softmax_rows_in_place(self, data: &mut [f32], row_len: usize) {
        let _env = DefaultEnv::enter();
        check(data.len(), data.len(), row_len);
        let (p, n) = (data.as_mut_ptr(), data.len());
        self.batch(F32Rows::new(p), Log::new(p), n / row_len, row_len);
    }

    /// `output = softmax(alpha · input)` with its limits: `α = 0` →
    /// uniform, `α = ±∞` → shared by the tied maxima (minima), `α < 0` →
    /// softmin; `α = 1` is exactly [`Kernel::softmax`]. A NaN `alpha`
    /// gives a NaN row. Other `α`: the scaled stage's differences
    /// `|α|·(key − max)` (computed so that they cannot overflow while
    /// finite). Short rows: the differences are written to `output` in one
    /// pass, then its plain softmax runs in place (the same bits as the
    /// scaled stage through the short regime, which is not instantiated);
    /// longer rows: the scaled stage through the pipeline or two-pass
    /// regime, one pass less.
    #[inline]
    pub fn softmax_scaled(self, input: &[f32], output: &mut [f32], alpha: f32) {
        self.softmax_scaled_rows(input, output, input.len().max(1), alpha);
    }

    /// [`Kernel::softmax_scaled`] of each `row_len`-long row.
    #[inline]
    pub fn softmax_scaled_rows(
        self,
        input: &[f32],
        output: &mut [f32],
        row_len: usize,
        alpha: f32,
    ) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), row_len);
        if alpha == 1.0 {
            return self.softmax_rows(input, output, row_len);
        }
        if alpha.is_finite() && alpha != 0.0 {
            let (x, y, rows) = (input.as_ptr(), output.as_mut_ptr(), input.len() / row_len);
            if let Regime::Short { .. } = plan(IsaShape::of::<S>(), input.len(), row_len) {
                self.simd.run(ScaledKeys {
                    x,
                    y,
                    rows,
                    w: row_len,
                    alpha,
                });
                return self.softmax_rows_in_place(output, row_len);
            }
            let (src, snk) = (ScaledRows::new(x, alpha), Prob::new(y));
            if rows > 0 {
                Batch {
                    src,
                    snk,
                    rows,
                    w: row_len,
                }
                .run_unstreamed(self.simd);
            }
            return;
        }
        for (x, y) in input.chunks(row_len).zip(output.chunks_mut(row_len)) {
            crate::keys::scaled_limit(x, y, alpha);
        }
    }

    /// `output = softmax(Σ_k α_k x_k)`: the combination `z`, minus its max,
    /// is evaluated once per element in double-double arithmetic (each
    /// `α_k·x_k` exact, their sum to ~2^-106, no overflow for any f32
    /// inputs) and rounded once to f32 into `output`, whose softmax then
    /// runs in place. `&[(1.0, x)]` is exactly [`Kernel::softmax`] of `x`.
    /// Every term must have `output.len()` elements.
    #[inline]
    pub fn softmax_of_combination(self, terms: &[(f32, &[f32])], output: &mut [f32]) {
        self.softmax_of_terms(&terms, output);
    }

    /// [`Kernel::softmax_of_combination`] of terms given as
    /// [`Terms`](crate::keys::Terms) (a slice of pairs, or a count and a
    /// function of the term's index).
    #[inline]
    pub fn softmax_of_terms<'t>(self, terms: &impl crate::keys::Terms<'t>, output: &mut [f32]) {
        let _env = DefaultEnv::enter();
        assert!(
            (0..terms.count()).all(|k| terms.term(k).1.len() == output.len()),
            "softmax_of_combination: term length mismatch"
        );
        crate::keys::combination_keys(terms, output);
        self.softmax_in_place(output);
    }

    /// `ln Σ e^x` (`−∞` for an empty slice): the two-pass regime's first
    /// pass, then `max + ln Σ` in f64.
    #[inline]
    pub fn logsumexp(self, input: &[f32]) -> f32 {
        let _env = DefaultEnv::enter();
        let st = self.log_state(input);
        if st.m.is_finite() {
            // A NaN in the row makes the sum NaN: the canonical NaN, so that
            // the result's bits do not depend on which NaN the sum met.
            let v = (st.m as f64 + st.sum.ln()) as f32;
            if v.is_nan() { f32::NAN } else { v }
        } else if st.m.is_nan() || input.iter().any(|x| x.is_nan()) {
            f32::NAN
        } else {
            st.m // +∞ (some +∞ entry) or −∞ (empty or fully masked)
        }
    }

    /// The softmax state of `input` (its max, min and `Σ e^(x − max)`),
    /// the first pass of the two-pass regime: chunk states of
    /// [`CHUNK`] elements merged left to right, with softmax's sum
    /// (accurate relative to itself; terms below `2^-126` may flush).
    /// Complete about special values ([`RowState`]).
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let st = k.row_state(&[0.0, f32::INFINITY, 1.0, f32::INFINITY]);
    /// assert_eq!((st.m, st.sum.k), (f32::INFINITY, 2.0));
    /// ```
    #[inline]
    pub fn row_state(self, input: &[f32]) -> RowState {
        let _env = DefaultEnv::enter();
        self.state::<Prob>(input)
            .complete(input.len(), |i| input[i])
    }

    /// The softmax state of `alpha · input` for a finite `alpha > 0` (a
    /// temperature's `1/T`): the max `m` of `input` and `Σ e^(α(x − m))`,
    /// softmax's sum, by the scaled stage the two-pass regime of
    /// [`Kernel::softmax_scaled`] runs; `α = 1` is exactly
    /// [`Kernel::row_state`] (as `softmax_scaled` at 1 is `softmax`).
    /// Special values as [`Kernel::row_state`]'s (`α > 0` keeps the
    /// order: a `+∞` entry is still the max). The samplers' normalizer.
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let st = k.scaled_row_state(&[0.0, 2.0], 0.5);
    /// assert_eq!(st.m, 2.0);
    /// assert!((st.sum.total() - (1.0 + (-1.0f64).exp())).abs() < 1e-6);
    /// let x = [0.5f32, -3.0, 2.0];
    /// let (a, b) = (k.scaled_row_state(&x, 1.0), k.row_state(&x));
    /// assert_eq!((a.m, a.sum.total().to_bits()), (b.m, b.sum.total().to_bits()));
    /// ```
    #[inline]
    pub fn scaled_row_state(self, input: &[f32], alpha: f32) -> RowState {
        assert!(
            alpha.is_finite() && alpha > 0.0,
            "scaled_row_state: alpha must be finite and > 0"
        );
        if alpha == 1.0 {
            return self.row_state(input);
        }
        let _env = DefaultEnv::enter();
        let src = ScaledRows::new(input.as_ptr(), alpha);
        self.simd
            .run(State::<ScaledRows, Prob> {
                src,
                n: input.len(),
                snk: core::marker::PhantomData,
            })
            .complete(input.len(), |i| input[i])
    }

    /// [`Kernel::row_state`] with log-softmax's sum ([`ExpSum`]'s `k + δ`
    /// split, tiny terms kept): accurate enough for `ln Σ` and for
    /// `1/Σ`, so for both [`Kernel::log_softmax_piece`] and
    /// [`Kernel::softmax_piece`]; a little slower to compute.
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let st = k.log_row_state(&[0.0, -95.0]);
    /// assert_eq!((st.m, st.sum.k), (0.0, 1.0));
    /// assert!(st.sum.delta > 0.0); // e^-95 < 2^-126: kept, not flushed
    /// assert_eq!(k.row_state(&[0.0, -95.0]).sum.total(), 1.0); // flushed
    /// ```
    #[inline]
    pub fn log_row_state(self, input: &[f32]) -> RowState {
        let _env = DefaultEnv::enter();
        self.state::<Log>(input).complete(input.len(), |i| input[i])
    }

    /// The state of each [`CHUNK`] of `input` (the last one possibly
    /// shorter) into `out` (`input.len().div_ceil(CHUNK)` states): merged
    /// left to right from [`RowState::EMPTY`] they are exactly
    /// [`Kernel::row_state`], whoever computed them.
    #[inline]
    pub fn chunk_states(self, input: &[f32], out: &mut [RowState]) {
        let _env = DefaultEnv::enter();
        assert_eq!(
            out.len(),
            input.len().div_ceil(CHUNK),
            "chunk_states: one state per chunk"
        );
        for (x, st) in input.chunks(CHUNK).zip(out) {
            *st = self.row_state(x);
        }
    }

    /// Softmax results of a piece of a row whose whole, complete
    /// [`RowState`] is `st` ([`Kernel::row_state`]'s or
    /// [`Kernel::log_row_state`]'s, or their merge): `output = e^(input −
    /// st.m) / st.sum`, each element exactly as the two-pass regime
    /// writes it (`st.lo` is only a hint: `−∞` gives the same bits);
    /// `stream`: with non-temporal stores. A special state gives the
    /// whole row's special results: NaN
    /// everywhere for a NaN state, `1/k` at the `+∞` entries of a `+∞`
    /// state whose `sum.k` is `k` and 0 elsewhere, 0 for a `−∞` state.
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let x = [f32::INFINITY, 1.0, f32::INFINITY, 2.0];
    /// let st = k.row_state(&x[..2]).merge(k.row_state(&x[2..]));
    /// let mut y = [9.0f32; 2];
    /// k.softmax_piece(&x[2..], &mut y, st, false);
    /// assert_eq!(y, [0.5, 0.0]);
    /// ```
    #[inline]
    pub fn softmax_piece(self, input: &[f32], output: &mut [f32], st: RowState, stream: bool) {
        self.piece::<Prob>(input, output, st, stream);
    }

    /// `output = scale · softmax + offset` for a piece of a row whose
    /// whole, complete [`RowState`] is `st`: the results of
    /// [`Kernel::softmax_piece`], each mapped by one fused multiply-add in
    /// the same pass (the [`Affine`] output), so the same bits as
    /// `softmax_piece` followed by `fma(p, scale, offset)` per element.
    /// Cross-entropy's gradient `g·(S(x) − q)` is this with `scale = g`,
    /// `offset = −g·ε/N`, and its target entry fixed up. Special states
    /// map the special results (`1/k`, 0, NaN) the same way.
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let x = [0.0f32, 0.0];
    /// let mut y = [0.0f32; 2];
    /// k.softmax_affine_piece(&x, &mut y, k.log_row_state(&x), 2.0, -0.25, false);
    /// assert_eq!(y, [0.75, 0.75]);
    /// ```
    #[inline]
    pub fn softmax_affine_piece(
        self,
        input: &[f32],
        output: &mut [f32],
        st: RowState,
        scale: f32,
        offset: f32,
        stream: bool,
    ) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), input.len().max(1));
        if st.m.is_finite() && !Prob::constant(st.sum).is_nan() {
            let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
            self.simd.run(Piece {
                src: F32Rows::new(x),
                snk: Probs::to(Affine::new(F32Out::new(y), scale, offset)),
                n,
                st,
                stream,
            });
        } else {
            special_piece::<Prob>(
                input.len(),
                st.m,
                st.sum,
                |i| input[i],
                |i, v| output[i] = libm::fmaf(v, scale, offset),
            );
        }
    }

    /// Log-softmax results of a piece of a row whose whole, complete
    /// [`RowState`] is `st` (best [`Kernel::log_row_state`]'s, whose sum
    /// keeps `ln Σ` accurate): `output = input − st.m − ln st.sum`; the
    /// special states as in [`Kernel::softmax_piece`] (`−ln k`, `−∞`).
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let x = [0.0f32, 0.0];
    /// let mut y = [0.0f32; 2];
    /// k.log_softmax_piece(&x, &mut y, k.log_row_state(&x), false);
    /// assert_eq!(y, [-core::f32::consts::LN_2; 2]);
    /// ```
    #[inline]
    pub fn log_softmax_piece(self, input: &[f32], output: &mut [f32], st: RowState, stream: bool) {
        self.piece::<Log>(input, output, st, stream);
    }

    /// `output = e^(input − m)`, each exp exactly as
    /// [`Kernel::softmax_piece`] computes it (below `2^-126` flushed to 0),
    /// for the max `m` of a complete state: a NaN `m` gives NaN
    /// everywhere; `m = +∞` gives 1 at the `+∞` entries (the limit of
    /// `e^(x − m)` there) and 0 elsewhere; `m = −∞` gives 0.
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let mut e = [0.0f32; 3];
    /// k.exp_piece(&[2.0, 1.0, f32::NEG_INFINITY], &mut e, 2.0);
    /// assert_eq!(e[0], 1.0);
    /// assert!((e[1] - (-1.0f32).exp()).abs() < 1e-7);
    /// assert_eq!(e[2], 0.0);
    /// ```
    #[inline]
    pub fn exp_piece(self, input: &[f32], output: &mut [f32], m: f32) {
        // Softmax's results of a row whose sum is exactly 1: its constant
        // `1/Σ` is 1, by which each exp is multiplied exactly; a `+∞`
        // state of one entry shares 1.
        let one = ExpSum { k: 1.0, delta: 0.0 };
        let st = RowState {
            m,
            lo: f32::NEG_INFINITY,
            sum: one,
        };
        self.piece::<Prob>(input, output, st, false);
    }

    /// The results of a piece from the row's state `st`, by sink `Snk`.
    fn piece<Snk: Sink<Out = F32Out>>(
        self,
        input: &[f32],
        output: &mut [f32],
        st: RowState,
        stream: bool,
    ) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), input.len().max(1));
        if st.m.is_finite() && !Snk::constant(st.sum).is_nan() {
            let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
            self.simd.run(Piece {
                src: F32Rows::new(x),
                snk: Snk::to(F32Out::new(y)),
                n,
                st,
                stream,
            });
        } else {
            special_piece::<Snk>(
                input.len(),
                st.m,
                st.sum,
                |i| input[i],
                |i, v| output[i] = v,
            );
        }
    }

    /// Whether a row of `row_len` is split by `par_softmax`: rows the
    /// planner gives to the two-pass regime, whose chunk states make the
    /// split exact.
    #[inline]
    pub fn splits_row(self, row_len: usize) -> bool {
        self.plan(row_len, row_len) == Regime::TwoPass
    }

    /// Whether results of a row of `row_len` are written with non-temporal
    /// stores by the two-pass regime.
    #[inline]
    pub fn streams_row(self, row_len: usize) -> bool {
        row_len >= STREAM_MIN
    }

    fn log_state(self, input: &[f32]) -> RowState {
        self.state::<Log>(input)
    }

    fn state<Snk: Sink>(self, input: &[f32]) -> RowState {
        let src = F32Rows::new(input.as_ptr());
        self.simd.run(State::<F32Rows, Snk> {
            src,
            n: input.len(),
            snk: core::marker::PhantomData,
        })
    }

    /// Runs `rows` rows of `w` elements through the planned regime.
    #[inline]
    pub(crate) fn batch<Src: Source, Snk: Sink>(self, src: Src, snk: Snk, rows: usize, w: usize) {
        if rows > 0 && w > 0 {
            Batch { src, snk, rows, w }.run(self.simd);
        }
    }
}

/// Panics unless the buffers match and `row_len` divides them.
#[inline]
pub(crate) fn check(input: usize, output: usize, row_len: usize) {
    assert_eq!(input, output, "length mismatch");
    assert!(
        row_len > 0 && input.is_multiple_of(row_len),
        "row_len must be > 0 and divide the length"
    );
}

/// A batch: `rows` rows of `w`, `src` and `snk` valid for them (equal or
/// disjoint buffers). Only built by [`Kernel`] from slices it checked.
#[derive(Clone, Copy)]
pub(crate) struct Batch<Src, Snk> {
    src: Src,
    snk: Snk,
    rows: usize,
    w: usize,
}

impl<Src: Source, Snk: Sink> Batch<Src, Snk> {
    /// `rows` rows of `w` (both nonzero) from `src` to `snk`.
    ///
    /// # Safety
    /// Every row of `src` readable and of `snk` writable over `0..w`; the
    /// two buffers equal or disjoint.
    #[inline(always)]
    pub(crate) unsafe fn new(src: Src, snk: Snk, rows: usize, w: usize) -> Self {
        Batch { src, snk, rows, w }
    }

    /// Runs the batch in the regime the planner picks, each regime in a
    /// target-feature function of its own, called from here, outside any
    /// (so none is inlined into another: one function holding them all
    /// takes LLVM minutes per instruction set to optimize, and gets the
    /// largest one's stack frame on every call). The regimes an instruction
    /// set never takes are constant-false branches, not instantiated for it.
    #[inline(always)]
    pub(crate) fn run<S: Isa>(self, s: S) {
        match plan(IsaShape::of::<S>(), self.rows * self.w, self.w) {
            // One short row (a call on one row): straight to the function
            // that takes short rows one at a time.
            // SAFETY (both arms): the batch's contract; the planner picked
            // the short regime for `w`.
            Regime::Short { narrow: true, .. } if S::NARROW_MAX > 0 && self.rows == 1 => unsafe {
                short::alone::<_, Src, Snk, 1>(s.narrow(), self.src, self.snk, self.w)
            },
            Regime::Short { narrow: true, .. } if S::NARROW_MAX > 0 => {
                s.narrow().run(In::<_, _, SHORT1>(self))
            }
            Regime::Short { vectors, .. } if S::SHORT_ROWS && self.rows == 1 => unsafe {
                let (src, snk, w) = (self.src, self.snk, self.w);
                match vectors {
                    1 => short::alone::<S, Src, Snk, 1>(s, src, snk, w),
                    2 => short::alone::<S, Src, Snk, 2>(s, src, snk, w),
                    3 => short::alone::<S, Src, Snk, 3>(s, src, snk, w),
                    _ => short::alone::<S, Src, Snk, 4>(s, src, snk, w),
                }
            },
            Regime::Short { vectors, .. } if S::SHORT_ROWS => match vectors {
                1 => s.run(In::<_, _, SHORT1>(self)),
                2 => s.run(In::<_, _, SHORT2>(self)),
                3 => s.run(In::<_, _, SHORT3>(self)),
                _ => s.run(In::<_, _, SHORT4>(self)),
            },
            Regime::Streaming if S::HAS_STREAM => s.run(In::<_, _, STREAMING>(self)),
            Regime::TwoPass => s.run(In::<_, _, TWO_PASS>(self)),
            _ => s.run(In::<_, _, PIPELINE>(self)),
        }
    }

    /// [`Batch::run`] for a batch the planner does not send to the short
    /// regime, without the streaming form (out-of-cache batches take the
    /// in-cache pipeline): `softmax_scaled`'s longer rows. Its short rows
    /// take the keys pass, so the short regimes are not instantiated for
    /// its stage; nor is the streaming form, whose long-row loop would add
    /// 5 s to the release build for the two out-of-cache shapes
    /// (`docs/PERFORMANCE.md#code-generation`).
    #[inline(always)]
    fn run_unstreamed<S: Isa>(self, s: S) {
        self.run_long::<S, false>(s)
    }

    /// [`Batch::run`] for a batch the planner does not send to the short
    /// regime, with the streaming form where `STREAMED` (the tests'
    /// recording source, which has no use for the short regimes).
    #[inline(always)]
    pub(crate) fn run_long<S: Isa, const STREAMED: bool>(self, s: S) {
        match plan(IsaShape::of::<S>(), self.rows * self.w, self.w) {
            Regime::TwoPass => s.run(In::<_, _, TWO_PASS>(self)),
            Regime::Streaming if STREAMED && S::HAS_STREAM => s.run(In::<_, _, STREAMING>(self)),
            _ => s.run(In::<_, _, PIPELINE>(self)),
        }
    }
}

const SHORT1: u8 = 1;
const SHORT2: u8 = 2;
const SHORT3: u8 = 3;
const SHORT4: u8 = 4;
const PIPELINE: u8 = 5;
const STREAMING: u8 = 6;
const TWO_PASS: u8 = 7;

/// A [`Batch`] in regime `R`.
struct In<Src, Snk, const R: u8>(Batch<Src, Snk>);

impl<Src: Source, Snk: Sink, const R: u8> Kern for In<Src, Snk, R> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let Batch { src, snk, rows, w } = self.0;
        let (src, snk) = (&src, &snk);
        // SAFETY: `Batch`'s contract is every regime's; the short regimes'
        // `(N − 1)·L < w ≤ N·L` is how the planner picked them. Rows per
        // short group: as many as keep the group's registers in use.
        unsafe {
            match R {
                SHORT1 => short::rows::<S, Src, Snk, 1, 8>(s, src, snk, rows, w),
                SHORT2 => short::rows::<S, Src, Snk, 2, 4>(s, src, snk, rows, w),
                SHORT3 => short::rows::<S, Src, Snk, 3, 2>(s, src, snk, rows, w),
                SHORT4 => short::rows::<S, Src, Snk, 4, 2>(s, src, snk, rows, w),
                PIPELINE => pipeline::rows::<S, Src, Snk, false>(s, src, snk, rows, w),
                STREAMING => pipeline::rows::<S, Src, Snk, true>(s, src, snk, rows, w),
                _ => two_pass::rows::<S, Src, Snk>(s, src, snk, rows, w),
            }
        }
    }
}

/// The two-pass state of one row of `n` (`src` valid for it).
struct State<Src, Snk> {
    src: Src,
    n: usize,
    snk: core::marker::PhantomData<Snk>,
}

impl<Src: Source, Snk: Sink> Kern for State<Src, Snk> {
    type Output = RowState;

    #[inline(always)]
    fn run<S: Isa>(self, s: S) -> RowState {
        // SAFETY: `src` is valid for `n` (from a slice in `Kernel`).
        unsafe { two_pass::state::<S, Src, Snk>(s, &self.src, self.src.row(0, self.n), 0, self.n) }
    }
}

/// The two-pass results of a piece of `n` (`src`/`snk` valid for it).
struct Piece<Src, Snk> {
    src: Src,
    snk: Snk,
    n: usize,
    st: RowState,
    stream: bool,
}

impl<Src: Source, Snk: Sink> Kern for Piece<Src, Snk> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let (src, snk) = (&self.src, &self.snk);
        // SAFETY: `src`/`snk` are valid for `n` (from slices in `Kernel`);
        // the state is finite (`Kernel::piece`).
        unsafe {
            let rows = (src.row(0, self.n), snk.row(0, self.n));
            two_pass::write::<S, Src, Snk>(s, src, snk, rows, 0, self.n, self.st, self.stream);
        }
    }
}
