//! Softmax of a batch of rows longer than four vectors (and shorter than
//! [`TWO_PASS_MIN`](crate::generic::TWO_PASS_MIN)): every row's three
//! passes (range, exp-and-sum, scale) are spread over three consecutive
//! sweeps, so that each sweep does the exp of one row, the range of the
//! next and the scaling of the previous:
//! ```text
//! (lo, m) = range(row 0)
//! for r in rows:
//!     sweep over i:  y_r[i] = e^(x_r[i] − m_r), Σ_r += y_r[i]     exp, store, sum
//!                    (lo, m)_{r+1} ⊕= x_{r+1}[i]                  next row's range
//!                    y_{r−1}[i] *= c_{r−1}                         previous row's scale
//!     c_r = 1 / Σ_r
//! y_last *= c_last
//! ```
//! The kernel is bound by the number of instructions it issues (the exp is
//! ~11 per vector, and a Zen 3 core here sustains about 2.5–3 per cycle
//! when its sibling thread is busy), not by one execution port. A separate
//! range pass and scale pass would each pay their own loop and, for the
//! scale, a store-bound loop (one 32-byte store per ~2.2 cycles measured
//! here); inside the exp sweep they cost two instructions per vector each
//! (a `vmaxps`/`vminps` pair reading memory directly, a `vmulps` from
//! memory and its store) and fill issue slots the exp's dependency chains
//! leave idle.
//!
//! Batches of [`STREAM_MIN`](crate::generic::STREAM_MIN) elements or more
//! (out of cache: the output will not be read from cache anyway) take the
//! streaming form: the same sweep without the store and the scaling; rows
//! of up to [`SCRATCH_LEN`] keep their exps in a stack row for one more
//! loop that writes `e · c` with non-temporal stores, longer rows
//! recompute the exp for that write inside the next row's sweep (`Late`),
//! so that one loop both reads memory (the next row, prefetched) and
//! writes it; on AVX2 that loop is one `asm!` block
//! (`crate::math::exp_late_pairs_avx2`) that also takes the next row's
//! range, instead of a separate range pass over a row that no longer fits
//! in L2. Each row is read from memory once (its later sweeps hit
//! L1/L2/L3) and written once, without the read-for-ownership that an
//! ordinary store of the exps would cost: 8 bytes of memory traffic per
//! element instead of 12. Both forms compute each row's sum in the same
//! order and each output as the same `fl(e · c)`, so they give
//! bit-identical results, and so does a row computed alone.

use crate::generic::{
    SOFTMAX_SUM_BLOCK, exp_scale_pass, exp_term, fast_two_sum, in_exp_range, load, load_tail,
    map1_stream, nonfinite_row, range_pass, store, store_stream, store_tail, stream_head,
};
use pulp::Simd;

/// The state a sweep hands to the next: the row's sum and the next row's
/// `(min, max)`.
struct Swept {
    total: f64,
    /// Elements of the next row (from its start) that `lo`/`hi` cover.
    ranged: usize,
    lo: f32,
    hi: f32,
}

/// The previous row's write sweep, carried along the next row's sum sweep
/// (the streaming form's long rows): `y = e^(x − m) · c` with
/// non-temporal stores, one pair of vectors per pair of the sweep from
/// element `i` (vector-aligned in `y`) while a pair fits in the row.
struct Late<S: Simd> {
    x: *const f32,
    y: *mut f32,
    m: S::f32s,
    c: S::f32s,
    i: usize,
}

