//! The softmax algorithms written once, generic over pulp's [`Simd`], and the
//! [`Kernel`] handle that runs them on one instruction set.
//!
//! Per row of `n` values (`src` and `dst` may be the same buffer):
//! ```text
//! m = max(x)                                   pass 1: 4 vector max accumulators
//! if m is finite:                              (the common case)
//!     total = Σ e^(x−m), dst = e^(x−m)         pass 2: fused exp + store + sum
//!     softmax:     dst *= 1/total              pass 3: one multiply per element
//! else: NaN / +∞ / all −∞ row                  scalar, rare: SPEC §3 limits
//! ```
//! Batches run these passes through one of the paths of `Rows`: rows of
//! at most four vectors in registers (`small`), longer softmax rows as a
//! pipeline over the batch (`batch`: row `r`'s exp sweep also scales row
//! `r − 1` and takes row `r + 1`'s range), each path its own target-feature
//! function. Rows of [`TWO_PASS_MIN`] or more elements (larger than L2) and every
//! log-softmax/logsumexp use `online_max_sum` instead: max and sum in one
//! sweep, then one output pass (`e^(x−m)/total`, or `(x−m) − ln total`).
//! The exp sum does not drift as rows grow and keeps tiny terms next to the
//! max's exact 1 (`unit_sum`): Fast2Sum-compensated f32 lanes, folded lane
//! by lane into an `f64` total every [`UNIT_SUM_BLOCK_VECTORS`] vectors.
//!
//! Tails use pulp's masked loads and stores (AVX2 `vmaskmov`, AVX-512 mask
//! registers), never a scalar loop and never an access past the slice.
//! A NaN anywhere makes the exp-pass total NaN (the exp keeps NaN, and the
//! limits are applied with `select`, not min/max), so NaN detection costs
//! nothing on the fast path.

use crate::batch::softmax_batch;
use crate::math::{exp_nonpos, exp_nonpos_gradual, exp_nonpos_in_range};
use crate::small::small_rows;
use pulp::{Simd, WithSimd};

/// Vectors summed into the four f32 accumulators before the block is folded
/// into the f64 total (16 additions per accumulator lane).
pub const SUM_BLOCK_VECTORS: usize = 64;

/// Vectors per block of the compensated `unit_sum`: each error lane then
/// takes at most 8 roundings before the block is folded into f64, so a sum
/// of many equal tiny terms (the worst case: every rounding in the same
/// direction) keeps its relative accuracy to ~2 ULP. With 64 vectors the
/// error lanes took up to 32 roundings and log-softmax at the max entry of
/// `[0, −16.7 × 63]` was 6 ULP off.
pub const UNIT_SUM_BLOCK_VECTORS: usize = 16;

/// Vectors per block of the softmax sum (`unit_sum`): its result only has
/// to be accurate relative to the whole sum (which the max's term makes
/// `≥ 1`), not relative to the tiny `δ`, so the error lanes may take many
/// roundings and the fold is paid once per 256 vectors.
pub const SOFTMAX_SUM_BLOCK: usize = 256;

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
    pub const fn from_simd(simd: S) -> Self {
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

    /// The mergeable softmax state of `input`: its max `m` and `Σ e^(x−m)`
    /// (in f64), in one sweep. `m` is NaN or `+∞` (and the sum meaningless)
    /// when the slice holds NaN or `+∞`; `(−∞, 0)` for an empty or fully
    /// masked slice. Two states merge as `m = max(m1, m2)`,
    /// `Σ = Σ1·e^(m1−m) + Σ2·e^(m2−m)`.
    #[inline]
    pub fn max_sum(self, input: &[f32]) -> (f32, f64) {
        self.simd.vectorize(MaxSum {
            src: input.as_ptr(),
            len: input.len(),
        })
    }

    /// `output = e^(input − m) · scale`, the second pass of a split softmax;
    /// expects `m` finite and `≥` every input. Slices of `STREAM_MIN / 2`
    /// floats or more are written with non-temporal stores (AVX2).
    #[inline]
    pub fn exp_scale(self, input: &[f32], output: &mut [f32], m: f32, scale: f32) {
        assert_eq!(input.len(), output.len(), "exp_scale: length mismatch");
        let (src, dst, len) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.simd.vectorize(ExpScale {
            src,
            dst,
            len,
            m,
            scale,
        });
    }

    /// `ln Σ e^x` (`−∞` for an empty slice).
    #[inline]
    pub fn logsumexp(self, input: &[f32]) -> f32 {
        self.simd.vectorize(LogSumExp {
            src: input.as_ptr(),
            len: input.len(),
        })
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
        assert_eq!(
            input.len(),
            output.len(),
            "log_softmax_rows: length mismatch"
        );
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
        self.simd.vectorize(Rows::<false> {
            src,
            dst,
            len,
            row_len,
        });
    }

    #[inline]
    fn log_softmax_rows_raw(self, src: *const f32, dst: *mut f32, len: usize, row_len: usize) {
        if len == 0 {
            return;
        }
        self.simd.vectorize(Rows::<true> {
            src,
            dst,
            len,
            row_len,
        });
    }
}

