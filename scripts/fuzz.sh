#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (cargo-fuzz / libFuzzer, on the stable
# toolchain with RUSTC_BOOTSTRAP=1). Crashes are saved under fuzz/artifacts/TARGET/;
# turn each into a regression test before fixing it, then delete the artifact.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 300; CI uses 20)
#
# Fails when a target does not build, when cargo-fuzz/libFuzzer exits non-zero (a crash,
# a leak, an out-of-memory, a slow input, or anything else), or when any crash/leak/oom/
# timeout artifact is present. Output is kept to a few lines per target; the full log of
# a failing target is summarised (its last lines) before exiting.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${1:-300}
TARGETS=${TARGETS:-origin policy admin_line decision}
# One input slower than this (seconds) is a finding (libFuzzer's default is 20 minutes).
PER_INPUT_TIMEOUT=${PER_INPUT_TIMEOUT:-10}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

fail() { # TARGET LOG MESSAGE
  echo "fuzz target $1: $3" >&2
  # The lines that say what happened, then the end of the log for context.
  grep -E "panicked at|^==[0-9]+==|^SUMMARY|Test unit written to|^error(\[|:)" "$2" | head -n 20 >&2 || true
  echo "--- last lines of the log:" >&2
  sed '/^Stack backtrace:/,$d' "$2" | tail -n 15 >&2
  exit 1
}

# Build every target in one cargo invocation (shared dependencies are compiled once), so
# the per-target runs below spend their time fuzzing.
echo "== build fuzz targets"
if ! cargo fuzz build >"$logs/build.log" 2>&1; then
  fail "(build)" "$logs/build.log" "the fuzz targets do not build"
fi

for target in $TARGETS; do
  mkdir -p "corpus/$target"
  log="$logs/$target.log"
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
  status=0
  # timeout(1) is a backstop in case libFuzzer itself hangs: max_total_time plus slack.
  timeout --kill-after=10 $((SECONDS_PER_TARGET + PER_INPUT_TIMEOUT + 60)) \
    cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout="$PER_INPUT_TIMEOUT" \
    -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE" "$log" || true
  # find, not ls: with pipefail, ls's complaint about an unmatched pattern hid real crashes.
  found=$(find "artifacts/$target" -type f \
    \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) \
    2>/dev/null | head -n 1 || true) # no artifacts folder yet: nothing found
  if [ -n "$found" ]; then
    fail "$target" "$log" "found a failing input: $found (reproduce: cargo fuzz run $target $found)"
  fi
  if [ "$status" -ne 0 ]; then
    fail "$target" "$log" "cargo fuzz exited with status $status and left no artifact"
  fi
  echo "corpus/$target: $(find "corpus/$target" -type f | wc -l) inputs"
done
