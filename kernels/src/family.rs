//! The family's functions that are not a softmax of rows: the backward
//! pass and Jacobian, the inverse (`logits_from_probs`) and the sigmoid,
//! elementwise or with a plain blocked sum; the block maxima the samplers
//! filter with (`block_max`); and the scalar pieces of the
//! softmax-shaped ones: `softmax_scaled`'s limits at `α = 0, ±∞` and the
//! double-double keys of `softmax_of_combination`.

use crate::exp::ln;
use crate::fpenv::DefaultEnv;
use crate::isa::{Isa, Kern, load, store};
use crate::kernel::Kernel;

/// Which additive constant `logits_from_probs` picks (softmax is invariant
/// to it, so the inverse is defined up to `c·1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// `Σ x = 0`: `c = −mean(ln p)`.
    ZeroMean,
    /// `x_k = 0`: `c = −ln p_k`.
    Component(usize),
}

/// What a probability scan found (see `Kernel::scan_probs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ProbScan {
    /// Some entry is negative, NaN or `+∞`.
    pub invalid: bool,
    /// Some entry is `±0`.
    pub zero: bool,
}

impl<S: Isa> Kernel<S> {
    /// The backward pass `dx = y ⊙ (dy − ⟨dy, y⟩)`: a blocked dot product,
    /// then one fused multiply-subtract pass.
    #[inline]
    pub fn softmax_backward(self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
        let _env = DefaultEnv::enter();
        assert!(
            y.len() == dy.len() && y.len() == dx.len(),
            "softmax_backward: length mismatch"
        );
        let (y, dy, dx, n) = (y.as_ptr(), dy.as_ptr(), dx.as_mut_ptr(), y.len());
        self.simd().run(Backward { y, dy, dx, n });
    }

    /// `out = diag(y) − y yᵀ`, `N×N` row-major; `out.len()` must be `N²`.
    #[inline]
    pub fn jacobian(self, y: &[f32], out: &mut [f32]) {
        let _env = DefaultEnv::enter();
        let n = y.len();
        assert_eq!(
            Some(out.len()),
            n.checked_mul(n),
            "jacobian: output must be N*N"
        );
        let (y, out) = (y.as_ptr(), out.as_mut_ptr());
        self.simd().run(Jacobian { y, out, n });
    }