fn check_rows(len: usize, row_len: usize) {
    assert!(
        row_len > 0 && len % row_len == 0,
        "row_len must be > 0 and divide the length"
    );
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

// Lost experiment (short rows): copying groups of `F32_LANES` rows of ≤ 32
// columns transposed into a stack buffer, so max/exp/sum/reciprocal become
// vertical, was slower than this row-at-a-time loop on Zen 4 (AVX-512:
// 1.47 vs 1.94 ns/element at 8 columns but 1.11 vs 0.55 at 32; AVX2: 1.96
// vs ~1.9 and 1.48 vs ~0.6): the scalar transposing copies and the failed
// store-to-load forwarding of vectors assembled from scalar stores cost more
// than the horizontal reductions they remove.
impl<const LOG: bool> WithSimd for Rows<LOG> {
    type Output = ();

    /// Picks the path for this row length and runs it as its own
    /// target-feature function ([`RowsPath`]): one function holding every
    /// path, each with its exps inlined, took LLVM minutes per instruction
    /// set to optimize (the time of a function's optimization grows faster
    /// than its size), and the call costs nothing next to a row.
    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let Rows {
            src,
            dst,
            len,
            row_len,
        } = self;
        let l = S::F32_LANES;
        macro_rules! path {
            ($p:expr) => {
                s.vectorize(RowsPath::<LOG, { $p }> {
                    src,
                    dst,
                    len,
                    row_len,
                })
            };
        }
        // Rows of up to 8 floats on AVX-512: the AVX2 path, one row per
        // 256-bit vector (a 512-bit vector would be half padding, and its
        // division and butterflies cost twice as much per row). 32768×8 on
        // an Intel Xeon (two 512-bit pipes), interleaved runs: 1.21–1.40
        // ns/element with 512-bit vectors, 0.60 with 256-bit ones.
        #[cfg(target_arch = "x86_64")]
        if row_len <= 8 {
            if let Some(v4) = crate::isa::as_v4(s) {
                let v3: pulp::x86::V3 = *v4;
                return Simd::vectorize(
                    v3,
                    RowsPath::<LOG, PATH_SMALL1> {
                        src,
                        dst,
                        len,
                        row_len,
                    },
                );
            }
        }
        // Lost experiment (AVX-512, Intel Xeon): softmax rows of 5–8
        // vectors in registers like the small ones (pairwise sum, one
        // group per row) ran slower than the batch pipeline: 2048×128 0.352
        // vs 0.326, 2340×112 0.354 vs 0.341, 2730×96 0.372 vs 0.358
        // ns/element (min of 3 interleaved runs). Retried with the small
        // path's pipelining (the next row's max reduced before this row's
        // exps): 2048×128 0.322 vs 0.332 (median of 7) one row at a time,
        // and two rows at a time spilled (0.47): too little to carry a
        // fifth path.
        match row_len.div_ceil(l) {
            1 => path!(PATH_SMALL1),
            2 => path!(PATH_SMALL2),
            3 => path!(PATH_SMALL3),
            4 => path!(PATH_SMALL4),
            _ if !LOG && row_len < TWO_PASS_MIN => {
                if len >= STREAM_MIN && has_stream(s) {
                    path!(PATH_BATCH_STREAM)
                } else {
                    path!(PATH_BATCH)
                }
            }
            _ => path!(PATH_LONG),
        }
    }
}

const PATH_SMALL1: u8 = 1;
const PATH_SMALL2: u8 = 2;
const PATH_SMALL3: u8 = 3;
const PATH_SMALL4: u8 = 4;
const PATH_BATCH: u8 = 5;
const PATH_BATCH_STREAM: u8 = 6;
const PATH_LONG: u8 = 7;

/// One path of [`Rows`] (same fields, same contract): rows of 1 to 4
/// vectors in registers, the batch pipeline of `crate::batch` (plain or
/// streaming), or one long row at a time.
struct RowsPath<const LOG: bool, const P: u8> {
    src: *const f32,
    dst: *mut f32,
    len: usize,
    row_len: usize,
}

impl<const LOG: bool, const P: u8> WithSimd for RowsPath<LOG, P> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (src, dst, w) = (self.src, self.dst, self.row_len);
        let rows = self.len / w;
        // SAFETY: `Rows`' contract is every path's contract (the small
        // paths' `(N − 1)·L < w ≤ N·L` is how `Rows` picked them).
        unsafe {
            match P {
                PATH_SMALL1 => small_rows::<S, 1, 8, LOG>(s, src, dst, rows, w),
                PATH_SMALL2 => small_rows::<S, 2, 4, LOG>(s, src, dst, rows, w),
                PATH_SMALL3 => small_rows::<S, 3, 2, LOG>(s, src, dst, rows, w),
                PATH_SMALL4 => small_rows::<S, 4, 2, LOG>(s, src, dst, rows, w),
                PATH_BATCH if !LOG => softmax_batch::<S, false>(s, src, dst, rows, w),
                PATH_BATCH_STREAM if !LOG => softmax_batch::<S, true>(s, src, dst, rows, w),
                _ => {
                    for r in 0..rows {
                        // Row `r` lies inside both buffers (`w` divides `len`).
                        let (x, y) = (src.add(r * w), dst.add(r * w));
                        if LOG {
                            log_softmax_row(s, x, y, w);
                        } else {
                            softmax_row(s, x, y, w);
                        }
                    }
                }
            }
        }
    }
}

/// `online_max_sum` over `len` values at `src` (valid for `len` reads).
struct MaxSum {
    src: *const f32,
    len: usize,
}

impl WithSimd for MaxSum {
    type Output = (f32, f64);

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) -> (f32, f64) {
        // SAFETY: `src` is valid for `len` reads (from a slice in `Kernel`).
        let (m, total, _) = unsafe { online_softmax_sum(s, self.src, self.len) };
        (m, total)
    }
}

/// `dst = e^(src − m) · scale` over `len` values (valid, equal or disjoint).
struct ExpScale {
    src: *const f32,
    dst: *mut f32,
    len: usize,
    m: f32,
    scale: f32,
}

impl WithSimd for ExpScale {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, s: S) {
        let (src, dst, n, m, c) = (self.src, self.dst, self.len, self.m, self.scale);
        // SAFETY: pointers valid for `len`, from slices in `Kernel`.
        // Chunks of a huge row (the parallel softmax's second pass) stream
        // their output, as the sequential two-pass path does.
        unsafe {
            if n >= STREAM_MIN / 2 {
                exp_scale_pass::<S, false, true>(s, src, dst, n, m, c);
                stream_fence(s);
            } else {
                exp_scale_pass::<S, false, false>(s, src, dst, n, m, c);
            }
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
            let (m, sum) = online_max_sum(s, src, n);
            if m.is_finite() {
                (m as f64 + sum.ln()) as f32
            } else if m.is_nan() || any_nan(src, n) {
                f32::NAN
            } else {
                m // +∞ (some +∞ entry) or −∞ (fully masked row)
            }
        }
    }
}

/// [`softmax_row`] (`LOG = false`) or [`log_softmax_row`] in a
/// target-feature function of its own, for the rare rows that the
/// specialized paths hand back (non-finite maxima): inlining the whole
/// general row path into each of them would only slow the build.
///
/// # Safety
/// As [`softmax_row`].
#[inline(always)]
pub(crate) unsafe fn row_apart<S: Simd, const LOG: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
) {
    struct OneRow<const LOG: bool> {
        src: *const f32,
        dst: *mut f32,
        n: usize,
    }
    impl<const LOG: bool> WithSimd for OneRow<LOG> {
        type Output = ();
        #[inline(always)]
        fn with_simd<S: Simd>(self, s: S) {
            // SAFETY: `row_apart`'s contract.
            unsafe {
                if LOG {
                    log_softmax_row(s, self.src, self.dst, self.n)
                } else {
                    softmax_row(s, self.src, self.dst, self.n)
                }
            }
        }
    }
    s.vectorize(OneRow::<LOG> { src, dst, n });
}

