//! The softmax algorithms written once, generic over pulp's [`Simd`], and the
//! [`Kernel`] handle that runs them on one instruction set.
//!
//! Per row of `n` values (`src` and `dst` may be the same buffer):
//! ```text
//! m = max(x)                                   pass 1: 4 vector max accumulators
//! if m is finite:                              (the common case)
//!     total = Σ e^(x−m), dst = e^(x−m)         pass 2: fused exp + store + sum
//!     softmax:     dst *= 1/total              pass 3: one multiply per element
//!     log-softmax: dst = (x−m) − ln total      (pass 2 without the store)
//! else: NaN / +∞ / all −∞ row                  scalar, rare: SPEC §3 limits
//! ```
//! The sum is blocked so it does not drift as rows grow: four vector
//! accumulators take at most [`SUM_BLOCK_VECTORS`]`/4` additions each, then
//! the block is reduced horizontally and added to an `f64` total. The error
//! of a block sum is bounded by 16 additions per lane plus the horizontal
//! reduction, independent of the row length.
//!
//! Tails use pulp's masked loads and stores (AVX2 `vmaskmov`, AVX-512 mask
//! registers), never a scalar loop and never an access past the slice.
//! A NaN anywhere makes the exp-pass total NaN (the exp keeps NaN, and the
//! limits are applied with `select`, not min/max), so NaN detection costs
//! nothing on the fast path.

use crate::exp::exp_nonpos;
use pulp::{Simd, WithSimd};

/// Vectors summed into the four f32 accumulators before the block is folded
/// into the f64 total (16 additions per accumulator lane).
pub const SUM_BLOCK_VECTORS: usize = 64;

/// The whole kernel family on one instruction set, selected by the SIMD
/// token `S` (pulp's `Scalar`, `V3`, `V4`, `Neon`, or a portable
/// `ScalarNNNb`). Holding an `S` proves the CPU supports it, so every method
/// is safe. Methods panic on mismatched lengths; the `simd-softmax` crate
/// validates before calling, so through it they never do.
#[derive(Clone, Copy, Debug)]
pub struct Kernel<S: Simd> {
    simd: S,
}

impl<S: Simd> Kernel<S> {
    /// Wraps a SIMD token; the token itself is the proof of CPU support.
    #[inline]
    pub fn from_simd(simd: S) -> Self {
        Self { simd }
    }

    /// The SIMD token this kernel runs on.
    #[inline]
    pub fn simd(self) -> S {
        self.simd
    }

    /// Lanes of f32 per vector on this instruction set.
    pub const LANES: usize = S::F32_LANES;

    /// `output = softmax(input)`.
    #[inline]
    pub fn softmax(self, input: &[f32], output: &mut [f32]) {
        assert_eq!(input.len(), output.len(), "softmax: length mismatch");
        let n = input.len();
        self.softmax_rows_raw(input.as_ptr(), output.as_mut_ptr(), n, n);
    }

    /// `data = softmax(data)`.
    #[inline]
    pub fn softmax_in_place(self, data: &mut [f32]) {
        let n = data.len();
        let p = data.as_mut_ptr();
        self.softmax_rows_raw(p, p, n, n);
    }

    /// `output = log_softmax(input)`.
    #[inline]
    pub fn log_softmax(self, input: &[f32], output: &mut [f32]) {
        assert_eq!(input.len(), output.len(), "log_softmax: length mismatch");
        let n = input.len();
        self.log_softmax_rows_raw(input.as_ptr(), output.as_mut_ptr(), n, n);
    }

    /// `data = log_softmax(data)`.
    #[inline]
    pub fn log_softmax_in_place(self, data: &mut [f32]) {
        let n = data.len();
        let p = data.as_mut_ptr();
        self.log_softmax_rows_raw(p, p, n, n);
    }

    /// `ln Σ e^x` (`−∞` for an empty slice).
    #[inline]
    pub fn logsumexp(self, input: &[f32]) -> f32 {
        self.simd.vectorize(LogSumExp { src: input.as_ptr(), len: input.len() })
    }

    /// Softmax of each `row_len`-long row of `input` into `output`.
    #[inline]
    pub fn softmax_rows(self, input: &[f32], output: &mut [f32], row_len: usize) {
        assert_eq!(input.len(), output.len(), "softmax_rows: length mismatch");
        check_rows(input.len(), row_len);
        self.softmax_rows_raw(input.as_ptr(), output.as_mut_ptr(), input.len(), row_len);
    }

