//! The half-precision edge: `f16` and `bf16` rows in and out of the f32
//! regimes, with the f32 regimes' bits. Arithmetic is f32 throughout; an
//! input is widened exactly and an output rounded once, to nearest even,
//! from the f32 result, so a half output is the f32 output of the widened
//! input rounded once, bit for bit, whatever the batch.
//!
//! The conversion happens at the edge of a *tile* ([`TILE`] elements, 16
//! KiB of f32 in L1), so that the regimes are instantiated once, for f32,
//! whatever the element types (a source and a sink per type pair would
//! multiply every regime by nine):
//! ```text
//! rows of ≤ TILE:  per tile of whole rows
//!                    keys    = the f32 input, or the half input widened into the tile
//!                    results = the f32 output, or the tile     (the planned f32 regime)
//!                    output  = the tile narrowed               (when the output is half)
//! longer rows:     per row, the regime's passes over the row tile by tile
//!                    m       = max over the tiles' keys         (range_of)
//!                    Σ       = the regime's sum, continued tile to tile
//!                              (pipeline: `sweep_from`; rows of TWO_PASS_MIN
//!                              or more: the chunk states, `chunk_blocks`)
//!                    results = per tile, from the keys, narrowed
//! ```
//! Tiles start at multiples of every accumulator's block (and the
//! two-pass block), so each sum folds in the same order as the f32
//! regime's; the results of a long row are recomputed from the keys (a
//! half output has no room to park f32 exps), as the f32 streaming form
//! does for its long rows. Narrowing stores non-temporally (from the first
//! vector-aligned element) for batches of `STREAM_MIN` elements or more.
//!
//! One exception: half rows longer than a tile (and below `TWO_PASS_MIN`)
//! into an f32 output are widened into the output, a group of rows at a
//! time, and the f32 regime runs in place there: the output has room to
//! park the exps ([`widened`]).

use crate::Kernel;
use crate::convert::{Bf16, F16, Format, HalfFormat, bf16_to_f32, f16_to_f32};
use crate::fpenv::DefaultEnv;
use crate::isa::{Isa, Kern, elems_before_aligned, load, store};
use crate::kernel::{Batch, check};
use crate::plan::{STREAM_MIN, TWO_PASS_MIN};
use crate::regime::two_pass::{CHUNK, RowState, chunk_blocks, finish_chunk};
use crate::regime::{Due, range_of, special_piece, special_results, sweep_from};
use crate::stage::{F32Out, F32Rows, Log, Prob, Sink, Source};
use crate::sum::ExpSum;
use core::marker::PhantomData;

/// Elements per tile: 16 KiB of f32, in L1 with the tile's input and
/// output. A multiple of every accumulator's block (256 vectors of up to
/// 16 lanes) and of the two-pass block, and a divisor of [`CHUNK`].
pub const TILE: usize = 4096;

/// Elements of one format, borrowed: a kernel's input.
///
/// ```
/// use simd_softmax_kernels::{Elems, ElemsMut};
/// let x = [0x3f80u16, 0x3f80]; // bf16 ones
/// let mut y = [0.0f32; 2];
/// simd_softmax_kernels::portable::scalar().softmax_rows_elems(
///     Elems::Bf16(&x), ElemsMut::F32(&mut y), 2);
/// assert_eq!(y, [0.5, 0.5]);
/// ```
#[derive(Clone, Copy, Debug)]
pub enum Elems<'a> {
    /// f32 values.
    F32(&'a [f32]),
    /// `f16` bit patterns.
    F16(&'a [u16]),
    /// `bf16` bit patterns.
    Bf16(&'a [u16]),
}

/// Elements of one format, borrowed mutably: a kernel's output.
///
/// ```
/// use simd_softmax_kernels::ElemsMut;
/// let mut y = [0u16; 3];
/// assert_eq!(ElemsMut::F16(&mut y).len(), 3);
/// ```
#[derive(Debug)]
pub enum ElemsMut<'a> {
    /// f32 values.
    F32(&'a mut [f32]),
    /// `f16` bit patterns.
    F16(&'a mut [u16]),
    /// `bf16` bit patterns.
    Bf16(&'a mut [u16]),
}

impl Elems<'_> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Elems::F32(x) => x.len(),
            Elems::F16(x) | Elems::Bf16(x) => x.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            Elems::F32(_) => Format::F32,
            Elems::F16(_) => Format::F16,
            Elems::Bf16(_) => Format::Bf16,
        }
    }

    pub(crate) fn buf(&self) -> Buf {
        let p = match self {
            Elems::F32(x) => x.as_ptr() as *mut u8,
            Elems::F16(x) | Elems::Bf16(x) => x.as_ptr() as *mut u8,
        };
        Buf {
            p,
            format: self.format(),
        }
    }
}

impl ElemsMut<'_> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            ElemsMut::F32(x) => x.len(),
            ElemsMut::F16(x) | ElemsMut::Bf16(x) => x.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The format.
    pub fn format(&self) -> Format {
        match self {
            ElemsMut::F32(_) => Format::F32,
            ElemsMut::F16(_) => Format::F16,
            ElemsMut::Bf16(_) => Format::Bf16,
        }
    }

    pub(crate) fn buf(&mut self) -> Buf {
        let format = self.format();
        let p = match self {
            ElemsMut::F32(x) => x.as_mut_ptr() as *mut u8,
            ElemsMut::F16(x) | ElemsMut::Bf16(x) => x.as_mut_ptr() as *mut u8,
        };
        Buf { p, format }
    }
}

