#!/usr/bin/env bash
# Builds autorun in BUILD_DIR (default: build) and runs every test with ctest.
# AR_SANITIZE=1 builds with AddressSanitizer and UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${AR_SANITIZE:-0}" = 1 ]; then
    opts=(-DCMAKE_BUILD_TYPE=Debug -DAR_ASAN=ON -DAR_UBSAN=ON)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
ctest --test-dir "$dir" --output-on-failure -j 2
