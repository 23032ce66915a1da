//! Instruction sets as capabilities: the [`Isa`] trait, which every SIMD
//! token the kernels run on implements, and [`Kern`], a kernel body
//! generic over it.
//!
//! The algorithms (`crate::regime`) are written once against pulp's
//! [`Simd`] plus this trait. Where instruction sets differ, in how fast a
//! step is or in which step exists at all, the difference is a constant or
//! a method here, with a portable default, overridden in the instruction
//! set's own module: `avx2` (pulp `V3`), `avx512` (`V4`), `neon`,
//! [`portable`] (pulp's `Scalar`, and the emulated 4/8/16-lane types that
//! state the NEON, AVX2 and AVX-512 choices so that the tests run that lane
//! logic on any CPU). Shared code never asks which instruction set it runs
//! on; it asks what the instruction set can do.
//!
//! | capability | default | overridden by |
//! |---|---|---|
//! | [`Isa::exp_nonpos`], [`Isa::exp_tiny`] | degree-6 polynomial ([`crate::exp`]) | AVX2, AVX-512 table schemes |
//! | [`Isa::EXP_OF_NEGATED`], [`Isa::exp_neg_nonpos`] | no; `exp_nonpos(−y)` | AVX2 (`m − key`, its subtraction reads memory) |
//! | [`Isa::fold_f64`] | lane by lane | AVX2, AVX-512 (whole-vector conversion) |
//! | [`Isa::load_tail`], [`Isa::store_tail`] | pulp's masked moves | AVX-512 (mask registers, no trampoline) |
//! | [`Isa::store_stream`], [`Isa::HAS_STREAM`] | plain store | AVX2, AVX-512 (`vmovntps`) |
//! | [`Isa::prefetch`], [`Isa::prefetch_w`] | nothing | AVX2, AVX-512 |
//! | [`Isa::all_lanes`], [`Isa::rows_all_lanes`] | rotate-by-half butterflies | AVX2 (in-lane shuffles), AVX-512 (four rows share their shuffles) |
//! | [`Isa::recip_sums`] | lane by lane in f64 | AVX2, AVX-512 (whole-vector conversion; four rows share the tree's shuffles and one division) |
//! | [`Isa::SWEEP_PAIRS`] | 1 | AVX2, AVX-512, 16 portable lanes: 4 |
//! | [`Isa::FUSED_SWEEP`] | yes | AVX2: no (16 registers) |
//! | [`Isa::TRACK_MIN`] | yes | AVX-512, 16 portable lanes: no (the flush is one compare) |
//! | [`Isa::SHORT_ROWS`] | yes | scalar: no |
//! | [`Isa::PIPELINE_SHORT`] | no | AVX-512, 16 portable lanes |
//! | [`Isa::NARROW_MAX`], [`Isa::Narrow`] | none | AVX-512 → AVX2, 16 → 8 portable lanes |
//! | [`Isa::STORE_AHEAD`] | 0 | AVX-512 (`prefetchw`) |
//! | [`Isa::PREFETCH_AHEAD`] | 0 (the next row's same element) | AVX-512 (4 KiB ahead) |
//! | [`Isa::late_pairs`] | none (0 pairs) | AVX2 (the `asm!` loop) |
//! | [`Isa::widen2`], [`Isa::narrow2`], [`Isa::convert_level`] | lane by lane ([`crate::convert`]) | AVX2 (F16C where the CPU has it, integer bf16), AVX-512 (its conversions, `AVX512_BF16` where the CPU has it), NEON (`fcvtl`/`fcvtn`, integer bf16) |

use crate::convert::HalfFormat;
use pulp::{Simd, WithSimd};

pub mod portable;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;
#[cfg(target_arch = "x86_64")]
pub mod half_x86;
#[cfg(target_arch = "x86_64")]
pub(crate) mod late_asm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_exp;

#[cfg(target_arch = "aarch64")]
pub mod neon;

