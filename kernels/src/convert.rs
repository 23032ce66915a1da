//! The half-precision formats and their conversions to and from f32, one
//! element at a time: the portable, bit-exact definition that every
//! instruction set's vector conversion ([`crate::isa::Isa::widen2`],
//! [`crate::isa::Isa::narrow2`]) must reproduce.
//!
//! - **Widening** (`f16`/`bf16` → f32) is exact. A NaN stays a NaN with its
//!   sign and payload, quieted (the f32 quiet bit set), as the hardware
//!   conversions do.
//! - **Narrowing** (f32 → `f16`/`bf16`) rounds to nearest, ties to even,
//!   whatever the caller's rounding mode; values beyond the format's
//!   largest finite value round to `±∞` exactly where round-to-nearest says
//!   so; `f16` results below 2^-14 are subnormal (down to 2^-24), `bf16`
//!   keeps f32's exponent range (its subnormals are f32's, rounded). A NaN
//!   stays a quiet NaN with its sign and the payload's top bits.
//!
//! Everything is integer arithmetic on the bit patterns, so it does not
//! depend on the floating-point environment (rounding mode, flush to
//! zero).

/// A two-byte floating-point format: `f16` (IEEE binary16) or `bf16`
/// (bfloat16, f32's top half). Zero-sized markers, so that a conversion
/// loop is compiled for its format.
///
/// ```
/// use simd_softmax_kernels::convert::{Bf16, F16, HalfFormat};
/// assert_eq!(F16::narrow(1.0), 0x3c00);
/// assert_eq!(Bf16::widen(0x3f80), 1.0);
/// ```
pub trait HalfFormat: Copy + Default + 'static {
    /// The format, as a value.
    const FORMAT: Format;
    /// Exact widening of one element.
    fn widen(h: u16) -> f32;
    /// Round-to-nearest-even narrowing of one element.
    fn narrow(x: f32) -> u16;
}

/// IEEE binary16: 5 exponent bits, 10 mantissa bits.
#[derive(Clone, Copy, Debug, Default)]
pub struct F16;

/// bfloat16: f32's 8 exponent bits, 7 mantissa bits.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bf16;

impl HalfFormat for F16 {
    const FORMAT: Format = Format::F16;
    #[inline(always)]
    fn widen(h: u16) -> f32 {
        f16_to_f32(h)
    }
    #[inline(always)]
    fn narrow(x: f32) -> u16 {
        f32_to_f16(x)
    }
}

impl HalfFormat for Bf16 {
    const FORMAT: Format = Format::Bf16;
    #[inline(always)]
    fn widen(h: u16) -> f32 {
        bf16_to_f32(h)
    }
    #[inline(always)]
    fn narrow(x: f32) -> u16 {
        f32_to_bf16(x)
    }
}

/// An element format of the kernels' inputs and outputs.
///
/// ```
/// use simd_softmax_kernels::convert::Format;
/// assert_eq!(Format::Bf16.bytes(), 2);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// IEEE binary32.
    F32,
    /// IEEE binary16.
    F16,
    /// bfloat16.
    Bf16,
}

impl Format {
    /// Bytes per element.
    pub const fn bytes(self) -> usize {
        match self {
            Format::F32 => 4,
            Format::F16 | Format::Bf16 => 2,
        }
    }

    /// Short name (`"f32"`, `"f16"`, `"bf16"`).
    pub const fn name(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::F16 => "f16",
            Format::Bf16 => "bf16",
        }
    }
}

/// `f16` bits to f32, exactly (NaN quieted).
///
/// ```
/// use simd_softmax_kernels::convert::f16_to_f32;
/// assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // the smallest subnormal
/// assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
/// ```
#[inline(always)]
pub const fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let a = (h & 0x7fff) as u32;
    let bits = if a >= 0x7c00 {
        // ±∞, or NaN with its payload and the quiet bit.
        let quiet = if a > 0x7c00 { 0x0040_0000 } else { 0 };
        0x7f80_0000 | quiet | ((a & 0x03ff) << 13)
    } else if a >= 0x0400 {
        // Normal: rebias the exponent by 127 − 15.
        (a << 13) + ((127 - 15) << 23)
    } else if a == 0 {
        0
    } else {
        // Subnormal `a·2^-24`: normalize its top bit `p` (0..=9).
        let p = 31 - a.leading_zeros();
        ((p + 127 - 24) << 23) | ((a << (23 - p)) & 0x007f_ffff)
    };
    f32::from_bits(sign | bits)
}

/// f32 to `f16` bits, rounded to nearest even.
///
/// ```
/// use simd_softmax_kernels::convert::f32_to_f16;
/// assert_eq!(f32_to_f16(65520.0), 0x7c00); // the tie above 65504 rounds to ∞
/// assert_eq!(f32_to_f16(1e-6), 0x0011);    // subnormal: 17·2^-24
/// ```
#[inline(always)]
pub const fn f32_to_f16(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let a = b & 0x7fff_ffff;
    if a > 0x7f80_0000 {
        // NaN: quiet, the payload's top ten bits.
        return sign | 0x7e00 | ((a >> 13) & 0x03ff) as u16;
    }
    if a >= 0x477f_f000 {
        // At least 65520, the tie between 65504 and 2^16: ∞ (also ∞ itself).
        return sign | 0x7c00;
    }
    if a >= 0x3880_0000 {
        // Normal (≥ 2^-14): rebias, round the 13 dropped bits to even (a
        // carry into the exponent is the correct result).
        let t = a - ((127 - 15) << 23);
        let r = t + 0x0fff + ((t >> 13) & 1);
        return sign | (r >> 13) as u16;
    }
    let e = a >> 23;
    if e < 102 {
        // Below 2^-25, half the smallest subnormal (f32 subnormals too): 0.
        return sign;
    }
    // Subnormal: the significand (hidden bit included) in units of 2^-24.
    let m = (a & 0x007f_ffff) | 0x0080_0000;
    let shift = 126 - e; // 14..=24
    let q = m >> shift;
    let rest = m & ((1 << shift) - 1);
    let half = 1 << (shift - 1);
    let up = rest > half || (rest == half && (q & 1) == 1);
    sign | (q + up as u32) as u16
}

/// `bf16` bits to f32, exactly (NaN quieted).
///
/// ```
/// use simd_softmax_kernels::convert::bf16_to_f32;
/// assert_eq!(bf16_to_f32(0xc000), -2.0);
/// ```
#[inline(always)]
pub const fn bf16_to_f32(h: u16) -> f32 {
    let quiet = if h & 0x7fff > 0x7f80 { 0x0040 } else { 0 };
    f32::from_bits(((h | quiet) as u32) << 16)
}

/// f32 to `bf16` bits, rounded to nearest even.
///
/// ```
/// use simd_softmax_kernels::convert::f32_to_bf16;
/// assert_eq!(f32_to_bf16(1.0 + 1.0 / 256.0), 0x3f80); // a tie: to even
/// assert_eq!(f32_to_bf16(f32::MAX), 0x7f80);          // rounds to ∞
/// ```
#[inline(always)]
pub const fn f32_to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if b & 0x7fff_ffff > 0x7f80_0000 {
        return ((b >> 16) | 0x0040) as u16;
    }
    ((b + 0x7fff + ((b >> 16) & 1)) >> 16) as u16
}
