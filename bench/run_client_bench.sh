#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds client_bench and runs it, recording which tree it measured (see bench/README.md).
#   bench/run_client_bench.sh [client_bench options...]     e.g. --tcp, --filter 'GET d=3', --seconds 2
# Environment:
#   SNAPSHOT=1  measure the committed library: HEAD is exported (git archive) to a temporary directory,
#               with bench/ taken from the working tree, and built there; work in progress elsewhere in
#               the tree is left out. Default: build the working tree as it is.
#   BUILD       build directory (default build/bench-dev, or <snapshot>/build)
#   JOBS        build jobs (default 1)
#   OUT         JSON output (default <build>/client_bench.json)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "${SNAPSHOT:-0}" = 1 ]; then
  src=$(mktemp -d /tmp/redring-snapshot-XXXXXX)
  git -C "$root" archive HEAD | tar -x -C "$src"
  cp -R "$root/bench/." "$src/bench/"
  build=${BUILD:-$src/build}
  tree="$(git -C "$root" rev-parse --short HEAD) (committed library, bench/ from the working tree; snapshot in $src)"
else
  src=$root
  build=${BUILD:-$root/build/bench-dev}
  tree=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)
fi
out=${OUT:-$build/client_bench.json}
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DREDRING_TESTS=OFF -DREDRING_TOOLS=OFF -DREDRING_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target client_bench -j"${JOBS:-1}" >/dev/null
echo "tree: $tree; kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/client_bench" --json "$out" "$@"
echo "JSON: $out"
