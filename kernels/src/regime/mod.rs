//! The row regimes and the pieces they share. A regime is one way of
//! running a batch of rows through the three steps of every softmax-shaped
//! function:
//! ```text
//! m = max key                      range: Range (and the min, where tracked)
//! Σ = Σ term(diff(key, m))         sweep: exps and their sum (Acc), plus
//!                                  whatever work rides along (Along)
//! y = result(c = constant(Σ))      write: from parked exps or from keys
//! ```
//! [`crate::plan`] picks the regime for a batch; each is generic over the
//! instruction set, the [`Source`] and the [`Sink`]:
//!
//! | regime | rows | file |
//! |---|---|---|
//! | short | ≤ 4 vectors, in registers from load to store | [`short`] |
//! | pipeline | longer, in cache: one sweep per row carries its neighbours' steps | [`pipeline`] |
//! | streaming | the pipeline out of cache, non-temporal output | [`pipeline`] |
//! | two-pass | longer than L2: mergeable chunk states, then one output pass | [`two_pass`] |
//!
//! Rows whose max is not finite (NaN, `+∞`, all `−∞`) leave every regime
//! for [`special_row`], in scalar code: they are rare, their results exact.
//! A row with a NaN and a finite max has a NaN sum, so a NaN row constant:
//! every regime checks it (one compare per row, or per short group) and
//! writes the canonical NaN row ([`nan_row`]).

use crate::isa::{Isa, load};
use crate::stage::{Output, Sink, Source, term};
use crate::sum::{Acc, ExpSum, Range};

pub(crate) mod pipeline;
pub(crate) mod short;
pub(crate) mod two_pass;

/// Whether ranges track the minimum for this instruction set and sink:
/// where the exp's flush costs more than a `vminps`, or where the sum
/// needs to know about tiny terms.
#[inline(always)]
pub(crate) fn tracks_min<S: Isa, Snk: Sink>() -> bool {
    S::TRACK_MIN || <Snk::Acc<S> as Acc<S>>::WANTS_MIN
}

/// Work carried along a [`sweep`]: hooks called at each vector of the
/// row, beside its term. Each is a no-op by default; a sweep's companions
/// are a tuple of these (the regimes' forms differ only in them).
pub(crate) trait Along<S: Isa, A: Acc<S>> {
    /// Before the loop of a block `i..end` of whole vectors: may run
    /// pairs itself (a hand-written loop) and returns where the generic
    /// loop goes on.
    ///
    /// # Safety
    /// `i..end` lies inside the sweep's row.
    #[inline(always)]
    unsafe fn block(&mut self, s: S, i: usize, end: usize, acc: &mut A) -> usize {
        let _ = (s, end, acc);
        i
    }
    /// Once per pair of vectors from element `i` (prefetches).
    ///
    /// # Safety
    /// Two vectors from `i` lie inside the sweep's row.
    #[inline(always)]
    unsafe fn pair(&mut self, s: S, i: usize) {
        let _ = (s, i);
    }
    /// Once per vector at element `i`.
    ///
    /// # Safety
    /// One vector from `i` lies inside the sweep's row.
    #[inline(always)]
    unsafe fn vec(&mut self, s: S, i: usize) {
        let _ = (s, i);
    }
    /// The exps of the vector at element `i`.
    ///
    /// # Safety
    /// As [`Along::vec`].
    #[inline(always)]
    unsafe fn exp(&mut self, s: S, i: usize, e: S::f32s) {
        let _ = (s, i, e);
    }
    /// The last `rem < F32_LANES` elements from `i`, with their exps.
    ///
    /// # Safety
    /// Those elements lie inside the sweep's row.
    #[inline(always)]
    unsafe fn tail(&mut self, s: S, i: usize, rem: usize, e: S::f32s) {
        let _ = (s, i, rem, e);
    }
}

impl<S: Isa, A: Acc<S>> Along<S, A> for () {}

