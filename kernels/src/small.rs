//! Rows of at most four vectors (`row_len ≤ 4·F32_LANES`: 64 floats on
//! AVX-512, 32 on AVX2, 16 on NEON), kept in registers from load to store.
//!
//! The general passes sweep a row three times through loops sized for long
//! rows, and each sweep's tail builds a fresh mask; for a row of 8 or 32
//! floats that overhead is most of the cost. Here a row is loaded once
//! (the last vector with a mask built once per call, or a plain load when
//! the row is whole vectors), and everything else happens in registers.
//!
//! Softmax, every step a vector operation (no value leaves the registers):
//! ```text
//! v_0..v_{N-1} = row (inactive tail lanes = −∞)
//! m = max_i v_i, then a butterfly: the row max in every lane
//! e_i = e^(v_i − m)                              padded lanes give e = 0
//! s = Σ_i e_i pairwise, then a butterfly: the sum in every lane
//! y_i = e_i / s (one vector: one division), or e_i · (1/s)
//! ```
//! A row is a chain of dependent steps (~100 cycles of latency) but only
//! ~40 instructions per vector, so the out-of-order core overlaps several
//! consecutive rows; softmax handles a group of rows (`R`, 2 to 8) per
//! iteration so that one check covers the finiteness of all their maxima,
//! and on AVX-512 loads and reduces the next group's maxima before the
//! current group's exps (Intel Xeon, 8192×32: 0.346 → 0.292 ns/element,
//! 4096×64 0.336 → 0.317). Log-softmax takes [`GROUP`] rows at a time.
//! A row whose max is not finite goes to the general path (SPEC §3 limits).
//! A NaN needs no check: it makes `s` NaN and so the whole row NaN.
//!
//! Log-softmax keeps the row's `Σ = k + δ` split (the `k` maxima contribute
//! exactly 1 each), computed per row in scalar f64 (`ln k + log1p(δ/k)`),
//! because its result at the max entry is `−ln(1 + δ)`, which needs `δ` to
//! its last bits.
//!
//! Lost experiment (Zen 3, AVX2, 32768×8): the previous form of the softmax
//! path reduced each row's max and sum to scalars, summed in f64 with a
//! `k + δ` split (a `libm::round` call and an f64 division per row) and
//! broadcast the results back: 2.34 ns/element, against MLAS's 2.1.
//!
//! Lost experiment (Zen 3, AVX2): two rows of 24 or 32 floats in flight
//! keep 6–8 exps live beside the exp's constants, and LLVM spills (8192×32:
//! 131.5 instructions per row under callgrind, 17 spill stores and 23
//! reloads per two rows, 15 register copies for the FMAs' destroyed
//! operands). Storing each exp to the output at once and scaling it there
//! once the sum is known, with the row's range checked once so that the
//! exps skip their flush, cut that to 123.0 (24 floats: 101.0 to 92.5), but
//! ran slower: 8192×32 0.670 ns/element against 0.636, 10922×24 0.724
//! against 0.650 (medians of 5 interleaved runs on core 1): the extra store
//! and reload per vector cost more than the spills they replace.

// Index loops over the small fixed arrays read better than zipped iterators
// across `v`, `out` and the row pointers, and unroll the same.
#![allow(clippy::needless_range_loop)]

use crate::generic::{load, row_apart, store};
use crate::isa::{all_lanes, first_lane};
use crate::math::{exp_nonpos, exp_nonpos_gradual};
use pulp::{MemMask, Simd};

/// Rows interleaved per iteration.
const GROUP: usize = 4;

/// Softmax (`LOG = false`) or log-softmax of `rows` rows of length `w`,
/// `(N − 1)·L < w ≤ N·L` for `L = F32_LANES`.
///
/// # Safety
/// `src`/`dst` valid for `rows · w` reads/writes, equal or disjoint.
#[inline(always)]
pub(crate) unsafe fn small_rows<S: Simd, const N: usize, const R: usize, const LOG: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    rows: usize,
    w: usize,
) {
    // SAFETY: the caller's contract.
    unsafe {
        if LOG {
            log_rows::<S, N>(s, src, dst, rows, w);
        } else if w == N * S::F32_LANES {
            softmax_rows::<S, N, true, R>(s, src, dst, rows, w);
        } else {
            softmax_rows::<S, N, false, R>(s, src, dst, rows, w);
        }
    }
}

