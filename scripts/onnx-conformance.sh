#!/usr/bin/env bash
# ONNX's own Softmax / LogSoftmax conformance cases (the backend node tests
# that the onnx package ships up to 1.17) through this crate, on every
# backend the CPU runs: examples/onnx_conformance.rs computes each case as
# an engine would (opset >= 13 along `axis`, opset < 13 on the 2-D
# coercion) and compares with ONNX's expected output at ONNX's backend-test
# tolerances (rtol 1e-3, atol 1e-7 unless a case says otherwise).
#
#   scripts/onnx-conformance.sh [OUTDIR]     # default target/onnx-conformance
#
# A venv with onnx 1.17.0 (the last release with the node test data; numpy
# and protobuf pinned to the versions it was checked with, cp311 wheels) is
# made under $ONNX_VENV (default target/onnx-venv) and reused while it has
# those versions. scripts/onnx-extract.py writes the cases to OUTDIR; the
# example then runs in the dev profile with all features, the build that
# `cargo test --workspace --all-features` already made, so after that only
# the example itself is compiled. Exit status: non-zero if a case failed or
# none was found.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
out="${1:-target/onnx-conformance}"
venv="${ONNX_VENV:-target/onnx-venv}"
python="${PYTHON:-python3}"
pins=(onnx==1.17.0 numpy==2.4.6 protobuf==7.36.2)

have_pins() {
    "$venv/bin/python" - "${pins[@]}" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
EOF
}

if [ -x "$venv/bin/python" ] && have_pins; then
    echo "onnx-conformance: reusing $venv"
else
    echo "onnx-conformance: creating $venv (${pins[*]})"
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian's python3 has no ensurepip without python3-venv.
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary=:all: "${pins[@]}"
fi
echo "onnx-conformance: venv ready at $((SECONDS - start)) s"

"$venv/bin/python" scripts/onnx-extract.py "$out"
# `cargo build --workspace --all-features`, not `cargo run --all-features`:
# the latter leaves out the kernels crate's `default` feature (a dependency
# without default features, not a selected member), which changes its hash
# and rebuilds it and the library (minutes) instead of reusing CI's build.
cargo build --quiet --workspace --all-features --example onnx_conformance
target_dir="$(cargo metadata --format-version 1 --no-deps |
    "$venv/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
"$target_dir/debug/examples/onnx_conformance" "$out"
echo "onnx-conformance: done in $((SECONDS - start)) s"