/// One sweep over row `x` (`w` floats, max `m`): `Σ e^(x−m)` (stored to
/// `y` when `STORE`), the range of `next` (the next row, if any; NaN
/// without one) and, when `PREV`, `prev *= c` (the previous row's exps and
/// its `1/Σ`). `PF`: the next row is in memory, prefetch it (where the
/// range is a separate loop).
///
/// The sum is `unit_sum`'s: pairs of vectors into a Fast2Sum accumulator
/// that starts at 2, folded into f64 every [`SOFTMAX_SUM_BLOCK`] vectors.
///
/// # Safety
/// `x`, `next` valid for `w` reads; `y` (when `STORE`) and `prev` (when
/// `PREV`) valid for `w` writes; `y` equal to `x` or disjoint from it;
/// `prev` disjoint from `x`, `y` and `next`; `w > 0`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sweep<
    S: Simd,
    const STORE: bool,
    const IN_RANGE: bool,
    const PREV: bool,
    const PF: bool,
    const LATE: bool,
    const LATE_IN: bool,
>(
    s: S,
    x: *const f32,
    y: *mut f32,
    w: usize,
    m: f32,
    next: Option<*const f32>,
    prev: *mut f32,
    c: f32,
    late: &mut Late<S>,
) -> Swept {
    // SAFETY (every branch): the caller's contract.
    unsafe {
        if fuse::<S>() {
            // The last row reads itself as its "next" row, its range then
            // ignored (one instantiation less per variant).
            let next = next.unwrap_or(x);
            let mut swept = sweep_impl::<S, STORE, IN_RANGE, PREV, true, false, LATE, LATE_IN>(
                s, x, y, w, m, next, prev, c, late,
            );
            if next == x {
                (swept.lo, swept.hi) = (f32::NAN, f32::NAN);
            }
            return swept;
        }
        let ahead = next.unwrap_or(x);
        let mut swept = sweep_impl::<S, STORE, IN_RANGE, false, false, PF, LATE, LATE_IN>(
            s, x, y, w, m, ahead, y, c, late,
        );
        (swept.lo, swept.hi) = match (PREV, next) {
            (true, Some(next)) => scale_range(s, prev, c, next, w),
            (false, Some(next)) if swept.ranged == 0 => range_pass(s, next, w),
            (false, Some(next)) => {
                // AVX2's long streaming rows: the part of the next row's
                // range that the sweep's `asm!` loop did not take.
                // (`f32::min`/`max` drop a NaN one part held; that row's
                // sum is then NaN, or its max non-finite and
                // `nonfinite_row` finds the NaN: all NaN either way.)
                let (lo, hi) = range_pass(s, next.add(swept.ranged), w - swept.ranged);
                (lo.min(swept.lo), hi.max(swept.hi))
            }
            (true, None) => {
                scale(s, prev, w, c);
                (f32::NAN, f32::NAN)
            }
            (false, None) => (f32::NAN, f32::NAN),
        };
        swept
    }
}

/// Whether [`sweep`] does the next row's range and the previous row's
/// scaling inside its exp loop. Not on AVX2: with its 16 vector registers
/// the fused loop spills (the exp keeps 8 constants live, the sum 2
/// accumulators, the range 2 more, the scaling 1) and measured 29.5
/// instructions per vector (262×1000 under callgrind) against 26.5 for an
/// exp loop that keeps everything in registers followed by one loop that
/// scales the previous row and takes the next row's range
/// ([`scale_range`]). The 32-register instruction sets fuse all three.
///
/// Tried and lost on AVX2:
/// - the fused loop as one `asm!` block like `math::exp_late_pairs_avx2`
///   (three constants as memory operands, no spills): 22.7 instructions
///   per vector against 22.9 for the two loops as they are now (262×1000,
///   callgrind); the scaling's stores then hide in the exp loop, but
///   five interleaved runs gave 8×32000 0.501–0.517 ns/element against
///   0.532–0.545, 262×1000 0.506–0.526 against 0.490–0.501, 2×128256 and
///   64×4096 within 3 %: not worth a second hand-written loop;
/// - rows over 8192 floats scaled right after their own sweep, from the end
///   backward (the part still in L2 first), the next row's range in its
///   own pass: 2×128256 0.447–0.556 ns/element against 0.441–0.515, and
///   8×32000 0.450–0.598 against 0.407–0.515 (four interleaved runs).
#[inline(always)]
fn fuse<S: Simd>() -> bool {
    !crate::isa::is_v3::<S>()
}

