#!/usr/bin/env bash
# Builds Herald and runs the whole test suite twice: a normal warnings-as-errors build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build (Debug). Before them: the layer check
# (tools/layers.py) and two more warnings-as-errors builds, a gcc Release
# build and a clang build, so that no build type or compiler can break unseen. Installs its
# Debian packages first. Every step always runs; the exit status is non-zero if any failed.
# The clang build also runs the libFuzzer targets (the normal suite then leaves out fuzz.clang,
# which would build them again). HD_TEST_ONLY=normal|asan runs one of the two suites (and skips
# the extra builds).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
JOBS=$(nproc)
status=0
SKIP_FUZZ_CLANG=()
echo "== layers (tools/layers.py)"
python3 tools/layers.py || status=1
if [ -z "${HD_TEST_ONLY:-}" ]; then
    echo "== gcc Release build (warnings are errors)"
    { cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHD_WERROR=ON >/dev/null &&
        cmake --build build-release -j"$JOBS" >build-release/make.log 2>&1; } ||
        { tail -50 build-release/make.log; status=1; }
    echo "== clang build (warnings are errors)"
    { CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHD_WERROR=ON >/dev/null &&
        cmake --build build-clang -j"$JOBS" >build-clang/make.log 2>&1; } ||
        { tail -50 build-clang/make.log; status=1; }
    # The clang build has built the libFuzzer targets: run them here (a few seconds each over
    # their seed corpus), instead of fuzz.clang building them again in the normal suite.
    echo "== fuzz targets (clang build)"
    ctest --test-dir build-clang -L fuzz -j"$JOBS" --output-on-failure || status=1
    SKIP_FUZZ_CLANG=(-E '^fuzz\.clang$')
fi
if [ "${HD_TEST_ONLY:-}" != asan ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHD_WERROR=ON >/dev/null
    cmake --build build -j"$JOBS"
    echo "== test suite (normal build)"
    ctest --test-dir build --output-on-failure -j2 --timeout 900 "${SKIP_FUZZ_CLANG[@]}" || status=1
fi
if [ "${HD_TEST_ONLY:-}" != normal ]; then
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DHD_SANITIZE=ON -DHD_WERROR=ON >/dev/null
    cmake --build build-asan -j"$JOBS"
    echo "== test suite (AddressSanitizer + UndefinedBehaviorSanitizer build)"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir build-asan --output-on-failure -j2 --timeout 900 -LE long || status=1
fi
exit $status
