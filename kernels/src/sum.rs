//! The reductions every regime shares: a row's range (`Range`), its
//! exp sum in compensated f32 lanes ([`CompSum`]) folded into the f64
//! split [`ExpSum`] `= k + δ`, and the two accumulators a sink chooses
//! between ([`Acc`]): [`PlainAcc`] (softmax: the sum accurate relative to
//! itself) and [`SplitAcc`] (log-softmax, logsumexp: `δ` accurate relative
//! to itself, tiny terms included).

use crate::isa::{Isa, fast_two_sum};

/// The minimum and maximum of a row's keys, in vector lanes. The minimum
/// is kept only where `track` (it tells whether the row's exps need their
/// flush to 0, [`Source::in_exp_range`](crate::stage::Source::in_exp_range)); otherwise it reads `−∞`. `track` is a
/// constant of the instantiation (see `crate::regime::tracks_min`), so the
/// untaken branches compile away.
#[derive(Clone, Copy)]
pub(crate) struct Range<S: Isa> {
    pub(crate) hi: S::f32s,
    pub(crate) lo: S::f32s,
    track: bool,
}

impl<S: Isa> Range<S> {
    #[inline(always)]
    pub(crate) fn new(s: S, track: bool) -> Self {
        Range {
            hi: s.splat_f32s(f32::NEG_INFINITY),
            lo: s.splat_f32s(f32::INFINITY),
            track,
        }
    }

    /// Takes `v` into the range (the accumulator first: `max(acc, v)`).
    #[inline(always)]
    pub(crate) fn add(&mut self, s: S, v: S::f32s) {
        self.hi = s.max_f32s(self.hi, v);
        if self.track {
            self.lo = s.min_f32s(self.lo, v);
        }
    }

    /// Takes a tail: `hi` is the tail padded with `−∞`, `lo()` loads it
    /// padded with `+∞` (only where the minimum is tracked).
    #[inline(always)]
    pub(crate) fn add_tail(&mut self, s: S, hi: S::f32s, lo: impl FnOnce() -> S::f32s) {
        self.hi = s.max_f32s(self.hi, hi);
        if self.track {
            self.lo = s.min_f32s(self.lo, lo());
        }
    }

    #[inline(always)]
    pub(crate) fn merge(self, s: S, o: Self) -> Self {
        Range {
            hi: s.max_f32s(self.hi, o.hi),
            lo: if self.track {
                s.min_f32s(self.lo, o.lo)
            } else {
                self.lo
            },
            track: self.track,
        }
    }

    /// `(min, max)`; a NaN key may or may not show (callers find NaN
    /// through the sum).
    #[inline(always)]
    pub(crate) fn finish(self, s: S) -> (f32, f32) {
        let lo = if self.track {
            s.reduce_min_f32s(self.lo)
        } else {
            f32::NEG_INFINITY
        };
        (lo, s.reduce_max_f32s(self.hi))
    }
}

/// A compensated sum of terms in `[0, 2]`, in f32 lanes: pairs of
/// vectors are added (one rounding, relative to the pair), each pair goes
/// into `h`, which starts at 2 and only grows, so Fast2Sum gives each
/// addition's exact error, and the errors are summed in `err`. Folded into
/// f64 every block (`hi − 2` is exact), so that neither `h` nor `err`
/// drifts with the row's length.
#[derive(Clone, Copy)]
pub struct CompSum<S: Isa> {
    pub(crate) h: S::f32s,
    pub(crate) err: S::f32s,
}

impl<S: Isa> CompSum<S> {
    #[inline(always)]
    pub(crate) fn new(s: S) -> Self {
        CompSum {
            h: s.splat_f32s(2.0),
            err: s.splat_f32s(0.0),
        }
    }

    #[inline(always)]
    pub(crate) fn add(&mut self, s: S, v: S::f32s) {
        self.err = s.add_f32s(self.err, fast_two_sum(s, &mut self.h, v));
    }

