//! Test support (the `testing` feature; `simd-softmax`'s tests turn it on):
//! entry points compiled once here, so that each test binary links them
//! instead of instantiating the regimes again.
//! - [`Target`]: every instruction set this build has, by name, with a
//!   test-only input stage ([`Bf16Bits`]: bf16 bit patterns widened to
//!   f32, an element type of its own) and the scaled stage forced at any
//!   `α` (the public path takes `α = 1` as plain softmax), each through the
//!   regime the planner picks.
//! - [`late_pairs_both`]: the AVX2 `asm!` loop and its intrinsics twin on
//!   the same inputs.
//! - [`Target::widen`], [`Target::narrow`]: the half-precision edge's
//!   conversion loops at each level the CPU runs;
//!   [`Target::softmax_rows_elems`]: any element formats on any target.
//! - [`Target::prefetches`]: the prefetches a batch asks for, recorded by
//!   a test-only source (prefetching is a hint: no result shows a wrong
//!   address).

use crate::convert::{Bf16, F16, Format};
use crate::edge::{Elems, ElemsMut};
use crate::isa::{Isa, Kern, load};
use crate::kernel::Batch;
use crate::kernel::Kernel;
use crate::plan::Regime;
use crate::stage::{F32Rows, Prob, ScaledRows, Source};
use core::cell::Cell;

/// bf16 inputs as raw `u16` bit patterns: the keys are the f32 values
/// whose upper halves they are (exact). A stage with an element type of
/// its own, for the tests: its softmax must be bit-identical to the f32
/// softmax of the widened values, through every regime.
#[derive(Clone, Copy)]
pub struct Bf16Bits {
    p: *const u16,
}

impl Bf16Bits {
    #[inline(always)]
    fn widen(b: u16) -> f32 {
        f32::from_bits((b as u32) << 16)
    }

    /// `n ≤ F32_LANES` keys from `p`, the other lanes `pad`.
    ///
    /// # Safety
    /// `n` elements readable at `p`.
    #[inline(always)]
    unsafe fn gather<S: Isa>(p: *const u16, n: usize, pad: f32) -> S::f32s {
        let mut a = [pad; 64];
        for (j, a) in a.iter_mut().enumerate().take(n) {
            // SAFETY: the caller's contract.
            *a = Self::widen(unsafe { *p.add(j) });
        }
        // SAFETY: `a` holds at least `F32_LANES` floats.
        unsafe { load::<S>(a.as_ptr()) }
    }
}

impl Source for Bf16Bits {
    type Shift<S: Isa> = S::f32s;
    type Row = *const u16;

    fn row(&self, r: usize, w: usize) -> *const u16 {
        self.p.wrapping_add(r * w)
    }
    fn row_after(&self, row: *const u16, k: usize, w: usize) -> *const u16 {
        row.wrapping_add(k * w)
    }
    fn prefetch<S: Isa>(&self, s: S, row: *const u16, i: usize) {
        s.prefetch(row.wrapping_add(i) as *const f32);
    }
    unsafe fn load<S: Isa>(&self, _: S, row: *const u16, i: usize) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { Self::gather::<S>(row.add(i), S::F32_LANES, 0.0) }
    }
    unsafe fn load_tail<S: Isa>(
        &self,
        _: S,
        row: *const u16,
        i: usize,
        rem: usize,
        pad: f32,
    ) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { Self::gather::<S>(row.add(i), rem, pad) }
    }
    unsafe fn key(&self, row: *const u16, i: usize) -> f32 {
        // SAFETY: the caller's contract.
        Self::widen(unsafe { *row.add(i) })
    }
    fn shift<S: Isa>(&self, _: S, m: S::f32s) -> S::f32s {
        m
    }
    fn diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        s.sub_f32s(key, m)
    }
    fn neg_diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        s.sub_f32s(m, key)
    }
    fn diff1(&self, key: f32, m: f32) -> f32 {
        key - m
    }
}