    /// Scans probabilities for entries that are invalid (negative, NaN,
    /// `+∞`) or zero, without writing anything.
    #[inline]
    pub fn scan_probs(self, p: &[f32]) -> ProbScan {
        // A subnormal probability is not zero: DAZ would read it as one.
        let _env = DefaultEnv::enter();
        self.simd().run(ScanProbs {
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
        let _env = DefaultEnv::enter();
        assert_eq!(p.len(), out.len(), "logits_from_probs: length mismatch");
        let (src, dst, n) = (p.as_ptr(), out.as_mut_ptr(), p.len());
        self.simd().run(Logits {
            src,
            dst,
            n,
            anchor,
        });
    }

    /// `output = 1 / (1 + e^(−input))`, stably: `e^(−|z|)` never overflows,
    /// `±∞` give exactly `1`/`0`, NaN stays NaN.
    #[inline]
    pub fn sigmoid(self, input: &[f32], output: &mut [f32]) {
        let _env = DefaultEnv::enter();
        assert_eq!(input.len(), output.len(), "sigmoid: length mismatch");
        let (src, dst, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.simd().run(Sigmoid { src, dst, n });
    }
}

/// Elements per block of [`Kernel::block_max`].
pub const MAX_BLOCK: usize = 64;

impl<S: Isa> Kernel<S> {
    /// The max of each [`MAX_BLOCK`]-element block of `input` (the last
    /// one possibly shorter) into `out` (`input.len().div_ceil(MAX_BLOCK)`
    /// values): one read of the row, so that later passes looking for the
    /// entries above a threshold (the samplers' candidates) skip the
    /// blocks below it. A block holding a NaN gets NaN (so the max of
    /// `out` is the row's max and shows a NaN anywhere).
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let x: Vec<f32> = (0..100).map(|i| i as f32).collect();
    /// let mut m = [0.0f32; 2];
    /// k.block_max(&x, &mut m);
    /// assert_eq!(m, [63.0, 99.0]);
    /// let mut y = x.clone();
    /// y[70] = f32::NAN;
    /// k.block_max(&y, &mut m);
    /// assert!(m[0] == 63.0 && m[1].is_nan());
    /// ```
    #[inline]
    pub fn block_max(self, input: &[f32], out: &mut [f32]) {
        assert_eq!(
            out.len(),
            input.len().div_ceil(MAX_BLOCK),
            "block_max: one value per block"
        );
        let (src, dst, n) = (input.as_ptr(), out.as_mut_ptr(), input.len());
        self.simd().run(BlockMax { src, dst, n });
    }
}

/// The max of each [`MAX_BLOCK`] of `src` (valid for `n`) into `dst`
/// (valid for `n.div_ceil(MAX_BLOCK)`).
struct BlockMax {
    src: *const f32,
    dst: *mut f32,
    n: usize,
}

impl Kern for BlockMax {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let BlockMax { src, dst, n } = self;
        let l = S::F32_LANES;
        let (ninf, zero) = (s.splat_f32s(f32::NEG_INFINITY), s.splat_f32s(0.0));
        for (b, start) in (0..n).step_by(MAX_BLOCK).enumerate() {
            let end = (start + MAX_BLOCK).min(n);
            // The max, and the lanes that saw only numbers (`v == v`): a
            // max instruction may drop a NaN, the mask does not.
            let (mut acc, mut ok) = (ninf, s.equal_f32s(zero, zero));
            let mut i = start;
            // SAFETY: `i + l ≤ end ≤ n` for the full vectors, the tail is
            // `end − i < l` elements inside `src`; block `b` is below
            // `n.div_ceil(MAX_BLOCK)`, inside `dst`.
            unsafe {
                while i + l <= end {
                    let v = load::<S>(src.add(i));
                    acc = s.max_f32s(acc, v);
                    ok = s.and_m32s(ok, s.equal_f32s(v, v));
                    i += l;
                }
                if i < end {
                    let v = s.load_tail(src.add(i), end - i, f32::NEG_INFINITY);
                    acc = s.max_f32s(acc, v);
                    ok = s.and_m32s(ok, s.equal_f32s(v, v));
                }
                let nan = s.reduce_max_f32s(s.select_f32s(ok, zero, s.splat_f32s(1.0)));
                *dst.add(b) = if nan > 0.0 {
                    f32::NAN
                } else {
                    s.reduce_max_f32s(acc)
                };
            }
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

impl Kern for Backward {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
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
                        s.load_tail(y.add(i), r, 0.0),
                        s.load_tail(dy.add(i), r, 0.0),
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

impl Kern for Jacobian {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
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

impl Kern for ScanProbs {
    type Output = ProbScan;

    #[inline(always)]
    fn run<S: Isa>(self, s: S) -> ProbScan {
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
                let (b, z) = prob_flags(s, s.load_tail(p.add(i), n - i, 0.5), tail_mask(s, n - i));
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
fn prob_flags<S: Isa>(s: S, v: S::f32s, active: S::m32s) -> (S::f32s, S::f32s) {
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

impl Kern for Logits {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
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
                            let v = ln(s, s.load_tail(src.add(i), r, 1.0));
                            s.store_tail(dst.add(i), r, v);
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

/// `dst = σ(src)`; valid for `n`, equal or disjoint.
struct Sigmoid {
    src: *const f32,
    dst: *mut f32,
    n: usize,
}

impl Kern for Sigmoid {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
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
fn sigmoid_vec<S: Isa>(s: S, z: S::f32s) -> S::f32s {
    let (one, zero) = (s.splat_f32s(1.0), s.splat_f32s(0.0));
    let t = s.exp_nonpos::<false>(s.neg_f32s(s.abs_f32s(z)));
    let r = s.div_f32s(one, s.add_f32s(one, t));
    s.select_f32s(s.greater_than_or_equal_f32s(z, zero), r, s.mul_f32s(t, r))
}

/// `Σ f` over `n` elements (signed terms: a dot product, a mean), where
/// `full(i)` gives the vector at element `i` and `tail(i, rem)` the last
/// partial vector with inactive lanes `0`. Four f32 accumulators take at
/// most 16 additions per lane, then the block goes into an f64 total, so
/// the error does not grow with `n`.
#[inline(always)]
fn blocked_sum<S: Isa>(
    s: S,
    n: usize,
    mut full: impl FnMut(usize) -> S::f32s,
    mut tail: impl FnMut(usize, usize) -> S::f32s,
) -> f64 {
    const BLOCK_VECTORS: usize = 64;
    let l = S::F32_LANES;
    let zero = s.splat_f32s(0.0);
    let n_vec = n - n % l;
    let mut total = 0.0f64;
    let mut i = 0;
    while i < n_vec {
        let end = n_vec.min(i + BLOCK_VECTORS * l);
        let mut a = [zero; 4];
        while i + 4 * l <= end {
            a[0] = s.add_f32s(a[0], full(i));
            a[1] = s.add_f32s(a[1], full(i + l));
            a[2] = s.add_f32s(a[2], full(i + 2 * l));
            a[3] = s.add_f32s(a[3], full(i + 3 * l));
            i += 4 * l;
        }
        while i < end {
            a[0] = s.add_f32s(a[0], full(i));
            i += l;
        }
        let v = s.add_f32s(s.add_f32s(a[0], a[1]), s.add_f32s(a[2], a[3]));
        total += s.reduce_sum_f32s(v) as f64;
    }
    if i < n {
        total += s.reduce_sum_f32s(tail(i, n - i)) as f64;
    }
    total
}

/// `dst = f(src)` elementwise over `n` floats.
///
/// # Safety
/// `src`/`dst` valid for `n` reads/writes, equal or disjoint.
#[inline(always)]
unsafe fn map1<S: Isa>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    f: impl Fn(S::f32s) -> S::f32s,
) {
    let l = S::F32_LANES;
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`; each element is read
    // before it is written.
    unsafe {
        while i + l <= n {
            store::<S>(dst.add(i), f(load::<S>(src.add(i))));
            i += l;
        }
        if i < n {
            let v = f(s.load_tail(src.add(i), n - i, 0.0));
            s.store_tail(dst.add(i), n - i, v);
        }
    }
}

/// `dst = f(a, b)` elementwise over `n` floats.
///
/// # Safety
/// All three valid for `n`, `dst` disjoint from `a` and `b`.
#[inline(always)]
unsafe fn map2<S: Isa>(
    s: S,
    a: *const f32,
    b: *const f32,
    dst: *mut f32,
    n: usize,
    f: impl Fn(S::f32s, S::f32s) -> S::f32s,
) {
    let l = S::F32_LANES;
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`.
    unsafe {
        while i + l <= n {
            store::<S>(dst.add(i), f(load::<S>(a.add(i)), load::<S>(b.add(i))));
            i += l;
        }
        if i < n {
            let r = n - i;
            let v = f(s.load_tail(a.add(i), r, 0.0), s.load_tail(b.add(i), r, 0.0));
            s.store_tail(dst.add(i), r, v);
        }
    }
}

/// The lanes `0..rem` as a mask.
#[inline(always)]
fn tail_mask<S: Isa>(s: S, rem: usize) -> S::m32s {
    s.mask_between_m32s(0, rem as u32).mask()
}

/// Writes `v` to `n` floats at `dst`.
///
/// # Safety
/// `dst` valid for `n` writes.
unsafe fn fill(dst: *mut f32, n: usize, v: f32) {
    for i in 0..n {
        // SAFETY: the caller's contract.
        unsafe { *dst.add(i) = v };
    }
}
