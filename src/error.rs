//! The crate's one error type: every way a call can be refused. A refused
//! call never writes to its output.

use crate::Backend;
use core::fmt;

/// Why a call was refused. The output buffer is left untouched.
///
/// ```
/// use simd_softmax::{softmax, Error};
/// let mut out = [0.0f32; 2];
/// assert_eq!(
///     softmax(&[1.0, 2.0, 3.0], &mut out),
///     Err(Error::LengthMismatch { input: 3, output: 2 })
/// );
/// assert_eq!(out, [0.0, 0.0]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// Input and output lengths differ.
    LengthMismatch {
        /// Length of the input slice.
        input: usize,
        /// Length of the output slice.
        output: usize,
    },
    /// `row_len` is 0 or does not divide the buffer length.
    InvalidRowLen {
        /// Length of the buffer.
        len: usize,
        /// The row length asked for.
        row_len: usize,
    },
    /// [`softmax_backward`](crate::softmax_backward): `y`, `dy` and `dx`
    /// differ in length.
    GradientLength {
        /// Length of `y`.
        y: usize,
        /// Length of `dy`.
        dy: usize,
        /// Length of `dx`.
        dx: usize,
    },
    /// [`jacobian`](crate::jacobian): the output is not `N×N` (or `N²`
    /// overflows `usize`, then `expected` is `None`).
    JacobianSize {
        /// Length `N` of `y`.
        n: usize,
        /// `N²`, if it fits in `usize`.
        expected: Option<usize>,
        /// Length of the output slice.
        output: usize,
    },
    /// A temperature or combination weight is NaN.
    NanAlpha,
    /// A combination term's length differs from the output's.
    TermLength {
        /// Index of the term.
        term: usize,
        /// Its length.
        len: usize,
        /// The output length.
        expected: usize,
    },
    /// A probability is negative, NaN or `+∞`.
    InvalidProbability {
        /// Index of the first such entry.
        index: usize,
    },
    /// A zero probability where the anchor needs a finite log: any zero with
    /// [`Anchor::ZeroMean`](crate::Anchor::ZeroMean), or the anchored entry
    /// itself with [`Anchor::Component`](crate::Anchor::Component).
    ZeroProbability {
        /// Index of the first such entry.
        index: usize,
    },
    /// [`Anchor::Component`](crate::Anchor::Component)`(k)` with `k ≥ N`.
    AnchorOutOfRange {
        /// The component asked for.
        index: usize,
        /// The row length.
        len: usize,
    },
    /// Strided rows ([`softmax_rows_strided`](crate::softmax_rows_strided)):
    /// `row_len` is 0, or a stride is shorter than a row.
    InvalidStride {
        /// The row length.
        row_len: usize,
        /// The stride (of the input or the output) that is too short.
        stride: usize,
    },
    /// Strided rows reach beyond a buffer: `rows` rows `stride` apart (the
    /// last one `row_len` long) need `needed` elements (`None`: more than
    /// `usize` holds).
    RowsBeyondBuffer {
        /// The buffer's length.
        len: usize,
        /// The elements the rows need.
        needed: Option<usize>,
    },
    /// A parameter is outside its range (a sampler's temperature, top-p,
    /// min-p or uniform sample, cross-entropy's label smoothing).
    InvalidParameter {
        /// The parameter's name.
        name: &'static str,
        /// The value given (an integer parameter as the f64 it converts to).
        /// A number, not text, so that forming the error allocates nothing.
        value: f64,
        /// What it must be.
        expected: &'static str,
    },
    /// A logit is NaN (a sampler has nothing defined to choose from).
    NanLogit {
        /// The first NaN's index.
        index: usize,
    },
    /// No logit can be chosen: the row is empty or all `−∞`.
    NoFiniteLogit,
    /// A [`crate::SamplerScratch`] is for a shorter vocabulary.
    ScratchTooShort {
        /// The logits' length.
        vocab: usize,
        /// The scratch's vocabulary.
        scratch: usize,
    },
    /// Cross-entropy: the logits hold `rows` rows but `targets` has
    /// another number of entries.
    TargetsLength {
        /// Rows of the logits (`logits.len() / row_len`).
        rows: usize,
        /// Length of `targets`.
        targets: usize,
    },
    /// Cross-entropy's per-row form: `losses` does not have one entry per
    /// row.
    LossesLength {
        /// Rows of the logits.
        rows: usize,
        /// Length of `losses`.
        losses: usize,
    },
    /// Cross-entropy: a target (not the `ignore_index`) is not a column of
    /// its row.
    TargetOutOfRange {
        /// The first row whose target is out of range.
        row: usize,
        /// Its target.
        target: u32,
        /// The row length (targets must be below it).
        row_len: usize,
    },
    /// [`AttentionSoftmax`](crate::AttentionSoftmax): a buffer (`what`:
    /// `"scores"`, `"output"`, `"mask"`, `"alibi_slopes"` or `"sinks"`)
    /// does not match the shape: its length must lie in `min..=max`
    /// (`None`: the shape overflows `usize`).
    AttentionLength {
        /// Which buffer.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The shortest length that fits (the last row's end).
        min: Option<usize>,
        /// The longest (the last row's full stride).
        max: Option<usize>,
    },
    /// The CPU (or this build's target) cannot run the requested backend.
    UnsupportedBackend {
        /// The backend asked for.
        backend: Backend,
        /// What is missing, e.g. "CPU lacks avx512f".
        reason: &'static str,
    },
    /// `SIMD_SOFTMAX_BACKEND` (or [`Backend::from_name`]) named no backend.
    UnknownBackend {
        /// The name given.
        name: String,
    },
}