/// Plain f32 rows whose prefetches are recorded: each as its element
/// offset from the batch's first element, the first `log.len()` into
/// `log`, all of them counted in `count`. Keys, exps and results are
/// [`F32Rows`]'s; it gives no raw row, so no hand-written loop takes it.
#[derive(Clone, Copy)]
struct Recorded<'a> {
    rows: F32Rows,
    base: *const f32,
    log: &'a [Cell<usize>],
    count: &'a Cell<usize>,
}

impl Source for Recorded<'_> {
    type Shift<S: Isa> = S::f32s;
    type Row = *const f32;

    fn row(&self, r: usize, w: usize) -> *const f32 {
        self.rows.row(r, w)
    }
    fn row_after(&self, row: *const f32, k: usize, w: usize) -> *const f32 {
        self.rows.row_after(row, k, w)
    }
    fn prefetch<S: Isa>(&self, _: S, row: *const f32, i: usize) {
        let at = (row as usize).wrapping_sub(self.base as usize) / 4 + i;
        let k = self.count.get();
        if let Some(slot) = self.log.get(k) {
            slot.set(at);
        }
        self.count.set(k + 1);
    }
    unsafe fn load<S: Isa>(&self, s: S, row: *const f32, i: usize) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { self.rows.load(s, row, i) }
    }
    unsafe fn load_tail<S: Isa>(
        &self,
        s: S,
        row: *const f32,
        i: usize,
        rem: usize,
        pad: f32,
    ) -> S::f32s {
        // SAFETY: the caller's contract.
        unsafe { self.rows.load_tail(s, row, i, rem, pad) }
    }
    unsafe fn key(&self, row: *const f32, i: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe { self.rows.key(row, i) }
    }
    fn shift<S: Isa>(&self, s: S, m: S::f32s) -> S::f32s {
        self.rows.shift(s, m)
    }
    fn diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        self.rows.diff(s, key, m)
    }
    fn neg_diff<S: Isa>(&self, s: S, key: S::f32s, m: S::f32s) -> S::f32s {
        self.rows.neg_diff(s, key, m)
    }
    fn diff1(&self, key: f32, m: f32) -> f32 {
        self.rows.diff1(key, m)
    }
}

/// [`Target::look_ahead`] in the target's context.
struct Ahead;

impl Kern for Ahead {
    type Output = usize;
    fn run<S: Isa>(self, _: S) -> usize {
        crate::regime::STREAM_AHEAD.max(S::PREFETCH_AHEAD) + 2 * S::F32_LANES
    }
}

/// An instruction set of this build, for the tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// pulp `Scalar`.
    Scalar,
    /// AVX2+FMA.
    Avx2,
    /// AVX-512.
    Avx512,
    /// NEON.
    Neon,
    /// 16 portable lanes (AVX-512's choices).
    Portable16,
}

/// A conversion loop of the half-precision edge on `n` elements at a
/// given level (see [`Target::widen`]).
#[derive(Clone, Copy)]
enum Convert {
    Widen(Format, u8, *const u16, *mut f32, usize),
    Narrow(Format, u8, *const f32, *mut u16, usize, bool),
    Levels(Format),
}

impl Kern for Convert {
    type Output = u8;
    fn run<S: Isa>(self, s: S) -> u8 {
        // SAFETY: built by `Target::widen`/`narrow` from slices of `n`, at
        // a level at most the CPU's (checked there).
        unsafe {
            match self {
                Convert::Widen(f, level, x, y, n) => crate::edge::widen(s, f, level, x, y, n),
                Convert::Narrow(f, level, x, y, n, stream) => {
                    crate::edge::narrow_to(s, f, level, x, y, n, stream);
                    s.stream_fence();
                }
                Convert::Levels(Format::F16) => return s.convert_level::<F16>(),
                Convert::Levels(_) => return s.convert_level::<Bf16>(),
            }
        }
        0
    }
}

/// A softmax-shaped call over any element formats.
struct ElemsJob<'a> {
    x: Elems<'a>,
    y: ElemsMut<'a>,
    w: usize,
    log: bool,
}

