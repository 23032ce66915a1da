//! The batch pipeline: rows longer than four vectors and shorter than
//! [`TWO_PASS_MIN`](crate::plan::TWO_PASS_MIN). Each row's three steps
//! (range, sum, write) are spread over three consecutive sweeps, so that
//! each sweep does the sum of one row, the range of the next and the
//! results of the previous:
//! ```text
//! (lo, m) = range(row 0)
//! for r in rows:
//!     sweep over i:  t = term(x_r[i] − m_r), Σ_r += t, park e^d at y_r[i]   sum
//!                    (lo, m)_{r+1} ⊕= x_{r+1}[i]                           next range
//!                    y_{r−1}[i] = result_{r−1}(i)                           previous results
//!     c_r = constant(Σ_r)
//! y_last = result_last
//! ```
//! The exp is ~10 operations per vector and the core is bound by the
//! operations it issues, not by one port: a separate range pass and write
//! pass would each pay a loop of their own, while inside the exp sweep they
//! cost two operations per vector each and fill issue slots the exp's
//! dependency chains leave idle. Where 16 registers cannot hold all three
//! streams ([`Isa::FUSED_SWEEP`]), the sweep does the sum alone and one
//! loop after it writes the previous row and takes the next one's range.
//!
//! **Streaming** (batches of [`STREAM_MIN`](crate::plan::STREAM_MIN)
//! elements or more, where [`Isa::HAS_STREAM`]): the output is written
//! once, with non-temporal stores, and the sum sweep stores nothing
//! there. Rows up to [`SCRATCH_LEN`] park their exps in a stack row (in
//! L1) and write `e · c` from it; longer rows ([`LateRow`]), and sinks
//! that do not park, write the previous row's results inside the next
//! row's sum sweep, so that one loop reads memory (the next row) and writes
//! it: 8 bytes of memory traffic per element instead of 12.
//!
//! Every form computes a row's sum in the same order and each result as
//! the same expression, so a row's bits do not depend on the form, the
//! batch, or its neighbours.

use super::{Along, Due, nan_row, range_of, special_row, sweep, tracks_min};
use crate::isa::{Isa, LatePairs, store};
use crate::stage::Output;
use crate::stage::{Sink, Source};
use crate::sum::{Acc, ExpSum, Range};

/// Rows up to this long park their exps in a stack row of this many
/// floats (16 KiB, in L1) in the streaming form: one exp per element and
/// 8 bytes of memory traffic. Longer rows recompute the exp for their
/// results instead (two per element, the same traffic). See
/// `docs/PERFORMANCE.md#thresholds`.
pub const SCRATCH_LEN: usize = 4096;

/// Rows `0..rows` of width `w` (`w > 4·F32_LANES`); `STREAM`: the
/// out-of-cache form.
///
/// # Safety
/// Every row of `src` readable and of `snk` writable over `0..w`; the two
/// buffers equal or disjoint. (A sweep over row `r` reads rows `r` and
/// `r + 1` of the input and writes rows `r` and `r − 1` of the output, so
/// in place every input is read before it is overwritten.)
#[inline(always)]
pub(crate) unsafe fn rows<S: Isa, Src: Source, Snk: Sink, const STREAM: bool>(
    s: S,
    src: &Src,
    snk: &Snk,
    rows: usize,
    w: usize,
) {
    let track = tracks_min::<S, Snk>();
    let scratch_form = STREAM && Snk::PARKS && w <= SCRATCH_LEN;
    // The streaming form's stack row (not zeroed per row: every use
    // writes its first `w` floats first).
    let mut scratch = [0.0f32; SCRATCH_LEN];
    // SAFETY (whole body): the caller's contract; each form's sweeps as
    // the module comment describes.
    unsafe {
        let (mut lo, mut m) = range_of(s, src, src.row(0, w), 0, w, track);
        // The previous row, whose results are still due.
        let mut due: Option<Due<S, Src, Snk>> = None;
        for r in 0..rows {
            let (x, y) = (src.row(r, w), snk.row(r, w));
            // The last row takes its own range as its "next" (ignored):
            // one instantiation less per form.
            let next = if r + 1 < rows {
                src.row_after(x, 1, w)
            } else {
                x
            };
            let range;
            if m.is_finite() {
                let row = Row {
                    x,
                    next,
                    y,
                    has_next: r + 1 < rows,
                    w,
                    m,
                    sh: src.shift(s, s.splat_f32s(m)),
                    in_range: src.in_exp_range(lo, m),
                    track,
                };
                let (sum, next_range) = match (STREAM, scratch_form) {
                    (false, _) => in_cache::<S, Src, Snk>(s, src, snk, row, due.take()),
                    (true, true) => {
                        let park = scratch.as_mut_ptr();
                        parked_stream::<S, Src, Snk>(s, src, snk, row, park)
                    }
                    (true, false) => late::<S, Src, Snk>(s, src, snk, row, due.take()),
                };
                let c = Snk::constant(sum);
                if c.is_nan() {
                    // A NaN in the row (the max was finite).
                    nan_row(*snk, y, w);
                } else if !scratch_form {
                    due = Some(Due::new(x, y, m, c, row.in_range));
                }
                range = next_range;
            } else {
                if let Some(d) = due.take() {
                    write_due::<S, Src, Snk, STREAM>(s, src, snk, d, w);
                }
                special_row::<Src, Snk>(*src, *snk, x, y, w, m);
                range = range_of(s, src, next, 0, w, track);
            }
            (lo, m) = range;
        }
        if let Some(d) = due {
            write_due::<S, Src, Snk, STREAM>(s, src, snk, d, w);
        }
        if STREAM {
            s.stream_fence();
        }
    }
}

