#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every example against a private redis-server on a Unix socket; fails if any exits non-zero.
set -euo pipefail
examples_dir=$1
dir=$(mktemp -d /tmp/redring-examples-XXXXXX)
redis-server --port 0 --unixsocket "$dir/s.sock" --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null; sleep 0.2; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
failed=0
for example in "$examples_dir"/example_*; do
  if timeout 20 "$example" "unix://$dir/s.sock" >"$dir/out" 2>&1; then
    echo "ok   $(basename "$example")"
  else
    echo "FAIL $(basename "$example")"; cat "$dir/out"; failed=1
  fi
done
exit $failed
