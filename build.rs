//! Build script: derives cfgs from the *target* (never the build host's CPU)
//! and declares them for `check-cfg`.
//!
//! `simd_softmax_has_simd_backend`: the target has a SIMD kernel besides
//! scalar (x86-64: AVX2/AVX-512; aarch64: NEON), used by the tests to insist
//! that such a target actually detects one.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(simd_softmax_has_simd_backend)");
    println!("cargo::rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch == "x86_64" || arch == "aarch64" {
        println!("cargo::rustc-cfg=simd_softmax_has_simd_backend");
    }
}
