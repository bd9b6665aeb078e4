#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (cargo-fuzz / libFuzzer, on the stable
# toolchain with RUSTC_BOOTSTRAP=1). Crashes are saved under fuzz/artifacts/TARGET/;
# turn each into a regression test before fixing it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 300; CI uses 20)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_PER_TARGET=${1:-300}
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
for target in ${TARGETS:-origin policy admin_line decision}; do
  mkdir -p "corpus/$target"
  echo "== fuzz $target for ${SECONDS_PER_TARGET}s"
  cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+==|SUMMARY|thread .* panicked|Done)" || true
  # Fail when libFuzzer found something (it exits non-zero and leaves an artifact).
  # (find, not ls: with pipefail, ls's complaint about an unmatched pattern hid real crashes.)
  found=$(find "artifacts/$target" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null | head -1)
  if [ -n "$found" ]; then
    echo "fuzz target $target found a failing input: see fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "corpus/$target: $(ls "corpus/$target" | wc -l) inputs"
done