    /// Softmax of each `row_len`-long row of `data`, in place.
    #[inline]
    pub fn softmax_rows_in_place(self, data: &mut [f32], row_len: usize) {
        check_rows(data.len(), row_len);
        let p = data.as_mut_ptr();
        self.softmax_rows_raw(p, p, data.len(), row_len);
    }

    /// Log-softmax of each `row_len`-long row of `input` into `output`.
    #[inline]
    pub fn log_softmax_rows(self, input: &[f32], output: &mut [f32], row_len: usize) {
        assert_eq!(input.len(), output.len(), "log_softmax_rows: length mismatch");
        check_rows(input.len(), row_len);
        self.log_softmax_rows_raw(input.as_ptr(), output.as_mut_ptr(), input.len(), row_len);
    }

    /// Log-softmax of each `row_len`-long row of `data`, in place.
    #[inline]
    pub fn log_softmax_rows_in_place(self, data: &mut [f32], row_len: usize) {
        check_rows(data.len(), row_len);
        let p = data.as_mut_ptr();
        self.log_softmax_rows_raw(p, p, data.len(), row_len);
    }

    #[inline]
    fn softmax_rows_raw(self, src: *const f32, dst: *mut f32, len: usize, row_len: usize) {
        if len == 0 {
            return;
        }
        self.simd.vectorize(Rows::<false> { src, dst, len, row_len });
    }

    #[inline]
    fn log_softmax_rows_raw(self, src: *const f32, dst: *mut f32, len: usize, row_len: usize) {
        if len == 0 {
            return;
        }
        self.simd.vectorize(Rows::<true> { src, dst, len, row_len });
    }
}

fn check_rows(len: usize, row_len: usize) {
    assert!(row_len > 0 && len % row_len == 0, "row_len must be > 0 and divide the length");
}

/// Softmax (`LOG = false`) or log-softmax (`LOG = true`) over the rows of a
/// row-major buffer. `src` is valid for `len` reads and `dst` for `len`
/// writes; they are the same pointer or do not overlap; `row_len > 0`
/// divides `len`. Only constructed by [`Kernel`], which checks that.
struct Rows<const LOG: bool> {
    src: *const f32,
    dst: *mut f32,
    len: usize,
    row_len: usize,
}

impl<const LOG: bool> WithSimd for Rows<LOG> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let mut start = 0;
        while start < self.len {
            // SAFETY: `start + row_len <= len` (row_len divides len), so the
            // row lies inside both buffers; aliasing is as documented on `Rows`.
            unsafe {
                let src = self.src.add(start);
                let dst = self.dst.add(start);
                if LOG {
                    log_softmax_row(s, src, dst, self.row_len);
                } else {
                    softmax_row(s, src, dst, self.row_len);
                }
            }
            start += self.row_len;
        }
    }
}

/// `ln Σ e^x` over `len` values at `src` (valid for `len` reads).
struct LogSumExp {
    src: *const f32,
    len: usize,
}

impl WithSimd for LogSumExp {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> f32 {
        let (src, n) = (self.src, self.len);
        if n == 0 {
            return f32::NEG_INFINITY;
        }
        // SAFETY: `src` is valid for `n` reads (from a slice in `Kernel`).
        unsafe {
            let m = max_pass(s, src, n);
            if m.is_finite() {
                let total = exp_sum_pass::<S, false>(s, src, core::ptr::null_mut(), n, m);
                (m as f64 + libm::log(total)) as f32
            } else if m.is_nan() || any_nan(src, n) {
                f32::NAN
            } else {
                m // +∞ (some +∞ entry) or −∞ (fully masked row)
            }
        }
    }
}

/// Softmax of one row. `src`/`dst` valid for `n` reads/writes, equal or disjoint.
#[inline(always)]
unsafe fn softmax_row<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY (whole body): the caller's contract, forwarded to the passes.
    unsafe {
        let m = max_pass(s, src, n);
        if m.is_finite() {
            let total = exp_sum_pass::<S, true>(s, src, dst, n, m);
            if total.is_nan() {
                fill(dst, n, f32::NAN);
            } else {
                scale_pass(s, dst, n, (1.0 / total) as f32);
            }
        } else {
            special_row::<false>(src, dst, n, m);
        }
    }
}

