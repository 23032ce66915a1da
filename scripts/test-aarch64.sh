#!/usr/bin/env bash
# Cross-compiles the workspace's tests for aarch64-unknown-linux-gnu and runs
# them under QEMU user mode, so the NEON backend is exercised on x86-64 CI.
#   scripts/test-aarch64.sh [extra `cargo test` args, e.g. a test filter]
#   SIMD_SOFTMAX_BACKEND=scalar scripts/test-aarch64.sh   # qemu inherits env
#   SIMD_SOFTMAX_TEST_QUICK=0 scripts/test-aarch64.sh     # full-size sweeps
# Needs Debian (bookworm) with apt; installs what is missing (as root, or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { printf '\n--> [aarch64 %4ss] %s\n' "$((SECONDS - start))" "$*"; }

# 1. Packages: Debian's rustc + an arm64 std (rustup's stable has no
# aarch64 std here without a download), the cross linker and libc, qemu.
pkgs=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
      libc6-dev-arm64-cross qemu-user qemu-user-binfmt)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo)
    dpkg --print-foreign-architectures | grep -qx arm64 || "${sudo[@]}" dpkg --add-architecture arm64
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
fi

# 2. Toolchain. rustup's `rustc` shadows Debian's on PATH, so name Debian's
# explicitly. Debian's cargo (same release as its rustc) is preferred; the
# edition-2024 manifests and the v4 Cargo.lock need cargo >= 1.85, so if it
# is older we let rustup's cargo drive Debian's rustc instead (cargo only
# resolves and schedules; every compile goes through $RUSTC).
ver() { "$1" --version | awk '{split($2, v, "."); print v[1] * 1000 + v[2]}'; }
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
(($(ver "$RUSTC") >= 1085)) || { echo "error: $($RUSTC --version) < 1.85 (edition 2024)" >&2; exit 1; }
cargo=/usr/bin/cargo
(($(ver $cargo) >= 1085)) || cargo=$(command -v cargo)
# Own target dir: no lock/cache fights with the host build, and no rebuilds
# from alternating rustc versions.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR_AARCH64:-target/aarch64-debian}
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64
# Run on the multiarch arm64 glibc (libc6:arm64, pulled in by the arm64 std),
# NOT `-L /usr/aarch64-linux-gnu`: that prefix's ld.so (libc6-arm64-cross)
# loads libc.so.6 from /lib/aarch64-linux-gnu via ld.so.cache, and the
# mismatched pair hangs in the first pthread_create. The env var (unlike -L)
# also reaches test binaries that re-exec themselves through binfmt below.
export QEMU_LD_PREFIX=/
# Tests that re-run their own binary (env_override, guard_pages) need the
# kernel to run aarch64 ELFs: register qemu-user-binfmt's entry if missing.
bf=/proc/sys/fs/binfmt_misc
if [ ! -e $bf/qemu-aarch64 ] && [ "$(id -u)" = 0 ]; then
    mountpoint -q $bf || mount -t binfmt_misc binfmt_misc $bf 2>/dev/null || true
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > $bf/register 2>/dev/null || true
fi
[ -e $bf/qemu-aarch64 ] || echo "warning: no aarch64 binfmt; tests that re-exec themselves will fail" >&2
# The differential sweeps are tens of times slower under qemu: default to the
# suite's quick mode (every length, backend and SPEC case; fewer families on
# long rows, no portable kernels, which the native run covers).
export SIMD_SOFTMAX_TEST_QUICK=${SIMD_SOFTMAX_TEST_QUICK:-1}
tgt=(--target aarch64-unknown-linux-gnu)
step "$($cargo --version) / $($RUSTC --version); qemu $(qemu-aarch64 --version | head -1 | awk '{print $3}');" \
     "SIMD_SOFTMAX_BACKEND=${SIMD_SOFTMAX_BACKEND-<unset>} SIMD_SOFTMAX_TEST_QUICK=$SIMD_SOFTMAX_TEST_QUICK"

# 3. Build everything (lib, tests, examples, criterion benches), then run
# lib + integration tests under qemu, then the doc tests (cargo >= 1.89 runs
# cross doctests through the target runner; older cargo would need the
# unstable -Zdoctest-xcompile, so they are skipped there).
step "cargo test --all-targets --no-run"
$cargo test -q --workspace "${tgt[@]}" --all-targets --no-run
step "cargo test --lib --bins --tests $*"
$cargo test --workspace "${tgt[@]}" --lib --bins --tests "$@"
if (($(ver $cargo) >= 1089)); then
    step "cargo test --doc"
    $cargo test --workspace "${tgt[@]}" --doc "$@"
else
    step "doc tests skipped: $($cargo --version) cannot run cross-compiled doctests"
fi

# 4. Show (and insist) that NEON is what this build detects and runs.
log=$(mktemp); trap 'rm -f "$log"' EXIT
if grep -qs 'fn backends_report' tests/differential.rs; then
    step "backends_report"
    $cargo test -q "${tgt[@]}" --test differential backends_report -- --exact --nocapture 2>&1 | tee -a "$log"
fi
if [ -f examples/quickstart.rs ]; then
    step "cargo run --example quickstart"
    $cargo run -q "${tgt[@]}" --example quickstart 2>&1 | tee -a "$log"
fi
grep -Eq 'detected: neon|detect\(\) +neon' "$log" || { echo "error: NEON was not detected under qemu" >&2; exit 1; }

step "aarch64 suite passed in $((SECONDS - start)) s"
