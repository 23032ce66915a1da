//! The attention softmax: a `[heads, q_len, kv_len]` score tensor whose
//! rows are softmaxed after a scale, a softcap, an additive mask times an
//! ALiBi slope, a causal limit, a sliding window and a per-head sink logit
//! ([`Kernel::attention_softmax`]). Row `(h, q)`:
//! ```text
//! z_j = softcap(scale·s_j) + slope_h·mask[q, j]    for j in the row's extent lo..hi
//! y_j = e^(z_j) / (e^(σ_h) + Σ_k e^(z_k))           (σ_h the sink; −∞: none)
//! y_j = 0                                          outside the extent
//! ```
//! The extent is `hi = min(kv_len, q + q_offset + 1)` where causal (else
//! `kv_len`) and `lo = q + q_offset + 1 − w` where a window `w` is set
//! (else 0): the scores outside it are never read.
//!
//! Like the half-precision edge (`crate::edge`), the options are a **keys
//! pass**, not sources of their own: each row's keys `z` are computed
//! once per element (the scores and a half mask widened, the scale, the
//! softcap's tanh and the slope's multiply-add in one vector loop) into
//! f32 rows, and the planned f32 regime runs on them: every regime takes
//! every option, and no regime is instantiated again for any of them (a
//! source per option and element type would multiply the build).
//!
//! Consecutive rows whose extents are close run as one **group**: one
//! batch over the union of their extents, each row's keys `−∞` outside
//! its own (results exactly 0, as the output must hold there), so the
//! pipeline overlaps their rows. The keys go into the f32 output's rows
//! (in cache, no sink), or into the attention tile: the extents' union,
//! copied or narrowed out; or, out of cache, whole output rows, streamed
//! out. The sink is one more key at the end of its row in the tile: it
//! joins the max, the sum and the short rows' reciprocal trees as any key
//! does, and its result is not copied out. A row longer than the tile
//! with a sink or a half output takes its max, sum (plus the sink's term)
//! and results tile by tile.

use crate::Kernel;
use crate::convert::Format;
use crate::edge::{Buf, Elems, ElemsMut, Levels, TILE, narrow, widen};
use crate::fpenv::DefaultEnv;
use crate::isa::{Isa, Kern, elems_before_aligned, load, store};
use crate::kernel::Batch;
use crate::plan::STREAM_MIN;
use crate::regime::{Due, range_of, sweep_from};
use crate::stage::{F32Out, F32Rows, Prob, Probs, Sink, Source};
use crate::sum::{ExpSum, PlainAcc};

/// An additive mask: `[q_len, kv_len]` shared by every head, or `[heads,
/// q_len, kv_len]` (`per_head`), rows `stride` elements apart.
#[derive(Clone, Copy, Debug)]
pub struct AttentionMask<'a> {
    /// The mask's elements.
    pub elems: Elems<'a>,
    /// Elements between the starts of two mask rows (at least `kv_len`).
    pub stride: usize,
    /// Whether each head has its own `[q_len, kv_len]` mask.
    pub per_head: bool,
}

/// ALiBi's per-head slopes, which multiply the mask.
#[derive(Clone, Copy, Debug)]
pub enum Slopes<'a> {
    /// No ALiBi: every slope is 1.
    One,
    /// One slope per head.
    Given(&'a [f32]),
    /// ggml's slopes from `max_bias` ([`alibi_slope`]).
    MaxBias(f32),
}

/// ALiBi slope of head `h` of `heads` from `max_bias`, ggml's formula:
/// `n` the largest power of two `≤ heads`, `m0 = 2^(−max_bias/n)`, `m1 =
/// 2^(−max_bias/(2n))`; head `h < n` gets `m0^(h+1)`, the others
/// `m1^(2(h−n)+1)`. Evaluated as one power of two in f64 and rounded once.
///
/// ```
/// use simd_softmax_kernels::attention::alibi_slope;
/// assert_eq!(alibi_slope(8, 8.0, 0), 0.5);     // 2^-1
/// assert_eq!(alibi_slope(8, 8.0, 7), 1.0 / 256.0);
/// ```
pub fn alibi_slope(heads: usize, max_bias: f32, h: usize) -> f32 {
    let n = 1usize << (usize::BITS - 1 - heads.max(1).leading_zeros());
    let b = max_bias as f64;
    let e = if h < n {
        -b / n as f64 * (h + 1) as f64
    } else {
        -b / (2 * n) as f64 * (2 * (h - n) + 1) as f64
    };
    libm::exp2(e) as f32
}

