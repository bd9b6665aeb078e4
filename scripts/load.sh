#!/usr/bin/env bash
# Load test: bench_server bare, behind actix-cors, behind McpCors, in one run, over
# loopback with wrk. Every figure is a median over RUNS paired runs, and every
# comparison a ratio against a baseline measured in the same run: both the ratio of the
# medians and the median of each run's own ratio (which a slow drift of the machine's
# speed does not bias). Each server is warmed up for a second before it is measured, and
# every other run takes the scenarios in reverse order, so that the order favours none.
#
#   scripts/load.sh [RUNS] [SECONDS]      (defaults: 5 runs of 5 s per scenario)
#   SCENARIOS="actual preflight" scripts/load.sh 15 4    (only some groups of scenarios)
#
# Groups: actual (allowed requests to a small fixed handler: bare, the headers alone,
# actix-cors, McpCors), preflight, watched (listeners and a reload storm), mcp (a real
# MCP server, rmcp's echo tool, stateless: bare, actix-cors, McpCors).
#
# Needs wrk (Debian: apt-get install wrk). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-5}
DUR=${2:-5}
PORT=${PORT:-18181}
CONNS=${CONNS:-32}
SCENARIOS=${SCENARIOS:-actual preflight watched mcp}
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
# The server and wrk on separate cores: unpinned, their scheduling interference alone
# moved results by 10-15% between identical scenarios on a 2-core machine.
SERVER_CPU=${SERVER_CPU:-0}
WRK_CPU=${WRK_CPU:-1}
PIN=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN=(taskset -c); fi
ORIGIN="https://app.example.com"
URL="http://127.0.0.1:$PORT/mcp"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --quiet --release --example bench_server
cargo build --quiet --release -p mcp-cors-tui
SERVER=target/release/examples/bench_server
TUI=target/release/mcp-cors-tui

cat > "$WORK/preflight.lua" <<LUA
wrk.method = "OPTIONS"
wrk.headers["Origin"] = "$ORIGIN"
wrk.headers["Access-Control-Request-Method"] = "POST"
wrk.headers["Access-Control-Request-Headers"] = "content-type,mcp-session-id,mcp-protocol-version"
LUA
# The wrk script calling the MCP server's echo tool (stateless: no session to open).
cat > "$WORK/mcp.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Origin"] = "$ORIGIN"
wrk.headers["Mcp-Protocol-Version"] = "2025-06-18"
LUA
policy() { # a policy file equal in effect to the built-in one; $1 tags the version
  printf '# version %s\nallowed_origins = ["https://app.example.com", "https://admin.example.com", "http://localhost:5173"]\nallowed_hosts = ["*"]\n' "$1"
}

SERVER_PID=""
start_server() { # args: bench_server flags
  ${PIN[@]:+"${PIN[@]}" "$SERVER_CPU"} "$SERVER" --bind "127.0.0.1:$PORT" "$@" >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/mcp" && return 0
    sleep 0.05
  done
  echo "bench_server did not start: $(cat "$WORK/server.log")" >&2; exit 1
}
stop_server() { kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null || true; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }

# One wrk run; appends "rps p50_ms p99_ms bad" to the file $1. Extra args go to wrk.
measure() {
  local out=$1; shift
  local text
  text=$(${PIN[@]:+"${PIN[@]}" "$WRK_CPU"} wrk -t1 -c"$CONNS" -d"${DUR}s" --latency "$@" "$URL")
  local rps p50 p99 bad errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$text")
  p50=$(awk '$1=="50%" {print $2}' <<<"$text")
  p99=$(awk '$1=="99%" {print $2}' <<<"$text")
  bad=$(awk '/Non-2xx/ {print $5}' <<<"$text"); bad=${bad:-0}
  errors=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$text"); errors=${errors:-0}
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") $((bad + errors))" >>"$out"
}
to_ms() { # wrk prints 1.23ms, 456.00us or 1.2s
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) n/=1000; else if (v ~ /ms$/) n=n; else if (v ~ /s$/) n*=1000; printf "%.3f", n }'
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$WORK/$1" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a/b }'; }

run_scenario() { # name, server flags..., then "--" and wrk flags
  local name=$1; shift
  local server_args=() wrk_args=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do server_args+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  wrk_args=("$@")
  start_server "${server_args[@]}"
  warm_up "${wrk_args[@]}"
  measure "$WORK/$name" "${wrk_args[@]}"
  stop_server
}
warm_up() { ${PIN[@]:+"${PIN[@]}" "$WRK_CPU"} wrk -t1 -c"$CONNS" -d1s "$@" "$URL" >/dev/null; }
# Scenarios in order, or reversed on even runs.
ordered() { if [ $(($1 % 2)) -eq 0 ]; then shift; printf '%s\n' "$@" | tac; else shift; printf '%s\n' "$@"; fi; }

