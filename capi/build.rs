//! Build script of the C ABI: gives the shared library its soname,
//! `libsimd_softmax.so.<ABI>`, where the ABI version is the crate's major
//! version, or `0.<minor>` before 1.0 (a 0.x minor release may break the
//! ABI, as it may break the Rust API). `scripts/capi.sh` installs the
//! library under that name.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let abi = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" || os == "android" || os == "freebsd" {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-soname,libsimd_softmax.so.{abi}");
    }
}