/// Softmax of `rows` rows of `w` floats, `R` at a time; `WHOLE` when
/// `w` is exactly `N` vectors (plain loads and stores, no masks).
///
/// Software-pipelined: group `g + 1` is loaded and its maxima reduced
/// before group `g`'s exps, sums and stores, so that the out-of-order core
/// finds independent work next to each dependent chain (a group alone is
/// ~150 operations behind two ~30-cycle reductions, more than the
/// scheduler holds).
#[inline(always)]
unsafe fn softmax_rows<S: Simd, const N: usize, const WHOLE: bool, const R: usize>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    rows: usize,
    w: usize,
) {
    let rem = w - (N - 1) * S::F32_LANES; // lanes of the last vector, 1..=L
    // A plain mask (no pulp load/store trampolines): direct masked moves.
    let mask = MemMask::new(s.mask_between_m32s(0, rem as u32).mask());
    let groups = rows / R;
    // SAFETY: the caller's contract, split into whole groups and the rest;
    // group `g + 1` is read before group `g` is written, and they are
    // disjoint (in place ok).
    unsafe {
        // Pipelined where the registers hold two groups' rows beside the
        // exp's constants (AVX-512's 32); AVX2's 16 spill, and lost
        // (8192×32 0.45 → 0.51–0.59 ns/element, 16384×16 0.61 → 0.73).
        let pipe = S::F32_LANES == 16;
        let mut next = None;
        if pipe && groups > 0 {
            next = group_max::<S, N, R, WHOLE>(s, src, w, mask);
        }
        for g in 0..groups {
            let (x, y) = (src.add(g * R * w), dst.add(g * R * w));
            let cur = if pipe {
                next
            } else {
                group_max::<S, N, R, WHOLE>(s, x, w, mask)
            };
            if pipe && g + 1 < groups {
                next = group_max::<S, N, R, WHOLE>(s, x.add(R * w), w, mask);
            }
            match cur {
                Some((v, m)) => group_finish::<S, N, R, WHOLE>(s, v, m, y, w, mask),
                None => one_by_one::<S, N, WHOLE>(s, x, y, w, R, mask),
            }
        }
        let done = groups * R;
        let (x, y) = (src.add(done * w), dst.add(done * w));
        one_by_one::<S, N, WHOLE>(s, x, y, w, rows - done, mask);
    }
}

/// `rows` rows at `src`/`dst` one at a time: the rows after the last
/// whole group, and a group that holds a row whose max is not finite (its
/// ordinary rows get exactly the bits they get in a group, the special
/// ones take the general path).
///
/// # Safety
/// `src`/`dst` valid for `rows · w` reads/writes, equal or disjoint.
#[inline(always)]
unsafe fn one_by_one<S: Simd, const N: usize, const WHOLE: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    w: usize,
    rows: usize,
    mask: MemMask<S::m32s>,
) {
    // SAFETY: the caller's contract.
    unsafe {
        for r in 0..rows {
            let (x, y) = (src.add(r * w), dst.add(r * w));
            match group_max::<S, N, 1, WHOLE>(s, x, w, mask) {
                Some((v, m)) => group_finish::<S, N, 1, WHOLE>(s, v, m, y, w, mask),
                None => row_apart::<S, false>(s, x, y, w),
            }
        }
    }
}