/// [`sweep`], the next row's range and the previous row's scaling inside
/// the exp loop when `FUSE` (else `prev` is not touched, and `next` only
/// prefetched, when `PF`: the streaming forms).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn sweep_impl<
    S: Simd,
    const STORE: bool,
    const IN_RANGE: bool,
    const PREV: bool,
    const FUSE: bool,
    const PF: bool,
    const LATE: bool,
    const LATE_IN: bool,
>(
    s: S,
    x: *const f32,
    y: *mut f32,
    w: usize,
    m: f32,
    next: *const f32,
    prev: *mut f32,
    c: f32,
    late: &mut Late<S>,
) -> Swept {
    let l = S::F32_LANES;
    let (mv, cv) = (s.splat_f32s(m), s.splat_f32s(c));
    let (two, zero) = (s.splat_f32s(2.0), s.splat_f32s(0.0));
    let (mut hi, mut lo) = (s.splat_f32s(f32::NEG_INFINITY), s.splat_f32s(f32::INFINITY));
    let n_vec = w - w % l;
    let mut total = 0.0f64;
    let mut i = 0;
    // Elements of `next`, from its start, whose range `(hi, lo)` holds
    // (all of them when `FUSE`).
    let mut ranged = if FUSE { w } else { 0 };
    // SAFETY (all accesses): every full vector lies below `n_vec ≤ w`, the
    // tail's masked accesses touch only `i..w`; each element of `x` is read
    // before the same element of `y` is written (in place: the same).
    unsafe {
        // One vector of every stream at element `i`: its exp.
        // (`prev` is only offset when `PREV`: it may be any pointer otherwise.)
        macro_rules! step {
            ($i:expr) => {
                step::<S, IN_RANGE, PREV, FUSE>(
                    s,
                    x.add($i),
                    next.wrapping_add($i),
                    prev.wrapping_add($i),
                    mv,
                    cv,
                    &mut hi,
                    &mut lo,
                )
            };
        }
        while i < n_vec {
            let end = n_vec.min(i + SOFTMAX_SUM_BLOCK * l);
            let (mut h, mut err) = (two, zero);
            // AVX2: the block's pairs that the late row still has go to one
            // `asm!` loop, which also takes the next row's range (from
            // element 0 on: `ranged`) and gives the same results (see
            // `exp_late_pairs_avx2`).
            #[cfg(target_arch = "x86_64")]
            if LATE && PF && !FUSE && crate::isa::is_v3::<S>() {
                let k = ((end - i) / (2 * l)).min((w - late.i) / (2 * l));
                if k > 0 {
                    use crate::isa::cast;
                    let (mut hv, mut ev) = (cast(h), cast(err));
                    let (mut rh, mut rl) = (cast(hi), cast(lo));
                    // SAFETY: AVX2+FMA (`S` is `V3`); `k` pairs from `i`
                    // inside this row's block and the next row (`next` is
                    // `x` itself for the last row), and from `late.i`
                    // inside the late row, whose `y + late.i` is 32-byte
                    // aligned (the caller's start, whole pairs since).
                    crate::math::exp_late_pairs_avx2::<LATE_IN>(
                        x.add(i),
                        next.wrapping_add(i),
                        late.x.add(late.i),
                        late.y.add(late.i),
                        k,
                        cast(mv),
                        cast(late.m),
                        cast(late.c),
                        &mut hv,
                        &mut ev,
                        &mut rh,
                        &mut rl,
                    );
                    (h, err) = (cast(hv), cast(ev));
                    (hi, lo) = (cast(rh), cast(rl));
                    ranged = i + 2 * l * k;
                    i += 2 * l * k;
                    late.i += 2 * l * k;
                }
            }
            // A pair of vectors: exps, stores, one compensated addition.
            macro_rules! pair {
                ($i:expr) => {
                    if PF && !FUSE {
                        // Streaming: the next row comes from memory; ask for
                        // its lines along this compute-bound sweep (one
                        // prefetch per pair: 64 bytes on AVX2).
                        crate::isa::prefetch(next.wrapping_add($i));
                    }
                    // (Never on AVX2, whose `asm!` loop above took every
                    // pair the late row had.)
                    if LATE && !crate::isa::is_v3::<S>() && late.i + 2 * l <= w {
                        // SAFETY: a pair inside the late row, `y + i`
                        // vector-aligned (the caller's start, whole pairs).
                        late_pair::<S, LATE_IN>(s, late);
                    }
                    #[cfg(target_arch = "x86_64")]
                    if FUSE && STORE && crate::isa::is_v4::<S>() {
                        // AVX-512: ask early for ownership of the lines
                        // this sweep (or, on short rows, the next) will
                        // store, one per vector (see `STORE_AHEAD`).
                        let d = w.min(STORE_AHEAD);
                        crate::isa::prefetch_w(y.wrapping_add(d + $i));
                        crate::isa::prefetch_w(y.wrapping_add(d + $i + l));
                    }
                    let (a, b) = (step!($i), step!($i + l));
                    if STORE {
                        store::<S>(y.add($i), a);
                        store::<S>(y.add($i + l), b);
                    }
                    err = s.add_f32s(err, fast_two_sum(s, &mut h, s.add_f32s(a, b)));
                };
            }
            // Counted loops (not `while i + 2·l <= end`, which LLVM compiles
            // to five loop-control instructions per iteration instead of
            // three). AVX2 takes four pairs per iteration: with one, the
            // Fast2Sum accumulator moves between two registers and costs a
            // copy per pair (23 instructions per vector, 18.25 with two
            // pairs, 17.9 with four: 262x1000 went from 25.8 to 25.0 in all);
            // so does AVX-512, whose loop control (six pointer and counter
            // updates per iteration) competes with its vector operations
            // for ports 0 and 5 (Intel Xeon, interleaved runs, min: 2048×128
            // 0.325 → 0.312, 8×32000 0.267 → 0.255, 2×128256 0.320 → 0.303
            // ns/element); the portable 16-lane kernel follows it (the tests'
            // stand-in for AVX-512). NEON and the narrower portable kernels
            // keep the smaller loop, which keeps their build time down.
            let octs = if crate::isa::is_v3::<S>() || S::F32_LANES == 16 {
                (end - i) / (8 * l)
            } else {
                0
            };
            for _ in 0..octs {
                pair!(i);
                pair!(i + 2 * l);
                pair!(i + 4 * l);
                pair!(i + 6 * l);
                i += 8 * l;
            }
            for _ in 0..(end - i) / (2 * l) {
                pair!(i);
                i += 2 * l;
            }
            if i < end {
                let a = step!(i);
                if STORE {
                    store::<S>(y.add(i), a);
                }
                err = s.add_f32s(err, fast_two_sum(s, &mut h, a));
                i += l;
            }
            total += crate::isa::fold_f64(s, h, err, 2.0);
        }
        if i < w {
            let rem = w - i;
            // Inactive lanes: −∞ for the exp (its term is exactly 0) and
            // the max, +∞ for the min.
            let e = exp_term::<S, false, false>(
                s,
                load_tail(s, x.add(i), rem, f32::NEG_INFINITY),
                mv,
                mv,
            );
            if STORE {
                store_tail(s, y.add(i), rem, e);
            }
            if FUSE {
                hi = s.max_f32s(hi, load_tail(s, next.add(i), rem, f32::NEG_INFINITY));
                if fused_min::<S>() {
                    lo = s.min_f32s(lo, load_tail(s, next.add(i), rem, f32::INFINITY));
                }
            }
            if PREV {
                let p = prev.add(i);
                store_tail(s, p, rem, s.mul_f32s(load_tail(s, p, rem, 0.0), cv));
            }
            let mut h = two;
            let err = fast_two_sum(s, &mut h, e);
            total += crate::isa::fold_f64(s, h, err, 2.0);
        }
    }
    Swept {
        total,
        ranged,
        lo: match !FUSE || fused_min::<S>() {
            true => s.reduce_min_f32s(lo),
            false => f32::NEG_INFINITY,
        },
        hi: s.reduce_max_f32s(hi),
    }
}

