//! The C ABI of simd-softmax: every function of the Rust API (the rayon
//! forms excepted) as an `extern "C"` function named `simd_softmax_*`,
//! built as a static and a shared library; `include/simd_softmax.h` is
//! generated from this file.
//!
//! What this layer owns, and nothing else: turning C's pointers and
//! lengths into slices (null only with length 0, aligned for the element
//! type, inputs and outputs disjoint), C's plain option structs into the
//! Rust builders, the element-type and backend numbers into types, and
//! every `Error` into a status code. Argument checks that the Rust API
//! makes are left to it, so the C functions refuse exactly what the Rust
//! functions refuse, with the same guarantee: nothing is written on error.
//! No call allocates (no Rust function it calls does), and a panic (a bug)
//! is caught and returned as `SIMD_SOFTMAX_INTERNAL_ERROR` rather than
//! unwound into C.
//!
//! ```c
//! #include <simd_softmax.h>
//! float logits[4] = {1.0f, 2.0f, 3.0f, 4.0f}, probs[4];
//! int32_t st = simd_softmax_softmax(SIMD_SOFTMAX_BACKEND_DEFAULT,
//!                                   SIMD_SOFTMAX_F32, logits, 4,
//!                                   SIMD_SOFTMAX_F32, probs, 4);
//! if (st != SIMD_SOFTMAX_OK) fprintf(stderr, "%s\n", simd_softmax_status_message(st));
//! ```
//!
//! The `unsafe` of this crate is the C boundary's: raw pointers from the
//! caller become slices once, in `src` and `dst`, after the checks
//! their `# Safety` sections list; everything below them is safe Rust.
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_void};
use core::mem::size_of;
use core::panic::AssertUnwindSafe;
use half::{bf16, f16};
use simd_softmax::{
    Anchor, AttentionSoftmax, Backend, Candidate, CrossEntropyOptions, Error, Sampler,
    SamplerScratchMut, Softmax, SoftmaxState, StateParts,
};
use std::sync::OnceLock;

/// A status code: `SIMD_SOFTMAX_OK` or why a call was refused (nothing
/// was written then).
pub type simd_softmax_status = i32;

/// Success.
pub const SIMD_SOFTMAX_OK: simd_softmax_status = 0;
/// Input and output lengths differ.
pub const SIMD_SOFTMAX_LENGTH_MISMATCH: simd_softmax_status = 1;
/// `row_len` is 0 or does not divide the buffer's length.
pub const SIMD_SOFTMAX_INVALID_ROW_LEN: simd_softmax_status = 2;
/// `softmax_backward`: `y`, `dy` and `dx` differ in length.
pub const SIMD_SOFTMAX_GRADIENT_LENGTH: simd_softmax_status = 3;
/// `jacobian`: the output is not `n*n` long.
pub const SIMD_SOFTMAX_JACOBIAN_SIZE: simd_softmax_status = 4;
/// A temperature or combination weight is NaN.
pub const SIMD_SOFTMAX_NAN_ALPHA: simd_softmax_status = 5;
/// A combination term's length differs from the output's.
pub const SIMD_SOFTMAX_TERM_LENGTH: simd_softmax_status = 6;
/// `logits_from_probs`: a probability is negative, NaN or `+inf`.
pub const SIMD_SOFTMAX_INVALID_PROBABILITY: simd_softmax_status = 7;
/// `logits_from_probs`: a zero probability where the anchor needs its log.
pub const SIMD_SOFTMAX_ZERO_PROBABILITY: simd_softmax_status = 8;
/// `logits_from_probs`: the anchor component is not below the length.
pub const SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE: simd_softmax_status = 9;
/// Strided rows: `row_len` is 0 or a stride is shorter than a row.
pub const SIMD_SOFTMAX_INVALID_STRIDE: simd_softmax_status = 10;
/// Strided rows reach beyond a buffer.
pub const SIMD_SOFTMAX_ROWS_BEYOND_BUFFER: simd_softmax_status = 11;
/// A parameter is out of its range (temperature, top-p, min-p, the uniform
/// sample, label smoothing, an attention scale, cap, window or ALiBi).
pub const SIMD_SOFTMAX_INVALID_PARAMETER: simd_softmax_status = 12;
/// The sampler met a NaN logit.
pub const SIMD_SOFTMAX_NAN_LOGIT: simd_softmax_status = 13;
/// The sampler has no logit to choose: the row is empty or all `-inf`.
pub const SIMD_SOFTMAX_NO_FINITE_LOGIT: simd_softmax_status = 14;
/// The sampler's scratch is smaller than the row needs
/// (`simd_softmax_sampler_scratch_bytes`).
pub const SIMD_SOFTMAX_SCRATCH_TOO_SHORT: simd_softmax_status = 15;
/// Cross-entropy: `targets` does not have one entry per row.
pub const SIMD_SOFTMAX_TARGETS_LENGTH: simd_softmax_status = 16;
/// Cross-entropy: `losses` does not have one entry per row.
pub const SIMD_SOFTMAX_LOSSES_LENGTH: simd_softmax_status = 17;
/// Cross-entropy: a target (not the ignore index) is not below `row_len`.
pub const SIMD_SOFTMAX_TARGET_OUT_OF_RANGE: simd_softmax_status = 18;
/// Attention: scores, output, mask, slopes or sinks do not fit the shape.
pub const SIMD_SOFTMAX_ATTENTION_LENGTH: simd_softmax_status = 19;
/// This CPU (or build) cannot run the backend asked for.
pub const SIMD_SOFTMAX_UNSUPPORTED_BACKEND: simd_softmax_status = 20;
/// `simd_softmax_backend_from_name`: no backend has that name.
pub const SIMD_SOFTMAX_UNKNOWN_BACKEND: simd_softmax_status = 21;
/// A null pointer with a nonzero length (or a null result pointer), or a
/// buffer that would wrap around the address space.
pub const SIMD_SOFTMAX_NULL_POINTER: simd_softmax_status = 100;
/// A pointer not aligned for its element type (4 bytes for f32, 2 for the
/// half types, 8 for the sampler's scratch and the structs).
pub const SIMD_SOFTMAX_MISALIGNED: simd_softmax_status = 101;
/// An element type, backend or anchor number that names nothing.
pub const SIMD_SOFTMAX_INVALID_ENUM: simd_softmax_status = 102;
/// An input overlaps an output (the `_in_place` functions work in place).
pub const SIMD_SOFTMAX_OVERLAP: simd_softmax_status = 103;
/// A bug in the library (a caught panic); please report it.
pub const SIMD_SOFTMAX_INTERNAL_ERROR: simd_softmax_status = 199;

/// An element type: one of `SIMD_SOFTMAX_F32`, `SIMD_SOFTMAX_F16`,
/// `SIMD_SOFTMAX_BF16`.
pub type simd_softmax_dtype = u32;
/// `float`.
pub const SIMD_SOFTMAX_F32: simd_softmax_dtype = 0;
/// IEEE binary16, as `uint16_t` bits.
pub const SIMD_SOFTMAX_F16: simd_softmax_dtype = 1;
/// bfloat16, as `uint16_t` bits.
pub const SIMD_SOFTMAX_BF16: simd_softmax_dtype = 2;

/// A backend: `SIMD_SOFTMAX_BACKEND_DEFAULT` (the best this CPU runs, or
/// the one the `SIMD_SOFTMAX_BACKEND` environment variable names, decided
/// once per process) or one by name.
pub type simd_softmax_backend = u32;
/// The default backend, as the Rust free functions use.
pub const SIMD_SOFTMAX_BACKEND_DEFAULT: simd_softmax_backend = 0;
/// Plain code, one lane; runs everywhere.
pub const SIMD_SOFTMAX_BACKEND_SCALAR: simd_softmax_backend = 1;
/// x86-64 AVX2 + FMA.
pub const SIMD_SOFTMAX_BACKEND_AVX2: simd_softmax_backend = 2;
/// x86-64 AVX-512 F/BW/CD/DQ/VL.
pub const SIMD_SOFTMAX_BACKEND_AVX512: simd_softmax_backend = 3;
/// aarch64 NEON.
pub const SIMD_SOFTMAX_BACKEND_NEON: simd_softmax_backend = 4;

/// `logits_from_probs`'s anchor: `sum(x) = 0`.
pub const SIMD_SOFTMAX_ANCHOR_ZERO_MEAN: u32 = 0;
/// `logits_from_probs`'s anchor: `x[anchor_index] = 0`.
pub const SIMD_SOFTMAX_ANCHOR_COMPONENT: u32 = 1;

// ---------------------------------------------------------------------
// The boundary: statuses, backends, pointers.