/// The options of one attention softmax (checked by the caller).
#[derive(Clone, Copy, Debug)]
pub struct AttentionOptions<'a> {
    /// Multiplies every score first.
    pub scale: f32,
    /// The softcap `c > 0`: `c·tanh(t/c)` of the scaled score.
    pub softcap: Option<f32>,
    /// The additive mask.
    pub mask: Option<AttentionMask<'a>>,
    /// The mask's per-head multipliers.
    pub slopes: Slopes<'a>,
    /// Causal, with this query offset (the cache length before the block).
    pub causal: Option<usize>,
    /// A sliding window of `w ≥ 1` entries ending at the causal limit.
    pub window: Option<usize>,
    /// One sink logit per head (`−∞`: none).
    pub sinks: Option<&'a [f32]>,
}

impl AttentionOptions<'_> {
    /// No option set: the plain softmax of each row.
    pub const NONE: AttentionOptions<'static> = AttentionOptions {
        scale: 1.0,
        softcap: None,
        mask: None,
        slopes: Slopes::One,
        causal: None,
        window: None,
        sinks: None,
    };

    /// The slope of head `h` of `heads`.
    pub fn slope(&self, heads: usize, h: usize) -> f32 {
        match self.slopes {
            Slopes::One => 1.0,
            Slopes::Given(v) => v[h],
            Slopes::MaxBias(b) => alibi_slope(heads, b, h),
        }
    }

    /// The extent `lo..hi` of query row `q` in rows of `kv_len`: the
    /// entries that are read (the others are `−∞`).
    pub fn extent(&self, q: usize, kv_len: usize) -> (usize, usize) {
        let limit = q.saturating_add(self.causal.unwrap_or(0)).saturating_add(1);
        let hi = match self.causal {
            Some(_) => limit.min(kv_len),
            None => kv_len,
        };
        let lo = match self.window {
            Some(w) => limit.saturating_sub(w).min(hi),
            None => 0,
        };
        (lo, hi)
    }

    /// Whether the keys are the scores themselves (no scale, cap or mask).
    fn plain_keys(&self) -> bool {
        self.scale == 1.0 && self.softcap.is_none() && self.mask.is_none()
    }
}

/// A score tensor's shape and row strides.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    /// Heads.
    pub heads: usize,
    /// Query rows per head.
    pub q_len: usize,
    /// Keys per row.
    pub kv_len: usize,
    /// Elements between the starts of two score rows (at least `kv_len`).
    pub row_stride: usize,
    /// Elements between the starts of two output rows (at least `kv_len`).
    pub out_stride: usize,
}

impl AttentionShape {
    /// Elements a buffer of `heads·q_len` rows `stride` apart needs (the
    /// last row not padded); `None` if it overflows.
    pub fn needed(&self, stride: usize) -> Option<usize> {
        let rows = self.heads.checked_mul(self.q_len)?;
        match rows {
            0 => Some(0),
            _ => (rows - 1).checked_mul(stride)?.checked_add(self.kv_len),
        }
    }
}

impl<S: Isa> Kernel<S> {
    /// The attention softmax of `scores` into `output` (see the module
    /// comment), any element types, one dispatch for the whole tensor.
    /// With [`AttentionOptions::NONE`] it is exactly
    /// [`Kernel::softmax_rows_strided_elems`].
    ///
    /// # Panics
    /// If a buffer is too short for the shape, a stride is below `kv_len`,
    /// or a slope, sink or mask slice is too short (the safe crate checks
    /// all of it first and returns errors).
    ///
    /// ```
    /// use simd_softmax_kernels::attention::{AttentionOptions, AttentionShape};
    /// use simd_softmax_kernels::{Elems, ElemsMut};
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let o = AttentionOptions { causal: Some(0), ..AttentionOptions::NONE };
    /// let shape = AttentionShape { heads: 1, q_len: 2, kv_len: 2, row_stride: 2, out_stride: 2 };
    /// let mut y = [9.0f32; 4];
    /// k.attention_softmax(&o, shape, Elems::F32(&[3.0, 7.0, 1.0, 1.0]), ElemsMut::F32(&mut y));
    /// assert_eq!(y, [1.0, 0.0, 0.5, 0.5]);
    /// ```
    pub fn attention_softmax(
        self,
        o: &AttentionOptions<'_>,
        sh: AttentionShape,
        scores: Elems<'_>,
        mut output: ElemsMut<'_>,
    ) {
        let rows = sh.heads * sh.q_len;
        assert!(
            sh.row_stride >= sh.kv_len && sh.out_stride >= sh.kv_len,
            "strides below kv_len"
        );
        let fits = |len: usize, stride| sh.needed(stride).is_some_and(|n| n <= len);
        assert!(fits(scores.len(), sh.row_stride), "scores too short");
        assert!(fits(output.len(), sh.out_stride), "output too short");
        if let Some(m) = o.mask {
            let per = if m.per_head { sh.heads } else { 1 };
            let need = AttentionShape { heads: per, ..sh }.needed(m.stride);
            assert!(m.stride >= sh.kv_len, "mask stride below kv_len");
            assert!(need.is_some_and(|n| n <= m.elems.len()), "mask too short");
        }
        if let Slopes::Given(v) = o.slopes {
            assert!(v.len() >= sh.heads, "a slope per head");
        }
        if let Some(v) = o.sinks {
            assert!(v.len() >= sh.heads, "a sink per head");
        }
        assert!(o.softcap.is_none_or(|c| c > 0.0), "softcap > 0");
        assert!(o.window.is_none_or(|w| w > 0), "window ≥ 1");
        if rows == 0 || sh.kv_len == 0 {
            return;
        }
        let no_sinks = o
            .sinks
            .is_none_or(|v| v.iter().all(|&s| s == f32::NEG_INFINITY));
        if o.plain_keys() && o.causal.is_none() && o.window.is_none() && no_sinks {
            let (ys, xs) = (sh.out_stride, sh.row_stride);
            return self.softmax_rows_strided_elems(scores, output, rows, sh.kv_len, xs, ys);
        }
        let _env = DefaultEnv::enter();
        let s = self.simd();
        let cap = o.softcap.unwrap_or(1.0);
        let fused = (o.scale as f64 / cap as f64) as f32;
        let cap_form = match (o.softcap.is_some(), fused.is_normal()) {
            (false, _) => NO_CAP,
            (true, true) => FUSED_CAP,
            (true, false) => TWO_STEP_CAP,
        };
        s.run(Attention {
            o: *o,
            sh,
            x: scores.buf(),
            y: output.buf(),
            levels: Levels::of(s),
            stream: S::HAS_STREAM && rows * sh.kv_len >= STREAM_MIN,
            keys: Keys {
                scale: o.scale,
                cap,
                fused,
                slope: 1.0,
            },
            cap_form,
        });
    }
}

