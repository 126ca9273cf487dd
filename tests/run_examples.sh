#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs every example against a private redis-server on a Unix socket, the TLS example also
# against a private TLS port with certificates made here, and the Sentinel example through a private
# sentinel; fails if any exits non-zero.
set -euo pipefail
examples_dir=$1
dir=$(mktemp -d /tmp/redring-examples-XXXXXX)
redis-server --port 0 --unixsocket "$dir/s.sock" --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" "$(cat "$dir/tls.pid" 2>/dev/null)" "$(cat "$dir/master.pid" 2>/dev/null)" \
  "$(cat "$dir/sentinel.pid" 2>/dev/null)" 2>/dev/null; sleep 0.2; rm -rf "$dir"' EXIT
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done
failed=0
for example in "$examples_dir"/example_*; do
  if timeout 20 "$example" "unix://$dir/s.sock" >"$dir/out" 2>&1; then
    echo "ok   $(basename "$example")"
  else
    echo "FAIL $(basename "$example")"; cat "$dir/out"; failed=1
  fi
done

# TLS: a CA and a server certificate for 127.0.0.1, then a TLS-only server on a free port.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$dir/ca.key" -out "$dir/ca.crt" -days 2 -subj "/CN=redring example CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$dir/server.key" -out "$dir/server.csr" -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$dir/san.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
  -out "$dir/server.crt" -days 2 -extfile "$dir/san.ext" 2>/dev/null
free_port() {
  for p in $(shuf -i 20000-60000 -n 50); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo 0
}
port=$(free_port)
redis-server --port 0 --tls-port "$port" --tls-cert-file "$dir/server.crt" --tls-key-file "$dir/server.key" \
  --tls-ca-cert-file "$dir/ca.crt" --tls-auth-clients no --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/tls.pid" --logfile "$dir/tls.log"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
# run_expecting EXAMPLE URL OUTPUT WHAT LOG: passes if EXAMPLE exits 0 having printed OUTPUT.
run_expecting() {
  if timeout 20 "$examples_dir/$1" "$2" >"$dir/out" 2>&1 && grep -q "$3" "$dir/out"; then
    echo "ok   $1 $4"
  else
    echo "FAIL $1 $4"; cat "$dir/out" "$5"; failed=1
  fi
}
run_expecting example_tls "rediss://127.0.0.1:$port?tls_ca_file=$dir/ca.crt" "over = tls" "over TLS" "$dir/tls.log"
# Sentinel: a master on a free port and a sentinel watching it as "mymaster".
master=$(free_port)
redis-server --port "$master" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
  --daemonize yes --pidfile "$dir/master.pid" --logfile "$dir/master.log"
sentinel=$(free_port)
printf 'sentinel monitor mymaster 127.0.0.1 %s 1\n' "$master" >"$dir/sentinel.conf"
redis-server "$dir/sentinel.conf" --sentinel --port "$sentinel" --bind 127.0.0.1 --dir "$dir" \
  --daemonize yes --pidfile "$dir/sentinel.pid" --logfile "$dir/sentinel.log"
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$sentinel") 2>/dev/null && break; sleep 0.05; done
run_expecting example_sentinel "redis+sentinel://127.0.0.1:$sentinel/mymaster" "connected to port $master, hits = 1" \
  "through a sentinel" "$dir/sentinel.log"
exit $failed