/// A kernel body generic over the instruction set: [`Isa::run`] calls
/// [`Kern::run`] inside the instruction set's `#[target_feature]` context,
/// where everything the body calls inline is compiled for that ISA.
pub trait Kern {
    /// What the body returns.
    type Output;
    /// The body, for instruction set `S`.
    fn run<S: Isa>(self, s: S) -> Self::Output;
}

/// Runs a [`Kern`] through pulp's `WithSimd`: pulp's `vectorize` calls
/// `with_simd` with the token it was called on, which is `I` itself.
struct Adapt<I, K>(I, K);

impl<I: Isa, K: Kern> WithSimd for Adapt<I, K> {
    type Output = K::Output;
    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> K::Output {
        self.1.run(self.0)
    }
}

/// What an instruction set can do, beyond pulp's [`Simd`]: the constants
/// and methods the shared algorithms consult (see the module table).
/// Every method is `#[inline(always)]` in every implementation, so that it
/// compiles into its caller's target-feature context.
pub trait Isa: Simd {
    /// Short name, as in [`crate::Kernel::name`].
    const NAME: &'static str;

    /// Pairs of vectors per iteration of the batch sweep's inner loop
    /// (1 or 4): more pairs amortize the loop's pointer updates and the
    /// Fast2Sum accumulator's register moves, at some build time.
    const SWEEP_PAIRS: usize = 1;

    /// Whether the batch sweep also takes the next row's range and
    /// finishes the previous row inside its exp loop. Needs registers for
    /// the exp's constants, two accumulators and two more streams: false
    /// where 16 registers spill (AVX2), which then runs those two in one
    /// loop of their own after the exp loop.
    const FUSED_SWEEP: bool = true;

    /// Whether row ranges track the minimum as well as the maximum, so
    /// that rows whose every `x − m` is at least `EXP_LO` skip the exp's
    /// flush to 0. False where the flush is one compare into a mask
    /// register (AVX-512), as cheap as the `vminps` it would save.
    const TRACK_MIN: bool = true;

    /// Whether rows of at most four vectors run in registers (the short
    /// regime); the one-lane scalar ISA sends them to the pipeline.
    const SHORT_ROWS: bool = true;

    /// Whether short rows are software-pipelined: the next group's maxima
    /// reduced before the current group's exps. Needs 32 registers.
    const PIPELINE_SHORT: bool = false;

    /// Whether the terms' exps are taken as [`Isa::exp_neg_nonpos`] of the
    /// negated difference `m − key` rather than [`Isa::exp_nonpos`] of
    /// `key − m` (the same bits): where the subtraction then reads the key
    /// straight from memory (AVX2).
    const EXP_OF_NEGATED: bool = false;

    /// Whether [`Isa::store_stream`] is a non-temporal store (out-of-cache
    /// batches take the streaming form only where it is).
    const HAS_STREAM: bool = false;

    /// How far ahead of its stores the in-cache batch sweep asks for the
    /// output's lines in a writable state ([`Isa::prefetch_w`]), in floats;
    /// 0: not at all.
    const STORE_AHEAD: usize = 0;

    /// How far ahead the streaming batch's parked sweep asks for the next
    /// row ([`Isa::prefetch`]), in floats past the element the sweep is at:
    /// far enough that the lines arrive before the fused range reads them
    /// (a hint: it never changes a result, only the time out of cache).
    const PREFETCH_AHEAD: usize = 0;

    /// Rows of at most this many floats run on [`Isa::Narrow`] (a vector
    /// twice as wide as the row would be half padding); 0: never.
    const NARROW_MAX: usize = 0;

    /// The half-width instruction set for rows of at most
    /// [`Isa::NARROW_MAX`] floats (`Self` where there is none).
    type Narrow: Isa;

    /// The [`Isa::Narrow`] token, which this token proves available.
    fn narrow(self) -> Self::Narrow;

    /// Runs `k` in this instruction set's target-feature context.
    #[inline(always)]
    fn run<K: Kern>(self, k: K) -> K::Output {
        self.vectorize(Adapt(self, k))
    }