/// Whether the fused sweep also takes the next row's minimum, so that the
/// row can skip the exp's flush below `EXP_LO` (`in_exp_range`). Not on
/// AVX-512, where the flush is one compare into a mask register, as
/// cheap as the `vminps` it would save, and the minimum's reduction per
/// row costs more: the rows' `lo` is `−∞` there, and every row takes
/// the flushing exp (bit-identical for rows in range).
#[inline(always)]
fn fused_min<S: Simd>() -> bool {
    // By lane count, so that the portable 16-lane kernel (the tests' stand-in
    // for AVX-512 on CPUs without it) takes the same path.
    S::F32_LANES != 16
}

/// The late row's next pair of vectors: `e^(x − m) · c`, streamed.
///
/// # Safety
/// Two vectors readable at `late.x + late.i`, writable at `late.y +
/// late.i`, which is aligned to the vector width.
#[inline(always)]
unsafe fn late_pair<S: Simd, const IN_RANGE: bool>(s: S, late: &mut Late<S>) {
    let l = S::F32_LANES;
    // SAFETY: the caller's contract.
    unsafe {
        for j in [late.i, late.i + l] {
            let e = exp_term::<S, false, IN_RANGE>(s, load::<S>(late.x.add(j)), late.m, late.m);
            store_stream(s, late.y.add(j), s.mul_f32s(e, late.c));
        }
    }
    late.i += 2 * l;
}