/// One call's tensor and options, run in the ISA's context.
struct Attention<'a> {
    o: AttentionOptions<'a>,
    sh: AttentionShape,
    x: Buf,
    y: Buf,
    levels: Levels,
    /// Whether the output is stored non-temporally (a tensor of
    /// `STREAM_MIN` elements or more, on an ISA with such stores).
    stream: bool,
    /// The keys pass's constants (the slope is each head's).
    keys: Keys,
    /// How the softcap is computed ([`NO_CAP`], [`FUSED_CAP`],
    /// [`TWO_STEP_CAP`]).
    cap_form: u8,
}

impl Kern for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        // Uninitialized: every float is written before it is read.
        let mut tile = core::mem::MaybeUninit::<[f32; ATTENTION_TILE]>::uninit();
        let mut mtile = core::mem::MaybeUninit::<[f32; MASK_CHUNK]>::uninit();
        // SAFETY: the buffers were checked against the shape
        // (`attention_softmax`); the tiles are ATTENTION_TILE and MASK_CHUNK
        // floats.
        unsafe {
            heads::<S>(
                s,
                &self,
                tile.as_mut_ptr().cast(),
                mtile.as_mut_ptr().cast(),
            )
        }
        if self.stream {
            s.stream_fence();
        }
    }
}

/// What the keys pass needs of one head.
#[derive(Clone, Copy)]
struct Head {
    h: usize,
    slope: f32,
    sink: f32,
}

impl Head {
    /// Head `h` of the call.
    #[inline(always)]
    fn of(a: &Attention<'_>, h: usize) -> Head {
        Head {
            h,
            slope: a.o.slope(a.sh.heads, h),
            sink: a.o.sinks.map_or(f32::NEG_INFINITY, |v| v[h]),
        }
    }
}

/// Floats in the attention tile (sinks, half outputs, whole rows out of
/// cache): the edge's 16 KiB tile, in L1. Four times that measured the same
/// on Zen 4 (docs/PERFORMANCE.md#attention-softmax), with four times the
/// stack.
pub const ATTENTION_TILE: usize = TILE;

/// Rows per group at most (a group shares one regime call).
const GROUP_MAX: usize = 1024;

/// Keys per group at most where the keys go into an f32 output: 256 KiB,
/// in L2 for the regime's passes after the keys pass wrote them. (The
/// pipeline overlaps one row's exps with the next row's loads; a batch of
/// a few rows spends a larger share in its first and last rows, which it
/// cannot overlap.)
const GROUP_ELEMS: usize = 1 << 16;