    /// `e^x` for `x ≤ 0` or NaN: exactly 1 at 0, at most 1 below, NaN for
    /// NaN, `+0` below [`crate::exp::EXP_LO`] (where `e^x < 2^-126`)
    /// unless `IN_RANGE` promises no such input (the flush is skipped).
    #[inline(always)]
    fn exp_nonpos<const IN_RANGE: bool>(self, x: Self::f32s) -> Self::f32s {
        crate::exp::poly_exp_nonpos::<Self, IN_RANGE>(self, x)
    }

    /// `e^x` for `x ≤ 0` with the tiny terms kept: lanes with `x <
    /// EXP_LO` (the mask returned) hold `e^x · 2^64`, a normal number down
    /// to `x ≈ −131.7` ([`crate::exp::EXP_TINY_LO`]), `+0` below; the other
    /// lanes are [`Isa::exp_nonpos`]'s. For sums that must keep terms
    /// below `2^-126` at full precision (log-softmax, logsumexp).
    #[inline(always)]
    fn exp_tiny(self, x: Self::f32s) -> (Self::f32s, Self::m32s) {
        crate::exp::poly_exp_tiny(self, x)
    }

    /// `e^(−y)` for `y ≥ 0` or NaN, bit for bit [`Isa::exp_nonpos`] of
    /// `−y` (round-to-nearest is symmetric). Where
    /// [`Isa::EXP_OF_NEGATED`], the stages evaluate every softmax term
    /// this way, on `m − key`.
    #[inline(always)]
    fn exp_neg_nonpos<const IN_RANGE: bool>(self, y: Self::f32s) -> Self::f32s {
        self.exp_nonpos::<IN_RANGE>(self.neg_f32s(y))
    }