/// Softmax of one row. `src`/`dst` valid for `n` reads/writes, equal or disjoint.
#[inline(always)]
pub(crate) unsafe fn softmax_row<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        if n >= TWO_PASS_MIN {
            return softmax_row_two_pass(s, src, dst, n);
        }
        let m = max_pass(s, src, n);
        softmax_row_with_max(s, src, dst, n, m);
    }
}

/// Rows at least this long take the two-pass path (`online_softmax_sum`,
/// then one exp-and-normalize pass: 12 bytes of memory traffic per element
/// with streaming stores, instead of the fused path's 20) — they no longer
/// fit in the L2 cache, so the fused path's three sweeps would each go to
/// L3 or DRAM.
/// Measured on Zen 4 (AVX-512, single row, loaded machine): fused vs
/// two-pass 0.31 vs 0.44 ns/element at 2^18, 0.33 vs 0.44 at 2^20 (the
/// two-pass path computes the exp twice and is compute-bound while the
/// row is in L2/L3), 1.82 vs 1.58 at 2^22 and 2.02 vs 1.95 at 2^24 (out
/// of L3, memory-bound), so the switch sits between 2^20 and 2^22.
/// Zen 3 (AVX2) agrees: rows whose data is hot in L3 (one 2^20 row, 8 MiB
/// in and out) 0.50 fused vs 0.62 two-pass; rows in a 64 MiB batch (out
/// of cache) fused wins up to 2^18 (1.01 vs 1.30), two-pass from 2^19
/// (1.05 vs 1.12) and at 2^20 (1.14 vs 1.26).
pub const TWO_PASS_MIN: usize = 1 << 21;

/// Softmax of one long row in two passes: online max and sum
/// ([`online_softmax_sum`]), then `y = e^(x−m) · (1/total)` (the exp
/// computed a second time, which is cheaper than a third sweep over
/// memory), stored non-temporally when the row is larger than
/// [`STREAM_MIN`] (AVX2; the output would not stay in cache anyway, and
/// a streaming store skips reading each output line before writing it:
/// 12 bytes of traffic per element instead of 16).
#[inline(always)]
unsafe fn softmax_row_two_pass<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY (whole body): the caller's contract, forwarded.
    unsafe {
        let (m, total, lo) = online_softmax_sum(s, src, n);
        if !m.is_finite() {
            nonfinite_row::<false>(src, dst, n, m, f32::INFINITY);
        } else if total.is_nan() {
            fill(dst, n, f32::NAN);
        } else {
            let c = (1.0 / total) as f32;
            match (in_exp_range(lo, m), n >= STREAM_MIN) {
                (true, true) => exp_scale_pass::<S, true, true>(s, src, dst, n, m, c),
                (true, false) => exp_scale_pass::<S, true, false>(s, src, dst, n, m, c),
                (false, true) => exp_scale_pass::<S, false, true>(s, src, dst, n, m, c),
                (false, false) => exp_scale_pass::<S, false, false>(s, src, dst, n, m, c),
            }
            stream_fence(s);
        }
    }
}

/// Rows at least this long (two-pass path) and batches at least this large
/// (`crate::batch`'s streaming form) are written with non-temporal stores
/// where the ISA has them (AVX2, AVX-512): 16 MiB of output, half this
/// machine class's L3, will not be read back from cache anyway.
pub const STREAM_MIN: usize = 1 << 22;

/// `dst = e^(src − m) · scale` over `n` floats (equal or disjoint);
/// `IN_RANGE`: every `src − m ≥ EXP_LO`; `STREAM`: non-temporal stores.
#[inline(always)]
pub(crate) unsafe fn exp_scale_pass<S: Simd, const IN_RANGE: bool, const STREAM: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
    scale: f32,
) {
    let (mv, c, one) = (s.splat_f32s(m), s.splat_f32s(scale), s.splat_f32s(1.0));
    // SAFETY: the caller's contract.
    unsafe {
        if STREAM {
            map1_stream(
                s,
                src,
                dst,
                n,
                #[inline(always)]
                |x| s.mul_f32s(exp_term::<S, false, IN_RANGE>(s, x, mv, one), c),
            )
        } else {
            map1(
                s,
                src,
                dst,
                n,
                #[inline(always)]
                |x| s.mul_f32s(exp_term::<S, false, IN_RANGE>(s, x, mv, one), c),
            )
        }
    }
}

/// `Σ e^(x−m)` and the max `m` of `n` floats at `src` in one sweep, the
/// softmax's mergeable state (Milakov & Gimelshein's online softmax,
/// blocked): each block of [`SUM_BLOCK_VECTORS`] vectors (2 KiB on AVX2,
/// still in L1 for its second read) gets its range, the running f64 total
/// is rescaled by `e^(m_old − m_new)` when the max grows, and the block's
/// exps are summed against the new max (skipping the exp's flush when the
/// block is in range). Also returns the minimum. The sum is accurate
/// relative to itself (what softmax needs), unlike [`online_max_sum`]'s
/// `k + δ` split. Returns early with a non-finite `m` (NaN or `+∞`) for
/// the caller's special-row path; a NaN elsewhere makes the total NaN.
#[inline(always)]
pub(crate) unsafe fn online_softmax_sum<S: Simd>(
    s: S,
    src: *const f32,
    n: usize,
) -> (f32, f64, f32) {
    let block = SUM_BLOCK_VECTORS * S::F32_LANES;
    let (mut m, mut total, mut lo) = (f32::NEG_INFINITY, 0.0f64, f32::INFINITY);
    let mut i = 0;
    // SAFETY (whole body): each block `i .. i + len` lies inside the `n`
    // floats `src` is valid for.
    unsafe {
        while i < n {
            let len = block.min(n - i);
            let p = src.add(i);
            let (blo, bm) = range_pass(s, p, len);
            if bm.is_nan() || bm == f32::INFINITY {
                return (bm, total, lo);
            }
            lo = lo.min(blo);
            if bm > m {
                total *= libm::exp(m as f64 - bm as f64);
                m = bm;
            }
            if m > f32::NEG_INFINITY {
                // The next block is prefetched along the (compute-bound) exp
                // sweep, so its range pass hits the cache.
                let (q, ahead) = (p as *mut f32, p.add(len));
                total += match (in_exp_range(blo, m), i + 2 * len <= n) {
                    (true, true) => {
                        exp_sum_prefetch::<S, false, false, true, true>(s, p, q, len, m, 1.0, ahead)
                    }
                    (true, false) => exp_sum_pass::<S, false, false, true>(s, p, q, len, m, 1.0),
                    (false, true) => exp_sum_prefetch::<S, false, false, false, true>(
                        s, p, q, len, m, 1.0, ahead,
                    ),
                    (false, false) => exp_sum_pass::<S, false, false, false>(s, p, q, len, m, 1.0),
                };
            }
            i += len;
        }
    }
    (m, total, lo)
}