/// Every row of the tensor, in groups of consecutive rows (across heads)
/// whose extents are close: a group runs as one batch of rows over the
/// union of its extents, each row's keys `−∞` outside its own (results 0,
/// which that row's output must hold there anyway).
///
/// # Safety
/// The call's buffers valid for its shape; `t` [`ATTENTION_TILE`] floats,
/// `mt` [`MASK_CHUNK`].
#[inline(always)]
unsafe fn heads<S: Isa>(s: S, a: &Attention<'_>, t: *mut f32, mt: *mut f32) {
    let (o, sh) = (&a.o, a.sh);
    let rows = sh.heads * sh.q_len;
    // Only the sink decides how rows group (the slope is the keys pass's).
    let sink_of = |r: usize| o.sinks.map_or(f32::NEG_INFINITY, |v| v[r / sh.q_len]);
    let f32_out = a.y.format == Format::F32;
    let mut r = 0;
    while r < rows {
        let (lo, hi) = o.extent(r % sh.q_len, sh.kv_len);
        let extra = (sink_of(r) != f32::NEG_INFINITY) as usize;
        // Out of cache, whole output rows are assembled in the tile and
        // streamed out (zeros included: a row's lines are written once,
        // by non-temporal stores), where a row fits. Otherwise rows into an
        // f32 output without a sink take their keys in the output itself,
        // where a group may be larger than the tile.
        let full = a.stream && sh.kv_len + extra <= ATTENTION_TILE;
        let in_output = f32_out && extra == 0 && !full;
        let cap = if in_output {
            GROUP_ELEMS
        } else {
            ATTENTION_TILE
        };
        // SAFETY (every arm): rows `r..r + k` of the tensor, extents inside
        // `0..kv_len`.
        unsafe {
            if hi == lo {
                empty_row(a, Head::of(a, r / sh.q_len), r % sh.q_len);
                r += 1;
            } else if !in_output && hi - lo + extra > ATTENTION_TILE {
                // In a target-feature function of its own (not inlined into
                // the tile loop: rare, and large).
                s.run(LongRow {
                    a,
                    hd: Head::of(a, r / sh.q_len),
                    q: r % sh.q_len,
                    ext: (lo, hi),
                    t,
                    mt,
                });
                r += 1;
            } else {
                // Grow the group while the union stays within the tile and
                // wastes at most an eighth of it on padding.
                let (mut ulo, mut uhi, mut k) = (lo, hi, 1);
                while k < GROUP_MAX && r + k < rows {
                    let (l2, h2) = o.extent((r + k) % sh.q_len, sh.kv_len);
                    let e2 = (sink_of(r + k) != f32::NEG_INFINITY) as usize;
                    let (nlo, nhi) = (ulo.min(l2), uhi.max(h2));
                    let w = if full { sh.kv_len } else { nhi - nlo } + extra;
                    let pad = (nhi - nlo) - (h2 - l2);
                    if h2 == l2 || e2 != extra || w * (k + 1) > cap || pad * 8 > (nhi - nlo).max(64)
                    {
                        break;
                    }
                    (ulo, uhi, k) = (nlo, nhi, k + 1);
                }
                let form = match (in_output, full) {
                    (true, _) => IN_OUTPUT,
                    (_, true) => FULL_ROWS,
                    _ => EXTENTS,
                };
                tile_rows::<S>(s, a, r, k, (ulo, uhi), extra == 1, form, t, mt);
                r += k;
            }
        }
    }
}

/// The output row of query `q` of head `h`.
#[inline(always)]
fn out_row(a: &Attention<'_>, h: usize, q: usize) -> Buf {
    a.y.at((h * a.sh.q_len + q) * a.sh.out_stride)
}

/// Writes `v` over elements `i..j` of output row `y`.
///
/// # Safety
/// Those elements writable.
#[inline(always)]
unsafe fn fill(y: Buf, i: usize, j: usize, v: f32) {
    if i >= j {
        return;
    }
    if v == 0.0 && v.is_sign_positive() {
        // SAFETY: the caller's contract; +0 is all zero bits in every format.
        unsafe { core::ptr::write_bytes(y.at(i).p, 0, (j - i) * y.format.bytes()) }
    } else {
        for k in i..j {
            // SAFETY: the caller's contract.
            unsafe { y.put(k, v) }
        }
    }
}

/// A row with an empty extent: zeros (the sink, if any, takes the mass),
/// or NaN for a NaN sink.
///
/// # Safety
/// Row `q` of head `hd.h` writable.
#[inline(never)]
unsafe fn empty_row(a: &Attention<'_>, hd: Head, q: usize) {
    let v = if hd.sink.is_nan() { f32::NAN } else { 0.0 };
    // SAFETY: the caller's contract.
    unsafe { fill(out_row(a, hd.h, q), 0, a.sh.kv_len, v) }
}

/// Writes the zeros outside `lo..hi` of a finished row, or NaN over the
/// whole row when its results are NaN (a NaN key or sink: `first`, a
/// result inside `lo..hi`, is NaN exactly then).
///
/// # Safety
/// The row writable.
#[inline(always)]
unsafe fn outside(y: Buf, (lo, hi): (usize, usize), kv_len: usize, first: f32) {
    let v = if first.is_nan() { f32::NAN } else { 0.0 };
    // SAFETY: the caller's contract.
    unsafe {
        fill(y, 0, lo, v);
        fill(y, hi, kv_len, v);
    }
}

