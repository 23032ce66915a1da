//! Short rows: at most four vectors (`row_len ≤ 4·F32_LANES`: 64 floats
//! on AVX-512, 32 on AVX2, 16 on NEON), kept in registers from load to
//! store. The general sweeps pay loop setup, a fresh tail mask and an f64
//! fold per row; for a row of 8 or 32 floats that is most of the cost.
//!
//! Every step is a vector operation; no value leaves the registers:
//! ```text
//! v_0..v_{N-1} = keys of the row (inactive tail lanes −∞)
//! m = max_i v_i, then a butterfly: the row max in every lane
//! t_i = term(diff(v_i, m))                    padded lanes give 0
//! c = the sink's row constant from the t_i    (softmax: 1/Σ, the sum in
//!                                              f64 by a fixed tree)
//! y_i = result(v_i, t_i, c)
//! ```
//! A row is a chain of dependent steps (~100 cycles of latency) but only
//! ~40 operations per vector, so rows go in groups of `R` (2 to 8): one
//! check covers the finiteness of all their maxima, their reductions may
//! share shuffles ([`Isa::rows_all_lanes`], [`Isa::recip_sums`]), and the out-of-order core
//! overlaps them. Where [`Isa::PIPELINE_SHORT`], the next group's maxima
//! are reduced before the current group's exps (a group alone is ~150
//! operations behind two dependent reductions, more than the scheduler
//! holds). A group holding a row whose max is not finite runs row by row:
//! its ordinary rows get exactly the bits they get in a group.
//! Rejected forms (transposed groups, two rows in flight on AVX2, exps
//! stored early): see `docs/PERFORMANCE.md#short-rows`.

// Index loops over the small fixed arrays read better than zipped
// iterators across `v`, `t` and the rows, and unroll the same.
#![allow(clippy::needless_range_loop)]

use super::special_row;
use crate::isa::{Isa, Kern};
use crate::stage::{Output, Sink, Source, Term, term};
use crate::sum::Acc;

/// Rows `0..rows` of width `w`, `(N − 1)·L < w ≤ N·L` for `L =
/// F32_LANES`, `R` at a time.
///
/// # Safety
/// Every row of `src` readable and of `snk` writable over `0..w`; each
/// input read before the same output is written (equal or disjoint
/// buffers).
#[inline(always)]
pub(crate) unsafe fn rows<S: Isa, Src: Source, Snk: Sink, const N: usize, const R: usize>(
    s: S,
    src: &Src,
    snk: &Snk,
    rows: usize,
    w: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        if w == N * S::F32_LANES {
            grouped::<S, Src, Snk, N, R, true>(s, src, snk, rows, w);
        } else {
            grouped::<S, Src, Snk, N, R, false>(s, src, snk, rows, w);
        }
    }
}

/// [`rows`]; `WHOLE` when `w` is exactly `N` vectors (plain loads and
/// stores, no masks).
#[inline(always)]
unsafe fn grouped<S, Src, Snk, const N: usize, const R: usize, const WHOLE: bool>(
    s: S,
    src: &Src,
    snk: &Snk,
    rows: usize,
    w: usize,
) where
    S: Isa,
    Src: Source,
    Snk: Sink,
{
    // Whole rows: the width, and so every row's address, is a constant.
    let w = if WHOLE { N * S::F32_LANES } else { w };
    let groups = rows / R;
    // SAFETY: the caller's contract, in whole groups and the rest; group
    // `g + 1` is read before group `g` is written, and they are disjoint.
    unsafe {
        if S::PIPELINE_SHORT && groups > 0 {
            let mut next = load_group::<S, Src, N, R, WHOLE>(s, src, src.row(0, w), w);
            for g in 0..groups {
                let (x, y) = (src.row(g * R, w), snk.row(g * R, w));
                let (v, m) = next;
                if g + 1 < groups {
                    next = load_group::<S, Src, N, R, WHOLE>(s, src, src.row_after(x, R, w), w);
                }
                finish::<S, Src, Snk, N, R, WHOLE>(s, src, snk, (x, y), w, v, m);
            }
        } else {
            for g in 0..groups {
                let (x, y) = (src.row(g * R, w), snk.row(g * R, w));
                let (v, m) = load_group::<S, Src, N, R, WHOLE>(s, src, x, w);
                finish::<S, Src, Snk, N, R, WHOLE>(s, src, snk, (x, y), w, v, m);
            }
        }
        if groups * R < rows {
            let (x0, y0) = (src.row(groups * R, w), snk.row(groups * R, w));
            let count = rows - groups * R;
            let (src, snk) = (*src, *snk);
            s.run(OneByOne::<Src, Snk, N, WHOLE> {
                src,
                snk,
                x0,
                y0,
                w,
                count,
            });
        }
    }
}

/// The keys of the `R` rows from `x0` (inactive tail lanes `−∞`) and each
/// row's max in every lane.
///
/// # Safety
/// Those rows readable over `0..w`.
#[inline(always)]
#[allow(clippy::type_complexity)]
unsafe fn load_group<S: Isa, Src: Source, const N: usize, const R: usize, const WHOLE: bool>(
    s: S,
    src: &Src,
    x0: Src::Row,
    w: usize,
) -> ([[S::f32s; N]; R], [S::f32s; R]) {
    let l = S::F32_LANES;
    let ninf = s.splat_f32s(f32::NEG_INFINITY);
    let mut v = [[ninf; N]; R];
    let mut m = [ninf; R];
    // SAFETY: the full vectors cover `(N − 1)·l` elements of each row, the
    // last one the remaining `w − (N − 1)·l` (whole, or a tail).
    unsafe {
        for r in 0..R {
            let x = src.row_after(x0, r, w);
            for i in 0..N - 1 {
                v[r][i] = src.load(s, x, i * l);
            }
            let last = (N - 1) * l;
            v[r][N - 1] = match WHOLE {
                true => src.load(s, x, last),
                false => src.load_tail(s, x, last, w - last, f32::NEG_INFINITY),
            };
            m[r] = v[r][0];
            for i in 1..N {
                m[r] = s.max_f32s(m[r], v[r][i]);
            }
        }
    }
    let m = s.rows_all_lanes(
        m,
        #[inline(always)]
        |a, b| s.max_f32s(a, b),
    );
    (v, m)
}

