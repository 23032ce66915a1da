//! The caller's floating-point environment. Every kernel call runs in
//! round-to-nearest: the exps' range reduction (the add-a-magic-number
//! rounding) and their polynomials are derived for it, and under a caller's
//! directed rounding mode they would be off by tens of ULP. [`Nearest`]
//! reads the control register once per call (a few instructions) and only
//! when the mode is not round-to-nearest does it switch to it for the call
//! and switch back on the way out. Flush-to-zero and denormals-are-zero
//! are left as the caller set them (the kernels are correct under both).

/// Round-to-nearest for the lifetime of the value (restoring the caller's
/// mode when dropped), or nothing where the mode already is.
///
/// ```
/// use simd_softmax_kernels::fpenv::Nearest;
/// // In the default environment there is nothing to switch.
/// assert!(Nearest::enter().is_none());
/// ```
#[must_use = "the mode is restored when the guard drops"]
pub struct Nearest {
    #[allow(dead_code)]
    saved: usize,
}

impl Nearest {
    /// Switches to round-to-nearest if the caller's mode is another one.
    #[inline(always)]
    pub fn enter() -> Option<Nearest> {
        let saved = read();
        if saved & RC_MASK == 0 {
            return None;
        }
        write(saved & !RC_MASK);
        Some(Nearest { saved })
    }
}

impl Drop for Nearest {
    #[inline(always)]
    fn drop(&mut self) {
        write(self.saved);
    }
}

/// MXCSR's rounding-control field (bits 13–14; 0 is to-nearest).
#[cfg(target_arch = "x86_64")]
const RC_MASK: usize = 0x6000;

/// FPCR's RMode field (bits 22–23; 0 is to-nearest).
#[cfg(target_arch = "aarch64")]
const RC_MASK: usize = 0xc0_0000;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const RC_MASK: usize = 0;

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read() -> usize {
    let mut csr = 0u32;
    // SAFETY: `stmxcsr` stores the 4-byte MXCSR to `csr`, nothing else
    // (SSE, baseline on x86-64).
    unsafe {
        core::arch::asm!("stmxcsr [{p}]", p = in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr as usize
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn write(csr: usize) {
    let csr = csr as u32;
    // SAFETY: `ldmxcsr` loads MXCSR from `csr`, a value read from MXCSR
    // with at most its rounding field cleared (valid bits only). The asm
    // is ordered against memory (no `nomem`), so the kernel's loads and
    // stores, and the arithmetic on what they load, stay between the
    // switch and the switch back.
    unsafe {
        core::arch::asm!("ldmxcsr [{p}]", p = in(reg) &csr, options(nostack, preserves_flags));
    }
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn read() -> usize {
    let fpcr: usize;
    // SAFETY: reading FPCR has no effect.
    unsafe { core::arch::asm!("mrs {r}, fpcr", r = out(reg) fpcr, options(nomem, nostack)) };
    fpcr
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn write(fpcr: usize) {
    // SAFETY: writes back a value read from FPCR with at most its rounding
    // field cleared. Ordered against memory as on x86-64.
    unsafe { core::arch::asm!("msr fpcr, {r}", r = in(reg) fpcr, options(nostack)) };
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn read() -> usize {
    0
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn write(_: usize) {}