/// The row max `m` and `Σ e^(x−m)` in one sweep over memory (Milakov &
/// Gimelshein's online softmax, blocked): each block of
/// [`SUM_BLOCK_VECTORS`] vectors (4 KiB on AVX-512, still in L1 for its
/// second read) is max-reduced, the running f64 total is rescaled by
/// `e^(m_old − m_new)` when the max grows, and the block's exps are summed
/// against the new max. Returns early with a non-finite `m` (NaN or `+∞`
/// from the blocks seen so far) for the caller's special-row path; a NaN
/// anywhere else makes the total NaN.
#[inline(always)]
pub(crate) unsafe fn online_max_sum<S: Simd>(s: S, src: *const f32, n: usize) -> (f32, ExpSum) {
    let block = SUM_BLOCK_VECTORS * S::F32_LANES;
    let (mut m, mut sum) = (f32::NEG_INFINITY, ExpSum { k: 0.0, delta: 0.0 });
    let mut i = 0;
    // SAFETY (whole body): each block `i .. i + len` lies inside the `n`
    // floats `src` is valid for.
    unsafe {
        while i < n {
            let len = block.min(n - i);
            let p = src.add(i);
            let bm = max_pass(s, p, len);
            if bm.is_nan() || bm == f32::INFINITY {
                return (bm, sum);
            }
            if bm > m {
                // The old maxima are no longer maxima: all of it becomes δ.
                sum.delta = (sum.delta + sum.k) * libm::exp(m as f64 - bm as f64);
                sum.k = 0.0;
                m = bm;
            }
            if m > f32::NEG_INFINITY {
                let b = split_sum_pass(s, p, len, m);
                sum.k += b.k;
                sum.delta += b.delta;
            }
            i += len;
        }
    }
    (m, sum)
}

/// `Σ e^(x−m)` split as `k + δ`: `k` entries equal to the max `m` (each
/// contributing exactly 1) and `δ`, the rest. Keeping them apart lets
/// `ln Σ = ln k + log1p(δ/k)` stay accurate when `δ` is far below the f64
/// resolution of 1 (log-softmax at the max entry is `−ln Σ ≈ −δ/k`;
/// `[7, −33]` needs `δ = e^-40`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ExpSum {
    pub(crate) k: f64,
    pub(crate) delta: f64,
}

impl ExpSum {
    pub(crate) fn ln(self) -> f64 {
        libm::log(self.k) + libm::log1p(self.delta / self.k)
    }
}

/// `e^(x−m)` with the maxima's exact 1s moved to `count` (as 0 here).
#[inline(always)]
fn split_term<S: Simd>(s: S, x: S::f32s, m: S::f32s, count: &core::cell::Cell<S::f32s>) -> S::f32s {
    let (zero, one) = (s.splat_f32s(0.0), s.splat_f32s(1.0));
    let d = s.sub_f32s(x, m);
    let at_max = s.equal_f32s(d, zero);
    count.set(s.add_f32s(count.get(), s.select_f32s(at_max, one, zero)));
    s.select_f32s(at_max, zero, exp_nonpos_gradual(s, d))
}

/// [`ExpSum`] of one block of `n` floats at `src` against the max `m`.
#[inline(always)]
unsafe fn split_sum_pass<S: Simd>(s: S, src: *const f32, n: usize, m: f32) -> ExpSum {
    let (mv, zero) = (s.splat_f32s(m), s.splat_f32s(0.0));
    let count = core::cell::Cell::new(zero);
    // SAFETY (all loads): `unit_sum` passes indices with a full vector (or
    // `rem` lanes) inside `n`, and `src` is valid for `n` reads.
    let delta = unit_sum::<S, UNIT_SUM_BLOCK_VECTORS>(
        s,
        n,
        #[inline(always)]
        |i| split_term(s, unsafe { load::<S>(src.add(i)) }, mv, &count),
        #[inline(always)]
        |i, rem| {
            split_term(
                s,
                unsafe { load_tail(s, src.add(i), rem, f32::NEG_INFINITY) },
                mv,
                &count,
            )
        },
    );
    let count = count.get();
    // Lane counts are small exact integers (a block holds ≤ 1024 floats).
    ExpSum {
        k: crate::isa::fold_f64(s, count, zero, 0.0),
        delta,
    }
}

/// [`softmax_row`] once the row max `m` is known.
#[inline(always)]
pub(crate) unsafe fn softmax_row_with_max<S: Simd>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
) {
    // SAFETY (whole body): the caller's contract, forwarded to the passes.
    unsafe {
        if m.is_finite() {
            let total = exp_sum_pass::<S, true, false, false>(s, src, dst, n, m, 1.0);
            finish_softmax(s, dst, n, total);
        } else {
            nonfinite_row::<false>(src, dst, n, m, f32::INFINITY);
        }
    }
}

/// Normalizes `dst` (holding the exps) by `total`, or makes it NaN when the
/// total is NaN (a NaN input).
#[inline(always)]
pub(crate) unsafe fn finish_softmax<S: Simd>(s: S, dst: *mut f32, n: usize, total: f64) {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        if total.is_nan() {
            fill(dst, n, f32::NAN);
        } else {
            let c = s.splat_f32s((1.0 / total) as f32);
            map1(
                s,
                dst,
                dst,
                n,
                #[inline(always)]
                |v| s.mul_f32s(v, c),
            );
        }
    }
}