/// `k` consecutive rows from row `r` of the tensor over the union `ulo..uhi`
/// of their extents: their keys (`−∞` outside each row's own extent, and
/// the sink last where `sink`) into the tile, the planned f32 regime over
/// them, the results written.
///
/// # Safety
/// The rows valid; their keys fit the tile (`form` [`EXTENTS`]:
/// `(uhi − ulo + sink)·k`, [`FULL_ROWS`]: `(kv_len + sink)·k` floats) or go
/// to the output ([`IN_OUTPUT`]: an f32 output and no sink).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<S: Isa>(
    s: S,
    a: &Attention<'_>,
    r: usize,
    k: usize,
    (ulo, uhi): (usize, usize),
    sink: bool,
    form: u8,
    t: *mut f32,
    mt: *mut f32,
) {
    let (o, sh) = (&a.o, a.sh);
    let n = uhi - ulo;
    let wk = n + sink as usize;
    let y0 = a.y.at(r * sh.out_stride);
    // Where row `i`'s key `j` (`ulo ≤ j < uhi`) goes: `kp + i·pitch + j − ulo`.
    let (kp, pitch) = match form {
        IN_OUTPUT => (y0.at(ulo).f32(), sh.out_stride),
        FULL_ROWS => (t.wrapping_add(ulo), sh.kv_len + sink as usize),
        _ => (t, wk),
    };
    // SAFETY (whole body): rows `r..r + k` (the caller's), `k·pitch ≤
    // ATTENTION_TILE` floats of the tile or the output's rows; the regime
    // reads each key before it writes.
    unsafe {
        // The head's slope (a power of two for `max_bias`) once per head.
        let mut hd = Head::of(a, r / sh.q_len);
        for i in 0..k {
            let (h, q) = ((r + i) / sh.q_len, (r + i) % sh.q_len);
            if h != hd.h {
                hd = Head::of(a, h);
            }
            let (lo, hi) = o.extent(q, sh.kv_len);
            let tr = kp.add(i * pitch);
            set(tr, 0, lo - ulo, f32::NEG_INFINITY);
            keys::<S>(s, a, hd, q, lo, hi - lo, tr.add(lo - ulo), mt);
            set(tr, hi - ulo, n, f32::NEG_INFINITY);
            if sink {
                *tr.add(n) = hd.sink;
            }
        }
        // In place: each key is read before its result is written.
        let src = F32Rows::strided(kp, pitch);
        Batch::new(src, Probs::to(F32Out::strided(kp, pitch)), k, wk).run(s);
        for i in 0..k {
            let y = y0.at(i * sh.out_stride);
            let tr = kp.add(i * pitch);
            let first = *tr;
            match form {
                IN_OUTPUT => outside(y, (ulo, uhi), sh.kv_len, first),
                FULL_ROWS => {
                    // The whole row from the tile, streamed.
                    let row = tr.sub(ulo);
                    let v = if first.is_nan() { f32::NAN } else { 0.0 };
                    set(row, 0, ulo, v);
                    set(row, uhi, sh.kv_len, v);
                    if y.format == Format::F32 {
                        copy_stream(s, row, y.f32(), sh.kv_len);
                    } else {
                        narrow(s, a.levels, row, y, sh.kv_len, true);
                    }
                }
                _ => {
                    if y.format == Format::F32 {
                        core::ptr::copy_nonoverlapping(tr, y.at(ulo).f32(), n);
                    } else {
                        narrow(s, a.levels, tr, y.at(ulo), n, false);
                    }
                    outside(y, (ulo, uhi), sh.kv_len, first);
                }
            }
        }
    }
}

/// Sets floats `i..j` at `p` to `v`.
///
/// # Safety
/// Those floats writable.
#[inline(always)]
unsafe fn set(p: *mut f32, i: usize, j: usize, v: f32) {
    if i < j {
        // SAFETY: the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(p.add(i), j - i).fill(v) }
    }
}

/// Where [`tile_rows`] puts a group's keys and results: in the output's
/// rows (an f32 output in cache, no sink), in the tile as the extents'
/// union then copied out, or in the tile as whole output rows then
/// streamed out (out of cache).
const IN_OUTPUT: u8 = 0;
const EXTENTS: u8 = 1;
const FULL_ROWS: u8 = 2;

/// Copies `n` floats from `src` to `dst`, non-temporally from the first
/// vector-aligned element of `dst` on (the caller fences).
///
/// # Safety
/// `n` floats readable at `src`, writable at `dst` (disjoint).
#[inline(always)]
unsafe fn copy_stream<S: Isa>(s: S, src: *const f32, dst: *mut f32, n: usize) {
    let l = S::F32_LANES;
    let head = elems_before_aligned::<S, f32>(dst, n);
    // SAFETY (whole body): elements below `n`; streamed vectors aligned.
    unsafe {
        core::ptr::copy_nonoverlapping(src, dst, head);
        let mut i = head;
        while i + l <= n {
            s.store_stream(dst.add(i), load::<S>(src.add(i)));
            i += l;
        }
        core::ptr::copy_nonoverlapping(src.add(i), dst.add(i), n - i);
    }
}