/// A buffer's address and format; its length is the caller's.
#[derive(Clone, Copy)]
pub(crate) struct Buf {
    pub(crate) p: *mut u8,
    pub(crate) format: Format,
}

impl Buf {
    /// The buffer from element `i` on.
    pub(crate) fn at(self, i: usize) -> Buf {
        Buf {
            p: self.p.wrapping_add(i * self.format.bytes()),
            format: self.format,
        }
    }
    pub(crate) fn f32(self) -> *mut f32 {
        self.p as *mut f32
    }
    pub(crate) fn half(self) -> *mut u16 {
        self.p as *mut u16
    }
    /// Element `i`, widened.
    ///
    /// # Safety
    /// Element `i` readable.
    pub(crate) unsafe fn key(self, i: usize) -> f32 {
        // SAFETY: the caller's contract.
        unsafe {
            match self.format {
                Format::F32 => *self.f32().add(i),
                Format::F16 => f16_to_f32(*self.half().add(i)),
                Format::Bf16 => bf16_to_f32(*self.half().add(i)),
            }
        }
    }
    /// Writes `v` to element `i`, narrowed.
    ///
    /// # Safety
    /// Element `i` writable.
    pub(crate) unsafe fn put(self, i: usize, v: f32) {
        // SAFETY: the caller's contract.
        unsafe {
            match self.format {
                Format::F32 => *self.f32().add(i) = v,
                Format::F16 => *self.half().add(i) = F16::narrow(v),
                Format::Bf16 => *self.half().add(i) = Bf16::narrow(v),
            }
        }
    }
}

/// The conversion levels of this CPU ([`Isa::convert_level`]), asked once
/// per call.
#[derive(Clone, Copy)]
pub(crate) struct Levels {
    f16: u8,
    bf16: u8,
}

impl Levels {
    #[inline(always)]
    pub(crate) fn of<S: Isa>(s: S) -> Levels {
        Levels {
            f16: s.convert_level::<F16>(),
            bf16: s.convert_level::<Bf16>(),
        }
    }
    pub(crate) fn level(self, f: Format) -> u8 {
        match f {
            Format::Bf16 => self.bf16,
            _ => self.f16,
        }
    }
}

/// The f32 sinks the edge runs (either result form into f32 rows), built
/// on an f32 output address.
pub(crate) trait F32Sink: Sink<Out = F32Out> {
    /// The sink writing contiguous rows from `p`.
    #[inline(always)]
    fn at(p: *mut f32) -> Self {
        Self::to(F32Out::new(p))
    }
}

impl<Snk: Sink<Out = F32Out>> F32Sink for Snk {}