/// Log-softmax of one row. Same contract as [`softmax_row`].
#[inline(always)]
pub(crate) unsafe fn log_softmax_row<S: Simd>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    // SAFETY (whole body): the caller's contract, forwarded to the passes.
    unsafe {
        let (m, sum) = online_max_sum(s, src, n);
        if !m.is_finite() {
            nonfinite_row::<true>(src, dst, n, m, f32::INFINITY);
        } else if sum.delta.is_nan() {
            fill(dst, n, f32::NAN);
        } else {
            let (mv, cv) = (s.splat_f32s(m), s.splat_f32s(sum.ln() as f32));
            map1(
                s,
                src,
                dst,
                n,
                #[inline(always)]
                |x| s.sub_f32s(s.sub_f32s(x, mv), cv),
            );
        }
    }
}

/// A row whose extreme `m` (its max, or its min for a negative temperature)
/// is not finite. NaN anywhere → all NaN. If `m` is the `dominant` infinity
/// (`+∞` for a max, `−∞` for a min), the entries equal to it share the mass;
/// otherwise the row is fully masked: all `0` (log: `−∞`). Scalar: these
/// rows are rare and their results are exact.
#[inline(never)]
pub(crate) unsafe fn nonfinite_row<const LOG: bool>(
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
    dominant: f32,
) {
    // SAFETY (whole body): the caller's contract, forwarded.
    unsafe {
        if m.is_nan() || any_nan(src, n) {
            fill(dst, n, f32::NAN);
        } else if m == dominant {
            share::<LOG>(src, dst, n, m);
        } else {
            fill(dst, n, if LOG { f32::NEG_INFINITY } else { 0.0 });
        }
    }
}

/// The limit of a row with `k ≥ 1` entries equal to `winner` and no NaN:
/// `1/k` there (log: `−ln k`), `0` elsewhere (log: `−∞`). Each `dst[i]` is
/// written after `src[i]` was read, so in-place is fine.
pub(crate) unsafe fn share<const LOG: bool>(src: *const f32, dst: *mut f32, n: usize, winner: f32) {
    // SAFETY (whole body): `src`/`dst` valid for `n` reads/writes (caller).
    unsafe {
        let k = (0..n).filter(|&i| *src.add(i) == winner).count() as f64;
        let (hit, miss) = if LOG {
            (-libm::log(k) as f32, f32::NEG_INFINITY)
        } else {
            ((1.0 / k) as f32, 0.0)
        };
        for i in 0..n {
            *dst.add(i) = if *src.add(i) == winner { hit } else { miss };
        }
    }
}

pub(crate) unsafe fn any_nan(src: *const f32, n: usize) -> bool {
    // SAFETY: `src` valid for `n` reads (caller).
    (0..n).any(|i| unsafe { (*src.add(i)).is_nan() })
}

pub(crate) unsafe fn fill(dst: *mut f32, n: usize, v: f32) {
    for i in 0..n {
        // SAFETY: `dst` valid for `n` writes (caller).
        unsafe { *dst.add(i) = v };
    }
}

#[inline(always)]
pub(crate) unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    // SAFETY: the caller guarantees `F32_LANES` readable floats at `p`.
    unsafe { (p as *const S::f32s).read_unaligned() }
}

#[inline(always)]
pub(crate) unsafe fn store<S: Simd>(p: *mut f32, v: S::f32s) {
    // SAFETY: the caller guarantees `F32_LANES` writable floats at `p`.
    unsafe { (p as *mut S::f32s).write_unaligned(v) }
}

/// The lanes `0..rem` as a mask.
#[inline(always)]
pub(crate) fn tail_mask<S: Simd>(s: S, rem: usize) -> S::m32s {
    s.mask_between_m32s(0, rem as u32).mask()
}

/// AVX-512's mask of lanes `0..rem` (`rem < 16`). The tails use it with
/// the masked-move intrinsics directly: pulp's masked loads and stores on
/// `V4` jump to a per-length routine and back (two taken branches each).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn v4_mask(rem: usize) -> u16 {
    ((1u32 << rem) - 1) as u16
}

/// The `rem < F32_LANES` trailing floats at `p` as one vector, the missing
/// lanes set to `fill`.
#[inline(always)]
pub(crate) unsafe fn load_tail<S: Simd>(s: S, p: *const f32, rem: usize, fill: f32) -> S::f32s {
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        let f = v4.avx512f;
        // SAFETY: a masked AVX-512 load touches (and can fault on) only the
        // `rem` active lanes, which the caller guarantees are readable.
        return crate::isa::cast(unsafe {
            f._mm512_mask_loadu_ps(f._mm512_set1_ps(fill), v4_mask(rem), p)
        });
    }
    let mask = s.mask_between_m32s(0, rem as u32);
    // SAFETY: the masked load touches only the `rem` active lanes, which the
    // caller guarantees are readable.
    let v = unsafe { s.mask_load_ptr_f32s(mask, p) };
    s.select_f32s(mask.mask(), v, s.splat_f32s(fill))
}

#[inline(always)]
pub(crate) unsafe fn store_tail<S: Simd>(s: S, p: *mut f32, rem: usize, v: S::f32s) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        // SAFETY: a masked AVX-512 store writes (and can fault on) only the
        // `rem` active lanes, which the caller guarantees are writable.
        unsafe {
            v4.avx512f
                ._mm512_mask_storeu_ps(p, v4_mask(rem), crate::isa::cast(v))
        };
        return;
    }
    let mask = s.mask_between_m32s(0, rem as u32);
    // SAFETY: the masked store writes only the `rem` active lanes, which the
    // caller guarantees are writable.
    unsafe { s.mask_store_ptr_f32s(mask, p, v) }
}