fn status_of(e: &Error) -> simd_softmax_status {
    match e {
        Error::LengthMismatch { .. } => SIMD_SOFTMAX_LENGTH_MISMATCH,
        Error::InvalidRowLen { .. } => SIMD_SOFTMAX_INVALID_ROW_LEN,
        Error::GradientLength { .. } => SIMD_SOFTMAX_GRADIENT_LENGTH,
        Error::JacobianSize { .. } => SIMD_SOFTMAX_JACOBIAN_SIZE,
        Error::NanAlpha => SIMD_SOFTMAX_NAN_ALPHA,
        Error::TermLength { .. } => SIMD_SOFTMAX_TERM_LENGTH,
        Error::InvalidProbability { .. } => SIMD_SOFTMAX_INVALID_PROBABILITY,
        Error::ZeroProbability { .. } => SIMD_SOFTMAX_ZERO_PROBABILITY,
        Error::AnchorOutOfRange { .. } => SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE,
        Error::InvalidStride { .. } => SIMD_SOFTMAX_INVALID_STRIDE,
        Error::RowsBeyondBuffer { .. } => SIMD_SOFTMAX_ROWS_BEYOND_BUFFER,
        Error::InvalidParameter { .. } => SIMD_SOFTMAX_INVALID_PARAMETER,
        Error::NanLogit { .. } => SIMD_SOFTMAX_NAN_LOGIT,
        Error::NoFiniteLogit => SIMD_SOFTMAX_NO_FINITE_LOGIT,
        Error::ScratchTooShort { .. } => SIMD_SOFTMAX_SCRATCH_TOO_SHORT,
        Error::TargetsLength { .. } => SIMD_SOFTMAX_TARGETS_LENGTH,
        Error::LossesLength { .. } => SIMD_SOFTMAX_LOSSES_LENGTH,
        Error::TargetOutOfRange { .. } => SIMD_SOFTMAX_TARGET_OUT_OF_RANGE,
        Error::AttentionLength { .. } => SIMD_SOFTMAX_ATTENTION_LENGTH,
        Error::UnsupportedBackend { .. } => SIMD_SOFTMAX_UNSUPPORTED_BACKEND,
        Error::UnknownBackend { .. } => SIMD_SOFTMAX_UNKNOWN_BACKEND,
        // A variant added to the Rust API before its code here.
        _ => SIMD_SOFTMAX_INTERNAL_ERROR,
    }
}

/// A call's result inside this layer: `Err` carries the status to return.
type Res<T = ()> = Result<T, simd_softmax_status>;

/// `?` on a Rust API result: its error as a status.
trait Check<T> {
    fn st(self) -> Res<T>;
}

impl<T> Check<T> for Result<T, Error> {
    #[inline]
    fn st(self) -> Res<T> {
        self.map_err(|e| status_of(&e))
    }
}

/// Runs one call: its status, a caught panic as
/// `SIMD_SOFTMAX_INTERNAL_ERROR` (never unwound into C).
#[inline]
fn guard(f: impl FnOnce() -> Res) -> simd_softmax_status {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SIMD_SOFTMAX_OK,
        Ok(Err(s)) => s,
        Err(_) => SIMD_SOFTMAX_INTERNAL_ERROR,
    }
}

fn backend_of(b: simd_softmax_backend) -> Res<Option<Backend>> {
    Ok(match b {
        SIMD_SOFTMAX_BACKEND_DEFAULT => None,
        SIMD_SOFTMAX_BACKEND_SCALAR => Some(Backend::Scalar),
        SIMD_SOFTMAX_BACKEND_AVX2 => Some(Backend::Avx2),
        SIMD_SOFTMAX_BACKEND_AVX512 => Some(Backend::Avx512),
        SIMD_SOFTMAX_BACKEND_NEON => Some(Backend::Neon),
        _ => return Err(SIMD_SOFTMAX_INVALID_ENUM),
    })
}

fn number_of(b: Backend) -> simd_softmax_backend {
    match b {
        Backend::Scalar => SIMD_SOFTMAX_BACKEND_SCALAR,
        Backend::Avx2 => SIMD_SOFTMAX_BACKEND_AVX2,
        Backend::Avx512 => SIMD_SOFTMAX_BACKEND_AVX512,
        Backend::Neon => SIMD_SOFTMAX_BACKEND_NEON,
        #[allow(unreachable_patterns)]
        _ => SIMD_SOFTMAX_BACKEND_SCALAR,
    }
}

/// The engine for a backend number: the default one, or each named one
/// checked once per process (a CPU's features do not change).
/// Each named backend's engine, made at its first use (`None`: this CPU
/// or build cannot run it).
static NAMED: [OnceLock<Option<Softmax>>; 4] = [const { OnceLock::new() }; 4];

#[inline]
fn engine(b: simd_softmax_backend) -> Res<Softmax> {
    match backend_of(b)? {
        None => Ok(Softmax::new()),
        Some(backend) => NAMED[b as usize - 1]
            .get_or_init(|| Softmax::with_backend(backend).ok())
            .ok_or(SIMD_SOFTMAX_UNSUPPORTED_BACKEND),
    }
}

/// A checked `(pointer, length)` of `T`: its byte span, or why not.
#[inline(always)]
fn span<T>(p: *const T, len: usize) -> Res<(usize, usize)> {
    if len == 0 {
        return Ok((0, 0));
    }
    if p.is_null() {
        return Err(SIMD_SOFTMAX_NULL_POINTER);
    }
    if !(p as usize).is_multiple_of(align_of::<T>()) {
        return Err(SIMD_SOFTMAX_MISALIGNED);
    }
    let bytes = len
        .checked_mul(size_of::<T>())
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or(SIMD_SOFTMAX_NULL_POINTER)?;
    let start = p as usize;
    let end = start.checked_add(bytes).ok_or(SIMD_SOFTMAX_NULL_POINTER)?;
    Ok((start, end))
}

/// Refuses an input whose bytes overlap an output's.
#[inline(always)]
fn disjoint(a: (usize, usize), b: (usize, usize)) -> Res {
    if a.0 < b.1 && b.0 < a.1 {
        Err(SIMD_SOFTMAX_OVERLAP)
    } else {
        Ok(())
    }
}

/// Makes the slice of a checked span (`span`'s answer for `(p, len)`).
///
/// # Safety
/// As [`src`]; `(p, len)` passed `span`.
#[inline(always)]
unsafe fn src_of<'a, T>(p: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        return &[];
    }
    // SAFETY: non-null, aligned, not wrapping (`span`); the caller's
    // contract for the rest.
    unsafe { core::slice::from_raw_parts(p, len) }
}

/// [`src_of`] for an output.
///
/// # Safety
/// As [`dst`]; `(p, len)` passed `span`.
#[inline(always)]
unsafe fn dst_of<'a, T>(p: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: non-null, aligned, not wrapping (`span`); the caller's
    // contract for the rest.
    unsafe { core::slice::from_raw_parts_mut(p, len) }
}