impl<S: Isa> Kernel<S> {
    /// Softmax of each `row_len`-long row of `input` into `output`, any
    /// element formats: exactly [`Kernel::softmax_rows`] of the widened
    /// input, rounded once (to nearest even) into a half output.
    ///
    /// ```
    /// use simd_softmax_kernels::{Elems, ElemsMut};
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let x = [0.0f32, 0.0, 0.0, 0.0];
    /// let mut y = [0u16; 4];
    /// k.softmax_rows_elems(Elems::F32(&x), ElemsMut::F16(&mut y), 4);
    /// assert_eq!(y, [0x3400; 4]); // 0.25 in f16
    /// ```
    #[inline]
    pub fn softmax_rows_elems(self, input: Elems<'_>, mut output: ElemsMut<'_>, row_len: usize) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), row_len);
        let rows = input.len() / row_len;
        self.rows_elems::<Prob>(input.buf(), output.buf(), rows, row_len);
    }

    /// [`Kernel::softmax_rows_elems`], in place.
    #[inline]
    pub fn softmax_rows_elems_in_place(self, mut data: ElemsMut<'_>, row_len: usize) {
        let _env = DefaultEnv::enter();
        check(data.len(), data.len(), row_len);
        let (rows, b) = (data.len() / row_len, data.buf());
        self.rows_elems::<Prob>(b, b, rows, row_len);
    }

    /// Log-softmax of each `row_len`-long row, any element formats (see
    /// [`Kernel::softmax_rows_elems`]).
    #[inline]
    pub fn log_softmax_rows_elems(
        self,
        input: Elems<'_>,
        mut output: ElemsMut<'_>,
        row_len: usize,
    ) {
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), row_len);
        let rows = input.len() / row_len;
        self.rows_elems::<Log>(input.buf(), output.buf(), rows, row_len);
    }

    /// [`Kernel::log_softmax_rows_elems`], in place.
    #[inline]
    pub fn log_softmax_rows_elems_in_place(self, mut data: ElemsMut<'_>, row_len: usize) {
        let _env = DefaultEnv::enter();
        check(data.len(), data.len(), row_len);
        let (rows, b) = (data.len() / row_len, data.buf());
        self.rows_elems::<Log>(b, b, rows, row_len);
    }

    /// Softmax of `rows` rows of `row_len`, any element formats, row `r`
    /// read from element `r·input_stride` of `input` and written to element
    /// `r·output_stride` of `output` (strides at least `row_len`): exactly
    /// [`Kernel::softmax_rows_elems`] of the rows gathered. The elements
    /// between rows are neither read nor written, and the last row need
    /// not be padded to a full stride.
    ///
    /// ```
    /// use simd_softmax_kernels::{Elems, ElemsMut};
    /// let k = simd_softmax_kernels::portable::scalar();
    /// // Two rows of 2 in a cache of capacity 3; the output packed.
    /// let x = [0.0f32, 0.0, 9.0, 5.0, 5.0];
    /// let mut y = [7.0f32; 4];
    /// k.softmax_rows_strided_elems(Elems::F32(&x), ElemsMut::F32(&mut y), 2, 2, 3, 2);
    /// assert_eq!(y, [0.5; 4]);
    /// ```
    #[inline]
    pub fn softmax_rows_strided_elems(
        self,
        input: Elems<'_>,
        output: ElemsMut<'_>,
        rows: usize,
        row_len: usize,
        input_stride: usize,
        output_stride: usize,
    ) {
        let strides = (input_stride, output_stride);
        self.strided_elems::<Prob>(input, output, rows, row_len, strides);
    }

    /// Log-softmax of strided rows, any element formats (see
    /// [`Kernel::softmax_rows_strided_elems`]).
    #[inline]
    pub fn log_softmax_rows_strided_elems(
        self,
        input: Elems<'_>,
        output: ElemsMut<'_>,
        rows: usize,
        row_len: usize,
        input_stride: usize,
        output_stride: usize,
    ) {
        let strides = (input_stride, output_stride);
        self.strided_elems::<Log>(input, output, rows, row_len, strides);
    }

    /// The strided functions' body: the checks, then [`Kernel::rows_strided`].
    #[inline(always)]
    fn strided_elems<Snk: F32Sink>(
        self,
        input: Elems<'_>,
        mut output: ElemsMut<'_>,
        rows: usize,
        row_len: usize,
        (xs, ys): (usize, usize),
    ) {
        let _env = DefaultEnv::enter();
        check_strided(input.len(), rows, row_len, xs);
        check_strided(output.len(), rows, row_len, ys);
        self.rows_strided::<Snk>(input.buf(), output.buf(), rows, row_len, (xs, ys));
    }

    /// [`Kernel::log_row_state`] of any element format: exactly the
    /// widened input's state (the tiles fold the sum in the f32 order).
    ///
    /// ```
    /// use simd_softmax_kernels::Elems;
    /// let k = simd_softmax_kernels::portable::scalar();
    /// let h = [0x3c00u16, 0x4000, 0xfc00]; // f16 1, 2, −∞
    /// let st = k.log_row_state_elems(Elems::F16(&h));
    /// let f = k.log_row_state(&[1.0, 2.0, f32::NEG_INFINITY]);
    /// assert_eq!((st.m, st.sum.total().to_bits()), (f.m, f.sum.total().to_bits()));
    /// ```
    #[inline]
    pub fn log_row_state_elems(self, input: Elems<'_>) -> RowState {
        let x = match input {
            Elems::F32(x) => return self.log_row_state(x),
            _ => input.buf(),
        };
        let _env = DefaultEnv::enter();
        let n = input.len();
        let st = self.simd().run(State::<Log> {
            x,
            n,
            levels: Levels::of(self.simd()),
            snk: PhantomData,
        });
        // SAFETY: `n` elements readable at `x` (a slice).
        st.complete(n, |i| unsafe { x.key(i) })
    }

    /// [`Kernel::logsumexp`] of any element format (the widened input's).
    #[inline]
    pub fn logsumexp_elems(self, input: Elems<'_>) -> f32 {
        if let Elems::F32(x) = input {
            return self.logsumexp(x);
        }
        // Complete: a NaN anywhere makes `m` NaN, a `+∞` makes it `+∞`.
        let st = self.log_row_state_elems(input);
        let _env = DefaultEnv::enter();
        if st.m.is_finite() {
            // The canonical NaN for a NaN sum, as `Kernel::logsumexp`.
            let v = (st.m as f64 + st.sum.ln()) as f32;
            if v.is_nan() { f32::NAN } else { v }
        } else if st.m.is_nan() {
            f32::NAN
        } else {
            st.m
        }
    }

    /// [`Kernel::chunk_states`] of any element format (the widened
    /// input's).
    #[inline]
    pub fn chunk_states_elems(self, input: Elems<'_>, out: &mut [RowState]) {
        let x = match input {
            Elems::F32(x) => return self.chunk_states(x, out),
            _ => input.buf(),
        };
        let _env = DefaultEnv::enter();
        let n = input.len();
        assert_eq!(
            out.len(),
            n.div_ceil(CHUNK),
            "chunk_states: one state per chunk"
        );
        let levels = Levels::of(self.simd());
        for (c, st) in out.iter_mut().enumerate() {
            let (i, len) = (c * CHUNK, CHUNK.min(n - c * CHUNK));
            let chunk = x.at(i);
            *st = self.simd().run(State::<Prob> {
                x: chunk,
                n: len,
                levels,
                snk: PhantomData,
            });
            // SAFETY: `len` elements readable at `chunk` (a checked slice).
            *st = st.complete(len, |j| unsafe { chunk.key(j) });
        }
    }

    /// [`Kernel::softmax_piece`] of any element formats: the results of a
    /// piece of a row whose whole state is `st`, rounded once into a half
    /// output.
    #[inline]
    pub fn softmax_piece_elems(
        self,
        input: Elems<'_>,
        mut output: ElemsMut<'_>,
        st: RowState,
        stream: bool,
    ) {
        if let (Elems::F32(x), ElemsMut::F32(y)) = (input, &mut output) {
            return self.softmax_piece(x, y, st, stream);
        }
        let _env = DefaultEnv::enter();
        check(input.len(), output.len(), input.len().max(1));
        let (x, y, n) = (input.buf(), output.buf(), input.len());
        if !st.m.is_finite() || Prob::constant(st.sum).is_nan() {
            // SAFETY: `n` elements of `x` readable (a checked slice).
            let key = |i| unsafe { x.key(i) };
            // SAFETY: `n` elements of `y` writable (a checked slice, equal
            // to or disjoint from `x`); each is put after its key was read.
            let put = |i, v| unsafe { y.put(i, v) };
            special_piece::<Prob>(n, st.m, st.sum, key, put);
        } else {
            let levels = Levels::of(self.simd());
            self.simd().run(Results::<Prob> {
                x,
                y,
                n,
                mc: (st.m, Prob::constant(st.sum)),
                stream,
                levels,
                snk: PhantomData,
            });
            if stream {
                self.simd().stream_fence();
            }
        }
    }

    /// Rows of `w` from `x` to `y` (disjoint), `xs` and `ys` elements apart:
    /// f32 rows through the strided stages and the planned regime; half
    /// rows through the edge, the whole batch where both are contiguous,
    /// else row by row (each row's bits are the same alone or in a batch).
    #[inline(always)]
    fn rows_strided<Snk: F32Sink>(
        self,
        x: Buf,
        y: Buf,
        rows: usize,
        w: usize,
        (xs, ys): (usize, usize),
    ) {
        if rows == 0 || w == 0 {
            return;
        }
        if x.format == Format::F32 && y.format == Format::F32 {
            let src = F32Rows::strided(x.f32(), xs);
            return self.batch(src, Snk::to(F32Out::strided(y.f32(), ys)), rows, w);
        }
        if xs == w && ys == w {
            return self.rows_elems::<Snk>(x, y, rows, w);
        }
        for r in 0..rows {
            self.rows_elems::<Snk>(x.at(r * xs), y.at(r * ys), 1, w);
        }
    }

    /// Rows of `w` from `x` to `y` (equal or disjoint), formats as given.
    #[inline(always)]
    fn rows_elems<Snk: F32Sink>(self, x: Buf, y: Buf, rows: usize, w: usize) {
        if rows == 0 || w == 0 {
            return;
        }
        if x.format == Format::F32 && y.format == Format::F32 {
            return self.batch(F32Rows::new(x.f32()), Snk::at(y.f32()), rows, w);
        }
        let levels = Levels::of(self.simd());
        let stream = S::HAS_STREAM && rows * w >= STREAM_MIN;
        let form = if w <= TILE {
            TILES
        } else if y.format == Format::F32 && w < TWO_PASS_MIN {
            WIDENED
        } else {
            LONG
        };
        let b = EdgeBatch {
            x,
            y,
            rows,
            w,
            stream,
            levels,
        };
        match form {
            TILES => self.simd().run(Edge::<Snk, TILES>(b, PhantomData)),
            WIDENED => self.simd().run(Edge::<Snk, WIDENED>(b, PhantomData)),
            _ => self.simd().run(Edge::<Snk, LONG>(b, PhantomData)),
        }
    }
}