/// Log-softmax of one row. Same contract as [`softmax_row`].
#[inline(always)]
unsafe fn log_softmax_row<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY (whole body): the caller's contract, forwarded to the passes.
    unsafe {
        let m = max_pass(s, src, n);
        if m.is_finite() {
            let total = exp_sum_pass::<S, false>(s, src, core::ptr::null_mut(), n, m);
            if total.is_nan() {
                fill(dst, n, f32::NAN);
            } else {
                shift_pass(s, src, dst, n, m, libm::log(total) as f32);
            }
        } else {
            special_row::<true>(src, dst, n, m);
        }
    }
}

/// A row whose max is not finite: NaN anywhere → all NaN; `+∞` entries share
/// the mass (`1/k`, log `−ln k`), the rest get `0` (log `−∞`); a fully
/// masked row (max `−∞`) gives `0` (log `−∞`). Scalar: these rows are rare
/// and their results are exact.
#[inline(never)]
unsafe fn special_row<const LOG: bool>(src: *const f32, dst: *mut f32, n: usize, m: f32) {
    // SAFETY (whole body): `src`/`dst` valid for `n` reads/writes; each `dst[i]`
    // is written only after `src[i]` was read, so in-place is fine.
    unsafe {
        if m.is_nan() || any_nan(src, n) {
            return fill(dst, n, f32::NAN);
        }
        let (hit, miss) = if m == f32::INFINITY {
            let k = (0..n).filter(|&i| *src.add(i) == f32::INFINITY).count() as f64;
            if LOG { (-libm::log(k) as f32, f32::NEG_INFINITY) } else { ((1.0 / k) as f32, 0.0) }
        } else {
            // Fully masked: every entry is −∞ and none is a maximum to share.
            (0.0, if LOG { f32::NEG_INFINITY } else { 0.0 })
        };
        for i in 0..n {
            let x = *src.add(i);
            *dst.add(i) = if m == f32::INFINITY && x == f32::INFINITY { hit } else { miss };
        }
    }
}

unsafe fn any_nan(src: *const f32, n: usize) -> bool {
    // SAFETY: `src` valid for `n` reads (caller).
    (0..n).any(|i| unsafe { (*src.add(i)).is_nan() })
}

unsafe fn fill(dst: *mut f32, n: usize, v: f32) {
    for i in 0..n {
        // SAFETY: `dst` valid for `n` writes (caller).
        unsafe { *dst.add(i) = v };
    }
}

#[inline(always)]
unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    // SAFETY: the caller guarantees `F32_LANES` readable floats at `p`.
    unsafe { (p as *const S::f32s).read_unaligned() }
}

#[inline(always)]
unsafe fn store<S: Simd>(p: *mut f32, v: S::f32s) {
    // SAFETY: the caller guarantees `F32_LANES` writable floats at `p`.
    unsafe { (p as *mut S::f32s).write_unaligned(v) }
}

/// The `rem < F32_LANES` trailing floats at `p` as one vector, the missing
/// lanes set to `fill`.
#[inline(always)]
unsafe fn load_tail<S: Simd>(s: S, p: *const f32, rem: usize, fill: f32) -> S::f32s {
    let mask = s.mask_between_m32s(0, rem as u32);
    // SAFETY: the masked load touches only the `rem` active lanes, which the
    // caller guarantees are readable.
    let v = unsafe { s.mask_load_ptr_f32s(mask, p) };
    s.select_f32s(mask.mask(), v, s.splat_f32s(fill))
}

#[inline(always)]
unsafe fn store_tail<S: Simd>(s: S, p: *mut f32, rem: usize, v: S::f32s) {
    let mask = s.mask_between_m32s(0, rem as u32);
    // SAFETY: the masked store writes only the `rem` active lanes, which the
    // caller guarantees are writable.
    unsafe { s.mask_store_ptr_f32s(mask, p, v) }
}

/// Max of `n ≥ 1` floats at `src`. NaN inputs may or may not show in the
/// result; callers detect NaN elsewhere.
#[inline(always)]
unsafe fn max_pass<S: Simd>(s: S, src: *const f32, n: usize) -> f32 {
    let l = S::F32_LANES;
    let ninf = s.splat_f32s(f32::NEG_INFINITY);
    let (mut a0, mut a1, mut a2, mut a3) = (ninf, ninf, ninf, ninf);
    let mut i = 0;
    // SAFETY (all loads): indices stay below `n`, `src` valid for `n` reads.
    unsafe {
        while i + 4 * l <= n {
            a0 = s.max_f32s(a0, load::<S>(src.add(i)));
            a1 = s.max_f32s(a1, load::<S>(src.add(i + l)));
            a2 = s.max_f32s(a2, load::<S>(src.add(i + 2 * l)));
            a3 = s.max_f32s(a3, load::<S>(src.add(i + 3 * l)));
            i += 4 * l;
        }
        while i + l <= n {
            a0 = s.max_f32s(a0, load::<S>(src.add(i)));
            i += l;
        }
        if i < n {
            a1 = s.max_f32s(a1, load_tail(s, src.add(i), n - i, f32::NEG_INFINITY));
        }
    }
    s.reduce_max_f32s(s.max_f32s(s.max_f32s(a0, a1), s.max_f32s(a2, a3)))
}

