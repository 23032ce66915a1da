//! NEON (pulp `Neon`, 4 lanes): every default of [`Isa`] (the polynomial
//! exp, butterfly reductions, plain stores, one pair per sweep iteration).
//! Tested under QEMU user mode, where it cannot be timed, so nothing here
//! is tuned yet.

use super::Isa;
use pulp::aarch64::Neon;

impl Isa for Neon {
    const NAME: &'static str = "neon";
    type Narrow = Neon;
    #[inline(always)]
    fn narrow(self) -> Neon {
        self
    }
}