/// The sweep's work at one full vector: `e^(x − m)` (returned), the
/// range of `next` into `(hi, lo)`, `prev *= c` when `PREV`.
///
/// # Safety
/// One vector readable at `x`, at `next` when `FUSE`, readable and
/// writable at `prev` when `PREV`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn step<S: Simd, const IN_RANGE: bool, const PREV: bool, const FUSE: bool>(
    s: S,
    x: *const f32,
    next: *const f32,
    prev: *mut f32,
    mv: S::f32s,
    cv: S::f32s,
    hi: &mut S::f32s,
    lo: &mut S::f32s,
) -> S::f32s {
    // SAFETY: the caller's contract.
    unsafe {
        let e = exp_term::<S, false, IN_RANGE>(s, load::<S>(x), mv, mv);
        if FUSE {
            let v = load::<S>(next);
            *hi = s.max_f32s(*hi, v);
            if fused_min::<S>() {
                *lo = s.min_f32s(*lo, v);
            }
        }
        if PREV {
            store::<S>(prev, s.mul_f32s(load::<S>(prev), cv));
        }
        e
    }
}

/// How far ahead of its stores the in-cache AVX-512 sweep prefetches the
/// output for writing (`prefetchw`), in floats (2 KiB; the next row's start
/// on rows shorter than this). The batches of about 2^18 elements fill
/// the 2 MiB L2 of the Intel Xeon measured, so the output's lines come
/// from L3 and each store waited for its read-for-ownership. Interleaved
/// runs there (ns/element, min and median of 7–9): 262×1000 0.338 / 0.367
/// → 0.275 / 0.284, 64×4096 0.399 / 0.435 → 0.267 / 0.271, 8×32000 0.409
/// / 0.433 → 0.382 / 0.387. 256 floats measured the same, 1024 and 2048
/// worse on 64×4096; prefetching the next row's input as well (read)
/// added nothing.
const STORE_AHEAD: usize = 512;

