#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 600), one after the other on
# one core, then minimises its corpus (fuzz/corpus/TARGET, committed). Needs the nightly
# toolchain and cargo-fuzz (`rustup toolchain install nightly`, `cargo install cargo-fuzz`).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# A crash leaves its input in fuzz/artifacts/TARGET/ and stops the script; the stable property
# tests in src/fuzzing.rs run the same checks in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(sse body_scan config eventstream)
fi

for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target"
  echo "== $target: ${seconds}s" >&2
  started=$(date +%s)
  cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -max_len=16384 \
    -rss_limit_mb=2048 -print_final_stats=1 2> "fuzz/$target.log" || {
    tail -40 "fuzz/$target.log" >&2
    echo "$target: crashed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  }
  ran=$(( $(date +%s) - started ))
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "fuzz/$target.log" | grep -o '[0-9]*$' || echo "?")
  cargo +nightly fuzz cmin -O "$target" >/dev/null 2>&1
  files=$(find "fuzz/corpus/$target" -type f | wc -l)
  echo "$target: ${ran}s, ${runs} executions, no crash; corpus minimised to ${files} inputs"
done
