//! What the caller's floating-point environment costs: out-of-place
//! `softmax` / `softmax_rows` on the default backend, once with the
//! thread's control register as the process starts (round-to-nearest, no
//! flushing) and once with flush-to-zero and denormals-are-zero set
//! (x86-64 MXCSR FTZ + DAZ; aarch64 FPCR FZ), as inference engines often
//! run. The register is set around each timed routine and restored after
//! it, so criterion's own arithmetic runs in the default environment.
//!
//! Benchmark IDs:
//! ```text
//! fpenv/<shape>/default     the default environment
//! fpenv/<shape>/ftz_daz     FTZ + DAZ (x86-64), FZ (aarch64); absent elsewhere
//!
//! shape: 1x8, 1x128          one call on one row (the per-call cost shows)
//!        64x4096             a batch of 64 rows of 4096
//!        1x1025-subnormal    one row of 1,024 zeros and one −87: that entry's
//!                            result (about 1.6e-41) is subnormal, so the
//!                            cost of subnormal arithmetic, where a CPU has
//!                            one, shows
//! ```
//!
//! Running (pinned, as the other benchmarks):
//! ```text
//! taskset -c 1 cargo bench --bench fpenv
//! taskset -c 1 cargo bench --bench fpenv -- 'fpenv/1x8/'
//! SIMD_SOFTMAX_BENCH_QUICK=1 cargo bench --bench fpenv      # smoke run
//! SIMD_SOFTMAX_BACKEND=avx2 cargo bench --bench fpenv       # another backend
//! ```
//! Inputs other than the subnormal row are uniform in [−10, 10), seeded.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use simd_softmax::Softmax;
use std::hint::black_box;
use std::time::Duration;

mod common;

fn config() -> Criterion {
    common::config(Duration::from_millis(500), Duration::from_secs(2))
}

/// The thread's FP control register, and the flush bits of this
/// architecture (none where the bench cannot set them).
#[cfg(target_arch = "x86_64")]
mod reg {
    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
    pub const FLUSH: Option<usize> = Some(1 << 15 | 1 << 6);

    pub fn read() -> usize {
        let mut v = 0u32;
        // SAFETY: `stmxcsr` stores the 4-byte MXCSR to a writable local.
        unsafe {
            core::arch::asm!("stmxcsr [{}]", in(reg) &mut v, options(nostack, preserves_flags))
        };
        v as usize
    }

    pub fn write(v: usize) {
        let v = v as u32;
        // SAFETY: `ldmxcsr` loads MXCSR from a local holding a value read
        // from MXCSR with at most FTZ and DAZ set (valid bits only).
        unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &v, options(nostack, preserves_flags)) };
    }
}

#[cfg(target_arch = "aarch64")]
mod reg {
    /// FPCR's flush-to-zero (FZ, bit 24).
    pub const FLUSH: Option<usize> = Some(1 << 24);

    pub fn read() -> usize {
        let v: usize;
        // SAFETY: reading FPCR has no effect.
        unsafe { core::arch::asm!("mrs {}, fpcr", out(reg) v, options(nomem, nostack)) };
        v
    }

    pub fn write(v: usize) {
        // SAFETY: writes a value read from FPCR with at most FZ set.
        unsafe { core::arch::asm!("msr fpcr, {}", in(reg) v, options(nostack)) };
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod reg {
    pub const FLUSH: Option<usize> = None;
    pub fn read() -> usize {
        0
    }
    pub fn write(_: usize) {}
}

/// Runs `f` with `bits` set in the control register, then restores it.
fn with_bits<R>(bits: usize, f: impl FnOnce() -> R) -> R {
    let saved = reg::read();
    reg::write(saved | bits);
    let r = f();
    reg::write(saved);
    r
}

fn bench_fpenv(c: &mut Criterion) {
    let sm = Softmax::new();
    eprintln!("fpenv bench: backend {}", sm.backend());
    if reg::FLUSH.is_none() {
        eprintln!("fpenv bench: no flush bits on this architecture, ftz_daz skipped");
    }
    let mut rng = SmallRng::seed_from_u64(26);
    let mut uniform =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-10.0f32..10.0)).collect() };
    let mut sub = vec![0.0f32; 1025];
    sub[512] = -87.0;
    let shapes: [(&str, Vec<f32>, usize); 4] = [
        ("1x8", uniform(8), 8),
        ("1x128", uniform(128), 128),
        ("64x4096", uniform(64 * 4096), 4096),
        ("1x1025-subnormal", sub, 1025),
    ];
    let mut g = c.benchmark_group("fpenv");
    for (name, x, row_len) in &shapes {
        let mut y = vec![0.0f32; x.len()];
        g.throughput(Throughput::Elements(x.len() as u64));
        let envs = [("default", Some(0)), ("ftz_daz", reg::FLUSH)];
        for (env, bits) in envs {
            let Some(bits) = bits else { continue };
            g.bench_function(format!("{name}/{env}"), |b| {
                with_bits(bits, || {
                    b.iter(|| {
                        sm.softmax_rows(black_box(&x[..]), black_box(&mut y[..]), *row_len)
                            .unwrap()
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_fpenv
}
criterion_main!(benches);
