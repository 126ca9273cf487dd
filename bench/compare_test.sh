#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Smoke test of bench/compare (ctest: bench_compare_smoke): one short cell against the binaries of the
# build dir given, then checks the JSON's keys and that every figure is a positive number. hiredis
# must be there exactly when that build dir has bench/client_bench (not in sanitizer builds).
set -euo pipefail
build=${1:?usage: compare_test.sh BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
if ! "$here/compare" --quick --no-build --build "$build" --cells c1P1-GET-d3 --json "$out/compare.json" \
    >"$out/stdout" 2>"$out/stderr"; then
  cat "$out/stderr"
  exit 1
fi
grep -q '^| c1P1-GET-d3 | ' "$out/stdout" || { cat "$out/stdout"; echo "no table row"; exit 1; }
python3 - "$out/compare.json" "$build/bench/client_bench" <<'EOF'
import json, os, sys
doc = json.load(open(sys.argv[1]))
want_hiredis = os.access(sys.argv[2], os.X_OK)
def positive(where, v):
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not v > 0:
        sys.exit(f"{where} = {v!r}, expected a positive number")
for k in ("schema", "date", "command", "git_describe", "kernel", "load_average", "redis_version", "ceiling",
          "fixed_cpu", "cells", "targets"):
    if k not in doc:
        sys.exit(f"missing key {k}")
positive("ceiling.ops_per_s", doc["ceiling"]["ops_per_s"])
if len(doc["cells"]) != 1 or doc["cells"][0]["cell"] != "c1P1-GET-d3":
    sys.exit(f"cells: {[c.get('cell') for c in doc['cells']]}")
cell = doc["cells"][0]
for tool in ("redring", "redis_benchmark"):
    for k in ("ops_per_s", "cpu_us_per_op", "server_cpu_us_per_op"):
        positive(f"{tool}.{k}", cell[tool][k])
    if cell[tool]["samples"][0]["keyspace_misses"] != 0:
        sys.exit(f"{tool}: GET missed keys, the priming does not cover its key names")
positive("redring.own_cpu_us_per_op", cell["redring"]["own_cpu_us_per_op"])
positive("ratio_ops", cell["ratio_ops"])
positive("ratio_cpu", cell["ratio_cpu"])
if want_hiredis:
    positive("hiredis.ops_per_s", cell["hiredis"]["ops_per_s"])
    positive("hiredis.cpu_us_per_op", cell["hiredis"]["cpu_us_per_op"])
elif cell["hiredis"] is not None or "hiredis_note" not in cell:
    sys.exit("hiredis should be skipped with a note when client_bench is not built")
t = doc["targets"]
if len(t) != 1 or not isinstance(t[0]["pass"], bool) or t[0]["cell"] != "c1P1-GET-d3":
    sys.exit(f"targets: {t}")
print("compare smoke test: ok", "(with hiredis)" if want_hiredis else "(no client_bench: hiredis skipped)")
EOF
