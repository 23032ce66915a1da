//! The caller's floating-point environment. Every kernel call computes in
//! the default environment: round-to-nearest-even, subnormals neither
//! flushed nor read as zero. Whatever rounding mode and flush bits the
//! caller set (x86-64 MXCSR: the rounding control, flush-to-zero and
//! denormals-are-zero; aarch64 FPCR: RMode and flush-to-zero, FZ), a call
//! returns bit for bit what it returns in the default environment, and the
//! caller's register is restored bit for bit on the way out.
//!
//! Why: the exps' range reduction (the add-a-magic-number rounding) and
//! their polynomials are derived for round-to-nearest, and under a
//! directed mode they would be off by tens of ULP; with FTZ set every
//! result whose exact value is subnormal would be returned as 0 (e.g. the
//! −87 entry of a row of 1,024 zeros and one −87, about 1.6e-41), and with
//! DAZ set subnormal inputs, probabilities and a subnormal `softmax_scaled`
//! α would read as 0 (α read as 0 made a masked entry's `−∞·0` a NaN).
//! One environment for every call also makes the results independent of
//! the thread that computes them: the multi-threaded functions' worker
//! threads do not share the caller's register.
//!
//! [`DefaultEnv`] reads the control register once per call (a few
//! instructions) and only where one of those fields is not its default
//! does it write the register, for the call and back on the way out; in
//! the default environment the cost is the read and one test. The
//! register's exception flags (MXCSR bits 0–5) are status, not control:
//! where a call switched, the flags it raised are dropped with the
//! restore; where it did not, they stay raised.

/// The default floating-point environment for the lifetime of the value
/// (restoring the caller's register when dropped), or nothing where the
/// register already is in it.
///
/// ```
/// use simd_softmax_kernels::fpenv::DefaultEnv;
/// // In the default environment there is nothing to switch.
/// assert!(DefaultEnv::enter().is_none());
/// ```
#[must_use = "the caller's environment is restored when the guard drops"]
pub struct DefaultEnv {
    #[allow(dead_code)]
    saved: usize,
}

impl DefaultEnv {
    /// Switches to the default environment if the caller's register has
    /// another rounding mode or a flush bit set.
    #[inline(always)]
    pub fn enter() -> Option<DefaultEnv> {
        let saved = read();
        if saved & ENV_MASK == 0 {
            return None;
        }
        write(saved & !ENV_MASK);
        Some(DefaultEnv { saved })
    }
}

impl Drop for DefaultEnv {
    #[inline(always)]
    fn drop(&mut self) {
        write(self.saved);
    }
}

/// MXCSR's fields that change results: rounding control (bits 13–14; 0 is
/// to-nearest), flush-to-zero (bit 15) and denormals-are-zero (bit 6).
#[cfg(target_arch = "x86_64")]
const ENV_MASK: usize = 0x6000 | 1 << 15 | 1 << 6;

/// FPCR's fields that change results: RMode (bits 22–23; 0 is to-nearest)
/// and flush-to-zero (FZ, bit 24; it also reads subnormal inputs as zero).
#[cfg(target_arch = "aarch64")]
const ENV_MASK: usize = 0xc0_0000 | 1 << 24;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ENV_MASK: usize = 0;
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
    // with at most its rounding, FTZ and DAZ fields cleared (valid bits
    // only). The asm is ordered against memory (no `nomem`), so the
    // kernel's loads and stores, and the arithmetic on what they load,
    // stay between the switch and the switch back.
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
    // SAFETY: writes back a value read from FPCR with at most its RMode
    // and FZ fields cleared. Ordered against memory as on x86-64.
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
