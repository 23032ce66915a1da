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
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch { input, output } => {
                write!(f, "length mismatch: input has {input} elements, output has {output}")
            }
            Error::InvalidRowLen { len, row_len } => {
                write!(f, "row_len {row_len} must be > 0 and divide the buffer length {len}")
            }
            Error::UnsupportedBackend { backend, reason } => {
                write!(f, "backend {} is not supported here: {reason}", backend.name())
            }
            Error::UnknownBackend { name } => write!(
                f,
                "unknown backend {name:?}; expected one of scalar, avx2, avx512, neon"
            ),
        }
    }
}

impl std::error::Error for Error {}