/// The input slice `(p, len)`.
///
/// # Safety
/// Unless `len == 0`, `p` points to `len` initialized `T` that nothing
/// writes during the call.
unsafe fn src<'a, T>(p: *const T, len: usize) -> Res<&'a [T]> {
    span(p, len)?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: non-null, aligned, not wrapping (`span`); readable and
    // unaliased by writes (the caller's contract).
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// The output slice `(p, len)`.
///
/// # Safety
/// Unless `len == 0`, `p` points to `len` `T` (any bits: every type here
/// is plain numbers) that nothing else reads or writes during the call.
unsafe fn dst<'a, T>(p: *mut T, len: usize) -> Res<&'a mut [T]> {
    span(p, len)?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: non-null, aligned, not wrapping (`span`); exclusive (the
    // caller's contract).
    Ok(unsafe { core::slice::from_raw_parts_mut(p, len) })
}

/// A result pointer: non-null and aligned, written only on success.
fn out<'a, T>(p: *mut T) -> Res<&'a mut T> {
    span(p, 1)?;
    // SAFETY: non-null and aligned (`span`); C's result pointers point to
    // a writable `T` (every function's contract).
    Ok(unsafe { &mut *p })
}

/// An options struct: null for the defaults.
fn opts<'a, T>(p: *const T) -> Res<Option<&'a T>> {
    if p.is_null() {
        return Ok(None);
    }
    span(p, 1)?;
    // SAFETY: non-null and aligned; the contract: it points to a `T`.
    Ok(Some(unsafe { &*p }))
}

/// An input of any element type.
enum In<'a> {
    F32(&'a [f32]),
    F16(&'a [f16]),
    Bf16(&'a [bf16]),
}

/// An output of any element type.
enum Out<'a> {
    F32(&'a mut [f32]),
    F16(&'a mut [f16]),
    Bf16(&'a mut [bf16]),
}

#[inline(always)]
fn elem_size(ty: simd_softmax_dtype) -> Res<usize> {
    match ty {
        SIMD_SOFTMAX_F32 => Ok(4),
        SIMD_SOFTMAX_F16 | SIMD_SOFTMAX_BF16 => Ok(2),
        _ => Err(SIMD_SOFTMAX_INVALID_ENUM),
    }
}

/// The byte span of `len` elements of type `ty` at `p`.
#[inline(always)]
fn typed_span(ty: simd_softmax_dtype, p: *const c_void, len: usize) -> Res<(usize, usize)> {
    match elem_size(ty)? {
        4 => span(p.cast::<f32>(), len),
        _ => span(p.cast::<u16>(), len),
    }
}

/// # Safety
/// As `src`, for `len` elements of type `ty`.
unsafe fn input<'a>(ty: simd_softmax_dtype, p: *const c_void, len: usize) -> Res<In<'a>> {
    // SAFETY (each arm): the caller's contract; `f16` and `bf16` are
    // `repr(transparent)` over `u16`.
    unsafe {
        Ok(match ty {
            SIMD_SOFTMAX_F32 => In::F32(src(p.cast(), len)?),
            SIMD_SOFTMAX_F16 => In::F16(src(p.cast(), len)?),
            SIMD_SOFTMAX_BF16 => In::Bf16(src(p.cast(), len)?),
            _ => return Err(SIMD_SOFTMAX_INVALID_ENUM),
        })
    }
}

/// # Safety
/// As `dst`, for `len` elements of type `ty`.
unsafe fn output<'a>(ty: simd_softmax_dtype, p: *mut c_void, len: usize) -> Res<Out<'a>> {
    // SAFETY (each arm): the caller's contract; `f16` and `bf16` are
    // `repr(transparent)` over `u16`.
    unsafe {
        Ok(match ty {
            SIMD_SOFTMAX_F32 => Out::F32(dst(p.cast(), len)?),
            SIMD_SOFTMAX_F16 => Out::F16(dst(p.cast(), len)?),
            SIMD_SOFTMAX_BF16 => Out::Bf16(dst(p.cast(), len)?),
            _ => return Err(SIMD_SOFTMAX_INVALID_ENUM),
        })
    }
}

/// Checks an input and an output buffer (types, pointers, disjointness)
/// and makes their slices.
///
/// # Safety
/// As `input` and `output`.
#[inline(always)]
unsafe fn in_out<'a>(
    (it, x, xn): (simd_softmax_dtype, *const c_void, usize),
    (ot, y, yn): (simd_softmax_dtype, *mut c_void, usize),
) -> Res<(In<'a>, Out<'a>)> {
    disjoint(typed_span(it, x, xn)?, typed_span(ot, y, yn)?)?;
    // SAFETY: both spans checked just above; the caller's contract.
    unsafe {
        let x = match it {
            SIMD_SOFTMAX_F32 => In::F32(src_of(x.cast(), xn)),
            SIMD_SOFTMAX_F16 => In::F16(src_of(x.cast(), xn)),
            _ => In::Bf16(src_of(x.cast(), xn)),
        };
        let y = match ot {
            SIMD_SOFTMAX_F32 => Out::F32(dst_of(y.cast(), yn)),
            SIMD_SOFTMAX_F16 => Out::F16(dst_of(y.cast(), yn)),
            _ => Out::Bf16(dst_of(y.cast(), yn)),
        };
        Ok((x, y))
    }
}

/// The common call (softmax or log-softmax, one row or rows), f32 in and
/// out of equal nonzero lengths on a backend this CPU runs, checked in a
/// few instructions: its engine and slices, or `None` to take the general
/// path (which also names any error).
///
/// # Safety
/// As [`in_out`].
#[inline(always)]
unsafe fn fast<'a>(
    backend: simd_softmax_backend,
    (it, x, xn): (simd_softmax_dtype, *const c_void, usize),
    (ot, y, yn): (simd_softmax_dtype, *mut c_void, usize),
) -> Option<(Softmax, &'a [f32], &'a mut [f32])> {
    let (xa, ya) = (x as usize, y as usize);
    let plain = it == SIMD_SOFTMAX_F32 && ot == SIMD_SOFTMAX_F32;
    if !plain
        || xn != yn
        || xn == 0
        || xn > isize::MAX as usize / 4
        || xa == 0
        || ya == 0
        || (xa | ya) & 3 != 0
    {
        return None;
    }
    let (xe, ye) = (xa.checked_add(xn * 4)?, ya.checked_add(xn * 4)?);
    if xa < ye && ya < xe {
        return None;
    }
    // The default engine, or a named one already made (its first call
    // takes the general path, which makes it).
    let sm = match backend {
        SIMD_SOFTMAX_BACKEND_DEFAULT => Softmax::new(),
        b => (*NAMED.get((b as usize).wrapping_sub(1))?.get()?)?,
    };
    // SAFETY: non-null, aligned, not wrapping, disjoint (checked above);
    // the caller's contract for the rest.
    unsafe {
        Some((
            sm,
            core::slice::from_raw_parts(x.cast(), xn),
            core::slice::from_raw_parts_mut(y.cast(), yn),
        ))
    }
}

/// Runs `$body` with `$x` bound to the input slice, whatever its type.
macro_rules! with_in {
    ($i:expr, $x:ident => $body:expr) => {
        match $i {
            In::F32($x) => $body,
            In::F16($x) => $body,
            In::Bf16($x) => $body,
        }
    };
}

/// Runs `$body` with `$y` bound to the output slice, whatever its type.
macro_rules! with_out {
    ($o:expr, $y:ident => $body:expr) => {
        match $o {
            Out::F32($y) => $body,
            Out::F16($y) => $body,
            Out::Bf16($y) => $body,
        }
    };
}

/// Runs `$body` for every pair of input and output types.
macro_rules! with_in_out {
    ($i:expr, $o:expr, $x:ident, $y:ident => $body:expr) => {
        with_in!($i, $x => with_out!($o, $y => $body))
    };
}

// ---------------------------------------------------------------------
// Library and backends.

/// The library's version, e.g. `"0.1.0"` (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The best backend this CPU runs (ignores `SIMD_SOFTMAX_BACKEND`).
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_backend_detect() -> simd_softmax_backend {
    number_of(Backend::detect())
}

/// The backend `SIMD_SOFTMAX_BACKEND_DEFAULT` runs: the one the
/// `SIMD_SOFTMAX_BACKEND` environment variable names when it is valid,
/// else the detected one; decided at the first call of the process.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_backend_default() -> simd_softmax_backend {
    number_of(Softmax::new().backend())
}

/// Whether this CPU and build run `backend`: `SIMD_SOFTMAX_OK`,
/// `SIMD_SOFTMAX_UNSUPPORTED_BACKEND` or `SIMD_SOFTMAX_INVALID_ENUM`.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_backend_check(backend: simd_softmax_backend) -> simd_softmax_status {
    guard(|| engine(backend).map(|_| ()))
}

/// The backend's lower-case name (`"scalar"`, `"avx2"`, `"avx512"`,
/// `"neon"`; the default backend's for 0), a static string; null for a
/// number that names no backend.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_backend_name(backend: simd_softmax_backend) -> *const c_char {
    let name = match backend_of(backend) {
        Ok(Some(b)) => b,
        Ok(None) => Softmax::new().backend(),
        Err(_) => return core::ptr::null(),
    };
    match name {
        Backend::Scalar => c"scalar".as_ptr(),
        Backend::Avx2 => c"avx2".as_ptr(),
        Backend::Avx512 => c"avx512".as_ptr(),
        Backend::Neon => c"neon".as_ptr(),
        #[allow(unreachable_patterns)]
        _ => core::ptr::null(),
    }
}

/// Why this CPU or build cannot run `backend` (e.g. `"CPU lacks avx512f"`),
/// copied NUL-terminated into `buf` (truncated to `len - 1` bytes); an
/// empty string when it can. Returns the reason's full length in bytes
/// (as `snprintf` does), or `SIZE_MAX` for a number that names no
/// backend (then nothing is written).
///
/// # Safety
/// `buf` points to `len` writable bytes, or is null with `len == 0` (to
/// ask for the length).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_backend_unavailable_reason(
    backend: simd_softmax_backend,
    buf: *mut c_char,
    len: usize,
) -> usize {
    let reason = match backend_of(backend) {
        Ok(Some(b)) => b.unavailable_reason().unwrap_or(""),
        Ok(None) => "",
        Err(_) => return usize::MAX,
    };
    // SAFETY: the contract.
    if let Ok(b) = unsafe { dst(buf.cast::<u8>(), len) }
        && let Some(room) = b.len().checked_sub(1)
    {
        let n = reason.len().min(room);
        b[..n].copy_from_slice(&reason.as_bytes()[..n]);
        b[n] = 0;
    }
    reason.len()
}

/// f32 lanes per vector of `backend` (0 for a number that names none).
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_backend_lanes(backend: simd_softmax_backend) -> usize {
    match backend_of(backend) {
        Ok(Some(b)) => b.lanes(),
        Ok(None) => Softmax::new().backend().lanes(),
        Err(_) => 0,
    }
}