    #[inline(always)]
    pub(crate) fn add_pair(&mut self, s: S, a: S::f32s, b: S::f32s) {
        self.add(s, s.add_f32s(a, b));
    }

    /// The lanes' total in f64; the lanes restart.
    #[inline(always)]
    pub(crate) fn fold(&mut self, s: S) -> f64 {
        let t = s.fold_f64(self.h, self.err, 2.0);
        *self = CompSum::new(s);
        t
    }
}

impl core::ops::Add for ExpSum {
    type Output = ExpSum;
    /// Term by term.
    #[inline]
    fn add(self, o: ExpSum) -> ExpSum {
        ExpSum {
            k: self.k + o.k,
            delta: self.delta + o.delta,
        }
    }
}

/// `Σ e^(x−m)` split as `k + δ`: `k` terms exactly 1 (the maxima) and `δ`
/// the rest. Kept apart so that `ln Σ = ln k + log1p(δ/k)` stays accurate
/// when `δ` is far below the f64 resolution of `k` (log-softmax at the
/// max entry is `−ln(1 + δ/k) ≈ −δ/k`). The softmax accumulator keeps
/// everything in `δ` (`k = 0`). Also the mergeable state of a row seen in
/// pieces, with its max (see [`ExpSum::merge`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExpSum {
    /// Terms exactly 1.
    pub k: f64,
    /// Every other term.
    pub delta: f64,
}

impl ExpSum {
    /// The empty sum.
    pub const ZERO: ExpSum = ExpSum { k: 0.0, delta: 0.0 };

    /// `k + δ`.
    #[inline]
    pub fn total(self) -> f64 {
        self.k + self.delta
    }

    /// `ln(k + δ)`, accurate for tiny `δ/k`; NaN if `δ` is NaN.
    #[inline]
    pub fn ln(self) -> f64 {
        if self.k > 0.0 {
            libm::log(self.k) + libm::log1p(self.delta / self.k)
        } else {
            libm::log(self.delta)
        }
    }

    /// The sum seen against a larger max: every term scaled by `f =
    /// e^(m_old − m_new) < 1`, none of them 1 any more.
    #[inline]
    pub fn rescale(self, f: f64) -> ExpSum {
        ExpSum {
            k: 0.0,
            delta: self.total() * f,
        }
    }

    /// The state `(m, self)` merged with `(m2, o)`: the larger max, each
    /// sum rescaled to it (by `e^(scale·(m_i − max))`, `scale` the source's
    /// [`Source::key_scale`](crate::stage::Source::key_scale)). Commutative; associative up to the rounding
    /// of the f64 sums.
    #[inline]
    pub fn merge(self, m: f32, o: ExpSum, m2: f32, scale: f64) -> (f32, ExpSum) {
        let mm = m.max(m2);
        let side = |sum: ExpSum, mi: f32| {
            if mi == mm {
                sum
            } else if mi == f32::NEG_INFINITY {
                ExpSum::ZERO
            } else {
                sum.rescale(libm::exp((mi as f64 - mm as f64) * scale))
            }
        };
        (mm, side(self, m) + side(o, m2))
    }
}