/// The row being summed: its input, the next row's (its own for the last
/// row), its output, the width, its max and shifted max, whether its exps skip the
/// flush, whether ranges track the minimum.
struct Row<S: Isa, Src: Source, Snk: Sink> {
    x: Src::Row,
    next: Src::Row,
    y: Snk::Row,
    has_next: bool,
    w: usize,
    m: f32,
    sh: Src::Shift<S>,
    in_range: bool,
    track: bool,
}

impl<S: Isa, Src: Source, Snk: Sink> Clone for Row<S, Src, Snk> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Isa, Src: Source, Snk: Sink> Copy for Row<S, Src, Snk> {}

/// All of a due row's results, at once (after a special row, and at the
/// end of the batch): from its parked exps in cache, from its keys when
/// streaming.
///
/// # Safety
/// As [`rows`].
#[inline(always)]
unsafe fn write_due<S: Isa, Src: Source, Snk: Sink, const STREAM: bool>(
    s: S,
    src: &Src,
    snk: &Snk,
    d: Due<S, Src, Snk>,
    w: usize,
) {
    let park = parked_in_output(snk, d.y);
    let parked = !STREAM && Snk::PARKS_IN_OUTPUT;
    // SAFETY: the caller's contract.
    unsafe { d.write::<STREAM>(s, src, snk, parked, park, 0, w) }
}

/// Runs `sweep` over the row with `along`, instantiated for the row's
/// `in_range`.
macro_rules! sweep_row {
    ($s:expr, $src:expr, $row:expr, $in_range:expr, $along:expr) => {
        match $in_range {
            true => {
                sweep::<S, Src, Snk::Acc<S>, _, true>($s, $src, $row.x, 0, $row.w, $row.sh, $along)
            }
            false => {
                sweep::<S, Src, Snk::Acc<S>, _, false>($s, $src, $row.x, 0, $row.w, $row.sh, $along)
            }
        }
    };
}

/// The in-cache form: the row's exps parked in its output (where the sink
/// parks), the previous row's results and the next row's range inside the
/// sweep, or in one loop after it where the sweep is not fused. Returns
/// the row's sum and the next row's range.
///
/// # Safety
/// As [`rows`].
#[inline(always)]
unsafe fn in_cache<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    row: Row<S, Src, Snk>,
    due: Option<Due<S, Src, Snk>>,
) -> (ExpSum, (f32, f32)) {
    let p = parked_in_output(snk, row.y);
    let park = Park {
        p,
        on: Snk::PARKS_IN_OUTPUT,
    };
    // SAFETY (whole body): the caller's contract.
    unsafe {
        if !S::FUSED_SWEEP {
            let sum = sweep_row!(s, src, row, row.in_range, &mut { park });
            return (sum, finish_and_range::<S, Src, Snk>(s, src, snk, due, row));
        }
        let mut next = NextRange {
            src,
            r: row.next,
            range: Range::new(s, row.track),
        };
        let ahead = StoreAhead {
            snk,
            y: row.y,
            d: row.w.min(S::STORE_AHEAD),
            on: park.on,
        };
        let sum = match due {
            Some(d) => {
                let fin = Finish::<S, Src, Snk> {
                    d,
                    src,
                    snk,
                    park: parked_in_output(snk, d.y),
                };
                let mut along = (ahead, (&mut next, fin), park);
                sweep_row!(s, src, row, row.in_range, &mut along)
            }
            None => sweep_row!(s, src, row, row.in_range, &mut (ahead, &mut next, park)),
        };
        (sum, next.range.finish(s))
    }
}