/// The backend named `name` (a NUL-terminated string; case and surrounding
/// whitespace ignored) into `*backend`; `SIMD_SOFTMAX_UNKNOWN_BACKEND` for
/// an unknown name (whether the CPU runs it is
/// `simd_softmax_backend_check`'s question).
///
/// # Safety
/// `name` is null (refused) or a NUL-terminated string; `backend` points
/// to a writable `simd_softmax_backend` (null is refused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_backend_from_name(
    name: *const c_char,
    backend: *mut simd_softmax_backend,
) -> simd_softmax_status {
    guard(|| {
        if name.is_null() {
            return Err(SIMD_SOFTMAX_NULL_POINTER);
        }
        let result = out(backend)?;
        // SAFETY: a NUL-terminated string (the contract).
        let name = unsafe { core::ffi::CStr::from_ptr(name) };
        let name = name.to_str().map_err(|_| SIMD_SOFTMAX_UNKNOWN_BACKEND)?;
        let t = name.trim();
        let b = Backend::ALL
            .iter()
            .copied()
            .find(|b| b.name().eq_ignore_ascii_case(t))
            .ok_or(SIMD_SOFTMAX_UNKNOWN_BACKEND)?;
        *result = number_of(b);
        Ok(())
    })
}

/// The status's constant name without its prefix (`"LENGTH_MISMATCH"`), a
/// static string; `"UNKNOWN_STATUS"` for a number that is none.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_status_name(status: simd_softmax_status) -> *const c_char {
    status_text(status).0.as_ptr()
}

/// What the status means, one line (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_status_message(status: simd_softmax_status) -> *const c_char {
    status_text(status).1.as_ptr()
}

fn status_text(s: simd_softmax_status) -> (&'static core::ffi::CStr, &'static core::ffi::CStr) {
    match s {
        SIMD_SOFTMAX_OK => (c"OK", c"success"),
        SIMD_SOFTMAX_LENGTH_MISMATCH => (c"LENGTH_MISMATCH", c"input and output lengths differ"),
        SIMD_SOFTMAX_INVALID_ROW_LEN => (
            c"INVALID_ROW_LEN",
            c"row_len is 0 or does not divide the buffer length",
        ),
        SIMD_SOFTMAX_GRADIENT_LENGTH => (c"GRADIENT_LENGTH", c"y, dy and dx differ in length"),
        SIMD_SOFTMAX_JACOBIAN_SIZE => (c"JACOBIAN_SIZE", c"the jacobian's output is not n*n"),
        SIMD_SOFTMAX_NAN_ALPHA => (c"NAN_ALPHA", c"a temperature or weight is NaN"),
        SIMD_SOFTMAX_TERM_LENGTH => (
            c"TERM_LENGTH",
            c"a combination term's length differs from the output's",
        ),
        SIMD_SOFTMAX_INVALID_PROBABILITY => (
            c"INVALID_PROBABILITY",
            c"a probability is negative, NaN or infinite",
        ),
        SIMD_SOFTMAX_ZERO_PROBABILITY => (
            c"ZERO_PROBABILITY",
            c"a zero probability where the anchor needs its log",
        ),
        SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE => (
            c"ANCHOR_OUT_OF_RANGE",
            c"the anchor component is out of range",
        ),
        SIMD_SOFTMAX_INVALID_STRIDE => (
            c"INVALID_STRIDE",
            c"row_len is 0 or a stride is shorter than a row",
        ),
        SIMD_SOFTMAX_ROWS_BEYOND_BUFFER => (
            c"ROWS_BEYOND_BUFFER",
            c"the strided rows reach beyond a buffer",
        ),
        SIMD_SOFTMAX_INVALID_PARAMETER => (c"INVALID_PARAMETER", c"a parameter is out of range"),
        SIMD_SOFTMAX_NAN_LOGIT => (c"NAN_LOGIT", c"a logit is NaN"),
        SIMD_SOFTMAX_NO_FINITE_LOGIT => (
            c"NO_FINITE_LOGIT",
            c"no logit can be chosen: the row is empty or all -inf",
        ),
        SIMD_SOFTMAX_SCRATCH_TOO_SHORT => (
            c"SCRATCH_TOO_SHORT",
            c"the sampler scratch is too small for the row",
        ),
        SIMD_SOFTMAX_TARGETS_LENGTH => (
            c"TARGETS_LENGTH",
            c"targets does not have one entry per row",
        ),
        SIMD_SOFTMAX_LOSSES_LENGTH => (c"LOSSES_LENGTH", c"losses does not have one entry per row"),
        SIMD_SOFTMAX_TARGET_OUT_OF_RANGE => (
            c"TARGET_OUT_OF_RANGE",
            c"a target is not below row_len (and not the ignore index)",
        ),
        SIMD_SOFTMAX_ATTENTION_LENGTH => (
            c"ATTENTION_LENGTH",
            c"scores, output, mask, slopes or sinks do not fit the shape",
        ),
        SIMD_SOFTMAX_UNSUPPORTED_BACKEND => (
            c"UNSUPPORTED_BACKEND",
            c"this CPU or build cannot run the backend",
        ),
        SIMD_SOFTMAX_UNKNOWN_BACKEND => (c"UNKNOWN_BACKEND", c"no backend has that name"),
        SIMD_SOFTMAX_NULL_POINTER => (
            c"NULL_POINTER",
            c"a null pointer with a nonzero length, or a buffer that wraps around",
        ),
        SIMD_SOFTMAX_MISALIGNED => (
            c"MISALIGNED",
            c"a pointer is not aligned for its element type",
        ),
        SIMD_SOFTMAX_INVALID_ENUM => (
            c"INVALID_ENUM",
            c"an element type, backend or anchor number that names nothing",
        ),
        SIMD_SOFTMAX_OVERLAP => (
            c"OVERLAP",
            c"an input overlaps an output (use the _in_place function)",
        ),
        SIMD_SOFTMAX_INTERNAL_ERROR => (
            c"INTERNAL_ERROR",
            c"a bug in simd-softmax (a caught panic); please report it",
        ),
        _ => (c"UNKNOWN_STATUS", c"not a simd-softmax status"),
    }
}

// ---------------------------------------------------------------------
// The softmax family.

/// `out = softmax(in)` over one row of `len` elements, any element types.
///
/// # Safety
/// `input` points to `input_len` elements of `input_type` and `output` to
/// `output_len` writable elements of `output_type`, not overlapping (or
/// null with a length of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
) -> simd_softmax_status {
    // SAFETY: the contract.
    if let Some((sm, x, y)) = unsafe {
        fast(
            backend,
            (input_type, input, input_len),
            (output_type, output, output_len),
        )
    } {
        return guard(|| sm.softmax(x, y).st());
    }
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm.softmax(x, y).st())
    })
}

/// `data = softmax(data)` in place.
///
/// # Safety
/// `data` points to `len` writable elements of `data_type` (or is null
/// with `len == 0`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_in_place(
    backend: simd_softmax_backend,
    data_type: simd_softmax_dtype,
    data: *mut c_void,
    len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let d = unsafe { output(data_type, data, len)? };
        with_out!(d, d => sm.softmax_in_place(d));
        Ok(())
    })
}

/// `out = log_softmax(in)` over one row, any element types.
///
/// # Safety
/// As `simd_softmax_softmax`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_log_softmax(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
) -> simd_softmax_status {
    // SAFETY: the contract.
    if let Some((sm, x, y)) = unsafe {
        fast(
            backend,
            (input_type, input, input_len),
            (output_type, output, output_len),
        )
    } {
        return guard(|| sm.log_softmax(x, y).st());
    }
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm.log_softmax(x, y).st())
    })
}

/// `data = log_softmax(data)` in place.
///
/// # Safety
/// As `simd_softmax_softmax_in_place`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_log_softmax_in_place(
    backend: simd_softmax_backend,
    data_type: simd_softmax_dtype,
    data: *mut c_void,
    len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let d = unsafe { output(data_type, data, len)? };
        with_out!(d, d => sm.log_softmax_in_place(d));
        Ok(())
    })
}

/// `*result = ln(sum(exp(in)))` (`-inf` for an empty row).
///
/// # Safety
/// `input` points to `len` elements of `input_type` (or is null with
/// `len == 0`); `result` to a writable `float`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_logsumexp(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    len: usize,
    result: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let r = out(result)?;
        // SAFETY: the contract.
        let x = unsafe { self::input(input_type, input, len)? };
        *r = with_in!(x, x => sm.logsumexp(x));
        Ok(())
    })
}

/// Softmax of each `row_len`-long row of a row-major batch.
///
/// # Safety
/// As `simd_softmax_softmax`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_rows(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
    row_len: usize,
) -> simd_softmax_status {
    // SAFETY: the contract.
    if let Some((sm, x, y)) = unsafe {
        fast(
            backend,
            (input_type, input, input_len),
            (output_type, output, output_len),
        )
    } {
        return guard(|| sm.softmax_rows(x, y, row_len).st());
    }
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm.softmax_rows(x, y, row_len).st())
    })
}

/// Softmax of each row, in place.
///
/// # Safety
/// As `simd_softmax_softmax_in_place`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_rows_in_place(
    backend: simd_softmax_backend,
    data_type: simd_softmax_dtype,
    data: *mut c_void,
    len: usize,
    row_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let d = unsafe { output(data_type, data, len)? };
        with_out!(d, d => sm.softmax_rows_in_place(d, row_len).st())
    })
}