/// Max (or, with `MIN`, min) of `n ≥ 1` floats at `src`. NaN inputs may or
/// may not show in the result; callers detect NaN elsewhere.
#[inline(always)]
pub(crate) unsafe fn extreme_pass<S: Simd, const MIN: bool>(
    s: S,
    src: *const f32,
    n: usize,
) -> f32 {
    let l = S::F32_LANES;
    let init = if MIN {
        f32::INFINITY
    } else {
        f32::NEG_INFINITY
    };
    let iv = s.splat_f32s(init);
    let (mut a0, mut a1, mut a2, mut a3) = (iv, iv, iv, iv);
    let mut i = 0;
    // SAFETY (all loads): indices stay below `n`, `src` valid for `n` reads.
    unsafe {
        for _ in 0..n / (4 * l) {
            a0 = pick::<S, MIN>(s, a0, load::<S>(src.add(i)));
            a1 = pick::<S, MIN>(s, a1, load::<S>(src.add(i + l)));
            a2 = pick::<S, MIN>(s, a2, load::<S>(src.add(i + 2 * l)));
            a3 = pick::<S, MIN>(s, a3, load::<S>(src.add(i + 3 * l)));
            i += 4 * l;
        }
        while i + l <= n {
            a0 = pick::<S, MIN>(s, a0, load::<S>(src.add(i)));
            i += l;
        }
        if i < n {
            a1 = pick::<S, MIN>(s, a1, load_tail(s, src.add(i), n - i, init));
        }
    }
    let v = pick::<S, MIN>(s, pick::<S, MIN>(s, a0, a1), pick::<S, MIN>(s, a2, a3));
    if MIN {
        s.reduce_min_f32s(v)
    } else {
        s.reduce_max_f32s(v)
    }
}

/// `min(a, b)` or `max(a, b)`.
#[inline(always)]
fn pick<S: Simd, const MIN: bool>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
    if MIN {
        s.min_f32s(a, b)
    } else {
        s.max_f32s(a, b)
    }
}

/// Max of `n ≥ 1` floats at `src`.
#[inline(always)]
pub(crate) unsafe fn max_pass<S: Simd>(s: S, src: *const f32, n: usize) -> f32 {
    // SAFETY: the caller's contract, forwarded.
    unsafe { extreme_pass::<S, false>(s, src, n) }
}

/// `(min, max)` of `n ≥ 1` floats at `src`, in one sweep (one more
/// operation per vector than [`max_pass`]). NaN inputs may or may not show.
#[inline(always)]
pub(crate) unsafe fn range_pass<S: Simd>(s: S, src: *const f32, n: usize) -> (f32, f32) {
    let l = S::F32_LANES;
    let (ninf, inf) = (s.splat_f32s(f32::NEG_INFINITY), s.splat_f32s(f32::INFINITY));
    let (mut h0, mut h1, mut h2, mut h3) = (ninf, ninf, ninf, ninf);
    let (mut l0, mut l1, mut l2, mut l3) = (inf, inf, inf, inf);
    let mut i = 0;
    // SAFETY (all loads): indices stay below `n`, `src` valid for `n` reads.
    unsafe {
        // Counted loops: `while i + 4·l <= n` compiles to five
        // loop-control instructions per iteration instead of three.
        for _ in 0..n / (4 * l) {
            let (a, b) = (load::<S>(src.add(i)), load::<S>(src.add(i + l)));
            let (c, d) = (load::<S>(src.add(i + 2 * l)), load::<S>(src.add(i + 3 * l)));
            (h0, l0) = (s.max_f32s(h0, a), s.min_f32s(l0, a));
            (h1, l1) = (s.max_f32s(h1, b), s.min_f32s(l1, b));
            (h2, l2) = (s.max_f32s(h2, c), s.min_f32s(l2, c));
            (h3, l3) = (s.max_f32s(h3, d), s.min_f32s(l3, d));
            i += 4 * l;
        }
        while i + l <= n {
            let a = load::<S>(src.add(i));
            (h0, l0) = (s.max_f32s(h0, a), s.min_f32s(l0, a));
            i += l;
        }
        if i < n {
            h1 = s.max_f32s(h1, load_tail(s, src.add(i), n - i, f32::NEG_INFINITY));
            l1 = s.min_f32s(l1, load_tail(s, src.add(i), n - i, f32::INFINITY));
        }
    }
    let hi = s.max_f32s(s.max_f32s(h0, h1), s.max_f32s(h2, h3));
    let lo = s.min_f32s(s.min_f32s(l0, l1), s.min_f32s(l2, l3));
    (s.reduce_min_f32s(lo), s.reduce_max_f32s(hi))
}

/// Whether every `x − m` of a row whose range is `(lo, m)` (`m` finite) is
/// at least [`EXP_LO`](crate::math::EXP_LO), so its exps need no flush to 0
/// (`fl(x − m) ≥ fl(lo − m)`: rounding is monotonic). False for a row with
/// a NaN or `−∞` minimum.
#[inline(always)]
pub(crate) fn in_exp_range(lo: f32, m: f32) -> bool {
    lo - m >= crate::math::EXP_LO
}

/// `Σ f` over `n` elements, where `full(i)` gives the vector at element `i`
/// and `tail(i, rem)` the last partial vector with inactive lanes `0`.
/// Blocked: four f32 vector accumulators take at most 16 additions per lane,
/// then the block goes into an f64 total, so the error does not grow with `n`.
#[inline(always)]
pub(crate) fn blocked_sum<S: Simd>(
    s: S,
    n: usize,
    mut full: impl FnMut(usize) -> S::f32s,
    mut tail: impl FnMut(usize, usize) -> S::f32s,
) -> f64 {
    let l = S::F32_LANES;
    let zero = s.splat_f32s(0.0);
    let n_vec = n - n % l;
    let mut total = 0.0f64;
    let mut i = 0;
    while i < n_vec {
        let end = n_vec.min(i + SUM_BLOCK_VECTORS * l);
        let (mut a0, mut a1, mut a2, mut a3) = (zero, zero, zero, zero);
        while i + 4 * l <= end {
            a0 = s.add_f32s(a0, full(i));
            a1 = s.add_f32s(a1, full(i + l));
            a2 = s.add_f32s(a2, full(i + 2 * l));
            a3 = s.add_f32s(a3, full(i + 3 * l));
            i += 4 * l;
        }
        while i < end {
            a0 = s.add_f32s(a0, full(i));
            i += l;
        }
        total += s.reduce_sum_f32s(s.add_f32s(s.add_f32s(a0, a1), s.add_f32s(a2, a3))) as f64;
    }
    if i < n {
        total += s.reduce_sum_f32s(tail(i, n - i)) as f64;
    }
    total
}