/// The exp sum a sink needs, in vector lanes, and the exp of each term.
/// Implemented by [`PlainAcc`] and [`SplitAcc`].
pub trait Acc<S: Isa>: Copy {
    /// Vectors summed in f32 lanes before they are folded into f64.
    const BLOCK: usize;
    /// Whether the sum needs the row's minimum (to know whether any term
    /// lies below `2^-126`) even where the instruction set does not track
    /// it for the exp's sake.
    const WANTS_MIN: bool;
    /// One vector of terms.
    type Term: Copy;
    /// An empty sum.
    fn new(s: S) -> Self;
    /// A term of zeros (a placeholder).
    fn zero_term(s: S) -> Self::Term;
    /// The Fast2Sum lanes of a plain sum, for hand-written loops (`None`
    /// where the sum is not [`PlainAcc`]'s).
    fn plain(&mut self) -> Option<&mut CompSum<S>> {
        None
    }
    /// Whether a row's terms below `2^-126` are kept ([`Acc::from_tiny`],
    /// from [`Isa::exp_tiny`]) where the row is not in the exp's range;
    /// otherwise they flush to 0 ([`Acc::from_exp`] only).
    const KEEPS_TINY: bool;
    /// A term from `e^d` ([`Isa::exp_nonpos`]'s: below `2^-126` flushed
    /// to 0, or no argument there).
    fn from_exp(s: S, e: S::f32s) -> Self::Term;
    /// A term from [`Isa::exp_tiny`]'s `(e, tiny)` (only where
    /// [`Acc::KEEPS_TINY`]).
    fn from_tiny(s: S, e: S::f32s, tiny: S::m32s) -> Self::Term;
    /// `e^d` of each lane (what softmax stores).
    fn exp(t: Self::Term) -> S::f32s;
    /// Adds one vector of terms.
    fn add<const IN_RANGE: bool>(&mut self, s: S, t: Self::Term);
    /// Adds two vectors of terms (added to each other first).
    fn add_pair<const IN_RANGE: bool>(&mut self, s: S, a: Self::Term, b: Self::Term);
    /// The lanes' sum; the lanes restart.
    fn fold<const IN_RANGE: bool>(&mut self, s: S) -> ExpSum;
}

/// Softmax's sum: accurate relative to the whole sum (which the max's own
/// term makes at least 1), so tiny terms may flush, and the f32 lanes run
/// 256 vectors before each fold.
#[derive(Clone, Copy)]
pub struct PlainAcc<S: Isa>(CompSum<S>);

impl<S: Isa> Acc<S> for PlainAcc<S> {
    const BLOCK: usize = 256;
    const WANTS_MIN: bool = false;
    const KEEPS_TINY: bool = false;
    type Term = S::f32s;

    #[inline(always)]
    fn new(s: S) -> Self {
        PlainAcc(CompSum::new(s))
    }
    #[inline(always)]
    fn zero_term(s: S) -> S::f32s {
        s.splat_f32s(0.0)
    }
    #[inline(always)]
    fn plain(&mut self) -> Option<&mut CompSum<S>> {
        Some(&mut self.0)
    }
    #[inline(always)]
    fn from_exp(_: S, e: S::f32s) -> S::f32s {
        e
    }
    #[inline(always)]
    fn from_tiny(_: S, e: S::f32s, _: S::m32s) -> S::f32s {
        // Never called: `KEEPS_TINY` is false.
        e
    }
    #[inline(always)]
    fn exp(t: S::f32s) -> S::f32s {
        t
    }
    #[inline(always)]
    fn add<const IN_RANGE: bool>(&mut self, s: S, t: S::f32s) {
        self.0.add(s, t);
    }
    #[inline(always)]
    fn add_pair<const IN_RANGE: bool>(&mut self, s: S, a: S::f32s, b: S::f32s) {
        self.0.add_pair(s, a, b);
    }
    #[inline(always)]
    fn fold<const IN_RANGE: bool>(&mut self, s: S) -> ExpSum {
        ExpSum {
            k: 0.0,
            delta: self.0.fold(s),
        }
    }
}

/// `2^-64`: the scale of [`SplitAcc`]'s tiny lanes.
const TWO_M64: f64 = 1.0 / 18_446_744_073_709_551_616.0;

/// Log-softmax's and logsumexp's sum, the [`ExpSum`] split: terms exactly
/// 1 are counted (`k`), the others summed in a compensated `δ` folded
/// every 16 vectors (each error lane takes at most 8 roundings before the
/// fold, so `δ` keeps its own relative accuracy). Terms below `2^-126`
/// (rows not in the exp's range) come from [`Isa::exp_tiny`] scaled by
/// `2^64` into lanes of their own, so their sum keeps its precision.
#[derive(Clone, Copy)]
pub struct SplitAcc<S: Isa> {
    count: S::f32s,
    delta: CompSum<S>,
    tiny: CompSum<S>,
}