/// The streaming form for rows that park in the stack row `park`: the sum
/// sweep parks there (with the next row's range, or prefetching it where
/// the sweep is not fused), then the row's results are streamed out.
///
/// # Safety
/// As [`rows`]; `park` writable for `row.w` floats.
#[inline(always)]
unsafe fn parked_stream<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    row: Row<S, Src, Snk>,
    park: *mut f32,
) -> (ExpSum, (f32, f32)) {
    let parking = Park { p: park, on: true };
    // SAFETY (whole body): the caller's contract.
    unsafe {
        let (sum, range) = if S::FUSED_SWEEP {
            let mut next = NextRange {
                src,
                r: row.next,
                range: Range::new(s, row.track),
            };
            // The fused range reads the next row from memory: the lines
            // are asked for ahead of it (PERFORMANCE.md, *Out of cache*).
            let pf = Prefetch {
                src,
                row: row.next,
                ahead: S::PREFETCH_AHEAD,
            };
            let sum = sweep_row!(s, src, row, row.in_range, &mut (&mut next, (pf, parking)));
            (sum, next.range.finish(s))
        } else {
            let pf = Prefetch {
                src,
                row: row.next,
                ahead: S::PREFETCH_AHEAD,
            };
            let sum = sweep_row!(s, src, row, row.in_range, &mut (pf, parking));
            (sum, range_of(s, src, row.next, 0, row.w, row.track))
        };
        let c = Snk::constant(sum);
        if !c.is_nan() {
            let d = Due::<S, Src, Snk>::new(row.x, row.y, row.m, c, true);
            d.write::<true>(s, src, snk, true, park, 0, row.w);
        }
        (sum, range)
    }
}

/// The streaming form for long rows and sinks that do not park: the
/// previous row's results (`due`) are written inside this row's sum
/// sweep, from the first vector-aligned element of its output on, with
/// non-temporal stores ([`LateRow`]); the elements before that first, the
/// rest after.
///
/// # Safety
/// As [`rows`].
#[inline(always)]
unsafe fn late<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    row: Row<S, Src, Snk>,
    due: Option<Due<S, Src, Snk>>,
) -> (ExpSum, (f32, f32)) {
    let w = row.w;
    // Without a due row, an empty one (its cursor at the end) keeps this
    // to one instantiation per `in_range`.
    let (d, head) = match due {
        Some(d) => (d, snk.output().stream_head::<S>(d.y, 0, w)),
        None => (Due::new(row.x, row.y, row.m, 0.0, true), w),
    };
    // SAFETY (whole body): the caller's contract.
    unsafe {
        if due.is_some() {
            d.write::<false>(s, src, snk, false, core::ptr::null(), 0, head);
        }
        // Both rows in the exp's range, or the flushing exp for both
        // (exact for in-range rows too): two instantiations, not four.
        let (sum, range, i) = match row.in_range && d.in_range {
            true => late_sweep::<S, Src, Snk, true>(s, src, snk, row, d, head),
            false => late_sweep::<S, Src, Snk, false>(s, src, snk, row, d, head),
        };
        if due.is_some() {
            d.write::<true>(s, src, snk, false, core::ptr::null(), i, w - i);
        }
        (sum, range)
    }
}