/// Panics unless `rows` rows of `row_len > 0`, `stride ≥ row_len` apart,
/// fit in `len` elements (the last one not padded to a full stride).
#[inline]
fn check_strided(len: usize, rows: usize, row_len: usize, stride: usize) {
    if rows == 0 {
        return;
    }
    assert!(
        row_len > 0 && stride >= row_len,
        "row_len > 0 and stride ≥ row_len"
    );
    let need = (rows - 1)
        .checked_mul(stride)
        .and_then(|v| v.checked_add(row_len));
    assert!(need.is_some_and(|n| n <= len), "rows beyond the buffer");
}

/// A batch at the edge: rows of `w` from `x` to `y` (not both f32), the
/// conversion levels, and whether the output streams.
#[derive(Clone, Copy)]
struct EdgeBatch {
    x: Buf,
    y: Buf,
    rows: usize,
    w: usize,
    stream: bool,
    levels: Levels,
}

/// The edge's three forms (see the module comment): rows of at most a
/// tile ([`tiles`]), longer half rows into f32 ([`widened`]), the other
/// longer rows ([`long_rows`]).
const TILES: u8 = 0;
const WIDENED: u8 = 1;
const LONG: u8 = 2;

/// An [`EdgeBatch`] in form `FORM`, in the ISA's context.
struct Edge<Snk, const FORM: u8>(EdgeBatch, PhantomData<Snk>);