/// Log-softmax of each `row_len`-long row.
///
/// # Safety
/// As `simd_softmax_softmax`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_log_softmax_rows(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
    row_len: usize,
) -> simd_softmax_status {
    // SAFETY: the contract.
    if let Some((sm, x, y)) = unsafe {
        fast(
            backend,
            (input_type, input, input_len),
            (output_type, output, output_len),
        )
    } {
        return guard(|| sm.log_softmax_rows(x, y, row_len).st());
    }
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm.log_softmax_rows(x, y, row_len).st())
    })
}

/// Log-softmax of each row, in place.
///
/// # Safety
/// As `simd_softmax_softmax_in_place`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_log_softmax_rows_in_place(
    backend: simd_softmax_backend,
    data_type: simd_softmax_dtype,
    data: *mut c_void,
    len: usize,
    row_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let d = unsafe { output(data_type, data, len)? };
        with_out!(d, d => sm.log_softmax_rows_in_place(d, row_len).st())
    })
}

/// Softmax of `rows` rows of `row_len`, `input_stride` elements apart in
/// the input and `output_stride` apart in the output (the elements between
/// rows are neither read nor written; the last row need not be padded).
///
/// # Safety
/// As `simd_softmax_softmax`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_rows_strided(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
    rows: usize,
    row_len: usize,
    input_stride: usize,
    output_stride: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm
            .softmax_rows_strided(x, y, rows, row_len, input_stride, output_stride)
            .st())
    })
}

/// Log-softmax of strided rows (see `simd_softmax_softmax_rows_strided`).
///
/// # Safety
/// As `simd_softmax_softmax`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_log_softmax_rows_strided(
    backend: simd_softmax_backend,
    input_type: simd_softmax_dtype,
    input: *const c_void,
    input_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
    rows: usize,
    row_len: usize,
    input_stride: usize,
    output_stride: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (input_type, input, input_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => sm
            .log_softmax_rows_strided(x, y, rows, row_len, input_stride, output_stride)
            .st())
    })
}

/// Checks and makes an f32 input and output pair.
///
/// # Safety
/// As `in_out`.
#[inline(always)]
unsafe fn f32_in_out<'a>(
    x: *const f32,
    xn: usize,
    y: *mut f32,
    yn: usize,
) -> Res<(&'a [f32], &'a mut [f32])> {
    disjoint(span(x, xn)?, span(y, yn)?)?;
    // SAFETY: both spans checked just above; the caller's contract.
    unsafe { Ok((src_of(x, xn), dst_of(y, yn))) }
}

/// `out = softmax(alpha * in)` (a temperature's `1/T`); `alpha` not NaN.
///
/// # Safety
/// `input` points to `input_len` floats and `output` to `output_len`
/// writable floats, not overlapping (or null with a length of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_scaled(
    backend: simd_softmax_backend,
    input: *const f32,
    input_len: usize,
    output: *mut f32,
    output_len: usize,
    alpha: f32,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe { f32_in_out(input, input_len, output, output_len)? };
        sm.softmax_scaled(x, y, alpha).st()
    })
}

/// `simd_softmax_softmax_scaled` of each `row_len`-long row.
///
/// # Safety
/// As `simd_softmax_softmax_scaled`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_scaled_rows(
    backend: simd_softmax_backend,
    input: *const f32,
    input_len: usize,
    output: *mut f32,
    output_len: usize,
    row_len: usize,
    alpha: f32,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe { f32_in_out(input, input_len, output, output_len)? };
        sm.softmax_scaled_rows(x, y, row_len, alpha).st()
    })
}

/// The softmax's vector-Jacobian product: `dx = y * (dy - dot(y, dy))`
/// for `y = softmax(x)`.
///
/// # Safety
/// `y` and `dy` point to `y_len` and `dy_len` floats, `dx` to `dx_len`
/// writable floats not overlapping them (or null with a length of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_backward(
    backend: simd_softmax_backend,
    y: *const f32,
    y_len: usize,
    dy: *const f32,
    dy_len: usize,
    dx: *mut f32,
    dx_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let out_span = span(dx, dx_len)?;
        disjoint(span(y, y_len)?, out_span)?;
        disjoint(span(dy, dy_len)?, out_span)?;
        // SAFETY: the contract.
        let (y, dy, dx) = unsafe { (src(y, y_len)?, src(dy, dy_len)?, dst(dx, dx_len)?) };
        sm.softmax_backward(y, dy, dx).st()
    })
}

/// The softmax's Jacobian `diag(y) - y*y^T`, row-major `n*n` into `out`.
///
/// # Safety
/// `y` points to `n` floats, `out` to `out_len` writable floats not
/// overlapping them (or null with a length of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_jacobian(
    backend: simd_softmax_backend,
    y: *const f32,
    n: usize,
    out: *mut f32,
    out_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (y, o) = unsafe { f32_in_out(y, n, out, out_len)? };
        sm.jacobian(y, o).st()
    })
}

/// The inverse of softmax: logits whose softmax is `p`, fixed by an anchor
/// (`SIMD_SOFTMAX_ANCHOR_ZERO_MEAN`, or `SIMD_SOFTMAX_ANCHOR_COMPONENT`
/// with `anchor_index`: that logit is 0).
///
/// # Safety
/// `p` points to `p_len` floats, `out` to `out_len` writable floats not
/// overlapping them (or null with a length of 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_logits_from_probs(
    backend: simd_softmax_backend,
    p: *const f32,
    p_len: usize,
    out: *mut f32,
    out_len: usize,
    anchor: u32,
    anchor_index: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let anchor = match anchor {
            SIMD_SOFTMAX_ANCHOR_ZERO_MEAN => Anchor::ZeroMean,
            SIMD_SOFTMAX_ANCHOR_COMPONENT => Anchor::Component(anchor_index),
            _ => return Err(SIMD_SOFTMAX_INVALID_ENUM),
        };
        // SAFETY: the contract.
        let (p, o) = unsafe { f32_in_out(p, p_len, out, out_len)? };
        sm.logits_from_probs(p, o, anchor).st()
    })
}

/// One term `weight * data` of `simd_softmax_softmax_of_combination`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct simd_softmax_term {
    /// The term's weight (not NaN).
    pub weight: f32,
    /// `len` floats.
    pub data: *const f32,
    /// The term's length (the output's).
    pub len: usize,
}

/// `out = softmax(sum_k terms[k].weight * terms[k].data)`, in one pass
/// (classifier-free guidance, product of experts); no terms give the
/// uniform distribution.
///
/// # Safety
/// `terms` points to `count` terms (or is null with `count == 0`), each
/// term's `data` to its `len` floats; `out` to `out_len` writable floats
/// overlapping none of them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_softmax_of_combination(
    backend: simd_softmax_backend,
    terms: *const simd_softmax_term,
    count: usize,
    out: *mut f32,
    out_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let out_span = span(out, out_len)?;
        // The terms themselves are an input too: the pass reads them again
        // after it has started writing `out`.
        disjoint(span(terms, count)?, out_span)?;
        // SAFETY: the contract.
        let terms = unsafe { src(terms, count)? };
        for t in terms {
            disjoint(span(t.data, t.len)?, out_span)?;
        }
        // SAFETY: the contract.
        let y = unsafe { dst(out, out_len)? };
        let term = |k: usize| {
            let t = &terms[k];
            // SAFETY: checked above (`span`); the contract for the rest.
            let x = unsafe { src(t.data, t.len) }.unwrap_or(&[]);
            (t.weight, x)
        };
        sm.softmax_of_combination_with(count, term, y).st()
    })
}

/// The logistic sigmoid `1 / (1 + exp(-x))` of each element.
///
/// # Safety
/// As `simd_softmax_softmax_scaled`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_sigmoid(
    backend: simd_softmax_backend,
    input: *const f32,
    input_len: usize,
    output: *mut f32,
    output_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        // SAFETY: the contract.
        let (x, y) = unsafe { f32_in_out(input, input_len, output, output_len)? };
        sm.sigmoid(x, y).st()
    })
}

// ---------------------------------------------------------------------
// The attention softmax.