    /// `Σ_lanes (hi − base) + lo` in f64, for compensated sums' lane pairs
    /// (`hi − base` is exact for the small integer `base ≤ hi < 2^24`;
    /// every lane converts exactly, only the f64 additions round).
    #[inline(always)]
    fn fold_f64(self, hi: Self::f32s, lo: Self::f32s, base: f32) -> f64 {
        let h = self.sub_f32s(hi, self.splat_f32s(base));
        let h: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&h));
        let e: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&lo));
        h.iter().zip(e).map(|(&h, &e)| h as f64 + e as f64).sum()
    }

    /// The `rem < F32_LANES` floats at `p` as one vector, the other lanes
    /// `fill`.
    ///
    /// # Safety
    /// `rem` floats readable at `p`.
    #[inline(always)]
    unsafe fn load_tail(self, p: *const f32, rem: usize, fill: f32) -> Self::f32s {
        // A plain mask: pulp's `mask_between` carries jumps to per-length
        // load routines, which a mask built once per row does not need.
        let mask = pulp::MemMask::new(self.mask_between_m32s(0, rem as u32).mask());
        // SAFETY: the masked load touches only the `rem` active lanes.
        let v = unsafe { self.mask_load_ptr_f32s(mask, p) };
        self.select_f32s(mask.mask(), v, self.splat_f32s(fill))
    }

    /// Stores the first `rem < F32_LANES` lanes of `v` at `p`.
    ///
    /// # Safety
    /// `rem` floats writable at `p`.
    #[inline(always)]
    unsafe fn store_tail(self, p: *mut f32, rem: usize, v: Self::f32s) {
        let mask = pulp::MemMask::new(self.mask_between_m32s(0, rem as u32).mask());
        // SAFETY: the masked store writes only the `rem` active lanes.
        unsafe { self.mask_store_ptr_f32s(mask, p, v) }
    }

    /// One vector at `p`, non-temporally where [`Isa::HAS_STREAM`]; order
    /// such stores before later ones with [`Isa::stream_fence`].
    ///
    /// # Safety
    /// One vector writable at `p`, aligned to `size_of::<Self::f32s>()`.
    #[inline(always)]
    unsafe fn store_stream(self, p: *mut f32, v: Self::f32s) {
        // SAFETY: the caller's contract.
        unsafe { store::<Self>(p, v) }
    }

    /// Orders earlier [`Isa::store_stream`]s before every later store.
    #[inline(always)]
    fn stream_fence(self) {}

    /// Asks for the cache line holding `p` (a hint: never faults).
    #[inline(always)]
    fn prefetch(self, p: *const f32) {
        let _ = p;
    }

    /// Asks for the cache line holding `p` in a writable state (a hint).
    #[inline(always)]
    fn prefetch_w(self, p: *mut f32) {
        let _ = p;
    }

    /// `op` over all lanes of `v`, the result in every lane: a butterfly
    /// whose lanes all combine the same pairs, so they hold identical bits.
    #[inline(always)]
    fn all_lanes(
        self,
        v: Self::f32s,
        op: impl Fn(Self::f32s, Self::f32s) -> Self::f32s,
    ) -> Self::f32s {
        let mut v = v;
        let mut k = Self::F32_LANES / 2;
        while k > 0 {
            v = op(v, self.rotate_right_f32s(v, k));
            k /= 2;
        }
        v
    }

    /// `op` over all lanes of `v[r]` in every lane of `out[r]`, the
    /// butterfly of [`Isa::all_lanes`] per row (an implementation may share
    /// work across rows, with the same pairs, so the same bits).
    #[inline(always)]
    fn rows_all_lanes<const R: usize>(
        self,
        v: [Self::f32s; R],
        op: impl Fn(Self::f32s, Self::f32s) -> Self::f32s,
    ) -> [Self::f32s; R] {
        // (An index loop: `array::map` is not inlined into the caller's
        // target-feature function, and the butterflies became calls.)
        let mut out = v;
        for r in 0..R {
            out[r] = self.all_lanes(v[r], &op);
        }
        out
    }

    /// `1/Σ` of each of `R` short rows' terms `t[r][0..N]` (non-negative
    /// or NaN, the row's max term exactly 1), in every lane of `out[r]`;
    /// and whether any of them is NaN. One level of f32 additions, then
    /// f64: with `H = L/2`, each lane holds `p = t0 + t1` (and `p' = t2 +
    /// t3`, or `t2`, for three or four vectors), or for one vector `p_j =
    /// t0_j + t0_{j+H}`; then, in f64, `q_j = p_j + p_{j+H}` (with `p'`:
    /// `(p_j + p'_j) + (p_{j+H} + p'_{j+H})`; for one vector `q_j = p_j`),
    /// and the halving tree over `q_0..q_{H−1}` (lane `j` with `j + H/2`,
    /// then `j + H/4`, … down to lane 0); `1/Σ` divided in f64 and rounded
    /// once to f32.
    ///
    /// Every term meets at most one f32 rounding on its way into the sum
    /// (at most `2^-24` of the sum in all); an f32 tree rounds at every
    /// level, and terms below half an ulp of the max's exact 1 vanish at
    /// each (six levels on AVX-512: six ulps at the max entry). The
    /// association is fixed: a row's constant has the same bits alone and
    /// in any group (an implementation may share the tree's shuffles and
    /// the division across rows); the 8- and 16-lane portable types give
    /// AVX2's and AVX-512's bits.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn recip_sums<const N: usize, const R: usize>(
        self,
        t: &[[Self::f32s; N]; R],
    ) -> ([Self::f32s; R], bool) {
        fn lanes<V: pulp::bytemuck::Pod>(v: &V) -> &[f32] {
            pulp::bytemuck::cast_slice(core::slice::from_ref(v))
        }
        let h = Self::F32_LANES / 2;
        let (mut out, mut nan) = ([self.splat_f32s(0.0); R], false);
        for r in 0..R {
            let t = &t[r];
            // At most 8 lanes after the first level (AVX-512's 16 halved).
            let mut q = [0.0f64; 8];
            if h == 0 {
                // One lane (the scalar ISA has no short rows; kept total).
                q[0] = t.iter().map(|v| lanes(v)[0] as f64).sum();
            } else if N == 1 {
                let v = lanes(&t[0]);
                for j in 0..h {
                    q[j] = (v[j] + v[j + h]) as f64;
                }
            } else {
                let p = self.add_f32s(t[0], t[1]);
                let p2 = match N {
                    2 => None,
                    3 => Some(t[2]),
                    _ => Some(self.add_f32s(t[2], t[3])),
                };
                let (p, p2) = (lanes(&p), p2.as_ref().map(lanes));
                for j in 0..h {
                    q[j] = match p2 {
                        None => p[j] as f64 + p[j + h] as f64,
                        Some(p2) => {
                            (p[j] as f64 + p2[j] as f64) + (p[j + h] as f64 + p2[j + h] as f64)
                        }
                    };
                }
            }
            let mut k = h / 2;
            while k > 0 {
                for j in 0..k {
                    q[j] += q[j + k];
                }
                k /= 2;
            }
            let c = (1.0 / q[0]) as f32;
            nan |= c.is_nan();
            out[r] = self.splat_f32s(c);
        }
        (out, nan)
    }

    /// Which vector conversion of format `H` this CPU runs, asked once per
    /// conversion loop: 0, the portable lane-by-lane default (pulp's
    /// portable types, or a CPU without the instruction); an instruction
    /// set's own levels above that (see [`Isa::widen2`]). The loops pass
    /// the level back as `LEVEL`, so each level is its own loop.
    #[inline(always)]
    fn convert_level<H: HalfFormat>(self) -> u8 {
        0
    }

    /// Runs `k`, a conversion loop for format `H` at `level`, where that
    /// level's instructions compile inline: this instruction set's context,
    /// or one that also enables the feature the level checked (F16C on
    /// AVX2, `AVX512_BF16` on AVX-512).
    #[inline(always)]
    fn run_converting<H: HalfFormat, K: Kern>(self, level: u8, k: K) -> K::Output {
        let _ = level;
        self.run(k)
    }

    /// The `2·F32_LANES` elements of format `H` whose bytes are `v` (as
    /// loaded from memory) widened to f32: elements `0..L` and `L..2L`.
    /// Exactly [`HalfFormat::widen`] in every lane.
    ///
    /// # Safety
    /// `LEVEL` is at most what [`Isa::convert_level`] returns for `H` on
    /// this CPU (a level may use an instruction the token does not prove).
    #[inline(always)]
    unsafe fn widen2<H: HalfFormat, const LEVEL: u8>(
        self,
        v: Self::f32s,
    ) -> (Self::f32s, Self::f32s) {
        portable_widen2::<Self, H>(self, v)
    }

    /// `a` then `b` narrowed to format `H` (round to nearest even), packed
    /// into one vector's bytes in memory order: the inverse layout of
    /// [`Isa::widen2`]. Exactly [`HalfFormat::narrow`] in every lane.
    ///
    /// # Safety
    /// As [`Isa::widen2`].
    #[inline(always)]
    unsafe fn narrow2<H: HalfFormat, const LEVEL: u8>(
        self,
        a: Self::f32s,
        b: Self::f32s,
    ) -> Self::f32s {
        portable_narrow2::<Self, H>(self, a, b)
    }

    /// A hand-written form of the streaming batch's long-row loop
    /// (`crate::regime::pipeline`), for plain f32 rows and the softmax
    /// output: runs as many of `pairs` as it takes and returns that count
    /// (0 by default: the generic loop runs them).
    ///
    /// # Safety
    /// As `crate::regime::pipeline::LatePairs::run`.
    #[inline(always)]
    unsafe fn late_pairs(self, job: &mut LatePairs<Self>) -> usize {
        let _ = job;
        0
    }
}