/// Rows up to this long take the scratch form of the streaming path: the
/// exps of a row are kept in a stack buffer of this many floats (16 KiB,
/// in L1) instead of the output, so the output is written once, with
/// non-temporal stores, and the row is read from memory once: 8 bytes of
/// traffic per element with one exp per element. Longer rows recompute the
/// exp instead (two per element, the same 8 bytes). Measured on Zen 3
/// (16384×4096, medians of 5 interleaved runs): plain stores 1.04
/// ns/element, recomputed exp with streaming stores 1.21 (49 instructions
/// per vector against 26.5: the recomputation costs more than the memory
/// traffic it saves on this core), scratch form: see the README.
pub(crate) const SCRATCH_LEN: usize = 4096;

/// `prev *= c` and the `(min, max)` of `next`, in one loop over `w`
/// floats: the scaling is bound by stores (one per vector), the range by
/// nothing but its instructions, so together they cost little more than
/// the scaling alone.
///
/// # Safety
/// `prev` valid for `w` reads and writes, `next` for `w` reads, disjoint.
#[inline(always)]
unsafe fn scale_range<S: Simd>(
    s: S,
    prev: *mut f32,
    c: f32,
    next: *const f32,
    w: usize,
) -> (f32, f32) {
    let l = S::F32_LANES;
    let cv = s.splat_f32s(c);
    let (ninf, inf) = (s.splat_f32s(f32::NEG_INFINITY), s.splat_f32s(f32::INFINITY));
    let (mut h0, mut h1, mut l0, mut l1) = (ninf, ninf, inf, inf);
    let mut i = 0;
    // SAFETY (all accesses): full vectors below `w`, then the masked tail.
    unsafe {
        // Eight vectors per iteration (5.4 instructions per vector; 6.5
        // with two).
        for _ in 0..w / (8 * l) {
            for k in [0, 2, 4, 6] {
                let j = i + k * l;
                let (a, b) = (load::<S>(next.add(j)), load::<S>(next.add(j + l)));
                (h0, l0) = (s.max_f32s(h0, a), s.min_f32s(l0, a));
                (h1, l1) = (s.max_f32s(h1, b), s.min_f32s(l1, b));
                store::<S>(prev.add(j), s.mul_f32s(load::<S>(prev.add(j)), cv));
                store::<S>(prev.add(j + l), s.mul_f32s(load::<S>(prev.add(j + l)), cv));
            }
            i += 8 * l;
        }
        for _ in 0..(w - i) / l {
            let a = load::<S>(next.add(i));
            (h0, l0) = (s.max_f32s(h0, a), s.min_f32s(l0, a));
            store::<S>(prev.add(i), s.mul_f32s(load::<S>(prev.add(i)), cv));
            i += l;
        }
        if i < w {
            let rem = w - i;
            h1 = s.max_f32s(h1, load_tail(s, next.add(i), rem, f32::NEG_INFINITY));
            l1 = s.min_f32s(l1, load_tail(s, next.add(i), rem, f32::INFINITY));
            let p = prev.add(i);
            store_tail(s, p, rem, s.mul_f32s(load_tail(s, p, rem, 0.0), cv));
        }
    }
    (
        s.reduce_min_f32s(s.min_f32s(l0, l1)),
        s.reduce_max_f32s(s.max_f32s(h0, h1)),
    )
}

/// `y *= c` over `w` floats.
///
/// # Safety
/// `y` valid for `w` reads and writes.
#[inline(always)]
unsafe fn scale<S: Simd>(s: S, y: *mut f32, w: usize, c: f32) {
    let cv = s.splat_f32s(c);
    // SAFETY: the caller's contract.
    unsafe {
        crate::generic::map1(
            s,
            y,
            y,
            w,
            #[inline(always)]
            |v| s.mul_f32s(v, cv),
        )
    }
}