/// [`long_row`]'s arguments, for its own target-feature function.
struct LongRow<'r, 'a> {
    a: &'r Attention<'a>,
    hd: Head,
    q: usize,
    ext: (usize, usize),
    t: *mut f32,
    mt: *mut f32,
}

impl Kern for LongRow<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        // SAFETY: built by `heads` for a valid row and its tiles.
        unsafe { long_row::<S>(s, self.a, self.hd, self.q, self.ext, self.t, self.mt) }
    }
}

/// A row whose extent (with its sink) is longer than a tile.
///
/// # Safety
/// The row valid; `t`, `mt` tiles.
#[inline(always)]
unsafe fn long_row<S: Isa>(
    s: S,
    a: &Attention<'_>,
    hd: Head,
    q: usize,
    (lo, hi): (usize, usize),
    t: *mut f32,
    mt: *mut f32,
) {
    let n = hi - lo;
    let y = out_row(a, hd.h, q);
    let sink = hd.sink != f32::NEG_INFINITY;
    // SAFETY (whole body): elements `lo..hi` of the row; tiles of TILE.
    unsafe {
        if y.format == Format::F32 {
            // The keys into the output row, then the regime in place (or the
            // sink's tiled passes reading them there).
            let yk = y.at(lo).f32();
            let mut i = 0;
            while i < n {
                let len = TILE.min(n - i);
                keys::<S>(s, a, hd, q, lo + i, len, yk.add(i), mt);
                i += len;
            }
            if !sink {
                Batch::new(F32Rows::new(yk), Prob::new(yk), 1, n).run(s);
            } else {
                tiled::<S>(s, hd.sink, y.at(lo), n, t, |i, _| yk.add(i), a.levels);
            }
        } else {
            let keys_at = |i: usize, len: usize| {
                keys::<S>(s, a, hd, q, lo + i, len, t, mt);
                t
            };
            tiled::<S>(s, hd.sink, y.at(lo), n, t, keys_at, a.levels);
        }
        let first = y.key(lo);
        outside(y, (lo, hi), a.sh.kv_len, first);
    }
}

/// A long row's max, sum (with the sink's term) and results, tile by tile:
/// `keys_at(i, len)` gives the keys of elements `i..i + len` (computed into
/// the tile `t`, or where they already are: then the results overwrite
/// them in place).
///
/// # Safety
/// `n` elements writable at `y`; `keys_at` valid for every tile of `0..n`.
#[inline(always)]
unsafe fn tiled<S: Isa>(
    s: S,
    sink: f32,
    y: Buf,
    n: usize,
    t: *mut f32,
    keys_at: impl Fn(usize, usize) -> *mut f32,
    levels: Levels,
) {
    let tiles = |f: &mut dyn FnMut(usize, usize, *mut f32)| {
        let mut i = 0;
        while i < n {
            let len = TILE.min(n - i);
            f(i, len, keys_at(i, len));
            i += len;
        }
    };
    // SAFETY (whole body): each tile's keys are `len` floats.
    unsafe {
        let mut m = f32::NEG_INFINITY;
        tiles(&mut |_, len, k| {
            let (_, tm) = range_of(s, &F32Rows::new(k), k, 0, len, false);
            m = m.max(tm);
        });
        let ms = if sink > m { sink } else { m };
        if !ms.is_finite() || sink.is_nan() {
            return special_long(sink, ms, y, tiles);
        }
        let sh = F32Rows::new(t).shift(s, s.splat_f32s(ms));
        let mut sum = ExpSum::ZERO;
        tiles(&mut |_, len, k| {
            let src = F32Rows::new(k);
            sum = sweep_from::<S, F32Rows, PlainAcc<S>, (), false>(
                s,
                &src,
                k,
                0,
                len,
                sh,
                &mut (),
                sum,
            );
        });
        if sink != f32::NEG_INFINITY {
            let one = [sink];
            let src = F32Rows::new(one.as_ptr());
            sum = sweep_from::<S, F32Rows, PlainAcc<S>, (), false>(
                s,
                &src,
                one.as_ptr(),
                0,
                1,
                sh,
                &mut (),
                sum,
            );
        }
        let c = Prob::constant(sum);
        if c.is_nan() {
            return special_long(sink, f32::NAN, y, tiles);
        }
        tiles(&mut |i, len, k| {
            let out = match y.format {
                Format::F32 => y.at(i).f32(),
                _ => t,
            };
            let (src, snk) = (F32Rows::new(k), Prob::new(out));
            let d = Due::<S, F32Rows, Prob>::new(k, snk.row(0, len), ms, c, false);
            d.write_in::<false, false>(s, &src, &snk, false, out, 0, len);
            if y.format != Format::F32 {
                narrow(s, levels, t, y.at(i), len, false);
            }
        });
    }
}

