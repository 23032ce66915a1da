//! The element types of the softmax-shaped functions: [`Element`], sealed,
//! implemented for `f32`, [`half::f16`] and [`half::bf16`]. Inputs and
//! outputs take any of them, independently; the arithmetic is f32 and a
//! half output is the f32 result rounded once, to nearest even.

use half::slice::HalfFloatSliceExt;
use half::{bf16, f16};
use simd_softmax_kernels::{Elems, ElemsMut};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// An element type the softmax-shaped functions read and write: `f32`,
/// [`half::f16`] or [`half::bf16`] (the `half` crate's types, as candle,
/// burn and ort use them). Sealed: the three are all there is.
///
/// A half input is widened exactly; a half output is the f32 result rounded
/// once to nearest even (NaN stays a quiet NaN), so it equals the f32
/// output of the same call converted with `half`'s `from_f32`, bit for bit.
///
/// ```
/// use half::bf16;
/// use simd_softmax::{softmax, Element};
/// let logits: Vec<bf16> = [1.0f32, 2.0, 3.0].iter().map(|&v| bf16::from_f32(v)).collect();
/// let mut probs = [0.0f32; 3];                  // bf16 in, f32 out
/// softmax(&logits, &mut probs)?;
/// assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
/// assert_eq!(<bf16 as Element>::NAME, "bf16");
/// # Ok::<(), simd_softmax::Error>(())
/// ```
pub trait Element: sealed::Sealed + Copy + Send + Sync + 'static {
    /// The type's short name: `"f32"`, `"f16"` or `"bf16"`.
    const NAME: &'static str;

    /// The slice as the kernels take it.
    #[doc(hidden)]
    fn elems(x: &[Self]) -> Elems<'_>;

    /// The mutable slice as the kernels take it.
    #[doc(hidden)]
    fn elems_mut(x: &mut [Self]) -> ElemsMut<'_>;
}

impl Element for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn elems(x: &[f32]) -> Elems<'_> {
        Elems::F32(x)
    }
    #[inline(always)]
    fn elems_mut(x: &mut [f32]) -> ElemsMut<'_> {
        ElemsMut::F32(x)
    }
}

impl Element for f16 {
    const NAME: &'static str = "f16";
    #[inline(always)]
    fn elems(x: &[f16]) -> Elems<'_> {
        Elems::F16(x.reinterpret_cast())
    }
    #[inline(always)]
    fn elems_mut(x: &mut [f16]) -> ElemsMut<'_> {
        ElemsMut::F16(x.reinterpret_cast_mut())
    }
}

impl Element for bf16 {
    const NAME: &'static str = "bf16";
    #[inline(always)]
    fn elems(x: &[bf16]) -> Elems<'_> {
        Elems::Bf16(x.reinterpret_cast())
    }
    #[inline(always)]
    fn elems_mut(x: &mut [bf16]) -> ElemsMut<'_> {
        ElemsMut::Bf16(x.reinterpret_cast_mut())
    }
}