impl<Snk: F32Sink, const FORM: u8> Kern for Edge<Snk, FORM> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        // SAFETY: the batch comes from checked slices (`rows_elems`).
        unsafe {
            match FORM {
                TILES => tiles::<S, Snk>(s, self.0),
                WIDENED => widened::<S, Snk>(s, self.0),
                _ => long_rows::<S, Snk>(s, self.0),
            }
        }
        if self.0.stream {
            s.stream_fence();
        }
    }
}

/// Elements per group of [`widened`]: 512 KiB of f32, in L2 for the
/// regime's passes after the widening wrote it.
const WIDENED_GROUP: usize = 1 << 17;

/// Half rows longer than [`TILE`] (and below `TWO_PASS_MIN`) into an f32
/// output: a group of rows widened into the output itself, then the f32
/// regime in place there, which parks its exps in the output (one exp per
/// element where [`long_rows`] recomputes them) and gives the same bits.
///
/// # Safety
/// The batch's rows readable at `x` and writable at `y` (distinct buffers).
#[inline(always)]
unsafe fn widened<S: Isa, Snk: F32Sink>(s: S, b: EdgeBatch) {
    let EdgeBatch {
        x,
        y,
        rows,
        w,
        levels,
        ..
    } = b;
    let per_group = (WIDENED_GROUP / w).max(1);
    let mut r = 0;
    while r < rows {
        let k = per_group.min(rows - r);
        let (xr, yr) = (x.at(r * w), y.at(r * w).f32());
        // SAFETY: rows `r..r + k` of the batch (the caller's); the regime
        // runs in place on the widened rows.
        unsafe {
            widen(s, x.format, levels.level(x.format), xr.half(), yr, k * w);
            Batch::new(F32Rows::new(yr), Snk::at(yr), k, w).run(s);
        }
        r += k;
    }
}

/// Rows of at most [`TILE`], whole rows per tile, through the planned f32
/// regime.
///
/// # Safety
/// The batch's rows readable at `x` and writable at `y` (equal or
/// disjoint buffers).
#[inline(always)]
unsafe fn tiles<S: Isa, Snk: F32Sink>(s: S, b: EdgeBatch) {
    let EdgeBatch {
        x,
        y,
        rows,
        w,
        stream,
        levels,
    } = b;
    let per_tile = TILE / w;
    let mut tile = [0.0f32; TILE];
    let t = tile.as_mut_ptr();
    let mut r = 0;
    while r < rows {
        let k = per_tile.min(rows - r);
        let (off, n) = (r * w, k * w);
        // SAFETY: rows `r..r + k` of the batch (the caller's), `n ≤ TILE`
        // elements of the tile; the tile's keys are read before its
        // results overwrite them (in place: the f32 regimes' contract), and
        // the input's rows are read (widened) before the output's are
        // written.
        unsafe {
            let keys = keys_of(s, levels, x.at(off), n, t);
            let out = match y.format {
                Format::F32 => y.at(off).f32(),
                _ => t,
            };
            Batch::new(F32Rows::new(keys), Snk::at(out), k, w).run(s);
            if y.format != Format::F32 {
                narrow(s, levels, t, y.at(off), n, stream);
            }
        }
        r += k;
    }
}

/// Rows longer than [`TILE`], each through its regime's passes tile by
/// tile.
///
/// # Safety
/// The batch's rows readable at `x` and writable at `y` (equal or
/// disjoint buffers).
#[inline(always)]
unsafe fn long_rows<S: Isa, Snk: F32Sink>(s: S, b: EdgeBatch) {
    let EdgeBatch {
        x,
        y,
        rows,
        w,
        stream,
        levels,
    } = b;
    let mut tile = [0.0f32; TILE];
    let t = tile.as_mut_ptr();
    for r in 0..rows {
        // SAFETY: row `r` of the batch (the caller's).
        unsafe { long_row::<S, Snk>(s, levels, x.at(r * w), y.at(r * w), w, stream, t) };
    }
}

