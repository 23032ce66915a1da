#!/usr/bin/env bash
# Ours against ONNX Runtime's MLAS at the ten performance shapes, in rounds
# that interleave the two (this shared VM drifts by up to ±30 % within
# minutes, so a ratio is only meaningful within one round). Each round runs
# ../shared/peers/run.sh (MLAS, core 1), then our criterion `shapes/` group
# pinned to the same core: the default backend, the forced ones the CPU
# runs, the naive baseline and the memory floors. The table shows per-shape
# medians over rounds, ratios taken within each round.
#   scripts/compare-mlas.sh [rounds] [out-dir]      # default 3, /tmp/compare-mlas
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
out="${2:-/tmp/compare-mlas}"
peers="${PEERS:-../shared/peers/run.sh}"
rm -rf "$out" && mkdir -p "$out"
cargo bench --bench softmax --no-run >/dev/null 2>&1
for r in $(seq 1 "$rounds"); do
    d="$out/round$r"
    mkdir -p "$d"
    echo "== round $r/$rounds: MLAS" >&2
    "$peers" > "$d/mlas.txt" 2>&1
    echo "== round $r/$rounds: ours" >&2
    rm -rf target/criterion/shapes_*
    taskset -c "${PEERS_CPU:-1}" cargo bench --bench softmax -- '^shapes/' \
        --warm-up-time 0.5 --measurement-time 2 > "$d/criterion.log" 2>&1
    cp -r target/criterion/shapes_* "$d/"
done
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p'), $(grep -o 'avx512[a-z]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
python3 scripts/bench-table.py --rounds "$out"/round*