/// [`Isa::widen2`] lane by lane with [`HalfFormat::widen`].
#[inline(always)]
pub(crate) fn portable_widen2<S: Simd, H: HalfFormat>(s: S, v: S::f32s) -> (S::f32s, S::f32s) {
    let (mut a, mut b) = (s.splat_f32s(0.0), s.splat_f32s(0.0));
    let h: &[u16] = pulp::bytemuck::cast_slice(core::slice::from_ref(&v));
    let l = S::F32_LANES;
    let oa: &mut [f32] = pulp::bytemuck::cast_slice_mut(core::slice::from_mut(&mut a));
    for j in 0..l {
        oa[j] = H::widen(h[j]);
    }
    let ob: &mut [f32] = pulp::bytemuck::cast_slice_mut(core::slice::from_mut(&mut b));
    for j in 0..l {
        ob[j] = H::widen(h[l + j]);
    }
    (a, b)
}

/// [`Isa::narrow2`] lane by lane with [`HalfFormat::narrow`].
#[inline(always)]
pub(crate) fn portable_narrow2<S: Simd, H: HalfFormat>(s: S, a: S::f32s, b: S::f32s) -> S::f32s {
    let mut out = s.splat_f32s(0.0);
    let l = S::F32_LANES;
    let ia: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&a));
    let ib: &[f32] = pulp::bytemuck::cast_slice(core::slice::from_ref(&b));
    let o: &mut [u16] = pulp::bytemuck::cast_slice_mut(core::slice::from_mut(&mut out));
    for j in 0..l {
        o[j] = H::narrow(ia[j]);
        o[l + j] = H::narrow(ib[j]);
    }
    out
}

