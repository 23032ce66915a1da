#!/usr/bin/env bash
# The C ABI's build, install layout and checks (CI runs `all`).
#
#   scripts/capi.sh header        regenerate include/simd_softmax.h from capi/src/lib.rs
#   scripts/capi.sh check-header  fail when the committed header is stale
#   scripts/capi.sh build         release build; the C layout under target/capi/:
#                                   include/simd_softmax.h
#                                   lib/libsimd_softmax.a
#                                   lib/libsimd_softmax.so.<ABI>.0 (soname libsimd_softmax.so.<ABI>)
#                                   lib/pkgconfig/simd_softmax.pc
#   scripts/capi.sh test          build, then: exported symbols, the C test against the static
#                                 and the shared library (pkg-config), under valgrind, the C++
#                                 example
#   scripts/capi.sh all           check-header, then test
#
# CAPI_PROFILE=dev uses the dev-profile libraries of the workspace's test
# build instead of a release build (CI, after `cargo test --workspace
# --all-features`).
#
# PREFIX=/usr/local scripts/capi.sh install   copies the layout there.
#
# The header generator is cbindgen 0.29 (Debian's 0.24 cannot parse
# edition-2024 Rust); it is installed once into target/cbindgen when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/capi
cbindgen_version=0.29.4

cbindgen_bin() {
    local bin=$root/target/cbindgen/bin/cbindgen
    if ! [ -x "$bin" ] || ! "$bin" --version | grep -q "$cbindgen_version"; then
        echo "installing cbindgen $cbindgen_version into target/cbindgen" >&2
        # --debug: it parses one crate once; unoptimized it builds in a
        # fraction of the time (under 30 s here, against minutes).
        cargo install cbindgen --version "$cbindgen_version" --locked --quiet --debug \
            --root "$root/target/cbindgen" >&2
    fi
    echo "$bin"
}

generate() {
    "$(cbindgen_bin)" --quiet --config capi/cbindgen.toml --crate simd-softmax-capi --output "$1"
}

check_header() {
    local fresh
    fresh=$(mktemp)
    generate "$fresh"
    if ! diff -u include/simd_softmax.h "$fresh"; then
        echo "include/simd_softmax.h is stale: run scripts/capi.sh header and commit it" >&2
        exit 1
    fi
    echo "include/simd_softmax.h is current ($(grep -o 'simd_softmax_[a-z0-9_]*(' include/simd_softmax.h | sort -u | wc -l) functions)"
}