/// The options of `simd_softmax_attention`; start from
/// `simd_softmax_attention_options_init` (or pass null for none). Each
/// field's "off" value is its initial one.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct simd_softmax_attention_options {
    /// Multiplies every score first (typically `1/sqrt(head_dim)`); 1.
    pub scale: f32,
    /// Caps the scaled scores at `+-softcap` smoothly (`c*tanh(t/c)`); 0 is
    /// off, otherwise it must be `> 0`.
    pub softcap: f32,
    /// An additive mask (`-inf` masks an entry): `[q_len, kv_len]` shared
    /// by every head, or `[heads, q_len, kv_len]` when `mask_per_head`;
    /// null for none.
    pub mask: *const c_void,
    /// The mask's length in elements.
    pub mask_len: usize,
    /// The mask's element type.
    pub mask_type: simd_softmax_dtype,
    /// Nonzero: one mask per head.
    pub mask_per_head: u32,
    /// Elements between two mask rows; 0 for `kv_len`.
    pub mask_stride: usize,
    /// ALiBi: one slope per head multiplying the mask (which holds the
    /// position term); null for none.
    pub alibi_slopes: *const f32,
    /// The number of slopes (`heads`).
    pub alibi_slopes_len: usize,
    /// Nonzero: ALiBi with ggml's slopes from `alibi_max_bias` (not with
    /// `alibi_slopes`).
    pub use_alibi_max_bias: u32,
    /// ggml's `max_bias` (not NaN).
    pub alibi_max_bias: f32,
    /// Nonzero: causal, query `q` sees keys `j <= q + q_offset`.
    pub causal: u32,
    /// The cache length before this block of queries (read only when
    /// `causal` is nonzero; taken as 0 otherwise, the window's too).
    pub q_offset: usize,
    /// A sliding window of `window` keys: query `q` sees keys
    /// `j > q + q_offset - window` only; 0 is off.
    pub window: usize,
    /// One sink logit per head (joins each row's denominator, gets no
    /// output); null for none.
    pub sinks: *const f32,
    /// The number of sinks (`heads`).
    pub sinks_len: usize,
    /// Elements between two score rows; 0 for `kv_len`.
    pub row_stride: usize,
    /// Elements between two output rows; 0 for `kv_len`.
    pub out_stride: usize,
}

impl Default for simd_softmax_attention_options {
    fn default() -> Self {
        simd_softmax_attention_options {
            scale: 1.0,
            softcap: 0.0,
            mask: core::ptr::null(),
            mask_len: 0,
            mask_type: SIMD_SOFTMAX_F32,
            mask_per_head: 0,
            mask_stride: 0,
            alibi_slopes: core::ptr::null(),
            alibi_slopes_len: 0,
            use_alibi_max_bias: 0,
            alibi_max_bias: 0.0,
            causal: 0,
            q_offset: 0,
            window: 0,
            sinks: core::ptr::null(),
            sinks_len: 0,
            row_stride: 0,
            out_stride: 0,
        }
    }
}

/// Sets `*options` to no options (scale 1, nothing else).
///
/// # Safety
/// `options` points to a writable `simd_softmax_attention_options` or is
/// null (then nothing happens).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_attention_options_init(
    options: *mut simd_softmax_attention_options,
) {
    if let Ok(o) = out(options) {
        *o = simd_softmax_attention_options::default();
    }
}

/// Applies the C options to the builder.
///
/// # Safety
/// The buffers `o` points to are valid for the call (its contract).
unsafe fn attention_of<'a>(
    mut a: AttentionSoftmax<'a>,
    o: &simd_softmax_attention_options,
    out_span: (usize, usize),
) -> Res<AttentionSoftmax<'a>> {
    a = a.scale(o.scale);
    if o.softcap != 0.0 {
        a = a.softcap(o.softcap);
    }
    if !o.mask.is_null() || o.mask_len > 0 {
        disjoint(typed_span(o.mask_type, o.mask, o.mask_len)?, out_span)?;
        // SAFETY: the contract.
        let m = unsafe { input(o.mask_type, o.mask, o.mask_len)? };
        a = match (m, o.mask_per_head != 0) {
            (In::F32(m), false) => a.mask(m),
            (In::F16(m), false) => a.mask(m),
            (In::Bf16(m), false) => a.mask(m),
            (In::F32(m), true) => a.head_mask(m),
            (In::F16(m), true) => a.head_mask(m),
            (In::Bf16(m), true) => a.head_mask(m),
        };
    }
    if o.mask_stride != 0 {
        a = a.mask_stride(o.mask_stride);
    }
    let slopes = !o.alibi_slopes.is_null() || o.alibi_slopes_len > 0;
    if slopes && o.use_alibi_max_bias != 0 {
        return Err(SIMD_SOFTMAX_INVALID_PARAMETER);
    }
    if slopes {
        disjoint(span(o.alibi_slopes, o.alibi_slopes_len)?, out_span)?;
        // SAFETY: the contract.
        a = a.alibi_slopes(unsafe { src(o.alibi_slopes, o.alibi_slopes_len)? });
    }
    if o.use_alibi_max_bias != 0 {
        a = a.alibi_max_bias(o.alibi_max_bias);
    }
    if o.causal != 0 {
        a = a.causal(o.q_offset);
    }
    if o.window != 0 {
        a = a.window(o.window);
    }
    if !o.sinks.is_null() || o.sinks_len > 0 {
        disjoint(span(o.sinks, o.sinks_len)?, out_span)?;
        // SAFETY: the contract.
        a = a.sinks(unsafe { src(o.sinks, o.sinks_len)? });
    }
    if o.row_stride != 0 {
        a = a.row_stride(o.row_stride);
    }
    if o.out_stride != 0 {
        a = a.out_stride(o.out_stride);
    }
    Ok(a)
}

/// The attention softmax over a `[heads, q_len, kv_len]` score tensor:
/// scale, softcap, mask, ALiBi, causal limit, window and sinks fused into
/// one pass (see `simd_softmax_attention_options`); masked and skipped
/// keys get 0.
///
/// # Safety
/// `scores` points to `scores_len` elements of `scores_type`, `output` to
/// `output_len` writable elements of `output_type`; `options` is null or
/// points to options whose buffers are valid as their fields say; no
/// input overlaps the output.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_attention(
    backend: simd_softmax_backend,
    options: *const simd_softmax_attention_options,
    scores_type: simd_softmax_dtype,
    scores: *const c_void,
    scores_len: usize,
    output_type: simd_softmax_dtype,
    output: *mut c_void,
    output_len: usize,
    heads: usize,
    q_len: usize,
    kv_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let none = simd_softmax_attention_options::default();
        let o = opts(options)?.unwrap_or(&none);
        let out_span = typed_span(output_type, output, output_len)?;
        // SAFETY: the contract.
        let a = unsafe { attention_of(sm.attention(), o, out_span)? };
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (scores_type, scores, scores_len),
                (output_type, output, output_len),
            )?
        };
        with_in_out!(x, y, x, y => a.run(x, y, heads, q_len, kv_len).st())
    })
}

// ---------------------------------------------------------------------
// The online state.

/// An online softmax state (a running max and exp sum over a row seen in
/// chunks), a plain struct the caller owns; make one with
/// `simd_softmax_state_init`. Its fields are readable: `max` is the max
/// so far and `ones + rest` the sum `sum(exp(x - max))` (split so that its
/// log stays accurate).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct simd_softmax_state {
    /// The backend its passes run on (a named one, never 0).
    pub backend: simd_softmax_backend,
    /// The max so far (`-inf`: nothing seen; `+inf`: an `+inf` entry; NaN:
    /// a NaN entry).
    pub max: f32,
    /// The terms of the sum that are exactly 1.
    pub ones: f64,
    /// Every other term of the sum.
    pub rest: f64,
}

fn state_of(s: &simd_softmax_state) -> Res<SoftmaxState> {
    let backend = backend_of(s.backend)?.ok_or(SIMD_SOFTMAX_INVALID_ENUM)?;
    SoftmaxState::from_parts(StateParts {
        backend,
        max: s.max,
        ones: s.ones,
        rest: s.rest,
    })
    .st()
}

fn c_state(st: &SoftmaxState) -> simd_softmax_state {
    let p = st.to_parts();
    simd_softmax_state {
        backend: number_of(p.backend),
        max: p.max,
        ones: p.ones,
        rest: p.rest,
    }
}

/// `*state` = the empty state (max `-inf`, sum 0) on `backend`.
///
/// # Safety
/// `state` points to a writable `simd_softmax_state`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_init(
    backend: simd_softmax_backend,
    state: *mut simd_softmax_state,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        *out(state)? = c_state(&sm.state());
        Ok(())
    })
}

/// Adds a chunk of the row to `*state` (one pass over it).
///
/// # Safety
/// `state` points to a state; `chunk` to `len` floats (or null with
/// `len == 0`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_update(
    state: *mut simd_softmax_state,
    chunk: *const f32,
    len: usize,
) -> simd_softmax_status {
    guard(|| {
        let s = out(state)?;
        let mut st = state_of(s)?;
        // SAFETY: the contract.
        st.update(unsafe { src(chunk, len)? });
        *s = c_state(&st);
        Ok(())
    })
}