/// `Σ e^(x−m)` over `n` floats at `src` (`m` finite, `≥` every input), also
/// storing each `e^(x−m)` to `dst` when `STORE`. Returns NaN iff an input is NaN.
#[inline(always)]
unsafe fn exp_sum_pass<S: Simd, const STORE: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
) -> f64 {
    let l = S::F32_LANES;
    let mv = s.splat_f32s(m);
    let zero = s.splat_f32s(0.0);
    let n_vec = n - n % l;
    let mut total = 0.0f64;
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`; `src`/`dst` valid for `n`
    // reads/writes, equal or disjoint; each element is read before written.
    unsafe {
        let step = |i: usize| -> S::f32s {
            let e = exp_nonpos(s, s.sub_f32s(load::<S>(src.add(i)), mv));
            if STORE {
                store::<S>(dst.add(i), e);
            }
            e
        };
        while i < n_vec {
            let end = n_vec.min(i + SUM_BLOCK_VECTORS * l);
            let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
            while i + 4 * l <= end {
                a0 = s.add_f32s(a0, step(i));
                a1 = s.add_f32s(a1, step(i + l));
                a2 = s.add_f32s(a2, step(i + 2 * l));
                a3 = s.add_f32s(a3, step(i + 3 * l));
                i += 4 * l;
            }
            while i < end {
                a0 = s.add_f32s(a0, step(i));
                i += l;
            }
            let block = s.add_f32s(s.add_f32s(a0, a1), s.add_f32s(a2, a3));
            total += s.reduce_sum_f32s(block) as f64;
        }
        if i < n {
            let rem = n - i;
            // Inactive lanes load −∞, whose exp is exactly 0.
            let x = load_tail(s, src.add(i), rem, f32::NEG_INFINITY);
            let e = exp_nonpos(s, s.sub_f32s(x, mv));
            if STORE {
                store_tail(s, dst.add(i), rem, e);
            }
            total += s.reduce_sum_f32s(e) as f64;
        }
    }
    total
}

/// `dst *= c` over `n` floats.
#[inline(always)]
unsafe fn scale_pass<S: Simd>(s: S, dst: *mut f32, n: usize, c: f32) {
    let l = S::F32_LANES;
    let cv = s.splat_f32s(c);
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`, `dst` valid for `n`.
    unsafe {
        while i + 4 * l <= n {
            for j in 0..4 {
                let p = dst.add(i + j * l);
                store::<S>(p, s.mul_f32s(load::<S>(p), cv));
            }
            i += 4 * l;
        }
        while i + l <= n {
            let p = dst.add(i);
            store::<S>(p, s.mul_f32s(load::<S>(p), cv));
            i += l;
        }
        if i < n {
            let p = dst.add(i);
            store_tail(s, p, n - i, s.mul_f32s(load_tail(s, p, n - i, 0.0), cv));
        }
    }
}

/// `dst = (src − m) − c` over `n` floats (`src`/`dst` equal or disjoint).
#[inline(always)]
unsafe fn shift_pass<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize, m: f32, c: f32) {
    let l = S::F32_LANES;
    let (mv, cv) = (s.splat_f32s(m), s.splat_f32s(c));
    let f = |x: S::f32s| s.sub_f32s(s.sub_f32s(x, mv), cv);
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`; each element is read
    // before it is written.
    unsafe {
        while i + 4 * l <= n {
            for j in 0..4 {
                store::<S>(dst.add(i + j * l), f(load::<S>(src.add(i + j * l))));
            }
            i += 4 * l;
        }
        while i + l <= n {
            store::<S>(dst.add(i), f(load::<S>(src.add(i))));
            i += l;
        }
        if i < n {
            store_tail(s, dst.add(i), n - i, f(load_tail(s, src.add(i), n - i, 0.0)));
        }
    }
}
