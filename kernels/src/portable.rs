//! Portable kernels: [`scalar`] (the scalar backend, one lane) and the
//! emulated multi-lane ones (pulp's `Scalar128b`, `Scalar256b`,
//! `Scalar512b`: 4, 8 and 16 lanes of plain Rust), which run everywhere and
//! make NEON's, AVX2's and AVX-512's choices (`crate::isa::portable`), so
//! tests can exercise that logic on a CPU that lacks the instruction set.
//! The emulated ones are not fast; not a production backend.
//!
//! With the `dyn` feature, `DynKernel` and `lanes16_dyn` give the
//! 16-lane kernel behind a trait object whose code is generated once, in
//! this crate. A caller that uses [`Kernel`]'s generic methods directly
//! instantiates the whole kernel in its own crate instead: every test binary
//! of `simd-softmax` did that for 4, 8 and 16 lanes, and LLVM spent over ten
//! minutes of `cargo test`'s build on it (each emulated op is a loop over
//! the lanes, which LLVM unrolls and re-vectorizes through every inlined
//! row path: 4 lanes took about 5 minutes, 16 lanes about 4, at opt-level 1).
//! Only the 16-lane kernel is offered that way: AVX-512 is the one lane shape
//! a CPU here may lack (AVX2 runs on every x86-64 machine we test on, NEON
//! runs under qemu-aarch64).

use crate::Kernel;
use pulp::{Scalar, Scalar128b, Scalar256b, Scalar512b};

/// One lane: the scalar backend.
#[inline]
pub fn scalar() -> Kernel<Scalar> {
    Kernel::from_simd(Scalar::new())
}

/// 4 portable lanes (NEON's shape).
#[inline]
pub fn lanes4() -> Kernel<Scalar128b> {
    Kernel::from_simd(Scalar128b)
}

/// 8 portable lanes (AVX2's shape).
#[inline]
pub fn lanes8() -> Kernel<Scalar256b> {
    Kernel::from_simd(Scalar256b)
}

/// 16 portable lanes (AVX-512's shape).
#[inline]
pub fn lanes16() -> Kernel<Scalar512b> {
    Kernel::from_simd(Scalar512b)
}

#[cfg(feature = "dyn")]
pub use self::dyn_kernel::{DynKernel, lanes16_dyn};

#[cfg(feature = "dyn")]
mod dyn_kernel {
    use crate::isa::Isa;
    use crate::{Anchor, Kernel};
    use pulp::Scalar512b;

    /// Every [`Kernel`] entry point, object-safe; the methods are the
    /// kernel's own (same names, same panics on mismatched lengths).
    ///
    /// ```
    /// let k = simd_softmax_kernels::portable::lanes16_dyn();
    /// let mut y = [0.0f32; 3];
    /// k.softmax(&[1.0, 2.0, 3.0], &mut y);
    /// assert_eq!(k.lanes(), 16);
    /// assert!((y.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    /// ```
    #[allow(missing_docs)]
    pub trait DynKernel: Sync {
        /// f32 lanes per vector.
        fn lanes(&self) -> usize;
        fn softmax(&self, input: &[f32], output: &mut [f32]);
        fn softmax_in_place(&self, data: &mut [f32]);
        fn log_softmax(&self, input: &[f32], output: &mut [f32]);
        fn log_softmax_in_place(&self, data: &mut [f32]);
        fn logsumexp(&self, input: &[f32]) -> f32;
        fn softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize);
        fn softmax_rows_in_place(&self, data: &mut [f32], row_len: usize);
        fn log_softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize);
        fn log_softmax_rows_in_place(&self, data: &mut [f32], row_len: usize);
        fn softmax_scaled(&self, input: &[f32], output: &mut [f32], alpha: f32);
        fn softmax_scaled_rows(
            &self,
            input: &[f32],
            output: &mut [f32],
            row_len: usize,
            alpha: f32,
        );
        fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]);
        fn jacobian(&self, y: &[f32], out: &mut [f32]);
        fn logits_from_probs(&self, p: &[f32], out: &mut [f32], anchor: Anchor);
        fn softmax_of_combination(&self, terms: &[(f32, &[f32])], output: &mut [f32]);
        fn sigmoid(&self, input: &[f32], output: &mut [f32]);
        fn attention_softmax(
            &self,
            o: &crate::attention::AttentionOptions<'_>,
            sh: crate::attention::AttentionShape,
            scores: crate::Elems<'_>,
            output: crate::ElemsMut<'_>,
        );
    }

    impl<S: Isa + Sync> DynKernel for Kernel<S> {
        fn lanes(&self) -> usize {
            Self::LANES
        }
        fn softmax(&self, input: &[f32], output: &mut [f32]) {
            Kernel::softmax(*self, input, output)
        }
        fn softmax_in_place(&self, data: &mut [f32]) {
            Kernel::softmax_in_place(*self, data)
        }
        fn log_softmax(&self, input: &[f32], output: &mut [f32]) {
            Kernel::log_softmax(*self, input, output)
        }
        fn log_softmax_in_place(&self, data: &mut [f32]) {
            Kernel::log_softmax_in_place(*self, data)
        }
        fn logsumexp(&self, input: &[f32]) -> f32 {
            Kernel::logsumexp(*self, input)
        }
        fn softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize) {
            Kernel::softmax_rows(*self, input, output, row_len)
        }
        fn softmax_rows_in_place(&self, data: &mut [f32], row_len: usize) {
            Kernel::softmax_rows_in_place(*self, data, row_len)
        }
        fn log_softmax_rows(&self, input: &[f32], output: &mut [f32], row_len: usize) {
            Kernel::log_softmax_rows(*self, input, output, row_len)
        }
        fn log_softmax_rows_in_place(&self, data: &mut [f32], row_len: usize) {
            Kernel::log_softmax_rows_in_place(*self, data, row_len)
        }
        fn softmax_scaled(&self, input: &[f32], output: &mut [f32], alpha: f32) {
            Kernel::softmax_scaled(*self, input, output, alpha)
        }
        fn softmax_scaled_rows(
            &self,
            input: &[f32],
            output: &mut [f32],
            row_len: usize,
            alpha: f32,
        ) {
            Kernel::softmax_scaled_rows(*self, input, output, row_len, alpha)
        }
        fn softmax_backward(&self, y: &[f32], dy: &[f32], dx: &mut [f32]) {
            Kernel::softmax_backward(*self, y, dy, dx)
        }
        fn jacobian(&self, y: &[f32], out: &mut [f32]) {
            Kernel::jacobian(*self, y, out)
        }
        fn logits_from_probs(&self, p: &[f32], out: &mut [f32], anchor: Anchor) {
            Kernel::logits_from_probs(*self, p, out, anchor)
        }
        fn softmax_of_combination(&self, terms: &[(f32, &[f32])], output: &mut [f32]) {
            Kernel::softmax_of_combination(*self, terms, output)
        }
        fn sigmoid(&self, input: &[f32], output: &mut [f32]) {
            Kernel::sigmoid(*self, input, output)
        }
        fn attention_softmax(
            &self,
            o: &crate::attention::AttentionOptions<'_>,
            sh: crate::attention::AttentionShape,
            scores: crate::Elems<'_>,
            output: crate::ElemsMut<'_>,
        ) {
            Kernel::attention_softmax(*self, o, sh, scores, output)
        }
    }

    static LANES16: Kernel<Scalar512b> = Kernel::from_simd(Scalar512b);

    /// [`super::lanes16`] behind [`DynKernel`].
    pub fn lanes16_dyn() -> &'static dyn DynKernel {
        &LANES16
    }
}
