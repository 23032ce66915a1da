#!/usr/bin/env bash
# Bounded fuzzing of simd-softmax: builds the cargo-fuzz targets in fuzz/
# (nightly toolchain, AddressSanitizer, debug assertions) and runs each for
# N seconds (default 60), starting from the committed seed corpus
# fuzz/corpus/TARGET. Exits non-zero if any target crashes (a panic, a
# failed check, a sanitizer report); the crashing input is left in
# fuzz/artifacts/TARGET/ and can be replayed with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# or, on stable, cargo run --release --manifest-path fuzz/Cargo.toml \
#   --bin replay -- TARGET fuzz/artifacts/TARGET/crash-...
#
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]
# The checks are docs/ACCURACY.md's bounds, nothing widened; the inputs of earlier
# findings (fuzz/known/TARGET) are replayed first.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    # Every fuzz target (`replay` is the stand-alone corpus runner, not one).
    mapfile -t targets < <(cargo +nightly fuzz list | grep -vx replay)
fi

cargo +nightly fuzz build

# Earlier findings first: each must pass.
for t in "${targets[@]}"; do
    if [ -d "known/$t" ]; then
        cargo +nightly fuzz run "$t" known/"$t"/* -- -runs=0 >/dev/null 2>&1 \
            || { echo "fuzz.sh: a known input of $t fails" >&2; exit 1; }
    fi
done

failed=()
for t in "${targets[@]}"; do
    # New inputs go to a scratch corpus; the committed seeds stay small.
    work="$(mktemp -d)"
    echo "==> fuzz target $t for ${secs}s"
    log="$(mktemp)"
    if cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=60 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
        grep -E 'Done [0-9]+ runs' "$log" | tail -n 1 || true
    else
        cat "$log"
        echo "fuzz.sh: target $t FAILED; input saved under fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
    rm -rf "$work" "$log"
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${secs}s each, no crash"
