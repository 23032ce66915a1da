#!/usr/bin/env bash
# What `cargo publish` would upload, without uploading: packages every
# publishable workspace member (simd-softmax-kernels, then simd-softmax;
# members with `publish = false`, such as capi/, are skipped), lists each
# package's files, then builds each packaged crate from its .crate file,
# with the other one from the same run standing in for crates.io.
#
#   scripts/publish-dry-run.sh                 # a clean tree
#   scripts/publish-dry-run.sh --allow-dirty   # uncommitted changes too
# Extra arguments go to `cargo publish`. Target dir: the workspace's (its
# dependencies are reused; the packaged crates build under
# target/package), or $PUBLISH_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
export CARGO_TARGET_DIR=${PUBLISH_TARGET_DIR:-target}
# The verification build only proves that each package compiles from its
# own files: unoptimized, it takes a fraction of the time.
export CARGO_PROFILE_DEV_OPT_LEVEL=${CARGO_PROFILE_DEV_OPT_LEVEL:-0}

for p in simd-softmax-kernels simd-softmax; do
    echo "==> cargo package --list -p $p $*"
    cargo package --list -p "$p" "$@"
done
echo "==> cargo publish --workspace --dry-run $*"
cargo publish --workspace --dry-run "$@"
echo "==> the .crate files"
find "$CARGO_TARGET_DIR/package" -name '*.crate' -exec ls -l {} +
echo "done in $((SECONDS - start)) s"