/// One row of `w > TILE` from `x` to `y`: its max, its sum and its results
/// as the f32 regime computes them (the pipeline's for rows below
/// [`TWO_PASS_MIN`], the two-pass regime's from there), tile by tile.
///
/// # Safety
/// `w` elements readable at `x` and writable at `y` (equal or disjoint);
/// `t` a tile of [`TILE`] floats.
#[inline(always)]
unsafe fn long_row<S: Isa, Snk: F32Sink>(
    s: S,
    levels: Levels,
    x: Buf,
    y: Buf,
    w: usize,
    stream: bool,
    t: *mut f32,
) {
    // SAFETY (whole body): the caller's contract; every tile lies inside
    // the row.
    unsafe {
        let (m, c) = if w >= TWO_PASS_MIN {
            let st = s.run(State::<Snk> {
                x,
                n: w,
                levels,
                snk: PhantomData,
            });
            if !st.m.is_finite() {
                return special::<Snk>(x, y, w, st.m);
            }
            let c = Snk::constant(st.sum);
            (st.m, c)
        } else {
            // The max alone (the minimum would only choose the exp's form).
            let mut m = f32::NEG_INFINITY;
            let mut i = 0;
            while i < w {
                let n = TILE.min(w - i);
                let keys = keys_of(s, levels, x.at(i), n, t);
                let (_, tm) = range_of(s, &F32Rows::new(keys), keys, 0, n, false);
                m = m.max(tm);
                i += n;
            }
            if !m.is_finite() {
                return special::<Snk>(x, y, w, m);
            }
            // The flushing exp for every row: exact for rows in the exp's
            // range too (the same bits as the regime's `in_range` form), one
            // instantiation of the sweep instead of two.
            let sh = F32Rows::new(t).shift(s, s.splat_f32s(m));
            let mut sum = ExpSum::ZERO;
            let mut i = 0;
            while i < w {
                let n = TILE.min(w - i);
                let keys = keys_of(s, levels, x.at(i), n, t);
                let src = F32Rows::new(keys);
                let along = &mut ();
                sum = sweep_from::<S, F32Rows, Snk::Acc<S>, (), false>(
                    s, &src, keys, 0, n, sh, along, sum,
                );
                i += n;
            }
            (m, Snk::constant(sum))
        };
        if c.is_nan() {
            // A NaN in the row (its max was finite).
            return special::<Snk>(x, y, w, f32::NAN);
        }
        // The write in a target-feature function of its own, shared with
        // `softmax_piece_elems` (one copy of the write loops per sink).
        s.run(Results::<Snk> {
            x,
            y,
            n: w,
            mc: (m, c),
            stream,
            levels,
            snk: PhantomData,
        });
    }
}

/// The results of `n` elements from `x` to `y` of a row whose max and row
/// constant are `(m, c)`, tile by tile: computed into the f32
/// output, or into the tile and narrowed.
///
/// # Safety
/// `n` elements readable at `x` and writable at `y` (equal or disjoint);
/// `t` a tile of [`TILE`] floats.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn write<S: Isa, Snk: F32Sink>(
    s: S,
    levels: Levels,
    x: Buf,
    y: Buf,
    n: usize,
    (m, c): (f32, f32),
    stream: bool,
    t: *mut f32,
) {
    let mut i = 0;
    // SAFETY (whole body): the caller's contract; each tile's keys are
    // read before its results are written.
    unsafe {
        while i < n {
            let len = TILE.min(n - i);
            let keys = keys_of(s, levels, x.at(i), len, t);
            let out = match y.format {
                Format::F32 => y.at(i).f32(),
                _ => t,
            };
            let (src, snk) = (F32Rows::new(keys), Snk::at(out));
            // The flushing exp (`IN_RANGE` false) for every row: exact for
            // rows in the exp's range too, one instantiation instead of two.
            let d = Due::<S, F32Rows, Snk>::new(keys, snk.row(0, len), m, c, false);
            if stream && y.format == Format::F32 {
                d.write_in::<false, true>(s, &src, &snk, false, out, 0, len);
            } else {
                d.write_in::<false, false>(s, &src, &snk, false, out, 0, len);
            }
            if y.format != Format::F32 {
                narrow(s, levels, t, y.at(i), len, stream);
            }
            i += len;
        }
    }
}

/// The two-pass state of `n` elements from `x` (chunks counted from `x`),
/// tile by tile: exactly `two_pass::state` of the widened elements.
///
/// # Safety
/// `n` elements readable at `x`; `t` a tile of [`TILE`] floats.
#[inline(always)]
unsafe fn tiled_state<S: Isa, Snk: Sink>(
    s: S,
    levels: Levels,
    x: Buf,
    n: usize,
    t: *mut f32,
) -> RowState {
    let mut st = RowState::EMPTY;
    let mut i = 0;
    // SAFETY (whole body): every tile lies inside `0..n`.
    unsafe {
        while i < n {
            let len = CHUNK.min(n - i);
            let mut cs = RowState::EMPTY;
            let mut j = i;
            while j < i + len {
                let tl = TILE.min(i + len - j);
                let keys = keys_of(s, levels, x.at(j), tl, t);
                cs = chunk_blocks::<S, F32Rows, Snk>(s, &F32Rows::new(keys), keys, 0, tl, cs);
                if cs.special() {
                    break;
                }
                j += tl;
            }
            st = st.merge(finish_chunk::<S, Snk>(cs));
            if st.special() {
                break;
            }
            i += len;
        }
    }
    st
}

/// The two-pass state of a (half) buffer of `n`, in the ISA's context.
struct State<Snk> {
    x: Buf,
    n: usize,
    levels: Levels,
    snk: PhantomData<Snk>,
}

impl<Snk: Sink> Kern for State<Snk> {
    type Output = RowState;

    #[inline(always)]
    fn run<S: Isa>(self, s: S) -> RowState {
        let mut tile = [0.0f32; TILE];
        // SAFETY: `n` elements readable at `x` (a checked slice).
        unsafe { tiled_state::<S, Snk>(s, self.levels, self.x, self.n, tile.as_mut_ptr()) }
    }
}