/// [`late`]'s sweep, with the due row's cursor from `head`; returns the
/// sum, the next row's range, and where the cursor stopped.
///
/// # Safety
/// As [`rows`].
#[inline(always)]
unsafe fn late_sweep<S: Isa, Src: Source, Snk: Sink, const IN_RANGE: bool>(
    s: S,
    src: &Src,
    snk: &Snk,
    row: Row<S, Src, Snk>,
    d: Due<S, Src, Snk>,
    head: usize,
) -> (ExpSum, (f32, f32), usize) {
    let mut lr = LateRow::<S, Src, Snk, IN_RANGE> {
        d,
        src,
        snk,
        row,
        i: head,
        range: Range::new(s, row.track),
        ranged: 0,
    };
    let (x, w) = (row.x, row.w);
    // SAFETY (whole body): the caller's contract.
    unsafe {
        if S::FUSED_SWEEP {
            let mut next = NextRange {
                src,
                r: row.next,
                range: Range::new(s, row.track),
            };
            let along = &mut (&mut next, &mut lr);
            let sum = sweep::<S, Src, Snk::Acc<S>, _, IN_RANGE>(s, src, x, 0, w, row.sh, along);
            (sum, next.range.finish(s), lr.i)
        } else {
            let along = &mut (
                Prefetch {
                    src,
                    row: row.next,
                    ahead: 0,
                },
                &mut lr,
            );
            let sum = sweep::<S, Src, Snk::Acc<S>, _, IN_RANGE>(s, src, x, 0, w, row.sh, along);
            // The next row's range: what a hand-written loop took, and the rest.
            let (lo, hi) = range_of(s, src, row.next, lr.ranged, w - lr.ranged, row.track);
            let (alo, ahi) = lr.range.finish(s);
            (sum, (lo.min(alo), hi.max(ahi)), lr.i)
        }
    }
}

/// The previous row's results and the next row's range in one loop (the
/// in-cache form where the sweep is not fused): the writes are bound by
/// stores, the range by nothing but its operations, so together they cost
/// little more than the writes alone. Eight vectors per iteration, two
/// range accumulators.
///
/// # Safety
/// As [`rows`].
#[inline(always)]
unsafe fn finish_and_range<S: Isa, Src: Source, Snk: Sink>(
    s: S,
    src: &Src,
    snk: &Snk,
    due: Option<Due<S, Src, Snk>>,
    row: Row<S, Src, Snk>,
) -> (f32, f32) {
    let (l, w, nr) = (S::F32_LANES, row.w, row.next);
    // SAFETY (the early returns): the caller's contract.
    let d = match (due, row.has_next) {
        (Some(d), true) => d,
        (None, true) => return unsafe { range_of(s, src, nr, 0, w, row.track) },
        (None, false) => return (f32::NAN, f32::NAN),
        (Some(d), false) => {
            let park = parked_in_output(snk, d.y);
            unsafe { d.write::<false>(s, src, snk, Snk::PARKS_IN_OUTPUT, park, 0, w) };
            return (f32::NAN, f32::NAN);
        }
    };
    let (out, y, park) = (snk.output(), d.y, parked_in_output(snk, d.y));
    let parked = Snk::PARKS_IN_OUTPUT;
    macro_rules! at {
        ($i:expr) => {
            d.at::<false>(s, src, parked, park, $i)
        };
    }
    let mut acc = [Range::new(s, row.track); 2];
    let mut i = 0;
    // SAFETY (all accesses): full vectors below `w`, then the tail.
    unsafe {
        macro_rules! two {
            ($j:expr) => {{
                let j = $j;
                acc[0].add(s, src.load(s, nr, j));
                acc[1].add(s, src.load(s, nr, j + l));
                out.store(s, y, j, at!(j));
                out.store(s, y, j + l, at!(j + l));
            }};
        }
        for _ in 0..w / (8 * l) {
            two!(i);
            two!(i + 2 * l);
            two!(i + 4 * l);
            two!(i + 6 * l);
            i += 8 * l;
        }
        for _ in 0..(w - i) / l {
            acc[0].add(s, src.load(s, nr, i));
            out.store(s, y, i, at!(i));
            i += l;
        }
        if i < w {
            let rem = w - i;
            let hi = src.load_tail(s, nr, i, rem, f32::NEG_INFINITY);
            acc[1].add_tail(
                s,
                hi,
                #[inline(always)]
                || src.load_tail(s, nr, i, rem, f32::INFINITY),
            );
            out.store_tail(s, y, i, rem, d.at_tail(s, src, parked, park, i, rem));
        }
    }
    let [a, b] = acc;
    a.merge(s, b).finish(s)
}

/// Parks each exp at `p + i` (when `on`: a constant of the sink).
struct Park {
    p: *mut f32,
    on: bool,
}