/// The results of the `R` rows from `(x0, y0)`, from their keys `v` and
/// maxima `m` (in every lane). A row whose max is not finite, or which
/// holds a NaN, has a NaN constant (`x − m` is NaN for a `±∞` max, the
/// exp of a NaN is NaN): one check for the group finds them, and they go
/// to [`special_row`] before anything of theirs is stored.
///
/// # Safety
/// Those rows readable and writable over `0..w`.
#[inline(always)]
unsafe fn finish<S, Src, Snk, const N: usize, const R: usize, const WHOLE: bool>(
    s: S,
    src: &Src,
    snk: &Snk,
    (x0, y0): (Src::Row, Snk::Row),
    w: usize,
    v: [[S::f32s; N]; R],
    m: [S::f32s; R],
) where
    S: Isa,
    Src: Source,
    Snk: Sink,
{
    let l = S::F32_LANES;
    // (Index loops, not `array::from_fn`/`map`, which are not always
    // inlined into the target-feature function.)
    let mut sh: [Src::Shift<S>; R] = [src.shift(s, m[0]); R];
    for r in 1..R {
        sh[r] = src.shift(s, m[r]);
    }
    // Phase by phase across the rows, so that independent work sits side
    // by side in program order.
    let mut t: [[Term<S, Snk>; N]; R] = [[<Snk::Acc<S> as Acc<S>>::zero_term(s); N]; R];
    for i in 0..N {
        for r in 0..R {
            t[r][i] = term::<S, Src, Snk::Acc<S>, false>(s, src, v[r][i], sh[r]);
        }
    }
    let (c, special) = Snk::short_constants::<S, N, R>(s, &t);
    if special {
        // Rare, and out of the hot loop: a row alone is special itself; a
        // group's rows go one by one, in a target-feature function of their
        // own (each ordinary row gets the bits it gets in a group).
        let (src, snk) = (*src, *snk);
        if R == 1 {
            // SAFETY: the caller's contract; the row is read before written.
            let m = unsafe { (1..w).fold(src.key(x0, 0), |a, i| a.max(src.key(x0, i))) };
            unsafe { special_row::<Src, Snk>(src, snk, x0, y0, w, m) };
        } else {
            s.run(OneByOne::<Src, Snk, N, WHOLE> {
                src,
                snk,
                x0,
                y0,
                w,
                count: R,
            });
        }
        return;
    }
    // SAFETY: the vectors cover the rows as in `load_group`.
    unsafe {
        for r in 0..R {
            let y = snk.row_after(y0, r, w);
            for i in 0..N {
                let out = Snk::from_short::<S, Src, N>(s, src, v[r][i], sh[r], t[r][i], c[r]);
                if i < N - 1 || WHOLE {
                    snk.output().store(s, y, i * l, out);
                } else {
                    snk.output().store_tail(s, y, i * l, w - i * l, out);
                }
            }
        }
    }
}

/// One row of width `w`, alone: [`OneByOne`] with one row, in its own
/// target-feature function (shared with the rows after a batch's last
/// group).
///
/// # Safety
/// Row 0 of `src` readable and of `snk` writable over `0..w`; `(N − 1)·L
/// < w ≤ N·L`.
#[inline(always)]
pub(crate) unsafe fn alone<S: Isa, Src: Source, Snk: Sink, const N: usize>(
    s: S,
    src: Src,
    snk: Snk,
    w: usize,
) {
    let (x0, y0) = (src.row(0, w), snk.row(0, w));
    if w == N * S::F32_LANES {
        s.run(OneByOne::<Src, Snk, N, true> {
            src,
            snk,
            x0,
            y0,
            w,
            count: 1,
        });
    } else {
        s.run(OneByOne::<Src, Snk, N, false> {
            src,
            snk,
            x0,
            y0,
            w,
            count: 1,
        });
    }
}

/// `count` rows from `(x0, y0)`, one by one, in a target-feature function
/// of their own: the rows after the last group, and a group that holds a
/// special row (each ordinary row gets the bits it gets in a group).
struct OneByOne<Src: Source, Snk: Sink, const N: usize, const WHOLE: bool> {
    src: Src,
    snk: Snk,
    x0: Src::Row,
    y0: Snk::Row,
    w: usize,
    count: usize,
}

impl<Src: Source, Snk: Sink, const N: usize, const WHOLE: bool> Kern
    for OneByOne<Src, Snk, N, WHOLE>
{
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let OneByOne {
            src,
            snk,
            x0,
            y0,
            w,
            count,
        } = self;
        for r in 0..count {
            let (x, y) = (src.row_after(x0, r, w), snk.row_after(y0, r, w));
            // SAFETY: rows of the batch `grouped` was given.
            unsafe {
                let (v, m) = load_group::<S, Src, N, 1, WHOLE>(s, &src, x, w);
                finish::<S, Src, Snk, N, 1, WHOLE>(s, &src, &snk, (x, y), w, v, m);
            }
        }
    }
}
