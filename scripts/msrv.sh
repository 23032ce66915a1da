#!/usr/bin/env bash
# Checks the minimum supported Rust version, `rust-version` in both
# manifests: the two library crates (simd-softmax, simd-softmax-kernels)
# type-check with that toolchain with default features, with `rayon`, and
# without default features (no `asm`).
#
# Only the libraries: the dev-dependencies (criterion, rten-vecmath, ...)
# need a newer Rust, so the tests, benches and examples are not held to the
# MSRV. 1.89 is the floor: with 1.88, bytemuck's AVX-512 code, which pulp's
# `x86-v4` feature turns on, does not compile.
#
#   scripts/msrv.sh      # own target dir: target/msrv, or $MSRV_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' Cargo.toml)
kernels_msrv=$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' kernels/Cargo.toml)
if [ -z "$msrv" ] || [ "$msrv" != "$kernels_msrv" ]; then
    echo "error: rust-version: '$msrv' in Cargo.toml, '$kernels_msrv' in kernels/Cargo.toml" >&2
    exit 1
fi

rustup toolchain install "$msrv" --profile minimal
export CARGO_TARGET_DIR=${MSRV_TARGET_DIR:-target/msrv}
libs=(--lib -p simd-softmax -p simd-softmax-kernels -p simd-softmax-capi)
echo "MSRV $msrv: $(cargo +"$msrv" --version), $(rustc +"$msrv" --version)"
checked=()
for features in "" "--features simd-softmax/rayon" "--no-default-features"; do
    echo "==> cargo +$msrv check --locked ${libs[*]} $features"
    # shellcheck disable=SC2086 # $features: zero or two words
    cargo +"$msrv" check --locked "${libs[@]}" $features
    checked+=("${features:-default features}")
done
echo "MSRV $msrv: simd-softmax, simd-softmax-kernels and simd-softmax-capi (lib) check with:"
printf '  %s\n' "${checked[@]}"
echo "in $((SECONDS - start)) s"
