//! The rest of the softmax family on the generic kernel: temperature
//! (`softmax_scaled`), the backward pass and Jacobian, the inverse
//! (`logits_from_probs`), superposition (`softmax_of_combination`) and the
//! sigmoid. Each is built from the passes in [`crate::generic`] (blocked
//! sums, masked tails) and the vector [`crate::math`] functions.

use crate::generic::{
    Kernel, any_nan, blocked_sum, exp_sum_pass, extreme_pass, fill, finish_softmax, load,
    load_tail, map1, map2, nonfinite_row, share, softmax_row, softmax_row_with_max, store,
    store_tail, tail_mask,
};
use crate::math::{exp_nonpos, ln};
use pulp::{Simd, WithSimd};

/// Which additive constant [`Kernel::logits_from_probs`] picks (softmax is
/// invariant to it, so the inverse is defined up to `c·1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// `Σ x = 0`: `c = −mean(ln p)`.
    ZeroMean,
    /// `x_k = 0`: `c = −ln p_k`.
    Component(usize),
}

/// What a probability scan found (see [`Kernel::scan_probs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProbScan {
    /// Some entry is negative, NaN or `+∞`.
    pub invalid: bool,
    /// Some entry is `±0`.
    pub zero: bool,
}

impl<S: Simd> Kernel<S> {
    /// `output = softmax(alpha · input)` with the limits of SPEC §1:
    /// `α = 0` → uniform, `α = ±∞` → shared by the tied maxima/minima,
    /// `α < 0` → softmin. `alpha` must not be NaN (gives a NaN row).
    #[inline]
    pub fn softmax_scaled(self, input: &[f32], output: &mut [f32], alpha: f32) {
        assert_eq!(input.len(), output.len(), "softmax_scaled: length mismatch");
        let n = input.len();
        self.softmax_scaled_rows(input, output, n.max(1), alpha);
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
        assert_eq!(
            input.len(),
            output.len(),
            "softmax_scaled_rows: length mismatch"
        );
        assert!(row_len > 0 && input.len() % row_len == 0, "bad row_len");
        if input.is_empty() {
            return;
        }
        let (src, dst, len) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.simd().vectorize(ScaledRows {
            src,
            dst,
            len,
            row_len,
            alpha,
        });
    }

    /// The backward pass `dx = y ⊙ (dy − ⟨dy, y⟩)`: a blocked dot product,
    /// then one fused multiply-subtract pass.
    #[inline]
    pub fn softmax_backward(self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        assert!(
            y.len() == dy.len() && y.len() == dx.len(),
            "softmax_backward: length mismatch"
        );
        let (y, dy, dx, n) = (y.as_ptr(), dy.as_ptr(), dx.as_mut_ptr(), y.len());
        self.simd().vectorize(Backward { y, dy, dx, n });
    }

    /// `out = diag(y) − y yᵀ`, `N×N` row-major; `out.len()` must be `N²`.
    #[inline]
    pub fn jacobian(self, y: &[f32], out: &mut [f32]) {
        let n = y.len();
        assert_eq!(
            Some(out.len()),
            n.checked_mul(n),
            "jacobian: output must be N*N"
        );
        let (y, out) = (y.as_ptr(), out.as_mut_ptr());
        self.simd().vectorize(Jacobian { y, out, n });
    }

    /// Scans probabilities for entries that are invalid (negative, NaN,
    /// `+∞`) or zero, without writing anything.
    #[inline]
    pub fn scan_probs(self, p: &[f32]) -> ProbScan {
        self.simd().vectorize(ScanProbs {
            p: p.as_ptr(),
            n: p.len(),
        })
    }

    /// `out = ln p + c` with `c` chosen by `anchor`. Expects probabilities
    /// that [`Kernel::scan_probs`] found valid (zeros give `−∞`), a
    /// `Component` index in range whose entry is not zero, and no zero for
    /// `ZeroMean`; otherwise the output holds NaNs or infinities.
    #[inline]
    pub fn logits_from_probs(self, p: &[f32], out: &mut [f32], anchor: Anchor) {
        assert_eq!(p.len(), out.len(), "logits_from_probs: length mismatch");
        let (src, dst, n) = (p.as_ptr(), out.as_mut_ptr(), p.len());
        self.simd().vectorize(Logits {
            src,
            dst,
            n,
            anchor,
        });
    }

