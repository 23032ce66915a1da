//! [`SoftmaxState`]: the online softmax state of a row seen in pieces
//! (flash attention's running `(max, Σ)`, a row split over threads or
//! machines, a stream of logits), public. It is the two-pass regime's
//! first pass made reachable: each piece's state comes from the dispatched
//! kernel's blocked, compensated chunk pass, the merge is the kernel's
//! (`RowState::merge`), and a piece's results are the kernel's output
//! pass; only the `+∞`/NaN bookkeeping of a state is added here.
//!
//! A state is `(max, Σ e^(x − max))`, the sum an [`ExpSum`] in f64:
//! `k + δ`, log-softmax's split sum (terms exactly 1 counted in `k`, the
//! rest compensated in `δ`, terms below `2^-126` kept), so that one state
//! serves [`SoftmaxState::normalize`] (`1/Σ`) and
//! [`SoftmaxState::log_normalize`] and [`SoftmaxState::logsumexp`] (`ln Σ`,
//! accurate where `δ/k` is tiny) within their bounds. The kernel's
//! `RowState` also carries the min key (whether the output pass may skip
//! the exp's flush: a speed hint of some instruction sets); a state of
//! pieces has no use for it (the flushing exp gives the same bits), so it
//! is not kept.

use crate::api::check_len;
use crate::dispatch::{Imp, with_kernel};
use crate::{Backend, Error, Softmax};
use simd_softmax_kernels::RowState;
use simd_softmax_kernels::fpenv::DefaultEnv;
use simd_softmax_kernels::sum::ExpSum;

/// The mergeable softmax state `(m, Σ e^(x − m))` of a row seen in
/// chunks: feed it the chunks in any order ([`SoftmaxState::update`]), or
/// give each thread its own and [`SoftmaxState::merge`] them, then write
/// any chunk's part of the whole row's softmax
/// ([`SoftmaxState::normalize`]) or log-softmax
/// ([`SoftmaxState::log_normalize`]). Flash attention's step is
/// [`SoftmaxState::exp_update`].
///
/// Results are within the whole row's bounds (`docs/ACCURACY.md`) for any
/// chunking, chunks of one element and empty chunks included: each chunk's
/// sum is the kernels' compensated sum, folded into f64, and merges rescale
/// f64 sums. Special values are the whole row's:
/// a chunk of only `−∞` (or an empty one) changes nothing; `+∞` entries
/// are counted across chunks (each gets `1/k` of the mass, `k` the row's
/// count); a NaN in any chunk makes the row NaN.
///
/// A state runs on the backend it was made with ([`SoftmaxState::new`]:
/// the default one; [`Softmax::state`]: a chosen one); it is `Copy`, `Send`
/// and `Sync`: the max and two f64s beside the backend.
///
/// ```
/// use simd_softmax::SoftmaxState;
///
/// let row = [1.0f32, 2.0, 3.0, 4.0, 5.0];
/// let mut st = SoftmaxState::new();
/// for chunk in row.chunks(2) {
///     st.update(chunk);
/// }
/// let mut probs = [0.0f32; 5];
/// for (x, y) in row.chunks(2).zip(probs.chunks_mut(2)) {
///     st.normalize(x, y)?;
/// }
/// let mut whole = [0.0f32; 5];
/// simd_softmax::softmax(&row, &mut whole)?;
/// for (p, w) in probs.iter().zip(&whole) {
///     assert!((p - w).abs() <= 4.0 * f32::EPSILON * w);
/// }
/// # Ok::<(), simd_softmax::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SoftmaxState {
    imp: Imp,
    /// The max (`−∞`: nothing seen, or only `−∞`; `+∞`: some `+∞` entry;
    /// NaN: some NaN).
    max: f32,
    /// `Σ e^(x − max)`; for a `+∞` max, `k` counts the `+∞` entries; 0 for
    /// a `−∞` max; unused for NaN.
    sum: ExpSum,
}