impl<S: Isa, A: Acc<S>> Along<S, A> for Park {
    #[inline(always)]
    unsafe fn exp(&mut self, _: S, i: usize, e: S::f32s) {
        if self.on {
            // SAFETY: the sweep's row is writable at `p` (the caller's).
            unsafe { store::<S>(self.p.add(i), e) };
        }
    }
    #[inline(always)]
    unsafe fn tail(&mut self, s: S, i: usize, rem: usize, e: S::f32s) {
        if self.on {
            // SAFETY: as `exp`.
            unsafe { s.store_tail(self.p.add(i), rem, e) };
        }
    }
}

/// The next row's range, at the same elements.
struct NextRange<'a, S: Isa, Src: Source> {
    src: &'a Src,
    r: Src::Row,
    range: Range<S>,
}

impl<S: Isa, A: Acc<S>, Src: Source> Along<S, A> for &mut NextRange<'_, S, Src> {
    #[inline(always)]
    unsafe fn vec(&mut self, s: S, i: usize) {
        // SAFETY: the next row is as long as the sweep's (the caller's).
        self.range.add(s, unsafe { self.src.load(s, self.r, i) });
    }
    #[inline(always)]
    unsafe fn tail(&mut self, s: S, i: usize, rem: usize, _: S::f32s) {
        let (src, r) = (self.src, self.r);
        // SAFETY: as `vec`.
        unsafe {
            let hi = src.load_tail(s, r, i, rem, f32::NEG_INFINITY);
            self.range.add_tail(
                s,
                hi,
                #[inline(always)]
                || src.load_tail(s, r, i, rem, f32::INFINITY),
            );
        }
    }
}

/// The previous row's results, at the same elements, from its exps parked
/// at `park` (in its output, where [`Sink::PARKS_IN_OUTPUT`]) or its
/// keys.
struct Finish<'a, S: Isa, Src: Source, Snk: Sink> {
    d: Due<S, Src, Snk>,
    src: &'a Src,
    snk: &'a Snk,
    park: *const f32,
}

impl<S: Isa, A: Acc<S>, Src: Source, Snk: Sink> Along<S, A> for Finish<'_, S, Src, Snk> {
    #[inline(always)]
    unsafe fn vec(&mut self, s: S, i: usize) {
        let (d, park) = (&self.d, self.park);
        // SAFETY: the previous row is as long as the sweep's (the caller's).
        unsafe {
            let v = d.at::<false>(s, self.src, Snk::PARKS_IN_OUTPUT, park, i);
            self.snk.output().store(s, d.y, i, v);
        }
    }
    #[inline(always)]
    unsafe fn tail(&mut self, s: S, i: usize, rem: usize, _: S::f32s) {
        let (d, park) = (&self.d, self.park);
        // SAFETY: as `vec`.
        unsafe {
            let v = d.at_tail(s, self.src, Snk::PARKS_IN_OUTPUT, park, i, rem);
            self.snk.output().store_tail(s, d.y, i, rem, v);
        }
    }
}

/// Asks early for ownership of the output lines the in-cache sweep (or,
/// on short rows, the next row's) will store, `d` floats ahead
/// ([`Isa::STORE_AHEAD`]).
struct StoreAhead<'a, Snk: Sink> {
    snk: &'a Snk,
    y: Snk::Row,
    d: usize,
    on: bool,
}

impl<S: Isa, A: Acc<S>, Snk: Sink> Along<S, A> for StoreAhead<'_, Snk> {
    #[inline(always)]
    unsafe fn pair(&mut self, s: S, i: usize) {
        if self.on && S::STORE_AHEAD > 0 {
            let out = self.snk.output();
            out.prefetch_w(s, self.y, self.d + i);
            out.prefetch_w(s, self.y, self.d + i + S::F32_LANES);
        }
    }
}

/// Asks for the lines from element `ahead + i` of `row` along a
/// compute-bound sweep, every line of each pair (the next row, or the next
/// block, from memory).
pub(crate) struct Prefetch<'a, Src: Source> {
    pub(crate) src: &'a Src,
    pub(crate) row: Src::Row,
    pub(crate) ahead: usize,
}

impl<S: Isa, A: Acc<S>, Src: Source> Along<S, A> for Prefetch<'_, Src> {
    #[inline(always)]
    unsafe fn pair(&mut self, s: S, i: usize) {
        // Every line of the pair's two vectors (two on AVX-512).
        for k in 0..(2 * S::F32_LANES).div_ceil(LINE_FLOATS) {
            self.src
                .prefetch(s, self.row, self.ahead + i + k * LINE_FLOATS);
        }
    }
}