    /// `output = softmax(Σ_k α_k x_k)`: one pass over the terms computes the
    /// combination into `output` (tracking its max), then the softmax runs
    /// in place. Every term must have `output.len()` elements.
    #[inline]
    pub fn softmax_of_combination(self, terms: &[(f32, &[f32])], output: &mut [f32]) {
        assert!(
            terms.iter().all(|t| t.1.len() == output.len()),
            "term length mismatch"
        );
        let (dst, n) = (output.as_mut_ptr(), output.len());
        self.simd().vectorize(Combination { terms, dst, n });
    }

    /// `output = 1 / (1 + e^(−input))`, stably: `e^(−|z|)` never overflows,
    /// `±∞` give exactly `1`/`0`, NaN stays NaN.
    #[inline]
    pub fn sigmoid(self, input: &[f32], output: &mut [f32]) {
        assert_eq!(input.len(), output.len(), "sigmoid: length mismatch");
        let (src, dst, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.simd().vectorize(Sigmoid { src, dst, n });
    }
}

/// `softmax(α·x)` per row; pointers valid for `len`, `row_len` divides `len`.
struct ScaledRows {
    src: *const f32,
    dst: *mut f32,
    len: usize,
    row_len: usize,
    alpha: f32,
}

impl WithSimd for ScaledRows {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (n, alpha) = (self.row_len, self.alpha);
        let mut start = 0;
        while start < self.len {
            // SAFETY: the row `start..start + n` lies inside both buffers.
            unsafe { scaled_row(s, self.src.add(start), self.dst.add(start), n, alpha) };
            start += n;
        }
    }
}

/// `softmax(α·x)` of one row, computed as `e^((x−m)·α)` with `m` the max
/// (`α > 0`) or min (`α < 0`), so every exponent is `≤ 0`.
#[inline(always)]
unsafe fn scaled_row<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize, alpha: f32) {
    // SAFETY (whole body): `src`/`dst` valid for `n`, equal or disjoint.
    unsafe {
        if alpha == 1.0 {
            return softmax_row(s, src, dst, n);
        }
        // The limits need an explicit NaN scan; the finite path gets it free
        // from the exp-sum (a NaN input makes the total NaN).
        if alpha.is_nan() || (!alpha.is_normal() && any_nan(src, n)) {
            return fill(dst, n, f32::NAN);
        }
        if alpha == 0.0 {
            return fill(dst, n, (1.0 / n as f64) as f32);
        }
        let neg = alpha < 0.0;
        let m = if neg {
            extreme_pass::<S, true>(s, src, n)
        } else {
            extreme_pass::<S, false>(s, src, n)
        };
        // The infinity that dominates this direction, and the one that masks.
        let (dominant, masked) = if neg {
            (f32::NEG_INFINITY, f32::INFINITY)
        } else {
            (f32::INFINITY, f32::NEG_INFINITY)
        };
        if alpha.is_infinite() {
            // The limit: the tied extremes share the mass, unless the row is masked.
            if m == masked {
                fill(dst, n, 0.0)
            } else {
                share::<false>(src, dst, n, m)
            }
        } else if m.is_finite() {
            let total = exp_sum_pass::<S, true, true, false>(s, src, dst, n, m, alpha);
            finish_softmax(s, dst, n, total);
        } else {
            nonfinite_row::<false>(src, dst, n, m, dominant);
        }
    }
}

/// `dx = y ⊙ (dy − ⟨dy, y⟩)`; `dx` disjoint from `y`, `dy`; all valid for `n`.
struct Backward {
    y: *const f32,
    dy: *const f32,
    dx: *mut f32,
    n: usize,
}