/// Softmax of `rows` rows of `w` floats (`4·F32_LANES < w`), as described
/// in the module comment; `STREAM`: the out-of-cache form.
///
/// # Safety
/// `src`/`dst` valid for `rows · w` reads/writes, equal or disjoint.
#[inline(always)]
pub(crate) unsafe fn softmax_batch<S: Simd, const STREAM: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    rows: usize,
    w: usize,
) {
    // SAFETY (whole body): row `r` is `r·w .. r·w + w`, inside both
    // buffers. A sweep over row `r` reads rows `r` and `r + 1` of `src`
    // and writes rows `r` and `r − 1` of `dst`; row `r + 1` of `dst` is not
    // written before its own sweep, so in place every input is read before
    // it is overwritten.
    unsafe {
        // Tried and lost (AVX-512, Intel Xeon): taking the range of the
        // row two on instead of the next, so that a row's max is reduced a
        // whole sweep before its exps wait on it: 2048×128 0.325 against
        // 0.317 for the next row, 4096×80 0.372 against 0.401 (medians
        // 0.581 against 0.556), 262×1000 and 64×4096 within 2 % (min of
        // 7–9 interleaved runs): the reduction is not what the short rows
        // wait on here.
        let (mut lo, mut m) = range_pass(s, src, w);
        // The streaming form's row of exps (16 KiB of stack, not zeroed
        // per row: every use writes all of its first `w` floats first).
        let mut scratch = [0.0f32; SCRATCH_LEN];
        // The previous row, holding its exps, and its `1/Σ`.
        let mut pending: Option<(*mut f32, f32)> = None;
        // The streaming form's previous long row, not yet written: its
        // input, output, max, `1/Σ` and whether it is in the exp's range.
        let mut late: Option<(*const f32, *mut f32, f32, f32, bool)> = None;
        // A `Late` for the sweeps without one (never read).
        let zero = s.splat_f32s(0.0);
        let mut idle = Late {
            x: src,
            y: dst,
            m: zero,
            c: zero,
            i: 0,
        };
        for r in 0..rows {
            let (x, y) = (src.add(r * w), dst.add(r * w));
            let next = (r + 1 < rows).then(|| x.add(w));
            let swept;
            if m.is_finite() {
                let inr = in_exp_range(lo, m);
                if STREAM && w <= SCRATCH_LEN {
                    // The exps go to a scratch row in L1, and only `e · c`
                    // to the output, with non-temporal stores.
                    let e = scratch.as_mut_ptr();
                    swept = match inr {
                        true => sweep::<S, true, true, false, true, false, false>(
                            s, x, e, w, m, next, e, 0.0, &mut idle,
                        ),
                        false => sweep::<S, true, false, false, true, false, false>(
                            s, x, e, w, m, next, e, 0.0, &mut idle,
                        ),
                    };
                    let cv = s.splat_f32s((1.0 / swept.total) as f32);
                    map1_stream(
                        s,
                        e,
                        y,
                        w,
                        #[inline(always)]
                        |v| s.mul_f32s(v, cv),
                    );
                } else if STREAM {
                    // Longer rows: this row's sum sweep also writes the
                    // previous row (its exps recomputed, streamed out), so
                    // that one loop reads memory (the next row, prefetched)
                    // and writes it, instead of a sum sweep that only reads
                    // and a write sweep that only writes. Zen 3, 523×128256
                    // (medians of 7 and 9 interleaved runs): 0.978 and 0.976
                    // ns/element against 1.136 and 1.075 for the two
                    // sweeps apart. Tried and lost: the two sweeps apart
                    // with the next row prefetched by the write sweep
                    // (1.056 vs 1.068, 1.098 vs 1.088: no difference).
                    swept = match late.take() {
                        None => match inr {
                            true => sweep::<S, false, true, false, true, false, false>(
                                s, x, y, w, m, next, y, 0.0, &mut idle,
                            ),
                            false => sweep::<S, false, false, false, true, false, false>(
                                s, x, y, w, m, next, y, 0.0, &mut idle,
                            ),
                        },
                        Some((lx, ly, lm, lc, linr)) => {
                            let head = stream_head::<S>(ly, w);
                            late_rest(s, lx, ly, head, lm, lc, linr);
                            let mut l = Late {
                                x: lx,
                                y: ly,
                                m: s.splat_f32s(lm),
                                c: s.splat_f32s(lc),
                                i: head,
                            };
                            let l_ = &mut l;
                            // Both rows in the exp's range, or the flushing
                            // exp for both (exact for in-range rows too):
                            // two instantiations instead of four (each
                            // holds two exps; the build time counts).
                            let sw = match inr && linr {
                                true => sweep::<S, false, true, false, true, true, true>(
                                    s, x, y, w, m, next, y, 0.0, l_,
                                ),
                                false => sweep::<S, false, false, false, true, true, false>(
                                    s, x, y, w, m, next, y, 0.0, l_,
                                ),
                            };
                            let i = l.i;
                            late_rest(s, lx.add(i), ly.add(i), w - i, lm, lc, linr);
                            sw
                        }
                    };
                    late = Some((x, y, m, (1.0 / swept.total) as f32, inr));
                } else {
                    swept = match (inr, pending.take()) {
                        (true, None) => sweep::<S, true, true, false, false, false, false>(
                            s, x, y, w, m, next, y, 0.0, &mut idle,
                        ),
                        (false, None) => sweep::<S, true, false, false, false, false, false>(
                            s, x, y, w, m, next, y, 0.0, &mut idle,
                        ),
                        (true, Some((p, c))) => sweep::<S, true, true, true, false, false, false>(
                            s, x, y, w, m, next, p, c, &mut idle,
                        ),
                        (false, Some((p, c))) => {
                            sweep::<S, true, false, true, false, false, false>(
                                s, x, y, w, m, next, p, c, &mut idle,
                            )
                        }
                    };
                    // A NaN input makes the sum NaN, and `c` NaN makes the
                    // whole row NaN when it is scaled.
                    pending = Some((y, (1.0 / swept.total) as f32));
                }
            } else {
                if let Some((p, c)) = pending.take() {
                    scale(s, p, w, c);
                }
                if let Some((lx, ly, lm, lc, linr)) = late.take() {
                    late_rest(s, lx, ly, w, lm, lc, linr);
                }
                nonfinite_row::<false>(x, y, w, m, f32::INFINITY);
                let (lo, hi) = next.map_or((f32::NAN, f32::NAN), |n| range_pass(s, n, w));
                swept = Swept {
                    total: 0.0,
                    ranged: w,
                    lo,
                    hi,
                };
            }
            (lo, m) = (swept.lo, swept.hi);
        }
        if let Some((p, c)) = pending {
            scale(s, p, w, c);
        }
        if let Some((lx, ly, lm, lc, linr)) = late {
            late_rest(s, lx, ly, w, lm, lc, linr);
        }
        if STREAM {
            crate::generic::stream_fence(s);
        }
    }
}

/// `y = e^(x − m) · c` over `n` floats, streamed: what [`late_pair`] did
/// not write of a late row.
///
/// # Safety
/// `x`/`y` valid for `n` reads/writes, equal or disjoint.
#[inline(always)]
unsafe fn late_rest<S: Simd>(
    s: S,
    x: *const f32,
    y: *mut f32,
    n: usize,
    m: f32,
    c: f32,
    in_range: bool,
) {
    // SAFETY: the caller's contract.
    unsafe {
        match in_range {
            true => exp_scale_pass::<S, true, true>(s, x, y, n, m, c),
            false => exp_scale_pass::<S, false, true>(s, x, y, n, m, c),
        }
    }
}
