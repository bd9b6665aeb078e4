#!/usr/bin/env bash
# Instructions per request, counted by callgrind, for each bench_server mode: repeatable
# where wall-clock throughput on a shared 2-core machine is not (the count does not move
# when the other core is busy). Counts user-space instructions of the whole server
# process, so the differences between modes are what each middleware adds; the kernel's
# share (sockets) is the same for all and not counted.
#
#   scripts/instructions.sh [MODE...]      (default: none headers actix mcp)
#   scripts/instructions.sh actix-preflight mcp-preflight    (preflights instead)
#   scripts/instructions.sh mcp-watched mcp-reading    (watched policy; + a reading tail)
#   scripts/instructions.sh mcp mcp-metrics    (metrics counted into a Prometheus recorder)
#   scripts/instructions.sh mcp-watched mcp-etcd   (the same policy kept in etcd: a real
#                                                   etcd is started; needs etcd, etcdctl)
#   scripts/instructions.sh headers mcp-watched mcp-guarded mcp-wildcard mcp-regex
#       (watched policies: the Host guard on with its defaults, which admit the
#        127.0.0.1 the requests name; the origin allowed by `https://*.example.com`; by a
#        regex; against the headers' floor and an exact hit)
#
# KEEP=DIR keeps each mode's callgrind profile there (DIR/callgrind.MODE), for
# callgrind_annotate.
# Needs valgrind and wrk (Debian: apt-get install valgrind wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(none headers actix mcp)
PORT=${PORT:-18383}
ORIGIN="https://app.example.com"
URL="http://127.0.0.1:$PORT/mcp"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

for tool in valgrind callgrind_control callgrind_annotate wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install valgrind wrk" >&2; exit 1; }
done
cargo build --quiet --release --example bench_server
cargo build --quiet --release -p mcp-cors-tui
SERVER=target/release/examples/bench_server
printf 'allowed_origins = ["%s", "https://admin.example.com", "http://localhost:5173"]\nallowed_hosts = ["*"]\n' \
  "$ORIGIN" >"$WORK/bench.toml"
# The same policy with the Host guard on (its defaults: localhost, 127.0.0.1, [::1]).
printf 'allowed_origins = ["%s", "https://admin.example.com", "http://localhost:5173"]\n' \
  "$ORIGIN" >"$WORK/guarded.toml"
# The request's origin allowed by a wildcard entry, then by a regex, not by an exact one.
printf 'allowed_origins = ["https://*.example.com", "http://localhost:5173"]\nallowed_hosts = ["*"]\n' \
  >"$WORK/wildcard.toml"
printf 'allowed_origin_regexes = ["https://[a-z]+\\\\.example\\\\.com"]\nallowed_hosts = ["*"]\n' \
  >"$WORK/regex.toml"

echo "| mode | requests counted | instructions per request | vs the first mode |"
echo "|---|---|---|---|"
base=""
cat > "$WORK/preflight.lua" <<LUA
wrk.method = "OPTIONS"
wrk.headers["Access-Control-Request-Method"] = "POST"
wrk.headers["Access-Control-Request-Headers"] = "content-type,mcp-session-id,mcp-protocol-version"
LUA
ETCD_PORT=${ETCD_PORT:-18379}
# A real etcd holding bench.toml, for the -etcd modes (killed on exit, with the jobs).
start_etcd() {
  [ -z "${etcd_pid:-}" ] || return 0
  for tool in etcd etcdctl; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install etcd-server etcd-client" >&2; exit 1; }
  done
  etcd --name bench --data-dir "$WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "bench=http://127.0.0.1:$((ETCD_PORT + 1))" >"$WORK/etcd.log" 2>&1 &
  etcd_pid=$!
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$ETCD_PORT" put /bench/cors <"$WORK/bench.toml" >/dev/null 2>&1 && break
    sleep 0.2
  done
  # Its admin socket (named after the key) in the work folder, as the file's is.
  export XDG_RUNTIME_DIR="$WORK"
}
for mode in "${MODES[@]}"; do
  out="$WORK/callgrind.$mode"
  cors=${mode%%-*}
  script=() watched=() listener=""
  case $mode in
    *-preflight) script=(-s "$WORK/preflight.lua") ;;
    *-watched | *-reading) watched=(--watched "$WORK/bench.toml") ;;
    *-guarded | *-wildcard | *-regex) watched=(--watched "$WORK/${mode#*-}.toml") ;;
    *-metrics) watched=(--metrics) ;;
    *-etcd) start_etcd; watched=(--watched "etcd://127.0.0.1:$ETCD_PORT/bench/cors") ;;
  esac
  valgrind --tool=callgrind --callgrind-out-file="$out" "$SERVER" --cors "$cors" "${watched[@]}" \
    --bind "127.0.0.1:$PORT" >/dev/null 2>"$WORK/valgrind.log" &
  pid=$!
  for _ in $(seq 200); do curl -s -o /dev/null "$URL" && break; sleep 0.2; done
  if [ "${mode%-reading}" != "$mode" ]; then
    target/release/mcp-cors-tui --socket "$WORK/bench.sock" tail >/dev/null 2>&1 &
    listener=$!
  fi
  wrk -t1 -c4 -d2s -H "Origin: $ORIGIN" "${script[@]}" "$URL" >/dev/null          # warm up
  callgrind_control -z "$pid" >/dev/null 2>&1                       # count from here
  requests=$(wrk -t1 -c4 -d4s -H "Origin: $ORIGIN" "${script[@]}" "$URL" | awk '/requests in/ {print $1}')
  callgrind_control -d "$pid" >/dev/null 2>&1                       # ... to here
  [ -z "$listener" ] || kill "$listener"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  total=$(callgrind_annotate "$out.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  per=$((total / requests))
  [ -z "${KEEP:-}" ] || { mkdir -p "$KEEP" && cp "$out.1" "$KEEP/callgrind.$mode"; }
  [ -n "$base" ] || base=$per
  echo "| $mode | $requests | $per | $(awk -v a="$per" -v b="$base" 'BEGIN { printf "%+d", a - b }') |"
done
