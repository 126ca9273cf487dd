#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: build, then run redring-bench. With no server given it starts a private
# redis-server on a Unix socket, runs the default workload (100k requests, SET:GET 1:10, 3-byte
# values), prints the report and cleans up. Extra arguments go to redring-bench (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
exec build/tools/redring-bench "$@"