# The ABI version: the soname's suffix (build.rs says why).
abi() {
    local v
    v=$(sed -n 's/^version = "\(.*\)"/\1/p' capi/Cargo.toml | head -1)
    local major=${v%%.*} rest=${v#*.}
    local minor=${rest%%.*}
    if [ "$major" = 0 ]; then echo "0.$minor"; else echo "$major"; fi
}

build() {
    local lib abi_v
    if [ "${CAPI_PROFILE:-release}" = dev ]; then
        # CI: the libraries its test build (`cargo test --workspace
        # --all-features`) already made, with the same units, so nothing
        # is compiled again.
        cargo build --workspace --all-features --lib
        lib=$root/target/debug
    else
        cargo build --release -p simd-softmax-capi
        lib=$root/target/release
    fi
    abi_v=$(abi)
    rm -rf "$out"
    mkdir -p "$out/include" "$out/lib/pkgconfig"
    cp include/simd_softmax.h "$out/include/"
    static_lib "$lib/libsimd_softmax_capi.a" "$out/lib/libsimd_softmax.a"
    cp "$lib/libsimd_softmax_capi.so" "$out/lib/libsimd_softmax.so.$abi_v.0"
    ln -sf "libsimd_softmax.so.$abi_v.0" "$out/lib/libsimd_softmax.so.$abi_v"
    ln -sf "libsimd_softmax.so.$abi_v" "$out/lib/libsimd_softmax.so"
    write_pc "$out" > "$out/lib/pkgconfig/simd_softmax.pc"
    echo "C layout in target/capi (ABI $abi_v)"
}

# The static library as one relocatable object whose only global symbols
# are simd_softmax_*: the Rust standard library, allocator shims and
# compiler builtins inside it become private, so it links beside another
# Rust static library (or libgcc) without duplicate symbols. (The LLVM
# bitcode sections are dropped: nothing links this archive with LTO, and
# binutils' ar cannot index them.)
static_lib() {
    local tmp
    tmp=$(mktemp -d)
    ld -r -o "$tmp/all.o" --whole-archive "$1"
    objcopy --remove-section=.llvmbc --remove-section=.llvmcmd "$tmp/all.o" "$tmp/native.o"
    nm -g --defined-only "$tmp/native.o" | awk 'NF == 3 && $3 ~ /^simd_softmax_/ {print $3}' >"$tmp/keep"
    objcopy --keep-global-symbols="$tmp/keep" "$tmp/native.o" "$tmp/simd_softmax.o"
    rm -f "$2"
    ar rcs "$2" "$tmp/simd_softmax.o"
    rm -rf "$tmp"
}

# pkg-config file for the layout rooted at $1.
write_pc() {
    local v
    v=$(sed -n 's/^version = "\(.*\)"/\1/p' capi/Cargo.toml | head -1)
    cat <<EOF
prefix=$1
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: simd_softmax
Description: SIMD softmax kernels (AVX-512, AVX2+FMA, NEON, scalar) with runtime dispatch
Version: $v
Cflags: -I\${includedir}
Libs: -L\${libdir} -lsimd_softmax
Libs.private: -lpthread -ldl -lm -lgcc_s -lrt -lutil
EOF
}

install() {
    local prefix=${PREFIX:?set PREFIX}
    build
    mkdir -p "$prefix/include" "$prefix/lib/pkgconfig"
    cp "$out/include/simd_softmax.h" "$prefix/include/"
    cp -P "$out"/lib/libsimd_softmax.* "$prefix/lib/"
    write_pc "$prefix" > "$prefix/lib/pkgconfig/simd_softmax.pc"
    echo "installed under $prefix"
}

test_c() {
    build
    local bin=$out/bin abi_v
    abi_v=$(abi)
    mkdir -p "$bin"
    export PKG_CONFIG_PATH=$out/lib/pkgconfig

    echo "== soname and exported symbols"
    readelf -d "$out/lib/libsimd_softmax.so.$abi_v.0" | grep SONAME
    readelf -d "$out/lib/libsimd_softmax.so.$abi_v.0" | grep -q "libsimd_softmax.so.$abi_v]"
    local exported others
    exported=$(nm -D --defined-only "$out/lib/libsimd_softmax.so" | awk '$2 ~ /^[TDBR]$/ {print $3}')
    others=$(grep -v '^simd_softmax_' <<<"$exported" || true)
    if [ -n "$others" ]; then
        echo "the shared library exports symbols outside simd_softmax_*:" >&2
        echo "$others" >&2
        exit 1
    fi
    echo "$(wc -l <<<"$exported") symbols exported, all simd_softmax_*"
    local static_globals
    static_globals=$(nm -g --defined-only "$out/lib/libsimd_softmax.a" | awk 'NF == 3 {print $3}')
    others=$(grep -v '^simd_softmax_' <<<"$static_globals" || true)
    if [ -n "$others" ]; then
        echo "the static library has global symbols outside simd_softmax_*:" >&2
        echo "$others" | head >&2
        exit 1
    fi
    diff <(sort -u <<<"$exported") <(sort -u <<<"$static_globals")
    echo "the static library's global symbols: the same $(wc -l <<<"$static_globals")"
    # Every function the header declares is exported, and no other.
    local declared
    declared=$(grep -o 'simd_softmax_[a-z0-9_]*(' include/simd_softmax.h | tr -d '(' | sort -u)
    diff <(echo "$declared") <(sort -u <<<"$exported")

    local cflags=(-std=c11 -O2 -g -Wall -Wextra -Werror -pthread)
    echo "== C test, static library"
    # shellcheck disable=SC2046
    cc "${cflags[@]}" capi/tests/capi_test.c -o "$bin/capi_test_static" \
        $(pkg-config --cflags simd_softmax) "$out/lib/libsimd_softmax.a" \
        $(pkg-config --libs-only-l --static simd_softmax | sed 's/-lsimd_softmax//') -lm
    "$bin/capi_test_static"

    echo "== C test, shared library"
    # shellcheck disable=SC2046
    cc "${cflags[@]}" capi/tests/capi_test.c -o "$bin/capi_test_shared" \
        $(pkg-config --cflags --libs simd_softmax) -lm -Wl,-rpath,"$out/lib"
    ldd "$bin/capi_test_shared" | grep simd_softmax
    "$bin/capi_test_shared"

    echo "== C test under valgrind memcheck (shared library)"
    if ! command -v valgrind >/dev/null 2>&1; then
        apt-get update -qq && apt-get install -y -qq valgrind >/dev/null
    fi
    SIMD_SOFTMAX_TEST_QUICK=1 valgrind --error-exitcode=1 --leak-check=full \
        --errors-for-leak-kinds=definite -q "$bin/capi_test_shared"

    echo "== C++ example (static library)"
    command -v c++ >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq g++ >/dev/null; }
    # shellcheck disable=SC2046
    c++ -std=c++17 -O2 -Wall -Wextra -Werror -pthread capi/examples/engine.cpp -o "$bin/engine" \
        $(pkg-config --cflags simd_softmax) "$out/lib/libsimd_softmax.a" \
        $(pkg-config --libs-only-l --static simd_softmax | sed 's/-lsimd_softmax//') -lm
    "$bin/engine"
}

case "${1:-all}" in
    header) generate include/simd_softmax.h && echo "wrote include/simd_softmax.h" ;;
    check-header) check_header ;;
    build) build ;;
    install) install ;;
    test) test_c ;;
    all) check_header && test_c ;;
    *) echo "usage: $0 header|check-header|build|install|test|all" >&2; exit 2 ;;
esac