/// The `R` rows of length `w` at `src`, loaded (inactive tail lanes
/// `−∞`), with each row's max in every lane of its `m`; `None` when some
/// row's max is not finite (SPEC §3's limits: the general path's).
///
/// # Safety
/// `src` valid for `R · w` reads.
#[inline(always)]
#[allow(clippy::type_complexity)]
unsafe fn group_max<S: Simd, const N: usize, const R: usize, const WHOLE: bool>(
    s: S,
    src: *const f32,
    w: usize,
    mask: MemMask<S::m32s>,
) -> Option<([[S::f32s; N]; R], [S::f32s; R])> {
    let l = S::F32_LANES;
    let ninf = s.splat_f32s(f32::NEG_INFINITY);
    // SAFETY: row `r` is `r·w .. r·w + w`, inside the buffer; the full
    // vectors cover `(N−1)·l` floats and the last one all of the remaining
    // `rem` (whole, or masked).
    unsafe {
        let mut v = [[ninf; N]; R];
        let mut m = [ninf; R];
        for r in 0..R {
            let x = src.add(r * w);
            for i in 0..N - 1 {
                v[r][i] = load::<S>(x.add(i * l));
            }
            v[r][N - 1] = if WHOLE {
                load::<S>(x.add((N - 1) * l))
            } else {
                let last = s.mask_load_ptr_f32s(mask, x.add((N - 1) * l));
                s.select_f32s(mask.mask(), last, ninf)
            };
            let mut mv = v[r][0];
            for i in 1..N {
                mv = s.max_f32s(mv, v[r][i]);
            }
            m[r] = mv;
        }
        let (packed, stride);
        (m, packed, stride) = rows_all_lanes(s, m, |a, b| s.max_f32s(a, b), |x| x);
        let mut bad = s.splat_f32s(0.0);
        for r in (0..R).step_by(stride) {
            // `m − m` is 0 for a finite max, NaN for ±∞ (and NaN).
            bad = s.add_f32s(bad, s.sub_f32s(packed[r], packed[r]));
        }
        if any_nan_lane(s, bad) {
            None
        } else {
            Some((v, m))
        }
    }
}

/// Softmax of `R` rows loaded by [`group_max`] (`v`, maxima `m`, all
/// finite), stored at `dst`. A NaN needs no check: it makes its row's sum
/// NaN and so the whole row NaN.
///
/// # Safety
/// `dst` valid for `R · w` writes.
#[inline(always)]
unsafe fn group_finish<S: Simd, const N: usize, const R: usize, const WHOLE: bool>(
    s: S,
    v: [[S::f32s; N]; R],
    m: [S::f32s; R],
    dst: *mut f32,
    w: usize,
    mask: MemMask<S::m32s>,
) {
    let l = S::F32_LANES;
    let zero = s.splat_f32s(0.0);
    // Phase by phase across the rows, so that independent work sits next
    // to each other in program order.
    let mut e = [[zero; N]; R];
    for i in 0..N {
        for r in 0..R {
            e[r][i] = exp_nonpos(s, s.sub_f32s(v[r][i], m[r]));
        }
    }
    let mut c = [zero; R];
    for r in 0..R {
        // Pairwise: ((e0 + e1) + (e2 + e3)).
        c[r] = match N {
            1 => e[r][0],
            2 => s.add_f32s(e[r][0], e[r][1]),
            3 => s.add_f32s(s.add_f32s(e[r][0], e[r][1]), e[r][2]),
            _ => s.add_f32s(s.add_f32s(e[r][0], e[r][1]), s.add_f32s(e[r][2], e[r][3])),
        };
    }
    // The sums (one row of one vector: divided by, element by element),
    // or their reciprocals.
    let one = s.splat_f32s(1.0);
    (c, _, _) = rows_all_lanes(
        s,
        c,
        |a, b| s.add_f32s(a, b),
        |x| if N == 1 { x } else { s.div_f32s(one, x) },
    );
    // SAFETY: row `r` is `r·w .. r·w + w`, inside the buffer, covered as
    // in `group_max`.
    unsafe {
        for r in 0..R {
            let y = dst.add(r * w);
            let last = if N == 1 {
                // One vector: one correctly rounded division per element.
                s.div_f32s(e[r][0], c[r])
            } else {
                let c = c[r];
                for i in 0..N - 1 {
                    store::<S>(y.add(i * l), s.mul_f32s(e[r][i], c));
                }
                s.mul_f32s(e[r][N - 1], c)
            };
            if WHOLE {
                store::<S>(y.add((N - 1) * l), last);
            } else {
                s.mask_store_ptr_f32s(mask, y.add((N - 1) * l), last);
            }
        }
    }
}