/// `*merged` = the state of both rows' entries (on `a`'s backend); it may
/// be `a` or `b` itself.
///
/// # Safety
/// `a` and `b` point to states, `merged` to a writable state.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_merge(
    a: *const simd_softmax_state,
    b: *const simd_softmax_state,
    merged: *mut simd_softmax_state,
) -> simd_softmax_status {
    guard(|| {
        let a = state_of(opts(a)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        let b = state_of(opts(b)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        *out(merged)? = c_state(&a.merge(b));
        Ok(())
    })
}

/// The factors `exp(max_a - m)` and `exp(max_b - m)` (`m` the merged max)
/// that rescale what a caller accumulated with each state before adding
/// them (flash attention's split-K combine).
///
/// # Safety
/// `a` and `b` point to states, `fa` and `fb` to writable floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_merge_factors(
    a: *const simd_softmax_state,
    b: *const simd_softmax_state,
    fa: *mut f32,
    fb: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let a = state_of(opts(a)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        let b = state_of(opts(b)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        let (ra, rb) = (out(fa)?, out(fb)?);
        (*ra, *rb) = a.merge_factors(&b);
        Ok(())
    })
}

/// The row's sum so far in `*sum` (NaN for a NaN row).
///
/// # Safety
/// `state` points to a state, `sum` to a writable double.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_sum(
    state: *const simd_softmax_state,
    sum: *mut f64,
) -> simd_softmax_status {
    guard(|| {
        let st = state_of(opts(state)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        *out(sum)? = st.sum();
        Ok(())
    })
}

/// `ln(sum(exp(x)))` of the row so far in `*result`.
///
/// # Safety
/// `state` points to a state, `result` to a writable float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_logsumexp(
    state: *const simd_softmax_state,
    result: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let st = state_of(opts(state)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        *out(result)? = st.logsumexp();
        Ok(())
    })
}

/// Writes a chunk's part of the whole row's softmax, once every chunk was
/// added: `out = exp(chunk - max) / sum`.
///
/// # Safety
/// `state` points to a state; `chunk` to `chunk_len` floats, `output` to
/// `output_len` writable floats not overlapping them.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_normalize(
    state: *const simd_softmax_state,
    chunk: *const f32,
    chunk_len: usize,
    output: *mut f32,
    output_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let st = state_of(opts(state)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        // SAFETY: the contract.
        let (x, y) = unsafe { f32_in_out(chunk, chunk_len, output, output_len)? };
        st.normalize(x, y).st()
    })
}

/// The log-softmax counterpart of `simd_softmax_state_normalize`.
///
/// # Safety
/// As `simd_softmax_state_normalize`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_log_normalize(
    state: *const simd_softmax_state,
    chunk: *const f32,
    chunk_len: usize,
    output: *mut f32,
    output_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let st = state_of(opts(state)?.ok_or(SIMD_SOFTMAX_NULL_POINTER)?)?;
        // SAFETY: the contract.
        let (x, y) = unsafe { f32_in_out(chunk, chunk_len, output, output_len)? };
        st.log_normalize(x, y).st()
    })
}

/// Flash attention's step: adds `chunk` to `*state`, writes
/// `exps = exp(chunk - new max)` and `*factor = exp(old max - new max)`,
/// what the caller's accumulator is rescaled by.
///
/// # Safety
/// `state` points to a state; `chunk` to `chunk_len` floats, `exps` to
/// `exps_len` writable floats not overlapping them; `factor` to a writable
/// float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_state_exp_update(
    state: *mut simd_softmax_state,
    chunk: *const f32,
    chunk_len: usize,
    exps: *mut f32,
    exps_len: usize,
    factor: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let s = out(state)?;
        let f = out(factor)?;
        let mut st = state_of(s)?;
        // SAFETY: the contract.
        let (x, e) = unsafe { f32_in_out(chunk, chunk_len, exps, exps_len)? };
        *f = st.exp_update(x, e).st()?;
        *s = c_state(&st);
        Ok(())
    })
}

// ---------------------------------------------------------------------
// The sampler.

/// The sampler's options; start from `simd_softmax_sampler_options_init`
/// (or pass null for none: temperature 1, no filter).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct simd_softmax_sampler_options {
    /// `T >= 0`; 0 is greedy.
    pub temperature: f32,
    /// Top-p `p` in `(0, 1]`; 1 is off.
    pub top_p: f32,
    /// Min-p `p` in `[0, 1]`; 0 is off.
    pub min_p: f32,
    /// Top-k; 0 is off.
    pub top_k: usize,
}

impl Default for simd_softmax_sampler_options {
    fn default() -> Self {
        simd_softmax_sampler_options {
            temperature: 1.0,
            top_p: 1.0,
            min_p: 0.0,
            top_k: 0,
        }
    }
}

/// Sets `*options` to no filter at temperature 1.
///
/// # Safety
/// `options` points to writable options or is null (nothing happens).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_sampler_options_init(
    options: *mut simd_softmax_sampler_options,
) {
    if let Ok(o) = out(options) {
        *o = simd_softmax_sampler_options::default();
    }
}

/// A survivor of the sampler: a vocabulary index and its probability among
/// the survivors.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct simd_softmax_candidate {
    /// The index in the logits.
    pub index: u32,
    /// Its renormalized probability.
    pub prob: f32,
}

/// The bytes of scratch (8-byte aligned) the sampler needs for rows of up
/// to `vocab` logits: what a caller allocates once per sampling thread.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_sampler_scratch_bytes(vocab: usize) -> usize {
    Sampler::scratch_bytes(vocab)
}

fn sampler_of(sm: Softmax, o: Option<&simd_softmax_sampler_options>) -> Sampler {
    let o = o.copied().unwrap_or_default();
    sm.sampler()
        .temperature(o.temperature)
        .top_k(o.top_k)
        .top_p(o.top_p)
        .min_p(o.min_p)
}

/// The scratch for a row of `n` logits carved from the caller's bytes:
/// candidates, weights, block maxima, in that order.
///
/// # Safety
/// `scratch` points to `bytes` writable bytes nothing else uses during the
/// call (or is null with `bytes == 0`).
unsafe fn scratch_of<'a>(
    scratch: *mut c_void,
    bytes: usize,
    n: usize,
    logits: (usize, usize),
) -> Res<SamplerScratchMut<'a>> {
    let need = n
        .checked_mul(16)
        .and_then(|b| b.checked_add(n.div_ceil(Sampler::BLOCK) * 4))
        .ok_or(SIMD_SOFTMAX_SCRATCH_TOO_SHORT)?;
    if bytes < need {
        return Err(SIMD_SOFTMAX_SCRATCH_TOO_SHORT);
    }
    if n == 0 {
        return Ok(SamplerScratchMut::new(&mut [], &mut [], &mut []));
    }
    let base = scratch.cast::<u64>();
    disjoint(span(base.cast::<u8>(), bytes)?, logits)?;
    span(base, 1)?; // aligned to 8
    let c = base.cast::<Candidate>();
    // SAFETY: `need ≤ bytes` bytes from an 8-aligned base, split into
    // disjoint, aligned runs of plain numbers (`Candidate` is `repr(C)`
    // `{u32, f32}`); exclusive (the contract).
    unsafe {
        let cand = core::slice::from_raw_parts_mut(c, n);
        let w = core::slice::from_raw_parts_mut(c.add(n).cast::<f64>(), n);
        let bmax = core::slice::from_raw_parts_mut(
            c.add(n).cast::<f64>().add(n).cast::<f32>(),
            n.div_ceil(Sampler::BLOCK),
        );
        Ok(SamplerScratchMut::new(cand, w, bmax))
    }
}

/// Draws the next token from `logits` with the uniform sample `u` in
/// `[0, 1)`: temperature, then top-k, top-p and min-p, the survivors
/// renormalized; deterministic given `u`. The scratch's contents on entry
/// do not matter.
///
/// # Safety
/// `logits` points to `len` floats; `scratch` to `scratch_bytes` writable
/// bytes (8-byte aligned) not overlapping them; `options` is null or
/// points to options; `token` to a writable candidate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_sample(
    backend: simd_softmax_backend,
    options: *const simd_softmax_sampler_options,
    logits: *const f32,
    len: usize,
    u: f64,
    scratch: *mut c_void,
    scratch_bytes: usize,
    token: *mut simd_softmax_candidate,
) -> simd_softmax_status {
    guard(|| {
        let s = sampler_of(engine(backend)?, opts(options)?);
        let t = out(token)?;
        let lspan = span(logits, len)?;
        // SAFETY: the contract.
        let (x, mut sc) = unsafe {
            (
                src(logits, len)?,
                scratch_of(scratch, scratch_bytes, len, lspan)?,
            )
        };
        let c = s.sample(x, u, &mut sc).st()?;
        *t = simd_softmax_candidate {
            index: c.index,
            prob: c.prob,
        };
        Ok(())
    })
}

/// The survivors of `logits` by descending probability (ties by lower
/// index) with their renormalized probabilities: `*survivors` points into
/// the scratch (valid until its next use), `*count` says how many.
///
/// # Safety
/// As `simd_softmax_sample`; `survivors` and `count` point to writable
/// results.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_sampler_survivors(
    backend: simd_softmax_backend,
    options: *const simd_softmax_sampler_options,
    logits: *const f32,
    len: usize,
    scratch: *mut c_void,
    scratch_bytes: usize,
    survivors: *mut *const simd_softmax_candidate,
    count: *mut usize,
) -> simd_softmax_status {
    guard(|| {
        let s = sampler_of(engine(backend)?, opts(options)?);
        let (rs, rc) = (out(survivors)?, out(count)?);
        let lspan = span(logits, len)?;
        // SAFETY: the contract.
        let (x, mut sc) = unsafe {
            (
                src(logits, len)?,
                scratch_of(scratch, scratch_bytes, len, lspan)?,
            )
        };
        let kept = s.survivors(x, &mut sc).st()?;
        // `simd_softmax_candidate` is `Candidate`'s layout (`repr(C)`).
        *rs = kept.as_ptr().cast();
        *rc = kept.len();
        Ok(())
    })
}

