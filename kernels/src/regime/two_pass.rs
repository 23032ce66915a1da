//! Rows of [`TWO_PASS_MIN`](crate::plan::TWO_PASS_MIN) elements or more
//! (larger than L2): the row's max and sum in one sweep over memory, then
//! one output pass, 12 bytes of traffic per element instead of the
//! pipeline's 20 (whose three sweeps would each go to L3 or DRAM).
//!
//! The first pass is the online softmax (Milakov & Gimelshein), blocked
//! and chunked: each block of [`BLOCK_VECTORS`] vectors (still in L1 for
//! its second read) gets its range, the running sum is rescaled by
//! `e^(m_old − m_new)` when the max grows, and the block's terms are
//! summed against the new max. Each [`CHUNK`] of the row has a
//! [`RowState`] of its own, merged into the row's left to right: states
//! depend only on their chunk, so a row split over threads at chunk
//! boundaries (`par_softmax`) gets the same bits as the row alone.
//!
//! The second pass recomputes the exps (cheaper than a third sweep over
//! memory), with non-temporal stores for rows of
//! [`STREAM_MIN`](crate::plan::STREAM_MIN) or more.

use super::pipeline::Prefetch;
use super::{Due, nan_row, range_of, special_row, sweep, tracks_min};
use crate::isa::Isa;
use crate::plan::STREAM_MIN;
use crate::stage::{Sink, Source};
use crate::sum::ExpSum;

/// Vectors per block of the online pass (4 KiB on AVX-512: in L1 for the
/// block's second read).
pub const BLOCK_VECTORS: usize = 64;

/// Elements per chunk state: a row's state is its chunks' states merged
/// left to right, whoever computed them.
pub const CHUNK: usize = 1 << 16;

/// The mergeable state of (part of) a row: its max key, its min key
/// (`−∞` where not tracked) and `Σ e^(diff(key, max))`. A non-finite max
/// (NaN, `+∞`) ends the pass early: the row is special.
///
/// The states `Kernel::row_state`, `Kernel::log_row_state` and
/// `Kernel::chunk_states` return are *complete* about special values, as
/// the piece functions (`Kernel::softmax_piece`) expect: a NaN
/// anywhere gives a NaN `m`; otherwise `+∞` entries give `m = +∞` with
/// `sum.k` their count (each one's term `e^(∞ − ∞)` read as its limit 1,
/// every other term 0), so that merging such states counts the `+∞`
/// entries of the whole row and its results are `1/k` there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowState {
    /// The max key (`−∞` for an empty or fully masked part).
    pub m: f32,
    /// The min key, `−∞` where the kernel does not track it.
    pub lo: f32,
    /// The exp sum against `m`.
    pub sum: ExpSum,
}

impl RowState {
    /// The state of nothing.
    pub const EMPTY: RowState = RowState {
        m: f32::NEG_INFINITY,
        lo: f32::INFINITY,
        sum: ExpSum::ZERO,
    };

    /// Whether the max is NaN or `+∞` (the row's results are the special-value
    /// limits; its sum is meaningless).
    pub fn special(&self) -> bool {
        self.m.is_nan() || self.m == f32::INFINITY
    }

    /// The state of a NaN row.
    const NAN: RowState = RowState {
        m: f32::NAN,
        lo: f32::NEG_INFINITY,
        sum: ExpSum::ZERO,
    };

    /// This state of the `n` keys `key(i)` as the pass left it, made
    /// complete about special values (see [`RowState`]): a finite max
    /// with a finite sum is returned as it is; otherwise the keys are
    /// scanned, in scalar (such rows are rare): a NaN anywhere (the max
    /// may not show it) gives a NaN max; `+∞` entries give the `+∞` max
    /// and their count; a row of `−∞` (or empty) stays as it is.
    pub(crate) fn complete(self, n: usize, key: impl Fn(usize) -> f32) -> RowState {
        let nan_sum = self.sum.total().is_nan();
        if self.m.is_finite() && !nan_sum {
            return self;
        }
        if self.m.is_nan() || nan_sum || (0..n).any(|i| key(i).is_nan()) {
            return RowState::NAN;
        }
        if self.m == f32::NEG_INFINITY {
            return self;
        }
        let k = (0..n).filter(|&i| key(i) == f32::INFINITY).count() as f64;
        RowState {
            m: f32::INFINITY,
            lo: f32::NEG_INFINITY,
            sum: ExpSum { k, delta: 0.0 },
        }
    }

    /// `self` followed by `o`, for a source whose `diff` is `key − m`
    /// (plain f32 rows): a NaN state wins; two `+∞` states add their sums
    /// (complete states: their counts of `+∞` entries); a `+∞` state
    /// beside a finite one keeps its own (the finite terms are 0 against
    /// `+∞`).
    pub fn merge(self, o: RowState) -> RowState {
        self.merge_scaled(o, 1.0)
    }

    /// [`RowState::merge`] for a source of [`Source::key_scale`] `scale`.
    pub(crate) fn merge_scaled(self, o: RowState, scale: f64) -> RowState {
        if self.m.is_nan() {
            return self;
        }
        if o.m.is_nan() {
            return o;
        }
        // A `+∞` max: each finite side is rescaled by `e^(−∞) = 0`.
        let (m, sum) = self.sum.merge(self.m, o.sum, o.m, scale);
        RowState {
            m,
            lo: self.lo.min(o.lo),
            sum,
        }
    }
}