impl WithSimd for Backward {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (y, dy) = (self.y, self.dy);
        // SAFETY: indices from `blocked_sum`/`map2` stay inside `n`.
        unsafe {
            let dot = blocked_sum(
                s,
                self.n,
                #[inline(always)]
                |i| s.mul_f32s(load::<S>(y.add(i)), load::<S>(dy.add(i))),
                #[inline(always)]
                |i, r| {
                    s.mul_f32s(
                        load_tail(s, y.add(i), r, 0.0),
                        load_tail(s, dy.add(i), r, 0.0),
                    )
                },
            );
            let dv = s.splat_f32s(dot as f32);
            map2(
                s,
                y,
                dy,
                self.dx,
                self.n,
                #[inline(always)]
                |y, g| s.mul_f32s(y, s.sub_f32s(g, dv)),
            );
        }
    }
}

/// `out = diag(y) − y yᵀ`; `y` valid for `n`, `out` for `n·n`, disjoint.
struct Jacobian {
    y: *const f32,
    out: *mut f32,
    n: usize,
}

impl WithSimd for Jacobian {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (y, n) = (self.y, self.n);
        for i in 0..n {
            // SAFETY: row `i` of `out` is `out[i·n .. i·n + n]`, inside `n·n`.
            unsafe {
                let yi = *y.add(i);
                let row = self.out.add(i * n);
                let c = s.splat_f32s(-yi);
                map1(
                    s,
                    y,
                    row,
                    n,
                    #[inline(always)]
                    |v| s.mul_f32s(v, c),
                );
                // y_i − y_i² as y_i·(1 − y_i): one rounding less near y_i = 1.
                *row.add(i) = yi * (1.0 - yi);
            }
        }
    }
}

/// Flags invalid and zero probabilities among `n` at `p`.
struct ScanProbs {
    p: *const f32,
    n: usize,
}

impl WithSimd for ScanProbs {
    type Output = ProbScan;

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> ProbScan {
        let (p, n, l) = (self.p, self.n, S::F32_LANES);
        let zero = s.splat_f32s(0.0);
        // A lane is valid iff 0 ≤ p < +∞ (false for NaN); count in f32 lanes
        // as 1.0/0.0 so the reduction is an ordinary sum.
        let all = s.equal_f32s(zero, zero);
        let (mut bad, mut zeros) = (zero, zero);
        let mut i = 0;
        // SAFETY: indices stay below `n`, `p` valid for `n` reads.
        unsafe {
            while i + l <= n {
                let (b, z) = prob_flags(s, load::<S>(p.add(i)), all);
                bad = s.max_f32s(bad, b);
                zeros = s.max_f32s(zeros, z);
                i += l;
            }
            if i < n {
                let (b, z) = prob_flags(s, load_tail(s, p.add(i), n - i, 0.5), tail_mask(s, n - i));
                bad = s.max_f32s(bad, b);
                zeros = s.max_f32s(zeros, z);
            }
        }
        ProbScan {
            invalid: s.reduce_max_f32s(bad) > 0.0,
            zero: s.reduce_max_f32s(zeros) > 0.0,
        }
    }
}

/// Per lane, 1.0 where an active lane is invalid (not `0 ≤ p < +∞`, so NaN
/// too) and 1.0 where it is zero; reduced later with a max.
#[inline(always)]
fn prob_flags<S: Simd>(s: S, v: S::f32s, active: S::m32s) -> (S::f32s, S::f32s) {
    let (zero, one) = (s.splat_f32s(0.0), s.splat_f32s(1.0));
    let ok = s.and_m32s(
        s.greater_than_or_equal_f32s(v, zero),
        s.less_than_f32s(v, s.splat_f32s(f32::INFINITY)),
    );
    let bad = s.and_m32s(active, s.not_m32s(ok));
    let is_zero = s.and_m32s(active, s.equal_f32s(v, zero));
    (
        s.select_f32s(bad, one, zero),
        s.select_f32s(is_zero, one, zero),
    )
}

/// `out = ln p + c`; `src`/`dst` valid for `n`, equal or disjoint.
struct Logits {
    src: *const f32,
    dst: *mut f32,
    n: usize,
    anchor: Anchor,
}

