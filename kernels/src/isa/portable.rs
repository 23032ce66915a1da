//! The portable instruction sets: pulp's `Scalar` (one lane, the scalar
//! backend) and the emulated `Scalar128b`, `Scalar256b`, `Scalar512b` (4,
//! 8 and 16 lanes of plain Rust). The emulated ones state the choices of
//! NEON, AVX2 and AVX-512 respectively, so that the tests run those
//! instruction sets' lane, tail, loop-shape and regime logic on any CPU
//! (not their intrinsics: the exps here are the portable polynomial, the
//! reductions butterflies, the stores plain).

use super::Isa;
use pulp::{Scalar, Scalar128b, Scalar256b, Scalar512b};

/// One lane, plain Rust arithmetic: every default, but no short-row
/// regime (its "rows of up to four vectors" are rows of up to 4 floats).
impl Isa for Scalar {
    const NAME: &'static str = "scalar";
    const SHORT_ROWS: bool = false;
    type Narrow = Scalar;
    #[inline(always)]
    fn narrow(self) -> Scalar {
        self
    }
}

/// NEON's shape (4 lanes) and choices: every default.
impl Isa for Scalar128b {
    const NAME: &'static str = "portable4";
    type Narrow = Scalar128b;
    #[inline(always)]
    fn narrow(self) -> Scalar128b {
        self
    }
}

/// AVX2's shape (8 lanes) and choices: four pairs per sweep iteration, the
/// sweep not fused (16 registers), streaming stores (plain here).
impl Isa for Scalar256b {
    const NAME: &'static str = "portable8";
    const SWEEP_PAIRS: usize = 4;
    const FUSED_SWEEP: bool = false;
    const HAS_STREAM: bool = true;
    type Narrow = Scalar256b;
    #[inline(always)]
    fn narrow(self) -> Scalar256b {
        self
    }
}

/// AVX-512's shape (16 lanes) and choices: four pairs per sweep iteration,
/// no minimum in the ranges, pipelined short rows, streaming stores (plain
/// here), stores prefetched ahead (a no-op here), rows of at most 8 on the
/// 8-lane twin.
impl Isa for Scalar512b {
    const NAME: &'static str = "portable16";
    const SWEEP_PAIRS: usize = 4;
    const TRACK_MIN: bool = false;
    const PIPELINE_SHORT: bool = true;
    const HAS_STREAM: bool = true;
    const STORE_AHEAD: usize = 512;
    const NARROW_MAX: usize = 8;
    type Narrow = Scalar256b;
    #[inline(always)]
    fn narrow(self) -> Scalar256b {
        Scalar256b
    }
}