/// `Σ f` for terms in `[0, 1]` (or NaN), compensated so that the total is
/// accurate to a few units of `2^-40` in absolute terms, not just relative
/// to the largest term: log-softmax at the max entry needs `ln Σ` with
/// `Σ = 1 + δ`, `δ` tiny, so `δ` itself must survive the summation.
///
/// Terms are first added in pairs (one rounding, relative to the pair
/// itself), then each pair goes into an accumulator lane that starts at `2`
/// and only grows, so it is always at least as large as the next pair and
/// Fast2Sum gives the exact rounding error of every addition (3 additions,
/// on the FP add pipes that the exp's FMA-bound chain leaves idle); the
/// errors are summed in a second f32 vector, and each block of `BLOCK`
/// vectors is folded lane by lane into an f64 total (`hi − 2` is exact).
/// Found by the family tests: with plain f32 lanes a row
/// `[0, −16.7 × 1023]` lost 13 ULP (softmax) and 2·10^5 ULP (log-softmax)
/// at its max, every tiny term rounding away against the 1.
///
/// `BLOCK` trades the fold's cost against the error lanes' own roundings
/// (`BLOCK / 2` per lane): [`UNIT_SUM_BLOCK_VECTORS`] where `δ` must keep
/// its relative accuracy (log-softmax, logsumexp), [`SOFTMAX_SUM_BLOCK`]
/// where only the accuracy relative to the whole sum matters (softmax).
///
/// Cost, softmax of 4096 floats on Zen 3 (AVX2): 0.72 ns/element with the
/// previous form (Fast2Sum on every vector, folded every 16 vectors, ~5
/// scalar operations per vector for the fold), 0.52 with a plain f32 sum.
#[inline(always)]
pub(crate) fn unit_sum<S: Simd, const BLOCK: usize>(
    s: S,
    n: usize,
    mut full: impl FnMut(usize) -> S::f32s,
    mut tail: impl FnMut(usize, usize) -> S::f32s,
) -> f64 {
    let l = S::F32_LANES;
    let (two, zero) = (s.splat_f32s(2.0), s.splat_f32s(0.0));
    let n_vec = n - n % l;
    let mut total = 0.0f64;
    let mut i = 0;
    while i < n_vec {
        let end = n_vec.min(i + BLOCK * l);
        let (mut h, mut e) = (two, zero);
        for _ in 0..(end - i) / (2 * l) {
            let p = s.add_f32s(full(i), full(i + l));
            e = s.add_f32s(e, fast_two_sum(s, &mut h, p));
            i += 2 * l;
        }
        if i < end {
            e = s.add_f32s(e, fast_two_sum(s, &mut h, full(i)));
            i += l;
        }
        total += crate::isa::fold_f64(s, h, e, 2.0);
    }
    if i < n {
        let mut h = two;
        let e = fast_two_sum(s, &mut h, tail(i, n - i));
        total += crate::isa::fold_f64(s, h, e, 2.0);
    }
    total
}

/// `hi += x`, returning the exact rounding error (Fast2Sum; valid because
/// `hi ≥ 2 ≥ x ≥ 0`).
#[inline(always)]
pub(crate) fn fast_two_sum<S: Simd>(s: S, hi: &mut S::f32s, x: S::f32s) -> S::f32s {
    let t = s.add_f32s(*hi, x);
    let added = s.sub_f32s(t, *hi);
    *hi = t;
    s.sub_f32s(x, added)
}

/// `Σ e^((x−m)·α)` over `n` floats at `src` (`(x−m)·α ≤ 0` for every
/// input), also storing each term to `dst` when `STORE`; `α` is used only
/// when `SCALED`. Returns NaN iff an input is NaN.
#[inline(always)]
pub(crate) unsafe fn exp_sum_pass<
    S: Simd,
    const STORE: bool,
    const SCALED: bool,
    const IN_RANGE: bool,
>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
    alpha: f32,
) -> f64 {
    // SAFETY: the caller's contract.
    unsafe { exp_sum_prefetch::<S, STORE, SCALED, IN_RANGE, false>(s, src, dst, n, m, alpha, src) }
}

/// [`exp_sum_pass`], also prefetching `ahead[i]` along the sweep when
/// `PREFETCH` (the next row of a batch, for its max pass).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) unsafe fn exp_sum_prefetch<
    S: Simd,
    const STORE: bool,
    const SCALED: bool,
    const IN_RANGE: bool,
    const PREFETCH: bool,
>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    m: f32,
    alpha: f32,
    ahead: *const f32,
) -> f64 {
    let (mv, av) = (s.splat_f32s(m), s.splat_f32s(alpha));
    // SAFETY (all accesses): `unit_sum` passes indices with a full vector
    // (or `rem` lanes) inside `n`; `src`/`dst` valid for `n`, equal or
    // disjoint, each element read before it is written.
    unit_sum::<S, SOFTMAX_SUM_BLOCK>(
        s,
        n,
        #[inline(always)]
        |i| unsafe {
            if PREFETCH {
                crate::isa::prefetch(ahead.wrapping_add(i));
            }
            let e = exp_term::<S, SCALED, IN_RANGE>(s, load::<S>(src.add(i)), mv, av);
            if STORE {
                store::<S>(dst.add(i), e);
            }
            e
        },
        #[inline(always)]
        |i, rem| unsafe {
            // Inactive lanes load −∞ (+∞ when α < 0), whose term is exactly 0.
            let pad = if alpha < 0.0 {
                f32::INFINITY
            } else {
                f32::NEG_INFINITY
            };
            let e = exp_term::<S, SCALED, false>(s, load_tail(s, src.add(i), rem, pad), mv, av);
            if STORE {
                store_tail(s, dst.add(i), rem, e);
            }
            e
        },
    )
}

/// `e^((x − m)·α)` (`·α` only when `SCALED`; `IN_RANGE`: every argument
/// is known to be at least `EXP_LO`, see [`in_exp_range`]).
#[inline(always)]
pub(crate) fn exp_term<S: Simd, const SCALED: bool, const IN_RANGE: bool>(
    s: S,
    x: S::f32s,
    m: S::f32s,
    alpha: S::f32s,
) -> S::f32s {
    // AVX2 takes `m − x` (the same value negated, rounded the same way), so
    // that the subtraction reads `x` straight from memory.
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = crate::isa::as_v3(s) {
        let dn = s.sub_f32s(m, x);
        let dn = if SCALED { s.mul_f32s(dn, alpha) } else { dn };
        let e = crate::math::exp_nonpos_avx2::<IN_RANGE, true>(v3, crate::isa::cast(dn));
        return crate::isa::cast(e);
    }
    let d = s.sub_f32s(x, m);
    let d = if SCALED { s.mul_f32s(d, alpha) } else { d };
    if IN_RANGE {
        exp_nonpos_in_range(s, d)
    } else {
        exp_nonpos(s, d)
    }
}