/// The work of the streaming batch's long-row loop over `pairs` pairs of
/// vectors from element `i` of row `x` (see `crate::regime::pipeline`):
/// `e^(x − m)` summed into the Fast2Sum pair `(h, err)`, the range of
/// `next` into `(hi, lo)`, and the late row's output `e^(lx − lm) · c`
/// streamed to `ly`; `in_range`: both rows skip the exp's flush.
#[allow(missing_docs)]
#[derive(Clone, Copy)]
pub struct LatePairs<S: Simd> {
    pub x: *const f32,
    pub next: *const f32,
    pub lx: *const f32,
    pub ly: *mut f32,
    pub pairs: usize,
    pub m: S::f32s,
    pub lm: S::f32s,
    pub c: S::f32s,
    pub h: S::f32s,
    pub err: S::f32s,
    pub hi: S::f32s,
    pub lo: S::f32s,
    pub in_range: bool,
}

/// `hi += x`, returning the exact rounding error (Fast2Sum; exact because
/// `hi ≥ 2 ≥ x ≥ 0`): the compensated sums' step (`crate::sum`), and the
/// `asm!` loop's.
#[inline(always)]
pub(crate) fn fast_two_sum<S: Simd>(s: S, hi: &mut S::f32s, x: S::f32s) -> S::f32s {
    let t = s.add_f32s(*hi, x);
    let added = s.sub_f32s(t, *hi);
    *hi = t;
    s.sub_f32s(x, added)
}

/// Elements of `T` from `p` before the first address aligned to the
/// vector width (where [`Isa::store_stream`] may store), at most `n`.
/// `p` is aligned to `T`, so the distance is whole elements.
#[inline(always)]
pub(crate) fn elems_before_aligned<S: Simd, T>(p: *const T, n: usize) -> usize {
    let width = core::mem::size_of::<S::f32s>();
    ((p as usize).wrapping_neg() % width / core::mem::size_of::<T>()).min(n)
}

/// One vector from `p`.
///
/// # Safety
/// `F32_LANES` floats readable at `p`.
#[inline(always)]
pub(crate) unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    // SAFETY: the caller's contract.
    unsafe { (p as *const S::f32s).read_unaligned() }
}

/// One vector to `p`.
///
/// # Safety
/// `F32_LANES` floats writable at `p`.
#[inline(always)]
pub(crate) unsafe fn store<S: Simd>(p: *mut f32, v: S::f32s) {
    // SAFETY: the caller's contract.
    unsafe { (p as *mut S::f32s).write_unaligned(v) }
}

/// Reinterprets a vector as another plain-data type of the same size (one
/// register seen through two type names: pulp's and `core::arch`'s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn cast<A: pulp::bytemuck::Pod, B: pulp::bytemuck::Pod>(a: A) -> B {
    pulp::bytemuck::cast(a)
}
