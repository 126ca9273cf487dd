#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 6's target, measured with redring-bench: client CPU per request in cluster mode against
# single-node mode at the same depth, on the same server. One redis-server with --cluster-enabled
# serving all 16384 slots (pinned to CPU 0, a free loopback port) takes both runs; redring-bench (CPU 1)
# alternates between a plain client and --cluster, so the two differ only by the routing.
#
#   bench/cluster_ratio.sh [--bin build/tools/redring-bench] [--reps 5] -- [redring-bench options]
#   bench/cluster_ratio.sh -- -c 1 -P 512 --test-time 2 --warmup 0.3 --ratio 1:10 -d 3
#
# Prints each pair and the median of the per-pair ratios (this VM's timings drift between runs, so
# only same-moment pairs compare).
set -euo pipefail
bin=build/tools/redring-bench
reps=5
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--bin PATH] [--reps N] -- [redring-bench options]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "$bin not built (cmake --build build --target redring-bench)" >&2; exit 2; }

dir=$(mktemp -d)
port=$(python3 -c 'import socket
for p in range(20000, 50000, 7):
    try:
        a = socket.socket(); a.bind(("127.0.0.1", p)); b = socket.socket(); b.bind(("127.0.0.1", p + 10000))
        print(p); break
    except OSError: pass')
cleanup() {
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
(cd "$dir" && taskset -c 0 redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
  --cluster-config-file nodes.conf --save '' --appendonly no --daemonize yes --logfile "$dir/log")
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" cluster addslotsrange 0 16383 >/dev/null
for _ in $(seq 100); do redis-cli -p "$port" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done

cpu() { taskset -c 1 "$bin" -h 127.0.0.1 -p "$port" "$@" --quiet 2>&1 | grep -o 'client CPU [0-9.]*' | awk '{print $3}'; }
ratios=()
for i in $(seq "$reps"); do
  single=$(cpu "$@")
  cluster=$(cpu --cluster "$@")
  ratio=$(awk -v s="$single" -v c="$cluster" 'BEGIN { printf "%.3f", c / s }')
  ratios+=("$ratio")
  echo "pair $i: single $single us/op, cluster $cluster us/op, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '{ r[NR] = $1 } END { m = NR % 2 ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2; printf "median cluster/single client CPU: %.2fx over %d pairs\n", m, NR }'