macro_rules! along_tuple {
    ($($t:ident $i:tt),+) => {
        impl<S: Isa, A: Acc<S>, $($t: Along<S, A>),+> Along<S, A> for ($($t,)+) {
            #[inline(always)]
            unsafe fn block(&mut self, s: S, mut i: usize, end: usize, acc: &mut A) -> usize {
                // SAFETY (all hooks): the caller's contract, forwarded.
                $(i = unsafe { self.$i.block(s, i, end, acc) };)+
                i
            }
            #[inline(always)]
            unsafe fn pair(&mut self, s: S, i: usize) {
                $(unsafe { self.$i.pair(s, i) };)+
            }
            #[inline(always)]
            unsafe fn vec(&mut self, s: S, i: usize) {
                $(unsafe { self.$i.vec(s, i) };)+
            }
            #[inline(always)]
            unsafe fn exp(&mut self, s: S, i: usize, e: S::f32s) {
                $(unsafe { self.$i.exp(s, i, e) };)+
            }
            #[inline(always)]
            unsafe fn tail(&mut self, s: S, i: usize, rem: usize, e: S::f32s) {
                $(unsafe { self.$i.tail(s, i, rem, e) };)+
            }
        }
    };
}
along_tuple!(A0 0, A1 1);
along_tuple!(A0 0, A1 1, A2 2);

/// The sum of the terms of row `x`, elements `i0..i0 + n`, against the
/// shifted max `sh`, with `along`'s work at every vector. Blocks of
/// `A::BLOCK` vectors are summed in f32 lanes and folded into the f64
/// result; `S::SWEEP_PAIRS` pairs per loop iteration. `IN_RANGE`: every
/// exp argument of the row is at least `EXP_LO` (the tail flushes anyway:
/// its padding is `−∞`).
///
/// # Safety
/// Row `x` of `src` readable over `i0..i0 + n`; `along`'s contracts.
#[inline(always)]
pub(crate) unsafe fn sweep<S, Src, A, X, const IN_RANGE: bool>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
    sh: Src::Shift<S>,
    along: &mut X,
) -> ExpSum
where
    S: Isa,
    Src: Source,
    A: Acc<S>,
    X: Along<S, A>,
{
    // SAFETY: the caller's contract.
    unsafe { sweep_from::<S, Src, A, X, IN_RANGE>(s, src, x, i0, n, sh, along, ExpSum::ZERO) }
}

/// [`sweep`] continuing the sum `total` of the row's elements before
/// `i0`: each block's fold is added to it in turn, so a row swept in
/// pieces that start at multiples of `A::BLOCK` vectors has the bits of
/// the row swept at once (the half-precision edge sweeps rows tile by
/// tile, `crate::edge`).
///
/// # Safety
/// As [`sweep`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn sweep_from<S, Src, A, X, const IN_RANGE: bool>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
    sh: Src::Shift<S>,
    along: &mut X,
    total: ExpSum,
) -> ExpSum
where
    S: Isa,
    Src: Source,
    A: Acc<S>,
    X: Along<S, A>,
{
    let l = S::F32_LANES;
    let end_vec = i0 + (n - n % l);
    let mut acc = A::new(s);
    let mut total = total;
    let mut i = i0;
    // SAFETY (all accesses): every full vector lies below `end_vec ≤ i0 +
    // n`, the tail's `rem` elements below `i0 + n`. (Macros, not closures:
    // a closure that is not inlined would turn every intrinsic in it into
    // a call.)
    unsafe {
        macro_rules! term {
            ($i:expr) => {
                term::<S, Src, A, IN_RANGE>(s, src, src.load(s, x, $i), sh)
            };
        }
        macro_rules! pair {
            ($i:expr) => {{
                let i = $i;
                along.pair(s, i);
                let a = term!(i);
                along.vec(s, i);
                let b = term!(i + l);
                along.vec(s, i + l);
                along.exp(s, i, A::exp(a));
                along.exp(s, i + l, A::exp(b));
                acc.add_pair::<IN_RANGE>(s, a, b);
            }};
        }
        while i < end_vec {
            let end = end_vec.min(i + A::BLOCK * l);
            i = along.block(s, i, end, &mut acc);
            // Counted loops (a `while i + 2·l <= end` compiles to more
            // loop control per iteration).
            let p = S::SWEEP_PAIRS;
            for _ in 0..(end - i) / (2 * l * p) {
                for k in 0..p {
                    pair!(i + 2 * l * k);
                }
                i += 2 * l * p;
            }
            for _ in 0..(end - i) / (2 * l) {
                pair!(i);
                i += 2 * l;
            }
            if i < end {
                let a = term!(i);
                along.vec(s, i);
                along.exp(s, i, A::exp(a));
                acc.add::<IN_RANGE>(s, a);
                i += l;
            }
            total = total + acc.fold::<IN_RANGE>(s);
        }
        if i < i0 + n {
            let rem = i0 + n - i;
            let key = src.load_tail(s, x, i, rem, f32::NEG_INFINITY);
            let t = term::<S, Src, A, false>(s, src, key, sh);
            along.tail(s, i, rem, A::exp(t));
            let mut last = A::new(s);
            last.add::<false>(s, t);
            total = total + last.fold::<false>(s);
        }
    }
    total
}

