//! The row planner: the one place that decides which regime
//! (`crate::regime`) runs a batch, from its length, its row length and
//! what the instruction set can do. Every softmax-shaped function of the
//! crate goes through [`plan`]; reductions without an output (logsumexp,
//! `par_softmax`'s chunk states) are the two-pass regime's first pass at
//! every length.
//!
//! A row's regime depends on its row length only, except that the
//! pipeline and its streaming form are chosen by the batch's length; the
//! two give bit-identical rows, so a row's result never depends on its
//! batch.

use crate::isa::Isa;

/// Rows of at most this many vectors are short: held in registers.
pub const SHORT_MAX_VECTORS: usize = 4;

/// Rows of at least this many elements (8 MiB: larger than any L2 here)
/// take the two-pass regime: the pipeline's three sweeps would each go to
/// L3 or DRAM. Measured between 2^20 (pipeline faster) and 2^22 (two-pass
/// faster): `docs/PERFORMANCE.md#thresholds`.
pub const TWO_PASS_MIN: usize = 1 << 21;

/// Batches of at least this many elements (16 MiB of output, half the L3
/// of the machines measured) take the pipeline's streaming form, where the
/// instruction set has non-temporal stores: the output would not be read
/// back from cache anyway. Two-pass rows this long stream their output too.
pub const STREAM_MIN: usize = 1 << 22;

/// How a batch is run; see `crate::regime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Regime {
    /// Rows of `vectors` (1 to [`SHORT_MAX_VECTORS`]) vectors in
    /// registers; `narrow`: on the half-width instruction set.
    Short {
        /// Vectors per row.
        vectors: usize,
        /// On [`Isa::Narrow`].
        narrow: bool,
    },
    /// The batch pipeline, in cache.
    Pipeline,
    /// The batch pipeline's out-of-cache form (non-temporal output).
    Streaming,
    /// Online max and sum per row, then one output pass.
    TwoPass,
}

/// What the planner knows of an instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaShape {
    /// f32 lanes per vector.
    pub lanes: usize,
    /// Whether it has a short-row regime (not one lane: rows of 1 to 4
    /// floats gain nothing from registers the pipeline does not use).
    pub short_rows: bool,
    /// Rows of at most this many floats run on the narrow twin (0: none).
    pub narrow_max: usize,
    /// The narrow twin's lanes.
    pub narrow_lanes: usize,
    /// Whether stores can be non-temporal.
    pub has_stream: bool,
}

impl IsaShape {
    /// The shape of instruction set `S`.
    #[doc(hidden)]
    pub fn of<S: Isa>() -> IsaShape {
        IsaShape {
            lanes: S::F32_LANES,
            short_rows: S::SHORT_ROWS,
            narrow_max: S::NARROW_MAX,
            narrow_lanes: <S::Narrow as pulp::Simd>::F32_LANES,
            has_stream: S::HAS_STREAM,
        }
    }
}

/// The regime for a batch of `len` elements in rows of `row_len > 0`
/// (`len` a multiple of it) on an instruction set shaped `isa`.
///
/// ```
/// use simd_softmax_kernels::plan::{plan, IsaShape, Regime};
/// let avx2 = IsaShape {
///     lanes: 8,
///     short_rows: true,
///     narrow_max: 0,
///     narrow_lanes: 8,
///     has_stream: true,
/// };
/// assert_eq!(plan(avx2, 4096 * 32, 32), Regime::Short { vectors: 4, narrow: false });
/// assert_eq!(plan(avx2, 64 * 4096, 4096), Regime::Pipeline);
/// ```
pub fn plan(isa: IsaShape, len: usize, row_len: usize) -> Regime {
    if row_len <= isa.narrow_max {
        return Regime::Short {
            vectors: row_len.div_ceil(isa.narrow_lanes),
            narrow: true,
        };
    }
    let vectors = row_len.div_ceil(isa.lanes);
    if vectors <= SHORT_MAX_VECTORS && isa.short_rows {
        Regime::Short {
            vectors,
            narrow: false,
        }
    } else if row_len >= TWO_PASS_MIN {
        Regime::TwoPass
    } else if len >= STREAM_MIN && isa.has_stream {
        Regime::Streaming
    } else {
        Regime::Pipeline
    }
}