/// A [`SoftmaxState`] as plain numbers ([`SoftmaxState::to_parts`]):
/// its backend, its max, and its sum `Σ e^(x − max)` split as the count of
/// terms exactly 1 (the entries at the max; for a `+∞` max, the `+∞`
/// entries) plus the sum of the others, so that `ln Σ` stays accurate when
/// the others are tiny.
///
/// ```
/// let p = simd_softmax::SoftmaxState::new().to_parts();
/// assert_eq!((p.max, p.ones, p.rest), (f32::NEG_INFINITY, 0.0, 0.0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateParts {
    /// The backend the state's passes run on.
    pub backend: Backend,
    /// The max so far ([`SoftmaxState::max`]).
    pub max: f32,
    /// The terms of the sum that are exactly 1.
    pub ones: f64,
    /// Every other term of the sum.
    pub rest: f64,
}

impl Default for SoftmaxState {
    /// Same as [`SoftmaxState::new`].
    fn default() -> Self {
        SoftmaxState::new()
    }
}

impl Softmax {
    /// An empty [`SoftmaxState`] whose passes run on this engine's backend.
    ///
    /// ```
    /// use simd_softmax::{Backend, Softmax};
    /// let st = Softmax::with_backend(Backend::Scalar)?.state();
    /// assert_eq!(st.backend(), Backend::Scalar);
    /// assert_eq!(st.max(), f32::NEG_INFINITY);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn state(&self) -> SoftmaxState {
        SoftmaxState::empty(self.imp)
    }
}

impl SoftmaxState {
    /// The state of nothing (max `−∞`, sum 0), on the default backend
    /// (as the free functions, [`Softmax::new`]).
    ///
    /// ```
    /// let st = simd_softmax::SoftmaxState::new();
    /// assert_eq!(st.max(), f32::NEG_INFINITY);
    /// assert_eq!(st.logsumexp(), f32::NEG_INFINITY);
    /// ```
    pub fn new() -> SoftmaxState {
        Softmax::new().state()
    }

    fn empty(imp: Imp) -> SoftmaxState {
        SoftmaxState {
            imp,
            max: f32::NEG_INFINITY,
            sum: ExpSum::ZERO,
        }
    }

    /// The state of one row (or chunk) as the kernel's softmax pass
    /// computes it (`Kernel::row_state`, `chunk_states`: softmax's plain
    /// sum, complete about special values). Only for `par_softmax`, whose
    /// results must be one thread's bits: the plain sum serves
    /// [`SoftmaxState::normalize`] exactly as the one-thread pass does, but
    /// not `ln Σ` to log-softmax's bound, so such states never leave the
    /// crate.
    #[cfg(feature = "rayon")]
    pub(crate) fn of_softmax_pass(imp: Imp, st: RowState) -> SoftmaxState {
        SoftmaxState {
            imp,
            max: st.m,
            sum: st.sum,
        }
    }

    /// The kernel's form: the min key unknown (`−∞`).
    fn row_state(&self) -> RowState {
        RowState {
            m: self.max,
            lo: f32::NEG_INFINITY,
            sum: self.sum,
        }
    }

    /// The state as plain numbers, to carry it where a Rust value cannot
    /// go (another process, a C caller's struct) and back with
    /// [`SoftmaxState::from_parts`].
    ///
    /// ```
    /// use simd_softmax::SoftmaxState;
    /// let mut st = SoftmaxState::new();
    /// st.update(&[0.0, 0.0, -1.0]);
    /// let p = st.to_parts();
    /// assert_eq!((p.max, p.ones), (0.0, 2.0));
    /// let back = SoftmaxState::from_parts(p)?;
    /// assert_eq!(back.logsumexp(), st.logsumexp());
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn to_parts(&self) -> StateParts {
        StateParts {
            backend: self.backend(),
            max: self.max,
            ones: self.sum.k,
            rest: self.sum.delta,
        }
    }

