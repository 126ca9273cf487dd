#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and passes every test: installs dependencies, runs the suite in a Release build and in an
# ASan+UBSan build, then runs each libFuzzer target for FUZZ_SECONDS (default 30) on its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}

echo "== Release build and tests"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
# The count is ctest's own "out of N": tests that ran (disabled ones, known bugs, do not count).
log=$(mktemp)
ctest --test-dir build --output-on-failure -j"$jobs" | tee "$log"
release_tests=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log")

echo "== ASan+UBSan build and tests"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDRING_SANITIZE=ON -DREDRING_BENCH=OFF >/dev/null
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" | tee "$log"
asan_tests=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log")
rm -f "$log"

echo "== libFuzzer targets, ${fuzz_seconds}s each"
CC=clang CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREDRING_FUZZ=ON \
  -DREDRING_TESTS=OFF -DREDRING_TOOLS=OFF -DREDRING_BENCH=OFF >/dev/null
cmake --build build/fuzz -j"$jobs"
fuzzers=0
for target in build/fuzz/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target")
  corpus=fuzz/corpus/${name#fuzz_}
  work=$(mktemp -d)
  echo "-- $name on $corpus"
  "$target" -max_total_time="$fuzz_seconds" -print_final_stats=1 -artifact_prefix="$work/" "$work" "$corpus" 2>&1 | tail -n 12
  rm -rf "$work"
  fuzzers=$((fuzzers + 1))
done

echo
echo "tests: $((release_tests + asan_tests + fuzzers)) passed, 0 failed"
