//! NEON (pulp `Neon`, 4 lanes): every default of [`Isa`] (the polynomial
//! exp, butterfly reductions, plain stores, one pair per sweep iteration)
//! but the half-precision conversions: `f16` by `fcvtl`/`fcvtn` (base
//! ARMv8 instructions; their intrinsics take Rust's `f16` type, newer than
//! the crate's MSRV, so they are `asm!`), `bf16` by integer widening and
//! round-to-nearest-even narrowing. Tested under QEMU user mode, where it
//! cannot be timed, so nothing here is tuned yet.

use super::Isa;
use crate::convert::{Format, HalfFormat};
use core::arch::aarch64::{
    float32x4_t, uint16x8_t, uint32x4_t, vaddq_u32, vandq_u32, vbslq_u32, vcgtq_u32, vdupq_n_u32,
    vget_low_u16, vmovl_high_u16, vmovl_u16, vmovn_high_u32, vmovn_u32, vorrq_u32, vshlq_n_u32,
    vshrq_n_u32,
};
use pulp::aarch64::Neon;

/// Reinterprets one 128-bit register as another type.
#[inline(always)]
fn bits<A: Copy, B: Copy>(a: A) -> B {
    const { assert!(core::mem::size_of::<A>() == 16 && core::mem::size_of::<B>() == 16) };
    // SAFETY: both are 16 bytes of plain data (asserted above), every bit
    // pattern valid.
    unsafe { core::mem::transmute_copy(&a) }
}

/// 4 `bf16` bit patterns (zero-extended to 32 bits) to f32, NaN quieted.
#[inline(always)]
fn widen_bf16(w: uint32x4_t) -> pulp::f32x4 {
    // SAFETY: NEON is a baseline feature of aarch64; register-only.
    unsafe {
        let nan = vcgtq_u32(vandq_u32(w, vdupq_n_u32(0x7fff)), vdupq_n_u32(0x7f80));
        let w = vorrq_u32(w, vandq_u32(nan, vdupq_n_u32(0x0040)));
        bits(vshlq_n_u32::<16>(w))
    }
}

/// The integer round-to-nearest-even of 4 f32 lanes to `bf16`, in the low
/// half of each 32-bit lane (NaN quieted).
#[inline(always)]
fn bf16_round(v: pulp::f32x4) -> uint32x4_t {
    // SAFETY: NEON is a baseline feature of aarch64; register-only.
    unsafe {
        let v: uint32x4_t = bits(v);
        let lsb = vandq_u32(vshrq_n_u32::<16>(v), vdupq_n_u32(1));
        let up = vaddq_u32(vaddq_u32(v, vdupq_n_u32(0x7fff)), lsb);
        let nan = vcgtq_u32(
            vandq_u32(v, vdupq_n_u32(0x7fff_ffff)),
            vdupq_n_u32(0x7f80_0000),
        );
        let quiet = vorrq_u32(vshrq_n_u32::<16>(v), vdupq_n_u32(0x40));
        vbslq_u32(nan, quiet, vshrq_n_u32::<16>(up))
    }
}

impl Isa for Neon {
    const NAME: &'static str = "neon";
    type Narrow = Neon;
    #[inline(always)]
    fn narrow(self) -> Neon {
        self
    }

    #[inline(always)]
    fn convert_level<H: HalfFormat>(self) -> u8 {
        1
    }

    #[inline(always)]
    unsafe fn widen2<H: HalfFormat, const LEVEL: u8>(
        self,
        v: pulp::f32x4,
    ) -> (pulp::f32x4, pulp::f32x4) {
        let v: uint16x8_t = bits(v);
        // SAFETY: NEON is present (the token); register-only operations.
        unsafe {
            if let Format::Bf16 = H::FORMAT {
                (
                    widen_bf16(vmovl_u16(vget_low_u16(v))),
                    widen_bf16(vmovl_high_u16(v)),
                )
            } else {
                let (lo, hi): (float32x4_t, float32x4_t);
                core::arch::asm!(
                    "fcvtl {lo:v}.4s, {v:v}.4h",
                    "fcvtl2 {hi:v}.4s, {v:v}.8h",
                    v = in(vreg) v, lo = out(vreg) lo, hi = out(vreg) hi,
                    options(pure, nomem, nostack, preserves_flags));
                (bits(lo), bits(hi))
            }
        }
    }

    #[inline(always)]
    unsafe fn narrow2<H: HalfFormat, const LEVEL: u8>(
        self,
        a: pulp::f32x4,
        b: pulp::f32x4,
    ) -> pulp::f32x4 {
        // SAFETY: NEON is present (the token); register-only operations.
        unsafe {
            if let Format::Bf16 = H::FORMAT {
                bits(vmovn_high_u32(vmovn_u32(bf16_round(a)), bf16_round(b)))
            } else {
                // The caller's FPCR rounding mode is round-to-nearest inside
                // every kernel call (`crate::fpenv`).
                let (a, b): (float32x4_t, float32x4_t) = (bits(a), bits(b));
                let out: uint16x8_t;
                core::arch::asm!(
                    "fcvtn {o:v}.4h, {a:v}.4s",
                    "fcvtn2 {o:v}.8h, {b:v}.4s",
                    a = in(vreg) a, b = in(vreg) b, o = out(vreg) out,
                    options(pure, nomem, nostack, preserves_flags));
                bits(out)
            }
        }
    }
}