/// Floats per 64-byte cache line.
const LINE_FLOATS: usize = 16;

/// Where row `y`'s exps are parked in its output: the output row's f32
/// memory where the sink parks there ([`Sink::PARKS_IN_OUTPUT`]), null
/// (never read) otherwise. Whether anything is parked is that constant,
/// never a test of the pointer: the loops are compiled for one form.
#[inline(always)]
fn parked_in_output<Snk: Sink>(snk: &Snk, y: Snk::Row) -> *mut f32 {
    match Snk::PARKS_IN_OUTPUT {
        true => snk.output().f32_row(y).unwrap_or(core::ptr::null_mut()),
        false => core::ptr::null_mut(),
    }
}

/// The previous row's results, streamed inside this row's sum sweep: a
/// pair of vectors per pair of the sweep, from element `i` (vector-aligned
/// in the output) while a pair fits in the row. Where [`Isa::late_pairs`]
/// has a hand-written loop (plain f32 rows, softmax results), each block's
/// pairs go to it, and it also takes the next row's range from element 0
/// (`ranged` elements of it so far).
struct LateRow<'a, S: Isa, Src: Source, Snk: Sink, const IN_RANGE: bool> {
    d: Due<S, Src, Snk>,
    src: &'a Src,
    snk: &'a Snk,
    row: Row<S, Src, Snk>,
    i: usize,
    range: Range<S>,
    ranged: usize,
}

impl<S, A, Src, Snk, const IN_RANGE: bool> Along<S, A> for &mut LateRow<'_, S, Src, Snk, IN_RANGE>
where
    S: Isa,
    A: Acc<S>,
    Src: Source,
    Snk: Sink,
{
    #[inline(always)]
    unsafe fn block(&mut self, s: S, i: usize, end: usize, acc: &mut A) -> usize {
        let (l, w, src) = (S::F32_LANES, self.row.w, self.src);
        if !Snk::EXP_TIMES_C {
            return i;
        }
        let (lsh, lc) = self.d.vectors(s, src);
        let (Some(m), Some(lm)) = (Src::raw_max(self.row.sh), Src::raw_max(lsh)) else {
            return i;
        };
        let rows = (
            src.raw_row(self.row.x),
            src.raw_row(self.row.next),
            src.raw_row(self.d.x),
            self.snk.output().f32_row(self.d.y),
        );
        let (Some(x), Some(next), Some(lx), Some(ly)) = rows else {
            return i;
        };
        let Some(sum) = acc.plain() else { return i };
        let pairs = ((end - i) / (2 * l)).min((w - self.i) / (2 * l));
        if pairs == 0 || self.ranged != i {
            return i;
        }
        let mut job = LatePairs {
            x: x.wrapping_add(i),
            next: next.wrapping_add(i),
            lx: lx.wrapping_add(self.i),
            ly: ly.wrapping_add(self.i),
            pairs,
            m,
            lm,
            c: lc,
            h: sum.h,
            err: sum.err,
            hi: self.range.hi,
            lo: self.range.lo,
            in_range: IN_RANGE,
        };
        // SAFETY: `pairs` pairs from `i` inside this row's block and the
        // next row, and from `self.i` inside the due row, whose output is
        // vector-aligned there (its head, then whole pairs).
        let done = unsafe { s.late_pairs(&mut job) };
        (sum.h, sum.err) = (job.h, job.err);
        (self.range.hi, self.range.lo) = (job.hi, job.lo);
        self.ranged += 2 * l * done;
        self.i += 2 * l * done;
        i + 2 * l * done
    }
    #[inline(always)]
    unsafe fn pair(&mut self, s: S, _: usize) {
        let (l, w) = (S::F32_LANES, self.row.w);
        if self.i + 2 * l <= w {
            let (d, src, i, out) = (&self.d, self.src, self.i, self.snk.output());
            let none = core::ptr::null();
            // SAFETY: a pair inside the due row, from its stream head on by
            // whole pairs.
            unsafe {
                out.store_stream(s, d.y, i, d.at::<IN_RANGE>(s, src, false, none, i));
                out.store_stream(s, d.y, i + l, d.at::<IN_RANGE>(s, src, false, none, i + l));
            }
            self.i += 2 * l;
        }
    }
}