impl WithSimd for Logits {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (src, dst, n) = (self.src, self.dst, self.n);
        // SAFETY: indices from `blocked_sum`/`map1` stay inside `n`; each
        // element is read before it is written; `k < n` checked by the caller
        // (and re-checked here: out of range gives NaN, never a wild read).
        unsafe {
            let c = match self.anchor {
                Anchor::Component(k) => {
                    if k >= n {
                        return fill(dst, n, f32::NAN);
                    }
                    // The same vector ln as the main pass, so out[k] is exactly 0.
                    let lk = s.reduce_max_f32s(ln(s, s.splat_f32s(*src.add(k))));
                    -lk
                }
                Anchor::ZeroMean => {
                    let total = blocked_sum(
                        s,
                        n,
                        #[inline(always)]
                        |i| {
                            let v = ln(s, load::<S>(src.add(i)));
                            store::<S>(dst.add(i), v);
                            v
                        },
                        #[inline(always)]
                        |i, r| {
                            let v = ln(s, load_tail(s, src.add(i), r, 1.0));
                            store_tail(s, dst.add(i), r, v);
                            v
                        },
                    );
                    let c = s.splat_f32s((-total / n.max(1) as f64) as f32);
                    return map1(
                        s,
                        dst,
                        dst,
                        n,
                        #[inline(always)]
                        |v| s.add_f32s(v, c),
                    );
                }
            };
            let cv = s.splat_f32s(c);
            map1(
                s,
                src,
                dst,
                n,
                #[inline(always)]
                |p| s.add_f32s(ln(s, p), cv),
            );
        }
    }
}

/// `softmax(Σ α_k x_k)` into `dst` (valid for `n`; every term has `n` elements).
struct Combination<'a> {
    terms: &'a [(f32, &'a [f32])],
    dst: *mut f32,
    n: usize,
}

impl WithSimd for Combination<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (terms, dst, n, l) = (self.terms, self.dst, self.n, S::F32_LANES);
        if n == 0 {
            return;
        }
        let ninf = s.splat_f32s(f32::NEG_INFINITY);
        let mut mx = ninf;
        let mut i = 0;
        // SAFETY: every term and `dst` hold `n` floats; indices stay below `n`.
        unsafe {
            while i + l <= n {
                let mut z = s.splat_f32s(0.0);
                for &(a, x) in terms {
                    z = s.mul_add_e_f32s(s.splat_f32s(a), load::<S>(x.as_ptr().add(i)), z);
                }
                store::<S>(dst.add(i), z);
                mx = s.max_f32s(mx, z);
                i += l;
            }
            if i < n {
                let r = n - i;
                let mut z = s.splat_f32s(0.0);
                for &(a, x) in terms {
                    z = s.mul_add_e_f32s(
                        s.splat_f32s(a),
                        load_tail(s, x.as_ptr().add(i), r, 0.0),
                        z,
                    );
                }
                store_tail(s, dst.add(i), r, z);
                mx = s.max_f32s(mx, s.select_f32s(tail_mask(s, r), z, ninf));
            }
            softmax_row_with_max(s, dst, dst, n, s.reduce_max_f32s(mx));
        }
    }
}

/// `dst = σ(src)`; valid for `n`, equal or disjoint.
struct Sigmoid {
    src: *const f32,
    dst: *mut f32,
    n: usize,
}

impl WithSimd for Sigmoid {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        // SAFETY: the caller's contract (valid for `n`, equal or disjoint).
        unsafe {
            map1(
                s,
                self.src,
                self.dst,
                self.n,
                #[inline(always)]
                |z| sigmoid_vec(s, z),
            )
        };
    }
}

/// `σ(z)` per lane: `t = e^(−|z|) ∈ [0, 1]`, then `1/(1+t)` for `z ≥ 0` and
/// `t/(1+t)` below, so nothing overflows and `±∞` give exactly `1`/`0`.
#[inline(always)]
fn sigmoid_vec<S: Simd>(s: S, z: S::f32s) -> S::f32s {
    let (one, zero) = (s.splat_f32s(1.0), s.splat_f32s(0.0));
    let t = exp_nonpos(s, s.neg_f32s(s.abs_f32s(z)));
    let r = s.div_f32s(one, s.add_f32s(one, t));
    s.select_f32s(s.greater_than_or_equal_f32s(z, zero), r, s.mul_f32s(t, r))
}