    /// The state [`SoftmaxState::to_parts`] described. Any numbers make a
    /// state (parts that no row gives, such as a negative sum, give
    /// meaningless results, never undefined behaviour).
    ///
    /// # Errors
    /// [`Error::UnsupportedBackend`] when this CPU or build cannot run
    /// `parts.backend`.
    ///
    /// ```
    /// use simd_softmax::{Backend, SoftmaxState, StateParts};
    /// let p = StateParts { backend: Backend::Scalar, max: 1.0, ones: 1.0, rest: 0.0 };
    /// assert_eq!(SoftmaxState::from_parts(p)?.logsumexp(), 1.0);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn from_parts(parts: StateParts) -> Result<SoftmaxState, Error> {
        let imp = Softmax::with_backend(parts.backend)?.imp;
        Ok(SoftmaxState {
            imp,
            max: parts.max,
            sum: ExpSum {
                k: parts.ones,
                delta: parts.rest,
            },
        })
    }

    /// The backend this state's passes run on.
    ///
    /// ```
    /// use simd_softmax::{Softmax, SoftmaxState};
    /// assert_eq!(SoftmaxState::new().backend(), Softmax::new().backend());
    /// ```
    pub fn backend(&self) -> Backend {
        Softmax { imp: self.imp }.backend()
    }

    /// Adds `chunk` to the row: one blocked pass of the kernel over it
    /// (its max and compensated exp sum), merged into the state. A chunk
    /// that is empty or all `−∞` changes nothing.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// st.update(&[1.0, 3.0]);
    /// st.update(&[]);
    /// st.update(&[f32::NEG_INFINITY]);
    /// st.update(&[2.0]);
    /// assert_eq!(st.max(), 3.0);
    /// let lse = (1.0f64.exp() + 3.0f64.exp() + 2.0f64.exp()).ln() as f32;
    /// assert!((st.logsumexp() - lse).abs() <= f32::EPSILON * lse);
    /// ```
    pub fn update(&mut self, chunk: &[f32]) {
        if self.max.is_nan() || chunk.is_empty() {
            return; // NaN is final; nothing to add
        }
        let st = with_kernel!(self.imp, k => k.log_row_state(chunk));
        *self = self.merge(SoftmaxState {
            imp: self.imp,
            max: st.m,
            sum: st.sum,
        });
    }

    /// The state of both rows' entries: the larger max, each sum rescaled
    /// to it in f64. Commutative and associative up to the rounding of the
    /// f64 sums (far below the results' bound). A NaN state wins; `+∞`
    /// counts add. The result runs on `self`'s backend.
    ///
    /// ```
    /// use simd_softmax::SoftmaxState;
    /// let (mut a, mut b) = (SoftmaxState::new(), SoftmaxState::new());
    /// a.update(&[0.0, 1.0]);
    /// b.update(&[5.0]);
    /// let ab = a.merge(b);
    /// assert_eq!(ab.max(), 5.0);
    /// assert_eq!(ab.logsumexp(), b.merge(a).logsumexp());
    /// ```
    pub fn merge(self, other: SoftmaxState) -> SoftmaxState {
        // f64 arithmetic in the default environment, as every kernel call.
        let _env = DefaultEnv::enter();
        let st = self.row_state().merge(other.row_state());
        SoftmaxState {
            imp: self.imp,
            max: st.m,
            sum: st.sum,
        }
    }

    /// The factors `(e^(m_a − m), e^(m_b − m))` of [`SoftmaxState::merge`]
    /// (`m_a`, `m_b` the two maxima, `m` the merged one): what a caller
    /// multiplies what it accumulated with each state by before adding
    /// them, as flash attention's split-K combine does (`o = f_a·o_a +
    /// f_b·o_b`, then `o / merged sum`). A state that has seen nothing
    /// (max `−∞`) gets 0; beside a `+∞` max a finite one gets 0 and a `+∞`
    /// one 1; NaN if either state is NaN.
    ///
    /// ```
    /// use simd_softmax::SoftmaxState;
    /// let (mut a, mut b) = (SoftmaxState::new(), SoftmaxState::new());
    /// a.update(&[1.0]);
    /// b.update(&[3.0]);
    /// let (fa, fb) = a.merge_factors(&b);
    /// assert_eq!(fb, 1.0);
    /// assert!((fa - (-2.0f32).exp()).abs() <= f32::EPSILON * fa);
    /// ```
    pub fn merge_factors(&self, other: &SoftmaxState) -> (f32, f32) {
        let m = if self.max.is_nan() || other.max.is_nan() {
            f32::NAN
        } else {
            self.max.max(other.max)
        };
        let _env = DefaultEnv::enter();
        (factor(self.max, m), factor(other.max, m))
    }

    /// The row's max so far: `−∞` for nothing (or only `−∞` entries),
    /// `+∞` if some entry is `+∞`, NaN if some entry is NaN.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// st.update(&[1.0, f32::INFINITY]);
    /// assert_eq!(st.max(), f32::INFINITY);
    /// ```
    pub fn max(&self) -> f32 {
        self.max
    }

    /// `Σ e^(x − max)` over the row so far, in f64: what flash attention
    /// divides its output accumulator by at the end. 0 for nothing; for a
    /// `+∞` max, the number of `+∞` entries (each term's limit is 1, the
    /// others' 0); NaN for a NaN row.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// st.update(&[0.0, 0.0, f32::NEG_INFINITY]);
    /// assert_eq!(st.sum(), 2.0);
    /// ```
    pub fn sum(&self) -> f64 {
        if self.max.is_nan() {
            f64::NAN
        } else {
            self.sum.total()
        }
    }

    /// `ln Σ e^x` of the row so far, as [`crate::logsumexp`] of the whole
    /// row (within its bound): `−∞` for nothing, `+∞` for a `+∞` entry,
    /// NaN for a NaN.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// st.update(&[0.0]);
    /// st.update(&[0.0]);
    /// assert!((st.logsumexp() - std::f32::consts::LN_2).abs() <= f32::EPSILON);
    /// ```
    pub fn logsumexp(&self) -> f32 {
        if self.max.is_nan() {
            return f32::NAN;
        }
        if !self.max.is_finite() {
            return self.max;
        }
        let _env = DefaultEnv::enter();
        (self.max as f64 + self.sum.ln()) as f32
    }

    /// Writes `chunk`'s part of the whole row's softmax to `out`:
    /// `e^(x − max) / Σ`, each element as the one-shot two-pass softmax
    /// writes it from the same state. Call it after every chunk of the
    /// row was added (the result is the softmax of the entries seen so
    /// far). Special rows as a whole row's: NaN everywhere, `1/k` at the
    /// `+∞` entries and 0 elsewhere, 0 for a fully masked row.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `chunk` and `out` differ in length;
    /// `out` is then untouched.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// let (a, b) = ([0.0f32], [0.0f32, f32::NEG_INFINITY]);
    /// st.update(&a);
    /// st.update(&b);
    /// let mut y = [1.0f32; 2];
    /// st.normalize(&b, &mut y)?;
    /// assert_eq!(y, [0.5, 0.0]);
    /// assert!(st.normalize(&b, &mut [0.0; 3]).is_err());
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn normalize(&self, chunk: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len(chunk.len(), out.len())?;
        let st = self.row_state();
        with_kernel!(self.imp, k => k.softmax_piece(chunk, out, st, false));
        Ok(())
    }

    /// Writes `chunk`'s part of the whole row's log-softmax to `out`:
    /// `x − max − ln Σ` (never `ln` of a rounded probability). Special
    /// rows as a whole row's: NaN, `−ln k` at the `+∞` entries and `−∞`
    /// elsewhere, `−∞` for a fully masked row.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `chunk` and `out` differ in length;
    /// `out` is then untouched.
    ///
    /// ```
    /// let mut st = simd_softmax::SoftmaxState::new();
    /// let x = [1.0f32, 1.0, 1.0, 1.0];
    /// st.update(&x[..1]);
    /// st.update(&x[1..]);
    /// let mut y = [0.0f32; 3];
    /// st.log_normalize(&x[1..], &mut y)?;
    /// assert_eq!(y, [-4.0f32.ln(); 3]);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn log_normalize(&self, chunk: &[f32], out: &mut [f32]) -> Result<(), Error> {
        check_len(chunk.len(), out.len())?;
        let st = self.row_state();
        with_kernel!(self.imp, k => k.log_softmax_piece(chunk, out, st, false));
        Ok(())
    }

    /// Flash attention's step: adds `chunk` to the state, writes
    /// `e^(x − max_new)` for it to `exps` (the new max; below `2^-126`
    /// flushed to 0, as softmax's results), and returns `e^(max_old −
    /// max_new)`, the factor by which the caller rescales what it has
    /// accumulated so far (1 when the max did not grow). The factor is 0
    /// while the state held nothing before the call (the first non-empty
    /// chunk: nothing accumulated to keep). At the end, the accumulator
    /// divided by [`SoftmaxState::sum`] is the softmax-weighted result.
    ///
    /// Special values: a chunk of only `−∞` writes zeros and returns 1
    /// (0 if still nothing was seen); from the first `+∞` entry on, the
    /// exps are 1 at `+∞` entries and 0 elsewhere, and the factor that
    /// call returns is 0 (1 afterwards), so the accumulator averages the
    /// `+∞` entries' values; a NaN makes the exps and the factor NaN, and
    /// every later call's.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] when `chunk` and `exps` differ in length;
    /// the state and `exps` are then untouched.
    ///
    /// ```
    /// // Σ softmax(s)_j · v_j over a row of scores s, in blocks of 2.
    /// let (s, v) = ([0.5f32, 2.0, -1.0, 3.0], [1.0f32, 2.0, 3.0, 4.0]);
    /// let (mut st, mut acc) = (simd_softmax::SoftmaxState::new(), 0.0f32);
    /// let mut e = [0.0f32; 2];
    /// for (sb, vb) in s.chunks(2).zip(v.chunks(2)) {
    ///     let f = st.exp_update(sb, &mut e)?;
    ///     acc = acc * f + e.iter().zip(vb).map(|(p, v)| p * v).sum::<f32>();
    /// }
    /// let out = acc / st.sum() as f32;
    ///
    /// let mut p = [0.0f32; 4];
    /// simd_softmax::softmax(&s, &mut p)?;
    /// let want: f32 = p.iter().zip(&v).map(|(p, v)| p * v).sum();
    /// assert!((out - want).abs() <= 1e-6 * want);
    /// # Ok::<(), simd_softmax::Error>(())
    /// ```
    pub fn exp_update(&mut self, chunk: &[f32], exps: &mut [f32]) -> Result<f32, Error> {
        check_len(chunk.len(), exps.len())?;
        let old = self.max;
        self.update(chunk);
        let new = self.max;
        with_kernel!(self.imp, k => k.exp_piece(chunk, exps, new));
        let _env = DefaultEnv::enter();
        Ok(factor(old, new))
    }

    /// [`SoftmaxState::normalize`] of any element formats, streaming where
    /// asked (`par_softmax`'s output pass; non-generic and out of line:
    /// compiled once, not in each element-type pair's `par_softmax`).
    #[cfg(feature = "rayon")]
    #[inline(never)]
    pub(crate) fn normalize_elems(
        &self,
        chunk: simd_softmax_kernels::Elems<'_>,
        out: simd_softmax_kernels::ElemsMut<'_>,
        stream: bool,
    ) {
        let st = self.row_state();
        with_kernel!(self.imp, k => k.softmax_piece_elems(chunk, out, st, stream));
    }
}

/// `e^(old − new)` for a max that went from `old` to `new ≥ old` (`new`
/// NaN for a NaN row): 0 from nothing (`old = −∞`), 1 for an unchanged max
/// (`+∞` included: the limit of each `+∞` entry's term is 1), NaN for NaN.
fn factor(old: f32, new: f32) -> f32 {
    if new.is_nan() {
        f32::NAN
    } else if old == f32::NEG_INFINITY {
        0.0
    } else if old == new {
        1.0
    } else {
        // `new = +∞`: e^(−∞) = 0.
        libm::exp(old as f64 - new as f64) as f32
    }
}