/// `dst = f(src)` elementwise over `n` floats (`src`/`dst` equal or disjoint).
#[inline(always)]
pub(crate) unsafe fn map1<S: Simd>(
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
        for _ in 0..n / (4 * l) {
            // All four loads before the stores: in place, nothing is overwritten early.
            let v0 = f(load::<S>(src.add(i)));
            let v1 = f(load::<S>(src.add(i + l)));
            let v2 = f(load::<S>(src.add(i + 2 * l)));
            let v3 = f(load::<S>(src.add(i + 3 * l)));
            store::<S>(dst.add(i), v0);
            store::<S>(dst.add(i + l), v1);
            store::<S>(dst.add(i + 2 * l), v2);
            store::<S>(dst.add(i + 3 * l), v3);
            i += 4 * l;
        }
        while i + l <= n {
            store::<S>(dst.add(i), f(load::<S>(src.add(i))));
            i += l;
        }
        if i < n {
            store_tail(
                s,
                dst.add(i),
                n - i,
                f(load_tail(s, src.add(i), n - i, 0.0)),
            );
        }
    }
}

/// How far ahead [`map1_stream`] prefetches its input, in floats (2 KiB:
/// a few hundred nanoseconds of work, about one DRAM latency).
#[cfg(target_arch = "x86_64")]
const STREAM_AHEAD: usize = 512;

/// [`map1`] with non-temporal stores where the instruction set has them
/// (AVX2 and AVX-512: `vmovntps` from the first 32- or 64-byte aligned
/// element on); plain [`map1`] elsewhere. The caller ends its streaming
/// with [`stream_fence`].
#[inline(always)]
pub(crate) unsafe fn map1_stream<S: Simd>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    f: impl Fn(S::f32s) -> S::f32s,
) {
    // SAFETY: the caller's contract; `stream_with` stores non-temporally
    // only at addresses aligned to the vector width.
    #[cfg(target_arch = "x86_64")]
    if has_stream(s) {
        return unsafe { stream_with(s, src, dst, n, f) };
    }
    // SAFETY: the caller's contract.
    unsafe { map1(s, src, dst, n, f) }
}

/// [`map1`] with [`store_stream`] for the stores from the first
/// vector-aligned element of `dst` on (`vmovntps` needs its address
/// aligned to the vector width: 32 bytes on AVX2, 64 on AVX-512), plain
/// [`map1`] before and after. Two vectors per iteration, prefetching the input
/// [`STREAM_AHEAD`] floats ahead (the two-pass path reads it from memory).
///
/// # Safety
/// As [`map1`].
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn stream_with<S: Simd>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    n: usize,
    f: impl Fn(S::f32s) -> S::f32s,
) {
    let l = S::F32_LANES;
    let head = stream_head::<S>(dst, n);
    // SAFETY (all accesses): `head ≤ n`, the streamed vectors end at or
    // before `n`, the rest is a plain `map1` over what remains; every
    // element is read before it is written.
    unsafe {
        map1(s, src, dst, head, &f);
        let mut i = head;
        for _ in 0..(n - head) / (2 * l) {
            // A hint: harmless past the end.
            crate::isa::prefetch(src.wrapping_add(i + STREAM_AHEAD));
            let v0 = f(load::<S>(src.add(i)));
            let v1 = f(load::<S>(src.add(i + l)));
            store_stream(s, dst.add(i), v0);
            store_stream(s, dst.add(i + l), v1);
            i += 2 * l;
        }
        map1(s, src.add(i), dst.add(i), n - i, &f);
    }
}

/// Elements before the first address of `p` aligned to the vector width
/// (where [`store_stream`] may store), at most `n`.
#[inline(always)]
pub(crate) fn stream_head<S: Simd>(p: *const f32, n: usize) -> usize {
    let width = core::mem::size_of::<S::f32s>();
    // f32 slices are 4-byte aligned, so the distance is whole elements.
    ((p as usize).wrapping_neg() % width / 4).min(n)
}

/// One vector stored at `p` with a non-temporal store where the
/// instruction set has one (see [`map1_stream`]), a plain store elsewhere.
///
/// # Safety
/// One vector writable at `p`, `p` aligned to `size_of::<S::f32s>()`.
#[inline(always)]
pub(crate) unsafe fn store_stream<S: Simd>(s: S, p: *mut f32, v: S::f32s) {
    // SAFETY (all three): the caller's contract.
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = crate::isa::as_v3(s) {
        return unsafe { v3.avx._mm256_stream_ps(p, crate::isa::cast(v)) };
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        return unsafe { v4.avx512f._mm512_stream_ps(p, crate::isa::cast(v)) };
    }
    let _ = s;
    unsafe { store::<S>(p, v) }
}

/// Orders the non-temporal stores of [`map1_stream`] before every later
/// store (`sfence`), so that a thread that sees the call's return (or a
/// later write of this thread) also sees its output; once per call.
#[inline(always)]
pub(crate) fn stream_fence<S: Simd>(s: S) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = crate::isa::as_v3(s) {
        v3.sse._mm_sfence();
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        v4.sse._mm_sfence();
    }
    let _ = s;
}

/// Whether [`map1_stream`] has non-temporal stores on `S` (else it is a
/// plain [`map1`], and recomputing a row to stream it gains nothing).
#[inline(always)]
pub(crate) fn has_stream<S: Simd>(s: S) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::isa::as_v3(s).is_some() || crate::isa::as_v4(s).is_some() {
        return true;
    }
    let _ = s;
    false
}

/// `dst = f(a, b)` elementwise over `n` floats (`dst` disjoint from `a`, `b`).
#[inline(always)]
pub(crate) unsafe fn map2<S: Simd>(
    s: S,
    a: *const f32,
    b: *const f32,
    dst: *mut f32,
    n: usize,
    f: impl Fn(S::f32s, S::f32s) -> S::f32s,
) {
    let l = S::F32_LANES;
    let mut i = 0;
    // SAFETY (all accesses): indices stay below `n`, all three valid for `n`.
    unsafe {
        while i + l <= n {
            store::<S>(dst.add(i), f(load::<S>(a.add(i)), load::<S>(b.add(i))));
            i += l;
        }
        if i < n {
            let r = n - i;
            store_tail(
                s,
                dst.add(i),
                r,
                f(
                    load_tail(s, a.add(i), r, 0.0),
                    load_tail(s, b.add(i), r, 0.0),
                ),
            );
        }
    }
}