impl Kern for ElemsJob<'_> {
    type Output = ();
    fn run<S: Isa>(self, s: S) {
        let k = Kernel::from_simd(s);
        match self.log {
            true => k.log_softmax_rows_elems(self.x, self.y, self.w),
            false => k.softmax_rows_elems(self.x, self.y, self.w),
        }
    }
}

/// What a [`Target`] runs.
#[derive(Clone, Copy)]
enum Job<'a> {
    Bf16(&'a [u16], *mut f32, usize, usize),
    Scaled(&'a [f32], *mut f32, usize, usize, f32),
    Plan(usize, usize),
    Prefetches(Recorded<'a>, *mut f32, usize, usize),
}

impl Kern for Job<'_> {
    type Output = Option<Regime>;
    fn run<S: Isa>(self, s: S) -> Option<Regime> {
        let k = Kernel::from_simd(s);
        match self {
            Job::Bf16(x, y, n, w) => {
                k.batch(Bf16Bits { p: x.as_ptr() }, Prob::new(y), n / w, w);
                None
            }
            Job::Scaled(x, y, n, w, alpha) => {
                let src = ScaledRows::new(x.as_ptr(), alpha);
                k.batch(src, Prob::new(y), n / w, w);
                None
            }
            Job::Plan(n, w) => Some(k.plan(n, w)),
            Job::Prefetches(src, y, n, w) => {
                // SAFETY: `Target::prefetches` built the source and `y`
                // from slices of `n` (checked), whole rows of `w`.
                unsafe { Batch::new(src, Prob::new(y), n / w, w).run_long::<S, true>(s) };
                None
            }
        }
    }
}

impl Target {
    /// Every target, whether or not this build or CPU has it.
    pub const ALL: [Target; 5] = [
        Target::Scalar,
        Target::Avx2,
        Target::Avx512,
        Target::Neon,
        Target::Portable16,
    ];

    /// Its name (the backend's, or `portable16`).
    pub fn name(self) -> &'static str {
        match self {
            Target::Scalar => "scalar",
            Target::Avx2 => "avx2",
            Target::Avx512 => "avx512",
            Target::Neon => "neon",
            Target::Portable16 => "portable16",
        }
    }

    /// Runs `job` on this target; `None` where this build or CPU lacks it.
    fn run<K: Kern>(self, job: K) -> Option<K::Output> {
        match self {
            Target::Scalar => Some(pulp::Scalar::new().run(job)),
            #[cfg(target_arch = "x86_64")]
            Target::Avx2 => pulp::x86::V3::try_new().map(|s| s.run(job)),
            #[cfg(target_arch = "x86_64")]
            Target::Avx512 => pulp::x86::V4::try_new().map(|s| s.run(job)),
            #[cfg(target_arch = "aarch64")]
            Target::Neon => pulp::aarch64::Neon::try_new().map(|s| s.run(job)),
            #[cfg(feature = "dyn")]
            Target::Portable16 => Some(pulp::Scalar512b.run(job)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Whether this build and CPU run the target.
    pub fn available(self) -> bool {
        self.run(Job::Plan(1, 1)).is_some()
    }

    /// The regime the target's planner picks.
    pub fn plan(self, len: usize, row_len: usize) -> Option<Regime> {
        self.run(Job::Plan(len, row_len)).flatten()
    }

    /// The highest conversion level this target runs for `format` on this
    /// CPU (0: the portable lane-by-lane conversion); `None` where the
    /// target is missing. Every level from 0 up to it can be run.
    pub fn convert_level(self, format: Format) -> Option<u8> {
        assert!(format != Format::F32, "a half format");
        self.run(Convert::Levels(format))
    }

    /// Widens `input` (bit patterns of `format`) into `output` with the
    /// half-precision edge's loop at `level` (at most
    /// [`Target::convert_level`]); `false` where the target is missing.
    pub fn widen(self, format: Format, level: u8, input: &[u16], output: &mut [f32]) -> bool {
        assert!(input.len() == output.len() && format != Format::F32);
        match self.convert_level(format) {
            Some(max) => assert!(level <= max, "level {level} above the CPU's {max}"),
            None => return false,
        }
        let job = Convert::Widen(
            format,
            level,
            input.as_ptr(),
            output.as_mut_ptr(),
            input.len(),
        );
        self.run(job).is_some()
    }

    /// Narrows `input` into `output` (bit patterns of `format`) with the
    /// half-precision edge's loop at `level`, with non-temporal stores when
    /// `stream`; `false` where the target is missing.
    pub fn narrow(
        self,
        format: Format,
        level: u8,
        input: &[f32],
        output: &mut [u16],
        stream: bool,
    ) -> bool {
        assert!(input.len() == output.len() && format != Format::F32);
        match self.convert_level(format) {
            Some(max) => assert!(level <= max, "level {level} above the CPU's {max}"),
            None => return false,
        }
        let (x, y, n) = (input.as_ptr(), output.as_mut_ptr(), input.len());
        self.run(Convert::Narrow(format, level, x, y, n, stream))
            .is_some()
    }

    /// Softmax (`log`: log-softmax) of each `row_len`-long row from any
    /// element format to any, as the public functions run it; `false`
    /// where the target is missing.
    pub fn softmax_rows_elems(
        self,
        input: Elems<'_>,
        output: ElemsMut<'_>,
        row_len: usize,
        log: bool,
    ) -> bool {
        let job = ElemsJob {
            x: input,
            y: output,
            w: row_len,
            log,
        };
        self.run(job).is_some()
    }

    /// How far past the element a sweep is at its prefetches may reach, in
    /// elements: the streamed writes' look-ahead or the parked sweep's
    /// ([`Isa::PREFETCH_AHEAD`]), whichever is further, plus a pair of
    /// vectors; `None` where the target is missing.
    pub fn look_ahead(self) -> Option<usize> {
        self.run(Ahead)
    }

    /// Softmax of each `row_len`-long row (longer than the short regime's
    /// rows) through the regime the planner picks, with a source that
    /// records every prefetch the regime asks for: its element offset from
    /// `input`'s first element, the first `log.len()` of them into `log`.
    /// Returns how many were asked for (`None` where the target is
    /// missing). The results are the softmax's.
    pub fn prefetches(
        self,
        input: &[f32],
        output: &mut [f32],
        row_len: usize,
        log: &mut [usize],
    ) -> Option<usize> {
        assert!(input.len() == output.len() && row_len > 0 && input.len().is_multiple_of(row_len));
        let count = Cell::new(0);
        let src = Recorded {
            rows: F32Rows::new(input.as_ptr()),
            base: input.as_ptr(),
            log: Cell::from_mut(log).as_slice_of_cells(),
            count: &count,
        };
        if input.is_empty() {
            return self.available().then_some(0);
        }
        let plan = self.plan(input.len(), row_len);
        assert!(
            !matches!(plan, Some(Regime::Short { .. })),
            "rows longer than short ones"
        );
        let job = Job::Prefetches(src, output.as_mut_ptr(), input.len(), row_len);
        self.run(job).map(|_| count.get())
    }

    /// Softmax of each `row_len`-long row of bf16 bit patterns, through the
    /// test-only [`Bf16Bits`] stage; `false` where the target is missing.
    pub fn softmax_rows_bf16(self, input: &[u16], output: &mut [f32], row_len: usize) -> bool {
        assert!(input.len() == output.len() && row_len > 0 && input.len().is_multiple_of(row_len));
        let job = Job::Bf16(input, output.as_mut_ptr(), input.len(), row_len);
        self.run(job).is_some()
    }

    /// `softmax(α·x)` of each row through the scaled stage, for any finite
    /// nonzero `α` (1 included); `false` where the target is missing.
    pub fn softmax_scaled_rows_stage(
        self,
        input: &[f32],
        output: &mut [f32],
        row_len: usize,
        alpha: f32,
    ) -> bool {
        assert!(input.len() == output.len() && row_len > 0 && input.len().is_multiple_of(row_len));
        assert!(alpha.is_finite() && alpha != 0.0);
        let job = Job::Scaled(input, output.as_mut_ptr(), input.len(), row_len, alpha);
        self.run(job).is_some()
    }
}

/// The state of [`late_pairs_both`]'s loop: the sum lanes and the range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LateState {
    /// Fast2Sum's running sum (8 lanes).
    pub h: [f32; 8],
    /// Its error lanes.
    pub err: [f32; 8],
    /// The next row's max lanes.
    pub hi: [f32; 8],
    /// Its min lanes.
    pub lo: [f32; 8],
}

/// Runs the AVX2 long-row loop over `pairs` pairs on `x`, `next`, `lx`
/// twice, writing `ly_asm` with the `asm!` block and `ly_twin` with its
/// intrinsics twin, from the same state (`m`, `lm`, `c` splatted; sums and
/// ranges from `start`); returns both states. `None` where the CPU lacks
/// AVX2 or the build the `asm` feature. Both outputs must be 32-byte
/// aligned and every slice at least `16·pairs` long.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
pub fn late_pairs_both(
    x: &[f32],
    next: &[f32],
    lx: &[f32],
    ly_asm: &mut [f32],
    ly_twin: &mut [f32],
    pairs: usize,
    (m, lm, c): (f32, f32, f32),
    start: LateState,
    in_range: bool,
) -> Option<(LateState, LateState)> {
    use crate::isa::LatePairs;
    use pulp::Simd;
    let s = pulp::x86::V3::try_new()?;
    if !cfg!(feature = "asm") {
        return None;
    }
    let n = 16 * pairs;
    assert!(x.len() >= n && next.len() >= n && lx.len() >= n);
    assert!(ly_asm.len() >= n && ly_twin.len() >= n);
    assert!(
        (ly_asm.as_ptr() as usize).is_multiple_of(32)
            && (ly_twin.as_ptr() as usize).is_multiple_of(32)
    );
    let v = |a: [f32; 8]| -> pulp::f32x8 { pulp::bytemuck::cast(a) };
    let a = |v: pulp::f32x8| -> [f32; 8] { pulp::bytemuck::cast(v) };
    let job = |ly: *mut f32| LatePairs::<pulp::x86::V3> {
        x: x.as_ptr(),
        next: next.as_ptr(),
        lx: lx.as_ptr(),
        ly,
        pairs,
        m: s.splat_f32s(m),
        lm: s.splat_f32s(lm),
        c: s.splat_f32s(c),
        h: v(start.h),
        err: v(start.err),
        hi: v(start.hi),
        lo: v(start.lo),
        in_range,
    };
    let state = |j: LatePairs<pulp::x86::V3>| LateState {
        h: a(j.h),
        err: a(j.err),
        hi: a(j.hi),
        lo: a(j.lo),
    };
    let (mut ja, mut jt) = (job(ly_asm.as_mut_ptr()), job(ly_twin.as_mut_ptr()));
    // SAFETY: AVX2 and FMA (`s`); the slices hold `16·pairs` floats (checked),
    // the outputs are 32-byte aligned (checked).
    unsafe {
        crate::isa::late_asm::run(s, &mut ja);
        s.run(Twin(&mut jt));
    }
    s.stream_fence();
    Some((state(ja), state(jt)))
}

/// The twin in AVX2's target-feature context.
#[cfg(target_arch = "x86_64")]
struct Twin<'a>(&'a mut crate::isa::LatePairs<pulp::x86::V3>);

#[cfg(target_arch = "x86_64")]
impl Kern for Twin<'_> {
    type Output = ();
    fn run<S: Isa>(self, s: S) {
        let _ = s;
        let v3 = pulp::x86::V3::try_new().expect("AVX2 checked by the caller");
        // SAFETY: `late_pairs_both` checked the slices and alignment.
        unsafe { crate::isa::late_asm::twin(v3, self.0) };
    }
}
