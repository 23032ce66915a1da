//! The key pre-passes of the scaled and combined softmax forms: each turns
//! its input into plain keys that the plain softmax then runs on
//! (`softmax_scaled`'s short rows and its non-finite α, `softmax_of_combination`'s
//! double-double combination). Below `crate::kernel`, which calls them.

use crate::isa::{Isa, Kern, store};
use crate::stage::{ScaledRows, Source};

/// `softmax(α·x)` of one row for `α` NaN, 0 or `±∞` (scalar; exact): NaN
/// α or a NaN entry with `α = 0` → NaN; `α = 0` → uniform `1/n`; `α = ±∞`
/// → the entries equal to the max (min for `−∞`) share the mass, unless
/// every entry is the opposite infinity (fully masked: zeros).
pub(crate) fn scaled_limit(x: &[f32], y: &mut [f32], alpha: f32) {
    let n = x.len();
    if alpha.is_nan() || x.iter().any(|v| v.is_nan()) {
        return y.fill(f32::NAN);
    }
    if alpha == 0.0 {
        return y.fill((1.0 / n as f64) as f32);
    }
    let (neg, masked) = (
        alpha < 0.0,
        if alpha < 0.0 {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        },
    );
    let m = x
        .iter()
        .copied()
        .fold(masked, |a, v| if neg { a.min(v) } else { a.max(v) });
    if m == masked {
        return y.fill(0.0);
    }
    let k = x.iter().filter(|&&v| v == m).count() as f64;
    for (y, &x) in y.iter_mut().zip(x) {
        *y = if x == m { (1.0 / k) as f32 } else { 0.0 };
    }
}

/// `a + b` as an exact double-double `(hi, lo)` (Knuth's TwoSum).
#[inline(always)]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

/// `z = Σ_k α_k·x_k[i]` in double-double: each product is exact in f64
/// (24 × 24 bits), their sum carried to ~2^-106 (not rounded to f64 at
/// each step); `(±∞ or NaN, 0)` where a product is not finite.
#[inline(always)]
fn combination_at<'t>(terms: &impl Terms<'t>, i: usize) -> (f64, f64) {
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for k in 0..terms.count() {
        let (a, x) = terms.term(k);
        let (s, e) = two_sum(hi, a as f64 * x[i] as f64);
        (hi, lo) = (s, lo + e);
    }
    if !hi.is_finite() {
        return (hi, 0.0);
    }
    let s = hi + lo;
    (s, lo - (s - hi))
}

/// The terms `(α_k, x_k)` of a combination `Σ_k α_k x_k`: a slice of
/// pairs, or `(count, |k| term)` for terms that live elsewhere (a C
/// caller's array), so that no call has to gather them into a slice.
pub trait Terms<'t> {
    /// How many terms.
    fn count(&self) -> usize;
    /// Term `k < count()`.
    fn term(&self, k: usize) -> (f32, &'t [f32]);
}

impl<'t> Terms<'t> for &[(f32, &'t [f32])] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn term(&self, k: usize) -> (f32, &'t [f32]) {
        self[k]
    }
}

impl<'t, F: Fn(usize) -> (f32, &'t [f32])> Terms<'t> for (usize, F) {
    #[inline]
    fn count(&self) -> usize {
        self.0
    }
    #[inline]
    fn term(&self, k: usize) -> (f32, &'t [f32]) {
        (self.1)(k)
    }
}

/// The keys of `softmax_of_combination` into `out`: `fl32(z_i − max z)`
/// for a finite max (the subtraction in double-double, one rounding to
/// f32; for one term `(1, x)` this is exactly `fl32(x_i − max x)`, so the
/// softmax that follows gives `softmax(x)`'s bits). A `+∞` max: `+∞` where
/// `z_i = +∞`, `−∞` elsewhere (NaN stays NaN); a `−∞` max (every `z_i =
/// −∞`): all `−∞`.
pub(crate) fn combination_keys<'t>(terms: &impl Terms<'t>, out: &mut [f32]) {
    let n = out.len();
    let mut m = (f64::NEG_INFINITY, 0.0);
    for i in 0..n {
        let z = combination_at(terms, i);
        if z.0 > m.0 || (z.0 == m.0 && z.1 > m.1) {
            m = z;
        }
    }
    for (i, y) in out.iter_mut().enumerate() {
        let z = combination_at(terms, i);
        *y = if z.0.is_nan() {
            f32::NAN
        } else if m.0 == f64::INFINITY {
            if z.0 == m.0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            }
        } else if !z.0.is_finite() {
            f32::NEG_INFINITY
        } else {
            let (h, e) = two_sum(z.0, -m.0);
            (h + (e + (z.1 - m.1))) as f32
        };
    }
}

/// `softmax_scaled`'s keys-and-differences pass: each row of `x` (rows of
/// `w`) through the [`ScaledRows`] stage's keys and `diff(key, max)`,
/// written to `y`, whose plain softmax in place is then exactly the scaled
/// stage's softmax run through its regime (the max of the differences is
/// exactly 0, so the plain stage's `d − 0` is `d`, and every exp, sum and
/// result is the same; the tests compare the two through every regime).
/// For short rows: one pass over the input instead of a third
/// instantiation of the short regime (`docs/ARCHITECTURE.md`); longer rows
/// run the scaled stage through their regime. Rows whose max key is not finite get
/// the keys that make the plain softmax give the special-value limits: `+∞` where
/// the key is `+∞` and `−∞` elsewhere for a `+∞` max, `−∞` for a fully
/// masked row, NaN kept.
pub(crate) struct ScaledKeys {
    pub(crate) x: *const f32,
    pub(crate) y: *mut f32,
    pub(crate) rows: usize,
    pub(crate) w: usize,
    pub(crate) alpha: f32,
}

impl Kern for ScaledKeys {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let ScaledKeys {
            x,
            y,
            rows,
            w,
            alpha,
        } = self;
        let src = ScaledRows::new(x, alpha);
        let l = S::F32_LANES;
        for r in 0..rows {
            let xr = src.row(r, w);
            // SAFETY: row `r` of both buffers is `w` long (the caller's);
            // `x` and `y` do not overlap.
            unsafe {
                let yr = y.add(r * w);
                let (_, m) = crate::regime::range_of(s, &src, xr, 0, w, false);
                if !m.is_finite() {
                    for i in 0..w {
                        let k = src.key(xr, i);
                        *yr.add(i) = match (k.is_nan(), m == f32::INFINITY) {
                            (true, _) => f32::NAN,
                            (false, true) if k == m => f32::INFINITY,
                            (false, _) => f32::NEG_INFINITY,
                        };
                    }
                    continue;
                }
                let sh = src.shift(s, s.splat_f32s(m));
                let mut i = 0;
                while i + l <= w {
                    store::<S>(yr.add(i), src.diff(s, src.load(s, xr, i), sh));
                    i += l;
                }
                if i < w {
                    let key = src.load_tail(s, xr, i, w - i, f32::NEG_INFINITY);
                    s.store_tail(yr.add(i), w - i, src.diff(s, key, sh));
                }
            }
        }
    }
}
