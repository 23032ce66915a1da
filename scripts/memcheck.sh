#!/usr/bin/env bash
# valgrind memcheck over the x86-64 test binaries: invalid reads/writes,
# uses of uninitialized values and leaks in the kernels and the safe API.
#
# valgrind cannot execute AVX-512. Its virtual CPU does not report AVX-512
# through CPUID, so `Backend::Avx512` is simply unavailable under valgrind
# and every test that iterates `Backend::ALL` skips it (and says so); our
# own tests also skip it explicitly when SIMD_SOFTMAX_UNDER_VALGRIND is set,
# in case a valgrind version reports it. SIMD_SOFTMAX_BACKEND=avx2 forces the
# free functions onto the AVX2 kernel. The FP-environment tests
# (hostile_fp) are not run: valgrind ignores MXCSR's FTZ/DAZ/rounding bits.
#
# What runs (about 2-4 minutes on 2 cores, after the build):
#   guard_pages, concurrency (fewer rounds under valgrind), no_alloc: whole;
#   differential: in its quick mode (SIMD_SOFTMAX_TEST_QUICK=1), without
#   the 2^24-element row (tens of minutes under valgrind).
# Usage: scripts/memcheck.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null 2>&1; then
    echo "memcheck.sh: installing valgrind"
    apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
fi
valgrind --version

export SIMD_SOFTMAX_UNDER_VALGRIND=1
export SIMD_SOFTMAX_BACKEND=avx2
if ! grep -qw avx2 /proc/cpuinfo; then
    unset SIMD_SOFTMAX_BACKEND
fi

# Build every test binary and collect "name path" pairs.
list="$(mktemp)"
trap 'rm -f "$list"' EXIT
cargo test --all-features --no-run --message-format=json 2>/dev/null |
    grep '"executable":"/' |
    sed -E 's/.*"target":\{[^}]*"name":"([^"]+)".*"executable":"([^"]+)".*/\1 \2/' >"$list"

binary() { awk -v n="$1" '$1 == n { print $2; exit }' "$list"; }

vg=(valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
    --errors-for-leak-kinds=definite --show-leak-kinds=definite -q)

failed=()
run() {
    local name="$1"
    shift
    local bin
    bin="$(binary "$name")"
    if [ -z "$bin" ]; then
        echo "memcheck.sh: no test binary '$name', skipped"
        return
    fi
    echo "==> memcheck $name $*"
    local t0=$SECONDS
    if "${vg[@]}" "$bin" --test-threads=2 "$@"; then
        echo "    $name: clean ($((SECONDS - t0)) s)"
    else
        echo "memcheck.sh: $name FAILED" >&2
        failed+=("$name")
    fi
}

run guard_pages
run no_alloc
run concurrency
# The differential suite in its quick mode (every length, backend and
# special-value case; fewer families on long rows), without the 2^24-element row.
SIMD_SOFTMAX_TEST_QUICK=1 run differential --skip row_of_2_pow_24

if [ ${#failed[@]} -gt 0 ]; then
    echo "memcheck.sh: errors in: ${failed[*]}" >&2
    exit 1
fi
echo "memcheck.sh: no memcheck errors"