// ---------------------------------------------------------------------
// Cross-entropy.

/// Cross-entropy's options; start from
/// `simd_softmax_cross_entropy_options_init` (or pass null for none).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct simd_softmax_cross_entropy_options {
    /// Nonzero: rows whose target is `ignore_index` contribute no loss, are
    /// not counted in the mean and get a zero gradient.
    pub use_ignore_index: u32,
    /// The ignored target (PyTorch's default is -100, as `uint32_t`).
    pub ignore_index: u32,
    /// `eps` in `[0, 1]`: the weight moved from the target to the uniform
    /// distribution.
    pub label_smoothing: f32,
}

/// Sets `*options` to no ignore index and no smoothing.
///
/// # Safety
/// `options` points to writable options or is null (nothing happens).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_cross_entropy_options_init(
    options: *mut simd_softmax_cross_entropy_options,
) {
    if let Ok(o) = out(options) {
        *o = simd_softmax_cross_entropy_options::default();
    }
}

fn ce_options(o: Option<&simd_softmax_cross_entropy_options>) -> CrossEntropyOptions {
    let o = o.copied().unwrap_or_default();
    CrossEntropyOptions {
        ignore_index: (o.use_ignore_index != 0).then_some(o.ignore_index),
        label_smoothing: o.label_smoothing,
    }
}

/// The mean cross-entropy of the rows of `logits` (`row_len` each) against
/// `targets` (one per row) in `*loss`; NaN when every row is ignored.
///
/// # Safety
/// `logits` points to `len` elements of `logits_type`, `targets` to
/// `targets_len` `uint32_t`; `options` is null or points to options;
/// `loss` to a writable float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_cross_entropy(
    backend: simd_softmax_backend,
    options: *const simd_softmax_cross_entropy_options,
    logits_type: simd_softmax_dtype,
    logits: *const c_void,
    len: usize,
    row_len: usize,
    targets: *const u32,
    targets_len: usize,
    loss: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let o = ce_options(opts(options)?);
        let l = out(loss)?;
        // SAFETY: the contract.
        let (x, t) = unsafe { (input(logits_type, logits, len)?, src(targets, targets_len)?) };
        *l = with_in!(x, x => sm.cross_entropy(x, row_len, t, o)).st()?;
        Ok(())
    })
}

/// Each row's cross-entropy into `losses` (one per row; 0 for ignored
/// rows).
///
/// # Safety
/// As `simd_softmax_cross_entropy`; `losses` points to `losses_len`
/// writable floats overlapping no input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_cross_entropy_rows(
    backend: simd_softmax_backend,
    options: *const simd_softmax_cross_entropy_options,
    logits_type: simd_softmax_dtype,
    logits: *const c_void,
    len: usize,
    row_len: usize,
    targets: *const u32,
    targets_len: usize,
    losses: *mut f32,
    losses_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let o = ce_options(opts(options)?);
        let out_span = span(losses, losses_len)?;
        disjoint(typed_span(logits_type, logits, len)?, out_span)?;
        disjoint(span(targets, targets_len)?, out_span)?;
        // SAFETY: the contract.
        let (x, t, l) = unsafe {
            (
                input(logits_type, logits, len)?,
                src(targets, targets_len)?,
                dst(losses, losses_len)?,
            )
        };
        with_in!(x, x => sm.cross_entropy_rows(x, row_len, t, o, l)).st()
    })
}

/// The gradient `grad_scale * (softmax(x) - q)` of each row into
/// `dlogits` (`q` the one-hot or smoothed target; ignored rows get 0).
///
/// # Safety
/// As `simd_softmax_cross_entropy`; `dlogits` points to `dlogits_len`
/// writable elements of `dlogits_type` overlapping no input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_cross_entropy_backward(
    backend: simd_softmax_backend,
    options: *const simd_softmax_cross_entropy_options,
    logits_type: simd_softmax_dtype,
    logits: *const c_void,
    len: usize,
    row_len: usize,
    targets: *const u32,
    targets_len: usize,
    grad_scale: f32,
    dlogits_type: simd_softmax_dtype,
    dlogits: *mut c_void,
    dlogits_len: usize,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let o = ce_options(opts(options)?);
        disjoint(
            span(targets, targets_len)?,
            typed_span(dlogits_type, dlogits, dlogits_len)?,
        )?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (logits_type, logits, len),
                (dlogits_type, dlogits, dlogits_len),
            )?
        };
        // SAFETY: the contract.
        let t = unsafe { src(targets, targets_len)? };
        with_in_out!(x, y, x, y => sm.cross_entropy_backward(x, row_len, t, o, grad_scale, y)).st()
    })
}

/// The mean loss in `*loss` and the gradient in `dlogits`, from one pass
/// for the sums and one for the gradient.
///
/// # Safety
/// As `simd_softmax_cross_entropy_backward`; `loss` points to a writable
/// float.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn simd_softmax_cross_entropy_with_grad(
    backend: simd_softmax_backend,
    options: *const simd_softmax_cross_entropy_options,
    logits_type: simd_softmax_dtype,
    logits: *const c_void,
    len: usize,
    row_len: usize,
    targets: *const u32,
    targets_len: usize,
    grad_scale: f32,
    dlogits_type: simd_softmax_dtype,
    dlogits: *mut c_void,
    dlogits_len: usize,
    loss: *mut f32,
) -> simd_softmax_status {
    guard(|| {
        let sm = engine(backend)?;
        let o = ce_options(opts(options)?);
        let l = out(loss)?;
        disjoint(
            span(targets, targets_len)?,
            typed_span(dlogits_type, dlogits, dlogits_len)?,
        )?;
        // SAFETY: the contract.
        let (x, y) = unsafe {
            in_out(
                (logits_type, logits, len),
                (dlogits_type, dlogits, dlogits_len),
            )?
        };
        // SAFETY: the contract.
        let t = unsafe { src(targets, targets_len)? };
        *l =
            with_in_out!(x, y, x, y => sm.cross_entropy_with_grad(x, row_len, t, o, grad_scale, y))
                .st()?;
        Ok(())
    })
}

/// Every element type's size in bytes, as the header's callers may want
/// it: 4 for `SIMD_SOFTMAX_F32`, 2 for the half types, 0 for a number that
/// names none.
#[unsafe(no_mangle)]
pub extern "C" fn simd_softmax_dtype_size(dtype: simd_softmax_dtype) -> usize {
    elem_size(dtype).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_one_to_one() {
        let all = [
            SIMD_SOFTMAX_OK,
            SIMD_SOFTMAX_LENGTH_MISMATCH,
            SIMD_SOFTMAX_INVALID_ROW_LEN,
            SIMD_SOFTMAX_GRADIENT_LENGTH,
            SIMD_SOFTMAX_JACOBIAN_SIZE,
            SIMD_SOFTMAX_NAN_ALPHA,
            SIMD_SOFTMAX_TERM_LENGTH,
            SIMD_SOFTMAX_INVALID_PROBABILITY,
            SIMD_SOFTMAX_ZERO_PROBABILITY,
            SIMD_SOFTMAX_ANCHOR_OUT_OF_RANGE,
            SIMD_SOFTMAX_INVALID_STRIDE,
            SIMD_SOFTMAX_ROWS_BEYOND_BUFFER,
            SIMD_SOFTMAX_INVALID_PARAMETER,
            SIMD_SOFTMAX_NAN_LOGIT,
            SIMD_SOFTMAX_NO_FINITE_LOGIT,
            SIMD_SOFTMAX_SCRATCH_TOO_SHORT,
            SIMD_SOFTMAX_TARGETS_LENGTH,
            SIMD_SOFTMAX_LOSSES_LENGTH,
            SIMD_SOFTMAX_TARGET_OUT_OF_RANGE,
            SIMD_SOFTMAX_ATTENTION_LENGTH,
            SIMD_SOFTMAX_UNSUPPORTED_BACKEND,
            SIMD_SOFTMAX_UNKNOWN_BACKEND,
            SIMD_SOFTMAX_NULL_POINTER,
            SIMD_SOFTMAX_MISALIGNED,
            SIMD_SOFTMAX_INVALID_ENUM,
            SIMD_SOFTMAX_OVERLAP,
            SIMD_SOFTMAX_INTERNAL_ERROR,
        ];
        let mut names: Vec<_> = all.iter().map(|&s| status_text(s).0).collect();
        assert!(names.iter().all(|n| n.to_bytes() != b"UNKNOWN_STATUS"));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a status name is reused");
        assert_eq!(status_text(-1).0, c"UNKNOWN_STATUS");
    }
}
