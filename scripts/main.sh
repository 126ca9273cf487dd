#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: build, then run the parser benchmark against hiredis (Debian libhiredis-dev).
# redring-bench (issue 5) takes this place once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/bench/parse_bench --benchmark_min_time=0.2 "$@"