/// The range `(min, max)` of row `x`'s keys over `i0..i0 + n` (`n ≥ 1`),
/// four accumulators wide.
///
/// # Safety
/// Row `x` readable over `i0..i0 + n`.
#[inline(always)]
pub(crate) unsafe fn range_of<S: Isa, Src: Source>(
    s: S,
    src: &Src,
    x: Src::Row,
    i0: usize,
    n: usize,
    track: bool,
) -> (f32, f32) {
    let l = S::F32_LANES;
    let mut acc = [Range::new(s, track); 4];
    let mut i = i0;
    // SAFETY (all loads): full vectors below `i0 + n`, then the tail.
    unsafe {
        for _ in 0..n / (4 * l) {
            acc[0].add(s, src.load(s, x, i));
            acc[1].add(s, src.load(s, x, i + l));
            acc[2].add(s, src.load(s, x, i + 2 * l));
            acc[3].add(s, src.load(s, x, i + 3 * l));
            i += 4 * l;
        }
        while i + l <= i0 + n {
            acc[0].add(s, src.load(s, x, i));
            i += l;
        }
        if i < i0 + n {
            let rem = i0 + n - i;
            let hi = src.load_tail(s, x, i, rem, f32::NEG_INFINITY);
            acc[1].add_tail(
                s,
                hi,
                #[inline(always)]
                || src.load_tail(s, x, i, rem, f32::INFINITY),
            );
        }
    }
    let [a, b, c, d] = acc;
    a.merge(s, b).merge(s, c.merge(s, d)).finish(s)
}

/// A row whose results are due: its input and output rows, max, row
/// constant and whether its exps skip the flush. (Scalars, splatted where
/// used: a `Due` is carried from one row's sweep to the next.)
pub(crate) struct Due<S: Isa, Src: Source, Snk: Sink> {
    pub(crate) x: Src::Row,
    pub(crate) y: Snk::Row,
    pub(crate) m: f32,
    pub(crate) c: f32,
    pub(crate) in_range: bool,
    pub(crate) isa: core::marker::PhantomData<S>,
}

impl<S: Isa, Src: Source, Snk: Sink> Clone for Due<S, Src, Snk> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Isa, Src: Source, Snk: Sink> Copy for Due<S, Src, Snk> {}

impl<S: Isa, Src: Source, Snk: Sink> Due<S, Src, Snk> {
    /// The due row `(x, y)` with max `m` and constant `c`.
    #[inline(always)]
    pub(crate) fn new(x: Src::Row, y: Snk::Row, m: f32, c: f32, in_range: bool) -> Self {
        let isa = core::marker::PhantomData;
        Due {
            x,
            y,
            m,
            c,
            in_range,
            isa,
        }
    }

    /// The shifted max and the constant, in vectors.
    #[inline(always)]
    pub(crate) fn vectors(&self, s: S, src: &Src) -> (Src::Shift<S>, S::f32s) {
        (src.shift(s, s.splat_f32s(self.m)), s.splat_f32s(self.c))
    }