/// The results of `n` elements of a row from its max and row constant
/// (`mc`), tile by tile, in the ISA's context: long rows' write pass and
/// `softmax_piece_elems`. Streaming stores when `stream` (the caller
/// fences).
struct Results<Snk> {
    x: Buf,
    y: Buf,
    n: usize,
    mc: (f32, f32),
    stream: bool,
    levels: Levels,
    snk: PhantomData<Snk>,
}

impl<Snk: F32Sink> Kern for Results<Snk> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        let mut tile = [0.0f32; TILE];
        let (x, y, n) = (self.x, self.y, self.n);
        let stream = self.stream && S::HAS_STREAM;
        // SAFETY: `n` elements of `x` readable, of `y` writable (checked
        // slices, the constructor's caller).
        unsafe { write::<S, Snk>(s, self.levels, x, y, n, self.mc, stream, tile.as_mut_ptr()) };
    }
}

/// A row whose max `m` is not finite, or that holds a NaN (`m` NaN), in
/// scalar: the special-value limits or the canonical NaN, as
/// `regime::special_row` writes them (`special_results`), rounded once.
///
/// # Safety
/// `w` elements readable at `x` and writable at `y` (equal or disjoint).
#[inline(never)]
unsafe fn special<Snk: Sink>(x: Buf, y: Buf, w: usize, m: f32) {
    // SAFETY (all accesses): elements `0..w`; each result is written after
    // its key was read.
    unsafe { special_results::<Snk>(w, m, |i| x.key(i), |i, v| y.put(i, v)) }
}

/// The f32 keys of `n ≤ TILE` elements at `x`: the input itself when it is
/// f32, else the elements widened into the tile `t`.
///
/// # Safety
/// `n` elements readable at `x`; `t` a tile of [`TILE`] floats.
#[inline(always)]
unsafe fn keys_of<S: Isa>(s: S, levels: Levels, x: Buf, n: usize, t: *mut f32) -> *mut f32 {
    match x.format {
        Format::F32 => x.f32(),
        // SAFETY: the caller's contract.
        f => unsafe {
            widen(s, f, levels.level(f), x.half(), t, n);
            t
        },
    }
}

/// Narrows `n` floats from the tile `t` into the half buffer `y`.
///
/// # Safety
/// `n` floats readable at `t`, `n` elements writable at `y`.
#[inline(always)]
pub(crate) unsafe fn narrow<S: Isa>(
    s: S,
    levels: Levels,
    t: *const f32,
    y: Buf,
    n: usize,
    stream: bool,
) {
    // SAFETY: the caller's contract.
    unsafe { narrow_to(s, y.format, levels.level(y.format), t, y.half(), n, stream) }
}

/// Expands `$go!(H, LEVEL)` for the format type and level constant of the
/// run-time `($f, $level)`: one loop per (format, level).
macro_rules! by_format_level {
    ($f:expr, $level:expr, $go:ident) => {
        match ($f, $level) {
            (Format::Bf16, 0) => $go!(Bf16, 0),
            (Format::Bf16, 1) => $go!(Bf16, 1),
            (Format::Bf16, _) => $go!(Bf16, 2),
            (_, 0) => $go!(F16, 0),
            (_, 1) => $go!(F16, 1),
            (_, _) => $go!(F16, 2),
        }
    };
}

/// Widens `n` elements of format `f` at `src` into `dst`, at the CPU's
/// level for `f`: one target-feature function per (format, level) per
/// instruction set, called once per tile.
///
/// # Safety
/// `n` elements readable at `src`, `n` floats writable at `dst`; `level`
/// from [`Levels::of`].
#[inline(always)]
pub(crate) unsafe fn widen<S: Isa>(
    s: S,
    f: Format,
    level: u8,
    src: *const u16,
    dst: *mut f32,
    n: usize,
) {
    macro_rules! go {
        ($h:ty, $l:literal) => {
            s.run_converting::<$h, _>(
                level,
                Widen::<$h, $l> {
                    src,
                    dst,
                    n,
                    h: PhantomData,
                },
            )
        };
    }
    by_format_level!(f, level, go)
}

/// Narrows `n` floats at `src` into format `f` at `dst` (see [`widen`]).
///
/// # Safety
/// `n` floats readable at `src`, `n` elements writable at `dst`; `level`
/// from [`Levels::of`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn narrow_to<S: Isa>(
    s: S,
    f: Format,
    level: u8,
    src: *const f32,
    dst: *mut u16,
    n: usize,
    stream: bool,
) {
    macro_rules! go {
        ($h:ty, $l:literal) => {
            s.run_converting::<$h, _>(
                level,
                Narrow::<$h, $l> {
                    src,
                    dst,
                    n,
                    stream,
                    h: PhantomData,
                },
            )
        };
    }
    by_format_level!(f, level, go)
}

/// [`widen_n`] as a kernel body (its safety: [`widen`]'s caller's).
struct Widen<H, const LEVEL: u8> {
    src: *const u16,
    dst: *mut f32,
    n: usize,
    h: PhantomData<H>,
}

impl<H: HalfFormat, const LEVEL: u8> Kern for Widen<H, LEVEL> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        // SAFETY: built only by `widen`, whose caller's contract this is.
        unsafe { widen_n::<S, H, LEVEL>(s, self.src, self.dst, self.n) }
    }
}

