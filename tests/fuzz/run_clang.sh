#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in BUILD (a build directory of their own) and runs
# each over its seed corpus for a few seconds (ctest -L fuzz there). Registered as the ctest
# test fuzz.clang of a gcc build; usable by hand:  bash tests/fuzz/run_clang.sh SRC BUILD [CLANG]
set -euo pipefail
src=${1:?source dir}
build=${2:?build dir}
cc=${3:-clang}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHD_WERROR=ON \
    >"$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
targets=$(cd "$build" && ctest -N -L fuzz | sed -n 's/^ *Test *#[0-9]*: fuzz\.//p')
[ -n "$targets" ] || { echo "no fuzz targets configured"; exit 1; }
cmake --build "$build" -j"$(nproc)" --target $(for t in $targets; do printf 'fuzz_%s ' "$t"; done)
ctest --test-dir "$build" -L fuzz -j"$(nproc)" --output-on-failure