/// `fin(op over all lanes of v[r])` in every lane of `out[r]`
/// ([`all_lanes`]' butterfly per row), and `packed`, vectors in which
/// every row's result shows in some lane (here `out` itself; see
/// [`any_nan_lane`]), of which every `stride`-th is distinct.
///
/// AVX-512, four rows at a time: the four reductions share their
/// shuffles. Two 128-bit-lane shuffles and one `op` pair the 256-bit halves
/// of two rows; two more and one `op` pair the quarters of four rows, so
/// that 128-bit lane `r` of one vector holds row `r`; two in-lane steps
/// finish, and one shuffle per row broadcasts its lane: 17 operations for
/// four rows against the butterflies' 32. The pairs are the butterfly's
/// (lane `i` with `i + 8`, then `+ 4`, `+ 2`, `+ 1`), and `op` (max or
/// addition) is commutative, so the results are bit-identical to it; so
/// is `fin` (one reciprocal for four rows), applied lane by lane.
/// `packed[r]` is then the combined vector of row `r`'s group.
#[inline(always)]
fn rows_all_lanes<S: Simd, const R: usize>(
    s: S,
    v: [S::f32s; R],
    op: impl Fn(S::f32s, S::f32s) -> S::f32s,
    fin: impl Fn(S::f32s) -> S::f32s,
) -> ([S::f32s; R], [S::f32s; R], usize) {
    #[cfg(target_arch = "x86_64")]
    if R % 4 == 0 {
        if let Some(v4) = crate::isa::as_v4(s) {
            use crate::isa::cast;
            use core::arch::x86_64::__m512;
            let f = v4.avx512f;
            let opm = |a: __m512, b: __m512| -> __m512 { cast(op(cast(a), cast(b))) };
            let (mut out, mut packed) = (v, v);
            for g in (0..R).step_by(4) {
                let x: [__m512; 4] = [cast(v[g]), cast(v[g + 1]), cast(v[g + 2]), cast(v[g + 3])];
                // Halves: rows 0 and 1 in one vector (row 0 in its low 256
                // bits), rows 2 and 3 in another.
                let t01 = opm(
                    f._mm512_shuffle_f32x4::<0b01_00_01_00>(x[0], x[1]),
                    f._mm512_shuffle_f32x4::<0b11_10_11_10>(x[0], x[1]),
                );
                let t23 = opm(
                    f._mm512_shuffle_f32x4::<0b01_00_01_00>(x[2], x[3]),
                    f._mm512_shuffle_f32x4::<0b11_10_11_10>(x[2], x[3]),
                );
                // Quarters: 128-bit lane r holds row r.
                let u = opm(
                    f._mm512_shuffle_f32x4::<0b10_00_10_00>(t01, t23),
                    f._mm512_shuffle_f32x4::<0b11_01_11_01>(t01, t23),
                );
                let u = opm(u, f._mm512_permute_ps::<0b01_00_11_10>(u));
                let u = opm(u, f._mm512_permute_ps::<0b10_11_00_01>(u));
                let u: __m512 = cast(fin(cast(u)));
                out[g] = cast(f._mm512_shuffle_f32x4::<0x00>(u, u));
                out[g + 1] = cast(f._mm512_shuffle_f32x4::<0x55>(u, u));
                out[g + 2] = cast(f._mm512_shuffle_f32x4::<0xaa>(u, u));
                out[g + 3] = cast(f._mm512_shuffle_f32x4::<0xff>(u, u));
                for r in g..g + 4 {
                    packed[r] = cast(u);
                }
            }
            return (out, packed, 4);
        }
    }
    // (An index loop: `array::map` is not inlined into the caller's
    // target-feature function, and the butterfly's intrinsics then became
    // calls: AVX2's 32768×8 went from 0.54 to 16 ns/element.)
    let mut out = v;
    for r in 0..R {
        out[r] = fin(all_lanes(s, v[r], &op));
    }
    (out, out, 1)
}

/// Whether some lane of `v` is NaN, for vectors built from
/// [`rows_all_lanes`]' `packed` (on the butterfly's path every lane is the
/// same, so lane 0 tells).
#[inline(always)]
fn any_nan_lane<S: Simd>(s: S, v: S::f32s) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(v4) = crate::isa::as_v4(s) {
        use core::arch::x86_64::{__m512, _CMP_UNORD_Q};
        let v: __m512 = crate::isa::cast(v);
        return v4.avx512f._mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v) != 0;
    }
    let _ = s;
    first_lane::<S>(v).is_nan()
}

/// Log-softmax of `rows` rows of length `w`, `GROUP` at a time.
#[inline(always)]
unsafe fn log_rows<S: Simd, const N: usize>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    rows: usize,
    w: usize,
) {
    let full = rows - rows % GROUP;
    // SAFETY: the caller's contract, split into whole groups and the rest.
    unsafe {
        let mut r = 0;
        while r < full {
            group::<S, N, GROUP, true>(s, src.add(r * w), dst.add(r * w), w);
            r += GROUP;
        }
        while r < rows {
            group::<S, N, 1, true>(s, src.add(r * w), dst.add(r * w), w);
            r += 1;
        }
    }
}

