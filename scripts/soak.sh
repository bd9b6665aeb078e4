#!/usr/bin/env bash
# Memory soak: McpCors (watched policy, with a reading listener attached) under full wrk
# load for MINUTES, sampling the server's RSS every 30 s. Flat RSS = no leak per request,
# per event or per reload: the policy file is also rewritten every REWRITE_EVERY seconds
# (default 0.1), each time with a new origin, so the bounded parts (the replay ring of 512
# events, the counters) fill within the first minute and the rest must stay flat.
#
#   scripts/soak.sh [MINUTES]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-10}
PORT=${PORT:-18282}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --quiet --release --example bench_server
cargo build --quiet --release -p mcp-cors-tui

policy() { printf '# version %s\nallowed_origins = ["https://app.example.com", "https://v%s.example.com"]\nallowed_hosts = ["*"]\n' "$1" "$1"; }
policy 0 >"$WORK/soak.toml"
target/release/examples/bench_server --cors mcp --watched "$WORK/soak.toml" --bind "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/mcp" && break; sleep 0.05; done
target/release/mcp-cors-tui --socket "$WORK/soak.sock" tail >/dev/null 2>&1 &
(i=0; while true; do i=$((i + 1)); policy "$i" >"$WORK/soak.toml"; sleep "${REWRITE_EVERY:-0.1}"; done) &
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER/status"; }

echo "minute,rss_kb"
echo "0,$(rss)"
wrk -t1 -c32 -d"${MINUTES}m" -H "Origin: https://app.example.com" "http://127.0.0.1:$PORT/mcp" >"$WORK/wrk.txt" &
WRK=$!
elapsed=0
while kill -0 "$WRK" 2>/dev/null; do
  sleep 30; elapsed=$((elapsed + 30))
  kill -0 "$SERVER" || { echo "the server died" >&2; exit 1; }
  echo "$(awk -v s="$elapsed" 'BEGIN { printf "%.1f", s / 60 }'),$(rss)"
done
grep -E "Requests/sec|requests in|Non-2xx|Socket errors" "$WORK/wrk.txt" || true
