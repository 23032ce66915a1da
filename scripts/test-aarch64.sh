#!/usr/bin/env bash
# Cross-compiles the workspace for aarch64-unknown-linux-gnu and runs its lib,
# integration and doc tests under QEMU user mode: the NEON backend on x86-64.
# Debian (bookworm) only; apt-installs what is missing (as root, or sudo).
#   scripts/test-aarch64.sh [test-name filter]   # passed to every cargo test
#   SIMD_SOFTMAX_BACKEND=scalar / SIMD_SOFTMAX_TEST_QUICK=0 reach the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n--> [aarch64 %4ss] %s\n' "$((SECONDS - start))" "$*"; }
T=aarch64-unknown-linux-gnu

# 1. Debian's rustc with its arm64 std (rustup's stable has no aarch64 std
# without a download), the cross linker + libc, qemu and its binfmt entry.
pkgs=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
      libc6-dev-arm64-cross qemu-user qemu-user-binfmt)
missing=(); for p in "${pkgs[@]}"; do   # dpkg -s also passes for removed-not-purged
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
    step "apt-get install ${missing[*]}"
    sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    dpkg --print-foreign-architectures | grep -qx arm64 || "${sudo[@]}" dpkg --add-architecture arm64
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 \
        "${missing[@]}" >/dev/null
fi

# 2. Toolchain. rustup's `rustc` shadows Debian's on PATH: name it. Prefer
# Debian's cargo (same release); edition 2024 and the v4 Cargo.lock need
# cargo >= 1.85, so an older one is replaced by rustup's cargo driving
# Debian's rustc (cargo only resolves and schedules; $RUSTC compiles).
ver() { "$1" --version | awk '{split($2, v, "."); print v[1] * 1000 + v[2]}'; }
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
(($(ver $RUSTC) >= 1089)) || { echo "error: $($RUSTC --version) is older than 1.89, the crates' rust-version" >&2; exit 1; }
cargo=/usr/bin/cargo
(($(ver $cargo) >= 1085)) || cargo=$(command -v cargo)
# Own target dir: no lock or cache fights with the host (rustup) builds.
export CARGO_TARGET_DIR=${AARCH64_TARGET_DIR:-target/aarch64-debian}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
# Run on the multiarch libc6:arm64 (pulled in by the arm64 std), NOT with
# `-L /usr/aarch64-linux-gnu`: that ld.so (libc6-arm64-cross) loads the other
# libc.so.6 via ld.so.cache and the mismatched pair spins forever in the
# first pthread_create. The env var, unlike -L, reaches re-exec'd children.
export QEMU_LD_PREFIX=/
# Tests that re-run their own binary need binfmt_misc to start aarch64 ELFs.
bf=/proc/sys/fs/binfmt_misc
if [ ! -e $bf/qemu-aarch64 ] && [ "$(id -u)" = 0 ]; then
    mountpoint -q $bf || mount -t binfmt_misc binfmt_misc $bf 2>/dev/null || true
    cat /usr/lib/binfmt.d/qemu-aarch64.conf >$bf/register 2>/dev/null || true
fi
[ -e $bf/qemu-aarch64 ] || echo "warning: no aarch64 binfmt: tests that re-exec themselves fail" >&2
# qemu is tens of times slower: default to the suite's quick mode (fewer
# input families on long rows, no portable kernels; every backend and length).
export SIMD_SOFTMAX_TEST_QUICK=${SIMD_SOFTMAX_TEST_QUICK:-1}
step "$($cargo --version) | $($RUSTC --version) | qemu $(qemu-aarch64 --version | awk 'NR==1{print $3}')" \
     "| SIMD_SOFTMAX_BACKEND=${SIMD_SOFTMAX_BACKEND-} SIMD_SOFTMAX_TEST_QUICK=$SIMD_SOFTMAX_TEST_QUICK"

# 3. Build the lib, integration tests and examples, run lib + integration
# tests, then doc tests (cargo >= 1.89 runs cross doctests through the
# runner; older cargo needs unstable -Zdoctest-xcompile). Failures are
# recorded and later steps still run.
failed=()
# (Benches are not run under qemu, so not built: clippy type-checks them.)
step "cargo test --lib --bins --tests --examples --no-run"
$cargo test -q --workspace --target $T --lib --bins --tests --examples --no-run
step "cargo test --lib --bins --tests $*"
$cargo test --workspace --target $T --no-fail-fast --lib --bins --tests "$@" || failed+=(tests)
if (($(ver $cargo) >= 1089)); then
    step "cargo test --doc $*"
    $cargo test --workspace --target $T --no-fail-fast --doc "$@" || failed+=(doctests)
else
    step "doc tests skipped: $($cargo --version) cannot run cross-compiled doctests"
fi

# 4. Show, and insist, that this build detects and runs NEON.
log=$(mktemp); trap 'rm -f "$log"' EXIT
if grep -qs 'fn backends_report' tests/differential.rs; then
    step "backends_report"
    $cargo test -q --target $T --test differential backends_report -- --exact --nocapture 2>&1 | tee -a "$log" || failed+=(backends_report)
fi
if [ -f examples/quickstart.rs ]; then
    step "cargo run --example quickstart"
    $cargo run -q --target $T --example quickstart 2>&1 | tee -a "$log" || failed+=(quickstart)
fi
grep -Eq 'detected: neon|detect\(\) +neon' "$log" || failed+=("NEON detection (not shown above)")
((${#failed[@]} == 0)) || { step "aarch64 FAILED: ${failed[*]}"; exit 1; }
step "aarch64 tests passed in $((SECONDS - start)) s"