/// [`narrow_n`] as a kernel body (its safety: [`narrow_to`]'s caller's).
struct Narrow<H, const LEVEL: u8> {
    src: *const f32,
    dst: *mut u16,
    n: usize,
    stream: bool,
    h: PhantomData<H>,
}

impl<H: HalfFormat, const LEVEL: u8> Kern for Narrow<H, LEVEL> {
    type Output = ();

    #[inline(always)]
    fn run<S: Isa>(self, s: S) {
        // SAFETY: built only by `narrow_to`, whose caller's contract this is.
        unsafe { narrow_n::<S, H, LEVEL>(s, self.src, self.dst, self.n, self.stream) }
    }
}

/// The most lanes of any instruction set (AVX-512's 16): the tails' stack
/// buffers hold two vectors' worth of halves.
const MAX_LANES: usize = 16;

/// Widens `n` elements of format `H` at `src` into `dst`: two vectors per
/// step from one vector's bytes, the last `< 2·L` through a stack buffer
/// (no read past `src + n`, masked stores).
///
/// # Safety
/// `n` elements readable at `src`, `n` floats writable at `dst`.
#[inline(always)]
unsafe fn widen_n<S: Isa, H: HalfFormat, const LEVEL: u8>(
    s: S,
    src: *const u16,
    dst: *mut f32,
    n: usize,
) {
    let l = S::F32_LANES;
    let mut i = 0;
    // SAFETY (all accesses): below `n` on both sides.
    unsafe {
        for _ in 0..n / (2 * l) {
            let (a, b) = s.widen2::<H, LEVEL>(load::<S>(src.add(i) as *const f32));
            store::<S>(dst.add(i), a);
            store::<S>(dst.add(i + l), b);
            i += 2 * l;
        }
        let rem = n - i;
        if rem > 0 {
            let mut buf = [0u16; 2 * MAX_LANES];
            core::ptr::copy_nonoverlapping(src.add(i), buf.as_mut_ptr(), rem);
            let (a, b) = s.widen2::<H, LEVEL>(load::<S>(buf.as_ptr() as *const f32));
            if rem >= l {
                store::<S>(dst.add(i), a);
                if rem > l {
                    s.store_tail(dst.add(i + l), rem - l, b);
                }
            } else {
                s.store_tail(dst.add(i), rem, a);
            }
        }
    }
}

/// Narrows `n` floats at `src` into format `H` at `dst`: two vectors per
/// store; with non-temporal stores from the first vector-aligned element
/// of `dst` when `stream` (the caller fences); the elements before it and
/// the last `< 2·L` through a stack buffer.
///
/// # Safety
/// `n` floats readable at `src`, `n` elements writable at `dst`.
#[inline(always)]
unsafe fn narrow_n<S: Isa, H: HalfFormat, const LEVEL: u8>(
    s: S,
    src: *const f32,
    dst: *mut u16,
    n: usize,
    stream: bool,
) {
    let l = S::F32_LANES;
    let mut i = 0;
    // SAFETY (all accesses): below `n` on both sides; streamed stores at
    // vector-aligned addresses.
    unsafe {
        if stream && S::HAS_STREAM {
            let head = elems_before_aligned::<S, u16>(dst, n);
            narrow_few::<S, H, LEVEL>(s, src, dst, head);
            i = head;
            for _ in 0..(n - i) / (2 * l) {
                let v = s.narrow2::<H, LEVEL>(load::<S>(src.add(i)), load::<S>(src.add(i + l)));
                s.store_stream(dst.add(i) as *mut f32, v);
                i += 2 * l;
            }
        }
        for _ in 0..(n - i) / (2 * l) {
            let v = s.narrow2::<H, LEVEL>(load::<S>(src.add(i)), load::<S>(src.add(i + l)));
            store::<S>(dst.add(i) as *mut f32, v);
            i += 2 * l;
        }
        narrow_few::<S, H, LEVEL>(s, src.add(i), dst.add(i), n - i);
    }
}

/// [`narrow_n`] of fewer than `2·L` floats, through a stack buffer.
///
/// # Safety
/// As [`narrow_n`], `n < 2·F32_LANES`.
#[inline(always)]
unsafe fn narrow_few<S: Isa, H: HalfFormat, const LEVEL: u8>(
    s: S,
    src: *const f32,
    dst: *mut u16,
    n: usize,
) {
    if n == 0 {
        return;
    }
    let l = S::F32_LANES;
    // SAFETY: loads and the copy stay below `n`.
    unsafe {
        let zero = s.splat_f32s(0.0);
        let (a, b) = if n >= l {
            let b = match n - l {
                0 => zero,
                r => s.load_tail(src.add(l), r, 0.0),
            };
            (load::<S>(src), b)
        } else {
            (s.load_tail(src, n, 0.0), zero)
        };
        let v = s.narrow2::<H, LEVEL>(a, b);
        let h: &[u16] = pulp::bytemuck::cast_slice(core::slice::from_ref(&v));
        core::ptr::copy_nonoverlapping(h.as_ptr(), dst, n);
    }
}