/// A term of [`SplitAcc`]: its value (`e^d`, or `e^d · 2^64` in `tiny`
/// lanes) and which lanes are tiny.
#[derive(Clone, Copy)]
pub struct SplitTerm<S: Isa> {
    e: S::f32s,
    tiny: S::m32s,
}

impl<S: Isa> SplitAcc<S> {
    /// `(ones, normal, tiny)` parts of a term.
    #[inline(always)]
    fn parts<const IN_RANGE: bool>(s: S, t: SplitTerm<S>) -> (S::f32s, S::f32s, S::f32s) {
        let (zero, one) = (s.splat_f32s(0.0), s.splat_f32s(1.0));
        let at1 = s.equal_f32s(t.e, one);
        let ones = s.select_f32s(at1, one, zero);
        if IN_RANGE {
            return (ones, s.select_f32s(at1, zero, t.e), zero);
        }
        let normal = s.select_f32s(s.or_m32s(at1, t.tiny), zero, t.e);
        (ones, normal, s.select_f32s(t.tiny, t.e, zero))
    }
}

impl<S: Isa> Acc<S> for SplitAcc<S> {
    const BLOCK: usize = 16;
    const WANTS_MIN: bool = true;
    const KEEPS_TINY: bool = true;
    type Term = SplitTerm<S>;

    #[inline(always)]
    fn new(s: S) -> Self {
        SplitAcc {
            count: s.splat_f32s(0.0),
            delta: CompSum::new(s),
            tiny: CompSum::new(s),
        }
    }
    #[inline(always)]
    fn zero_term(s: S) -> SplitTerm<S> {
        let e = s.splat_f32s(0.0);
        SplitTerm {
            e,
            tiny: s.less_than_f32s(e, e),
        }
    }
    #[inline(always)]
    fn from_exp(s: S, e: S::f32s) -> SplitTerm<S> {
        // No tiny lanes: an empty mask.
        let tiny = s.less_than_f32s(e, e);
        SplitTerm { e, tiny }
    }
    #[inline(always)]
    fn from_tiny(_: S, e: S::f32s, tiny: S::m32s) -> SplitTerm<S> {
        SplitTerm { e, tiny }
    }
    #[inline(always)]
    fn exp(t: SplitTerm<S>) -> S::f32s {
        t.e
    }
    #[inline(always)]
    fn add<const IN_RANGE: bool>(&mut self, s: S, t: SplitTerm<S>) {
        let (ones, n, tiny) = Self::parts::<IN_RANGE>(s, t);
        self.count = s.add_f32s(self.count, ones);
        self.delta.add(s, n);
        if !IN_RANGE {
            self.tiny.add(s, tiny);
        }
    }
    #[inline(always)]
    fn add_pair<const IN_RANGE: bool>(&mut self, s: S, a: SplitTerm<S>, b: SplitTerm<S>) {
        let (oa, na, ta) = Self::parts::<IN_RANGE>(s, a);
        let (ob, nb, tb) = Self::parts::<IN_RANGE>(s, b);
        self.count = s.add_f32s(self.count, s.add_f32s(oa, ob));
        self.delta.add_pair(s, na, nb);
        if !IN_RANGE {
            self.tiny.add_pair(s, ta, tb);
        }
    }
    #[inline(always)]
    fn fold<const IN_RANGE: bool>(&mut self, s: S) -> ExpSum {
        let zero = s.splat_f32s(0.0);
        // Lane counts are small exact integers (≤ 2·BLOCK per lane).
        let k = s.fold_f64(self.count, zero, 0.0);
        let mut delta = self.delta.fold(s);
        if !IN_RANGE {
            delta += self.tiny.fold(s) * TWO_M64;
        }
        self.count = zero;
        ExpSum { k, delta }
    }
}