/// A long row whose max with the sink (`ms`) is not finite, or that holds
/// a NaN (`ms` NaN), in scalar: NaN everywhere for a NaN key or sink; the
/// `+∞` keys (and sink) share the mass; zeros for a fully masked row.
///
/// # Safety
/// As [`tiled`].
#[inline(never)]
unsafe fn special_long(
    sink: f32,
    ms: f32,
    y: Buf,
    tiles: impl Fn(&mut dyn FnMut(usize, usize, *mut f32)),
) {
    let (mut nan, mut inf) = (
        sink.is_nan() || ms.is_nan(),
        (sink == f32::INFINITY) as usize,
    );
    tiles(&mut |_, len, k| {
        for j in 0..len {
            // SAFETY: each tile's `len` keys readable.
            let v = unsafe { *k.add(j) };
            nan |= v.is_nan();
            inf += (v == f32::INFINITY) as usize;
        }
    });
    let share = (1.0 / inf as f64) as f32;
    tiles(&mut |i, len, k| {
        for j in 0..len {
            // SAFETY: each tile's `len` keys readable.
            let v = unsafe { *k.add(j) };
            let r = match (nan, v == f32::INFINITY) {
                (true, _) => f32::NAN,
                (false, true) => share,
                (false, false) => 0.0,
            };
            // SAFETY: element `i + j < n` of `y`, after its key was read.
            unsafe { y.put(i + j, r) };
        }
    });
}

/// The keys of elements `lo..lo + n` of row `q` of head `hd`
/// into `dst`: `softcap(scale·s) + slope·mask`, in f32.
///
/// # Safety
/// The elements readable (scores and mask); `n` floats writable at `dst`
/// (which may be the output row: the scores are another buffer); `mt`
/// [`MASK_CHUNK`] floats.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn keys<S: Isa>(
    s: S,
    a: &Attention<'_>,
    hd: Head,
    q: usize,
    lo: usize,
    n: usize,
    dst: *mut f32,
    mt: *mut f32,
) {
    let (o, sh) = (&a.o, a.sh);
    let x = a.x.at((hd.h * sh.q_len + q) * sh.row_stride + lo);
    // SAFETY (whole body): the caller's contract.
    unsafe {
        let src = match x.format {
            Format::F32 => x.f32() as *const f32,
            f => {
                widen(s, f, a.levels.level(f), x.half(), dst, n);
                dst
            }
        };
        let mrow = o.mask.map(|m| {
            let row = if m.per_head { hd.h * sh.q_len + q } else { q };
            m.elems.buf().at(row * m.stride + lo)
        });
        let (k, cap_form) = (
            Keys {
                slope: hd.slope,
                ..a.keys
            },
            a.cap_form,
        );
        // A half mask is widened a chunk at a time into `mt`, which stays in
        // L1 beside the tile (a whole row's widened mask would not).
        let chunk = match mrow {
            Some(b) if b.format != Format::F32 => MASK_CHUNK,
            _ => n,
        };
        let mut i = 0;
        while i < n {
            let len = chunk.min(n - i);
            let (x, d) = (src.add(i), dst.add(i));
            let m = mrow.map(|mb| match mb.format {
                Format::F32 => mb.f32().add(i) as *const f32,
                f => {
                    widen(s, f, a.levels.level(f), mb.half().add(i), mt, len);
                    mt as *const f32
                }
            });
            let none = core::ptr::null();
            match (cap_form, m) {
                (NO_CAP, None) if o.scale == 1.0 => {
                    if !core::ptr::eq(x, d) {
                        core::ptr::copy_nonoverlapping(x, d, len);
                    }
                }
                (NO_CAP, None) => k.apply::<S, NO_CAP, false>(s, x, none, d, len),
                (FUSED_CAP, None) => k.apply::<S, FUSED_CAP, false>(s, x, none, d, len),
                (_, None) => k.apply::<S, TWO_STEP_CAP, false>(s, x, none, d, len),
                (NO_CAP, Some(m)) => k.apply::<S, NO_CAP, true>(s, x, m, d, len),
                (FUSED_CAP, Some(m)) => k.apply::<S, FUSED_CAP, true>(s, x, m, d, len),
                (_, Some(m)) => k.apply::<S, TWO_STEP_CAP, true>(s, x, m, d, len),
            }
            i += len;
        }
    }
}

/// Elements of a half mask widened at a time (4 KiB of f32).
pub(crate) const MASK_CHUNK: usize = 1024;

/// The softcap's forms in the keys pass: none; the tanh's argument as
/// `x·fl(scale/c)`; as `fl(x·scale)·fl(1/c)` where `scale/c` is not a
/// normal f32.
const NO_CAP: u8 = 0;
const FUSED_CAP: u8 = 1;
const TWO_STEP_CAP: u8 = 2;

/// The keys pass's constants.
#[derive(Clone, Copy)]
struct Keys {
    scale: f32,
    cap: f32,
    /// `scale/c` rounded once (used where it is a normal f32).
    fused: f32,
    slope: f32,
}

