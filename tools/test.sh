#!/usr/bin/env bash
# Builds Herald and runs the whole test suite twice: a normal warnings-as-errors build, and an
# AddressSanitizer + UndefinedBehaviorSanitizer build (Debug). Installs its Debian packages
# first. Both suites always run; the exit status is non-zero if either had a failure.
# HD_TEST_ONLY=normal|asan runs one of the two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
JOBS=$(nproc)
status=0
if [ "${HD_TEST_ONLY:-}" != asan ]; then
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHD_WERROR=ON >/dev/null
    cmake --build build -j"$JOBS"
    echo "== test suite (normal build)"
    ctest --test-dir build --output-on-failure -j2 --timeout 900 || status=1
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