    /// The row's results at element `i`: from the exps parked at `park`
    /// (`parked`, a constant at every call site), or from the keys.
    ///
    /// # Safety
    /// One vector readable at `park + i` (`parked`) or of the row.
    #[inline(always)]
    pub(crate) unsafe fn at<const IN_RANGE: bool>(
        &self,
        s: S,
        src: &Src,
        parked: bool,
        park: *const f32,
        i: usize,
    ) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe {
            let (sh, c) = self.vectors(s, src);
            if parked {
                Snk::from_parked(s, load::<S>(park.add(i)), c)
            } else {
                let key = src.load(s, self.x, i);
                Snk::from_key::<S, Src, IN_RANGE>(s, src, key, sh, c)
            }
        }
    }

    /// [`Due::at`] for the last `rem < F32_LANES` elements from `i`.
    ///
    /// # Safety
    /// Those elements readable at `park + i` or of the row.
    #[inline(always)]
    pub(crate) unsafe fn at_tail(
        &self,
        s: S,
        src: &Src,
        parked: bool,
        park: *const f32,
        i: usize,
        rem: usize,
    ) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe {
            let (sh, c) = self.vectors(s, src);
            if parked {
                Snk::from_parked(s, s.load_tail(park.add(i), rem, 0.0), c)
            } else {
                let key = src.load_tail(s, self.x, i, rem, f32::NEG_INFINITY);
                Snk::from_key::<S, Src, false>(s, src, key, sh, c)
            }
        }
    }

    /// Writes the row's results over `i0..i0 + n` (from exps parked at
    /// `park`, when `parked`); with non-temporal stores from the first
    /// vector-aligned element on when `STREAM` (the caller fences).
    ///
    /// # Safety
    /// Those elements of the row (or of `park`) readable, of the output
    /// writable; each read before the same element is written.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn write<const STREAM: bool>(
        &self,
        s: S,
        src: &Src,
        snk: &Snk,
        parked: bool,
        park: *const f32,
        i0: usize,
        n: usize,
    ) {
        // SAFETY: the caller's contract, forwarded.
        unsafe {
            match self.in_range || parked {
                true => self.write_in::<true, STREAM>(s, src, snk, parked, park, i0, n),
                false => self.write_in::<false, STREAM>(s, src, snk, parked, park, i0, n),
            }
        }
    }

    /// [`Due::write`] with its exp's form chosen: `IN_RANGE` only where
    /// the row is in the exp's range or `parked`.
    ///
    /// # Safety
    /// As [`Due::write`].
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn write_in<const IN_RANGE: bool, const STREAM: bool>(
        &self,
        s: S,
        src: &Src,
        snk: &Snk,
        parked: bool,
        park: *const f32,
        i0: usize,
        n: usize,
    ) {
        let l = S::F32_LANES;
        let (out, y) = (snk.output(), self.y);
        macro_rules! at {
            ($i:expr) => {
                self.at::<IN_RANGE>(s, src, parked, park, $i)
            };
        }
        let end = i0 + n;
        let mut i = i0;
        // SAFETY (all accesses): full vectors below `end`, then the tail;
        // streamed vectors from the output's stream head on.
        unsafe {
            if STREAM && S::HAS_STREAM {
                // Up to the first element the output streams to (fewer
                // than a vector).
                let head = out.stream_head::<S>(y, i0, n);
                if head > 0 {
                    let v = self.at_tail(s, src, parked, park, i0, head);
                    out.store_tail(s, y, i0, head, v);
                }
                i += head;
                for _ in 0..(end - i) / (2 * l) {
                    if !parked {
                        // The keys come from memory: ask for them ahead.
                        src.prefetch(s, self.x, i + STREAM_AHEAD);
                    }
                    let (a, b) = (at!(i), at!(i + l));
                    out.store_stream(s, y, i, a);
                    out.store_stream(s, y, i + l, b);
                    i += 2 * l;
                }
            }
            i = write_plain(
                s,
                out,
                y,
                i,
                end - (end - i) % l,
                #[inline(always)]
                |i| at!(i),
            );
            if i < end {
                let v = self.at_tail(s, src, parked, park, i, end - i);
                out.store_tail(s, y, i, end - i, v);
            }
        }
    }
}

/// How far ahead of a streamed write the input is prefetched, in floats
/// (2 KiB, about one DRAM latency of work).
pub(crate) const STREAM_AHEAD: usize = 512;

/// Row `y` of `out` from `at(i)` for the whole vectors of `i..end` (`end
/// − i` a multiple of the lanes), four per iteration, loads before
/// stores; returns `end`.
///
/// # Safety
/// `at(i)` valid over `i..end`, the row writable there, each element read
/// before it is written.
#[inline(always)]
unsafe fn write_plain<S: Isa, O: Output>(
    s: S,
    out: &O,
    y: O::Row,
    mut i: usize,
    end: usize,
    at: impl Fn(usize) -> S::f32s,
) -> usize {
    let l = S::F32_LANES;
    // SAFETY: the caller's contract.
    unsafe {
        for _ in 0..(end - i) / (4 * l) {
            // (Straight-line code: an array iterator here was not unrolled.)
            let (v0, v1, v2, v3) = (at(i), at(i + l), at(i + 2 * l), at(i + 3 * l));
            out.store(s, y, i, v0);
            out.store(s, y, i + l, v1);
            out.store(s, y, i + 2 * l, v2);
            out.store(s, y, i + 3 * l, v3);
            i += 4 * l;
        }
        while i < end {
            out.store(s, y, i, at(i));
            i += l;
        }
    }
    end
}