/// The softcap's split: below it `tanh` is its odd polynomial, above it
/// `(1 − e^(−2a))/(1 + e^(−2a))` (where `e^(−2a) ≤ 0.29`: no cancellation).
const TANH_SPLIT: f32 = 0.625;

/// `tanh(x) = x + x³·P(x²)` on `|x| < TANH_SPLIT`: a weighted least-squares
/// (Lawson) fit of `P` in relative error, `1.5e-8` relative at most before
/// the f32 evaluation.
const TANH_P: [f32; 5] = [
    -0.333_332_8,
    0.133_314_42,
    -0.053_739_715,
    0.020_639_09,
    -0.005_704_990_6,
];

impl Keys {
    /// `dst[i] = softcap(scale·src[i]) + slope·mask[i]` for `i < n`, with the
    /// softcap where `CAP` and the mask where `MASK`. `dst` may be `src`.
    ///
    /// # Safety
    /// `n` floats readable at `src` (and `mask` where `MASK`), writable at
    /// `dst`.
    #[inline(always)]
    unsafe fn apply<S: Isa, const CAP: u8, const MASK: bool>(
        self,
        s: S,
        src: *const f32,
        mask: *const f32,
        dst: *mut f32,
        n: usize,
    ) {
        let l = S::F32_LANES;
        let mut i = 0;
        // SAFETY: full vectors below `n`, then the tail's `n − i` lanes.
        unsafe {
            while i + l <= n {
                let m = if MASK {
                    load::<S>(mask.add(i))
                } else {
                    s.splat_f32s(0.0)
                };
                let z = self.key::<S, CAP, MASK>(s, load::<S>(src.add(i)), m);
                store::<S>(dst.add(i), z);
                i += l;
            }
            if i < n {
                let rem = n - i;
                let m = match MASK {
                    true => s.load_tail(mask.add(i), rem, 0.0),
                    false => s.splat_f32s(0.0),
                };
                let z = self.key::<S, CAP, MASK>(s, s.load_tail(src.add(i), rem, 0.0), m);
                s.store_tail(dst.add(i), rem, z);
            }
        }
    }

    /// One vector of keys.
    #[inline(always)]
    fn key<S: Isa, const CAP: u8, const MASK: bool>(self, s: S, x: S::f32s, m: S::f32s) -> S::f32s {
        let mut z;
        if CAP != NO_CAP {
            // The tanh's argument `scale·x/c` as `x·fl(scale/c)` (two
            // roundings, one product), unless `scale/c` leaves f32's range.
            let t = match CAP == FUSED_CAP {
                true => s.mul_f32s(x, s.splat_f32s(self.fused)),
                false => s.mul_f32s(
                    s.mul_f32s(x, s.splat_f32s(self.scale)),
                    s.splat_f32s(1.0 / self.cap),
                ),
            };
            z = cap_of(s, t, self.cap);
        } else {
            z = s.mul_f32s(x, s.splat_f32s(self.scale));
        }
        if MASK {
            z = s.mul_add_e_f32s(s.splat_f32s(self.slope), m, z);
        }
        z
    }
}

/// `c·tanh(x)` in every lane (NaN stays NaN, `±∞` gives `±c`).
#[inline(always)]
pub(crate) fn cap_of<S: Isa>(s: S, x: S::f32s, c: f32) -> S::f32s {
    let a = s.abs_f32s(x);
    // Below the split: x + x³·P(x²).
    let y = s.mul_f32s(x, x);
    let mut p = s.splat_f32s(TANH_P[4]);
    for &k in TANH_P[..4].iter().rev() {
        p = s.mul_add_e_f32s(p, y, s.splat_f32s(k));
    }
    let small = s.mul_add_e_f32s(s.mul_f32s(x, y), p, x);
    // Capped scores are mostly far below the cap: a vector whose lanes all
    // are (a NaN lane too: the polynomial keeps it) skips the exp.
    let big_lanes = s.less_than_f32s(s.splat_f32s(TANH_SPLIT), a);
    if s.first_true_m32s(big_lanes) == S::F32_LANES {
        return s.mul_f32s(small, s.splat_f32s(c));
    }
    // Above: (1 − e)/(1 + e) with e = e^(−2a) ≤ 1, the sign of x put back.
    let one = s.splat_f32s(1.0);
    let e = s.exp_nonpos::<false>(s.mul_f32s(a, s.splat_f32s(-2.0)));
    let big = s.div_f32s(s.sub_f32s(one, e), s.add_f32s(one, e));
    let sign = s.and_u32s(s.transmute_u32s_f32s(x), s.splat_u32s(0x8000_0000));
    let big = s.transmute_f32s_u32s(s.or_u32s(s.transmute_u32s_f32s(big), sign));
    let th = s.select_f32s(big_lanes, big, small);
    s.mul_f32s(th, s.splat_f32s(c))
}