/// Rows `0..rows` of width `w`, each on its own.
///
/// # Safety
/// Every row of `src` readable and of `snk` writable over `0..w`; equal or
/// disjoint buffers.
#[inline(always)]
pub(crate) unsafe fn rows<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    rows: usize,
    w: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        for r in 0..rows {
            let (x, y) = (src.row(r, w), snk.row(r, w));
            let st = state::<S, Src, Snk>(s, src, x, 0, w);
            if !st.m.is_finite() {
                special_row::<Src, Snk>(*src, *snk, x, y, w, st.m);
            } else if Snk::constant(st.sum).is_nan() {
                nan_row(*snk, y, w);
            } else {
                write::<S, Src, Snk>(s, src, snk, (x, y), 0, w, st, w >= STREAM_MIN);
            }
        }
    }
}

/// Writes row `x`'s results to `y` over `i0..i0 + n` from the whole row's
/// (finite) state; `stream`: with non-temporal stores (rows of
/// [`STREAM_MIN`] or more: the output will not be read from cache).
///
/// # Safety
/// Row `x` of `src` readable and `y` of `snk` writable over `i0..i0 + n`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn write<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    (x, y): (Src::Row, Snk::Row),
    i0: usize,
    n: usize,
    st: RowState,
    stream: bool,
) {
    let c = Snk::constant(st.sum);
    let d = Due::<S, Src, Snk>::new(x, y, st.m, c, src.in_exp_range(st.lo, st.m));
    // Nothing parked: the results come from the keys.
    let park = core::ptr::null();
    // SAFETY: the caller's contract.
    unsafe {
        if stream && S::HAS_STREAM {
            d.write::<true>(s, src, snk, false, park, i0, n);
            s.stream_fence();
        } else {
            d.write::<false>(s, src, snk, false, park, i0, n);
        }
    }
}

/// The state of row `x` over `i0..i0 + n`: its chunks' states (chunks
/// counted from `i0`) merged left to right.
///
/// # Safety
/// Row `x` readable over `i0..i0 + n`.
#[inline(always)]
pub(crate) unsafe fn state<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
) -> RowState {
    let mut st = RowState::EMPTY;
    let mut i = i0;
    // SAFETY: each chunk lies inside `i0..i0 + n`.
    unsafe {
        while i < i0 + n {
            let len = CHUNK.min(i0 + n - i);
            st = st.merge_scaled(
                chunk_state::<S, Src, Snk>(s, src, x, i, len),
                src.key_scale(),
            );
            if st.special() {
                break;
            }
            i += len;
        }
    }
    st
}

/// The state of one chunk (`i0..i0 + n`, `n ≤ CHUNK`) by the blocked online
/// pass; the next block is prefetched along each (compute-bound) sum.
///
/// # Safety
/// Row `x` readable over `i0..i0 + n`.
#[inline(always)]
unsafe fn chunk_state<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
) -> RowState {
    // SAFETY: the caller's contract.
    let st = unsafe { chunk_blocks::<S, Src, Snk>(s, src, x, i0, n, RowState::EMPTY) };
    finish_chunk::<S, Snk>(st)
}

/// A chunk's state as it leaves the blocked pass: the minimum reads `−∞`
/// where the kernel does not track it.
#[inline(always)]
pub(crate) fn finish_chunk<S: Isa, Snk: Sink>(mut st: RowState) -> RowState {
    if !tracks_min::<S, Snk>() {
        st.lo = f32::NEG_INFINITY;
    }
    st
}

/// The blocked online pass over `i0..i0 + n` of a chunk whose state so far
/// is `st` (blocks counted from `i0`: a chunk passed in pieces that start
/// at multiples of [`BLOCK_VECTORS`] vectors gets the bits of the chunk
/// passed at once). A block whose max is NaN or `+∞` ends it: the state
/// returned is then [`RowState::special`].
///
/// # Safety
/// Row `x` readable over `i0..i0 + n`.
#[inline(always)]
pub(crate) unsafe fn chunk_blocks<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
    st: RowState,
) -> RowState {
    let block = BLOCK_VECTORS * S::F32_LANES;
    let track = tracks_min::<S, Snk>();
    let mut st = st;
    let mut i = i0;
    // SAFETY: each block lies inside `i0..i0 + n`.
    unsafe {
        while i < i0 + n {
            let len = block.min(i0 + n - i);
            let (blo, bm) = range_of(s, src, x, i, len, track);
            if bm.is_nan() || bm == f32::INFINITY {
                return RowState { m: bm, ..st };
            }
            st.lo = st.lo.min(blo);
            if bm > st.m {
                st.sum = match st.m {
                    f32::NEG_INFINITY => ExpSum::ZERO,
                    m => st
                        .sum
                        .rescale(libm::exp((m as f64 - bm as f64) * src.key_scale())),
                };
                st.m = bm;
            }
            if st.m > f32::NEG_INFINITY {
                let sh = src.shift(s, s.splat_f32s(st.m));
                // The sweep passes each pair's own element index: the
                // same element of the next block is `len` further.
                let pf = &mut Prefetch {
                    src,
                    row: x,
                    ahead: len,
                };
                let sum = match src.in_exp_range(blo, st.m) {
                    true => sweep::<S, Src, Snk::Acc<S>, _, true>(s, src, x, i, len, sh, pf),
                    false => sweep::<S, Src, Snk::Acc<S>, _, false>(s, src, x, i, len, sh, pf),
                };
                st.sum = st.sum + sum;
            }
            i += len;
        }
    }
    st
}