/// `R` consecutive rows of length `w` at `src`/`dst`.
#[inline(always)]
unsafe fn group<S: Simd, const N: usize, const R: usize, const LOG: bool>(
    s: S,
    src: *const f32,
    dst: *mut f32,
    w: usize,
) {
    let l = S::F32_LANES;
    debug_assert!((N - 1) * l < w && w <= N * l);
    let rem = w - (N - 1) * l; // lanes of the last vector, 1..=l
    // A plain mask (no pulp load/store trampolines): direct masked moves.
    let mask = MemMask::new(s.mask_between_m32s(0, rem as u32).mask());
    let ninf = s.splat_f32s(f32::NEG_INFINITY);
    let zero = s.splat_f32s(0.0);
    // SAFETY: row `r` is `r·w .. r·w + w`, inside both buffers; the full
    // vectors cover `(N−1)·l` floats and the masked one the last `rem`; all
    // rows are loaded before anything is stored (in place ok).
    unsafe {
        let mut v = [[ninf; N]; R];
        let mut m = [0.0f32; R];
        for r in 0..R {
            let x = src.add(r * w);
            for i in 0..N - 1 {
                v[r][i] = load::<S>(x.add(i * l));
            }
            let last = s.mask_load_ptr_f32s(mask, x.add((N - 1) * l));
            v[r][N - 1] = s.select_f32s(mask.mask(), last, ninf);
            let mut mv = v[r][0];
            for i in 1..N {
                mv = s.max_f32s(mv, v[r][i]);
            }
            m[r] = s.reduce_max_f32s(mv);
        }
        if m.iter().any(|m| !m.is_finite()) {
            // Row by row, as softmax's `one_by_one`: the ordinary rows get
            // the bits they get in a group (the general path's differ).
            for r in 0..R {
                let (x, y) = (src.add(r * w), dst.add(r * w));
                if R == 1 {
                    row_apart::<S, LOG>(s, x, y, w)
                } else {
                    group::<S, N, 1, LOG>(s, x, y, w)
                }
            }
            return;
        }
        let mut out = [[ninf; N]; R];
        for r in 0..R {
            let msplat = s.splat_f32s(m[r]);
            let (mut sum, mut below) = (zero, zero);
            for i in 0..N {
                let d = s.sub_f32s(v[r][i], msplat);
                // Log-softmax needs every term of δ, subnormal ones too.
                out[r][i] = if LOG {
                    exp_nonpos_gradual(s, d)
                } else {
                    exp_nonpos(s, d)
                };
                sum = s.add_f32s(sum, out[r][i]);
                let at_max = s.equal_f32s(v[r][i], msplat);
                below = s.add_f32s(below, s.select_f32s(at_max, zero, out[r][i]));
            }
            // Σ = k + δ: the k maxima contribute exactly 1 each, δ the rest.
            // Summing δ apart keeps its relative accuracy when it is tiny
            // next to the 1s (log-softmax at the max is −ln(1 + δ) ≈ −δ);
            // k is recovered exactly by rounding the full sum minus δ.
            let delta = s.reduce_sum_f32s(below) as f64;
            let k = libm::round(s.reduce_sum_f32s(sum) as f64 - delta);
            let total = k + delta;
            if LOG {
                // ln k + log1p(δ/k), not ln(k + δ): δ may be below f64's
                // resolution of k (`[7, −33]`: δ = e^-40).
                let c = s.splat_f32s((libm::log(k) + libm::log1p(delta / k)) as f32);
                for i in 0..N {
                    out[r][i] = s.sub_f32s(s.sub_f32s(v[r][i], msplat), c);
                }
            } else {
                let c = s.splat_f32s((1.0 / total) as f32);
                for i in 0..N {
                    out[r][i] = s.mul_f32s(out[r][i], c);
                }
            }
        }
        for r in 0..R {
            let y = dst.add(r * w);
            for i in 0..N - 1 {
                store::<S>(y.add(i * l), out[r][i]);
            }
            s.mask_store_ptr_f32s(mask, y.add((N - 1) * l), out[r][N - 1]);
        }
    }
}