impl Error {
    /// [`Error::InvalidParameter`] for `name = value`, which must be
    /// `expected`.
    pub(crate) fn invalid_parameter(
        name: &'static str,
        value: impl Into<f64>,
        expected: &'static str,
    ) -> Error {
        Error::InvalidParameter {
            name,
            value: value.into(),
            expected,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch { input, output } => {
                write!(
                    f,
                    "length mismatch: input has {input} elements, output has {output}"
                )
            }
            Error::InvalidRowLen { len, row_len } => {
                write!(
                    f,
                    "row_len {row_len} must be > 0 and divide the buffer length {len}"
                )
            }
            Error::GradientLength { y, dy, dx } => {
                write!(f, "length mismatch: y has {y} elements, dy {dy}, dx {dx}")
            }
            Error::JacobianSize {
                n,
                expected: Some(e),
                output,
            } => {
                write!(
                    f,
                    "jacobian of {n} values needs an output of {e}, got {output}"
                )
            }
            Error::JacobianSize {
                n,
                expected: None,
                output,
            } => {
                write!(
                    f,
                    "jacobian of {n} values needs {n}² elements, which overflows usize (output has {output})"
                )
            }
            Error::NanAlpha => f.write_str("alpha (temperature or combination weight) is NaN"),
            Error::TermLength {
                term,
                len,
                expected,
            } => {
                write!(
                    f,
                    "term {term} has {len} elements, the output has {expected}"
                )
            }
            Error::InvalidProbability { index } => {
                write!(f, "probability {index} is negative, NaN or infinite")
            }
            Error::ZeroProbability { index } => {
                write!(
                    f,
                    "probability {index} is 0, so its logit is −∞ and the anchor is undefined"
                )
            }
            Error::AnchorOutOfRange { index, len } => {
                write!(
                    f,
                    "anchor component {index} is out of range for {len} values"
                )
            }
            Error::InvalidStride { row_len, stride } => {
                write!(
                    f,
                    "stride {stride} is shorter than the row length {row_len} (which must be > 0)"
                )
            }
            Error::RowsBeyondBuffer {
                len,
                needed: Some(n),
            } => write!(f, "the rows need {n} elements, the buffer has {len}"),
            Error::RowsBeyondBuffer { len, needed: None } => write!(
                f,
                "the rows need more elements than usize holds (the buffer has {len})"
            ),
            Error::AttentionLength {
                what,
                len,
                min: Some(lo),
                max: Some(hi),
            } if lo == hi => write!(f, "{what} has {len} elements, expected {lo}"),
            Error::AttentionLength {
                what,
                len,
                min: Some(lo),
                max: Some(hi),
            } => write!(f, "{what} has {len} elements, expected {lo} to {hi}"),
            Error::AttentionLength { what, len, .. } => write!(
                f,
                "{what} has {len} elements, but the shape's size overflows usize"
            ),
            Error::InvalidParameter {
                name,
                value,
                expected,
            } => write!(f, "{name} = {value} is out of range: expected {expected}"),
            Error::NanLogit { index } => {
                write!(f, "logit {index} is NaN")
            }
            Error::NoFiniteLogit => {
                f.write_str("no logit can be chosen: the row is empty or all −∞")
            }
            Error::ScratchTooShort { vocab, scratch } => write!(
                f,
                "the sampler scratch serves {scratch} logits, the row has {vocab}"
            ),
            Error::TargetsLength { rows, targets } => write!(
                f,
                "the logits have {rows} rows but targets has {targets} entries"
            ),
            Error::LossesLength { rows, losses } => write!(
                f,
                "the logits have {rows} rows but losses has {losses} entries"
            ),
            Error::TargetOutOfRange {
                row,
                target,
                row_len,
            } => write!(
                f,
                "row {row}: target {target} is out of range for rows of {row_len} logits"
            ),
            Error::UnsupportedBackend { backend, reason } => {
                write!(
                    f,
                    "backend {} is not supported here: {reason}",
                    backend.name()
                )
            }
            Error::UnknownBackend { name } => write!(
                f,
                "unknown backend {name:?}; expected one of scalar, avx2, avx512, neon"
            ),
        }
    }
}

impl std::error::Error for Error {}