/// Every result of output row `y` (`w` long) NaN: the canonical quiet NaN,
/// so that a NaN row has the same bits whichever path found it (a NaN
/// produced by arithmetic would carry whichever operand's sign and payload
/// won, and that depends on the order of operations).
///
/// # Safety
/// Row `y` of `snk` writable over `0..w`.
#[inline(never)]
pub(crate) unsafe fn nan_row<Snk: Sink>(snk: Snk, y: Snk::Row, w: usize) {
    for i in 0..w {
        // SAFETY: the caller's contract.
        unsafe { snk.output().store1(y, i, f32::NAN) };
    }
}

/// A row whose max `m` is not finite, in scalar (and out of
/// line; `src` and `snk` by value, so that no regime's copy of them has
/// its address taken): a NaN anywhere
/// makes every result NaN; a `+∞` max shares the mass among the keys equal
/// to it; a `−∞` max (every key `−∞`: a fully masked row) gives nothing
/// everywhere. Each result is written after its key was read.
///
/// # Safety
/// Row `x` of `src` readable and `y` of `snk` writable over `0..w`.
#[inline(never)]
pub(crate) unsafe fn special_row<Src: Source, Snk: Sink>(
    src: Src,
    snk: Snk,
    x: Src::Row,
    y: Snk::Row,
    w: usize,
    m: f32,
) {
    // SAFETY (all accesses): elements `0..w` of the rows.
    unsafe { special_results::<Snk>(w, m, |i| src.key(x, i), |i, v| snk.output().store1(y, i, v)) }
}

/// The results of a row whose max `m` is not finite, or that holds a NaN,
/// from its keys (`key(i)`) to `put(i, result)`: the canonical NaN
/// everywhere for a NaN anywhere; for a `+∞` max, the sink's share for
/// each key equal to it; nothing elsewhere. Result `i` is put after key
/// `i` was read and no key below it is read again (so `put` may overwrite
/// the keys). [`special_row`] and the half-precision edge's rows
/// (which round each result into their output type) share it.
#[inline(always)]
pub(crate) fn special_results<Snk: Sink>(
    w: usize,
    m: f32,
    key: impl Fn(usize) -> f32,
    mut put: impl FnMut(usize, f32),
) {
    let nan = m.is_nan() || (0..w).any(|i| key(i).is_nan());
    if nan {
        for i in 0..w {
            put(i, f32::NAN);
        }
        return;
    }
    let k = (0..w).filter(|&i| key(i) == m).count() as f64;
    let (share, nothing) = Snk::limits(k);
    for i in 0..w {
        let v = match m == f32::INFINITY && key(i) == m {
            true => share,
            false => nothing,
        };
        put(i, v);
    }
}

/// The results of a piece of a row whose complete state
/// ([`two_pass::RowState`]) has a non-finite max or a NaN row constant,
/// from the piece's keys (`key(i)`, `n` of them) to `put(i, result)`, as
/// [`special_results`] gives them for the whole row: the canonical NaN
/// everywhere for a NaN state (or a NaN key); for a `+∞` max, the
/// sink's share of the row's `sum.k` entries equal to it at each key
/// equal to it, nothing elsewhere; nothing everywhere for a `−∞` max (a
/// fully masked row). Result `i` is put after key `i` was read.
#[inline(always)]
pub(crate) fn special_piece<Snk: Sink>(
    n: usize,
    m: f32,
    sum: ExpSum,
    key: impl Fn(usize) -> f32,
    mut put: impl FnMut(usize, f32),
) {
    let nan = m.is_nan() || Snk::constant(sum).is_nan() || (0..n).any(|i| key(i).is_nan());
    if nan {
        for i in 0..n {
            put(i, f32::NAN);
        }
        return;
    }
    let (share, nothing) = Snk::limits(sum.k);
    for i in 0..n {
        let v = match m == f32::INFINITY && key(i) == m {
            true => share,
            false => nothing,
        };
        put(i, v);
    }
}