echo "machine: $(nproc) cores, $(uname -sr); wrk -t1 -c$CONNS -d${DUR}s; $RUNS paired runs; pinned: ${PIN[*]:-no} (server cpu $SERVER_CPU, wrk cpu $WRK_CPU)" >&2
for run in $(seq "$RUNS"); do
  echo "run $run/$RUNS" >&2
  # Actual requests from an allowed origin, the modes back to back.
  want actual && for mode in $(ordered "$run" none headers actix mcp); do
    run_scenario "actual-$mode" --cors "$mode" -- -H "Origin: $ORIGIN"
  done
  # Preflights (bare: the handler answers OPTIONS itself; for reference only).
  want preflight && for mode in $(ordered "$run" actix mcp); do
    run_scenario "preflight-$mode" --cors "$mode" -- -s "$WORK/preflight.lua"
  done
  # The watched policy: no listener, a reading listener, a stuck listener, a reload storm.
  policy 0 >"$WORK/bench.toml"
  want watched && for variant in $(ordered "$run" quiet reading stuck storm); do
    start_server --cors mcp --watched "$WORK/bench.toml"
    listener=""
    case $variant in
      reading) "$TUI" --socket "$WORK/bench.sock" tail >/dev/null 2>&1 & listener=$! ;;
      stuck) "$TUI" --socket "$WORK/bench.sock" tail >"$WORK/stuck.out" 2>&1 & listener=$!; sleep 0.3; kill -STOP "$listener" ;;
      storm) (for i in $(seq $((DUR * 10 + 10))); do policy "$i" >"$WORK/bench.toml"; sleep 0.1; done) & listener=$! ;;
    esac
    sleep 0.3
    warm_up -H "Origin: $ORIGIN"
    rss_before=$(rss_kb)
    measure "$WORK/watched-$variant" -H "Origin: $ORIGIN"
    echo "$rss_before $(rss_kb)" >>"$WORK/rss-$variant"
    if [ -n "$listener" ]; then kill -CONT "$listener" 2>/dev/null || true; kill "$listener" 2>/dev/null || true; wait "$listener" 2>/dev/null || true; fi
    stop_server
  done
  # A real MCP server: rmcp's echo tool (stateless), bare and behind each middleware.
  want mcp && for mode in $(ordered "$run" none actix mcp); do
    start_server --cors "$mode" --handler mcp
    warm_up -s "$WORK/mcp.lua"
    measure "$WORK/mcp-$mode" -s "$WORK/mcp.lua"
    stop_server
  done
done

# The median over runs of each run's own ratio of $1 to $2 (req/s files, one line a run).
paired() { paste -d' ' "$WORK/$1" "$WORK/$2" | awk '{printf "%.4f\n", $1 / $5}' | median | awk '{printf "%.3f", $1}'; }
row() { # label, file, baseline file (or "")
  local rps p50 p99 bad
  rps=$(col "$2" 1); p50=$(col "$2" 2); p99=$(col "$2" 3); bad=$(awk '{s+=$4} END {print s+0}' "$WORK/$2")
  local vs="" vs_paired=""
  [ -n "$3" ] && vs=$(ratio "$rps" "$(col "$3" 1)") && vs_paired=$(paired "$2" "$3")
  printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99" "$bad" "$vs" "$vs_paired"
}
echo
echo "| scenario | req/s (median) | p50 ms | p99 ms | non-2xx + socket errors | ratio of medians | median of run ratios |"
echo "|---|---|---|---|---|---|---|"
if want actual; then
  row "actual, bare actix (baseline)" actual-none ""
  row "actual, the CORS headers alone (no decision)" actual-headers actual-none
  row "actual, actix-cors" actual-actix actual-none
  row "actual, McpCors (vs bare)" actual-mcp actual-none
  echo "| actual, McpCors vs actix-cors | | | | | $(ratio "$(col actual-mcp 1)" "$(col actual-actix 1)") | $(paired actual-mcp actual-actix) |"
  echo "| actual, McpCors vs the headers alone | | | | | $(ratio "$(col actual-mcp 1)" "$(col actual-headers 1)") | $(paired actual-mcp actual-headers) |"
fi
if want preflight; then
  row "preflight, actix-cors (baseline)" preflight-actix ""
  row "preflight, McpCors (vs actix-cors)" preflight-mcp preflight-actix
fi
if want watched; then
  row "watched McpCors, no listener (baseline)" watched-quiet ""
  row "watched, reading listener" watched-reading watched-quiet
  row "watched, stuck listener" watched-stuck watched-quiet
  row "watched, reload storm (10 writes/s)" watched-storm watched-quiet
fi
if want mcp; then
  row "MCP server (rmcp echo tool), bare (baseline)" mcp-none ""
  row "MCP server, actix-cors" mcp-actix mcp-none
  row "MCP server, McpCors (vs bare)" mcp-mcp mcp-none
  echo "| MCP server, McpCors vs actix-cors | | | | | $(ratio "$(col mcp-mcp 1)" "$(col mcp-actix 1)") | $(paired mcp-mcp mcp-actix) |"
fi
if want watched; then
  echo
  echo "RSS (kB, before -> after each run): quiet $(tr '\n' ';' <"$WORK/rss-quiet") storm $(tr '\n' ';' <"$WORK/rss-storm")"
fi
