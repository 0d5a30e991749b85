#!/usr/bin/env bash
# A soak: the relay on the example config (two simulated providers, one failing half its
# requests with a 529, so failovers all along) under mixed traffic for DURATION — JSON and
# streamed requests from wrk, and clients that leave mid-stream — sampling the relay's resident
# memory, open file descriptors, tokio tasks and race actors every 10 s.
#
#   scripts/soak.sh [DURATION]        DURATION like 30m, 2m, 90s (default 30m)
#
# Prints one row per sample, then each figure over the first minute after the warm-up (the first
# minute) against the last minute: the median of memory and descriptors, the least of tasks and
# race actors (which follow the requests in flight; a leak raises their floor). "Flat" is less than 5 % growth
# (or at most 2 for counts that small); the script exits 1 when a figure is not flat.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-30m}
case "$duration" in
  *h) secs=$(( ${duration%h} * 3600 )) ;;
  *m) secs=$(( ${duration%m} * 60 )) ;;
  *s) secs=${duration%s} ;;
  *) secs=$duration ;;
esac
if (( secs < 120 )); then
  echo "a soak needs at least 2m: a minute of warm-up and a minute to compare" >&2
  exit 2
fi

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing it from Debian (apt-get install wrk)" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || {
    echo "could not install wrk: install it (apt-get install wrk) and run again" >&2; exit 1; }
fi
cargo build --release -q
target_dir="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d)
port=18787
url="http://127.0.0.1:$port"
RELAYRACE__SERVER__LISTEN="127.0.0.1:$port" RUST_LOG=warn \
  "$target_dir/release/relayrace" serve --config config.example.yaml 2> "$work/relay.log" &
relay=$!
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  kill "$relay" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -sf "$url/health" >/dev/null 2>&1 && break
  sleep 0.1
done

wrk -t1 -c8 -d"${secs}s" -s bench/json.lua "$url/v1/messages" > "$work/json.out" 2>&1 &
pids+=($!)
wrk -t1 -c8 -d"${secs}s" -s bench/sse.lua "$url/v1/messages" > "$work/sse.out" 2>&1 &
pids+=($!)
# Clients that leave mid-stream: a simulated stream takes ~300 ms; these give up after 100 ms.
(
  end=$(( $(date +%s) + secs ))
  while (( $(date +%s) < end )); do
    curl -s -m 0.1 -N -X POST "$url/v1/messages" -H 'content-type: application/json' \
      -d '{"model":"soak","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi"}]}' \
      >/dev/null 2>&1 || true
  done
) &
pids+=($!)

metric() { awk -v name="$1" '$1 == name {print $2}' "$work/metrics"; }
printf '%8s %10s %6s %7s %12s\n' elapsed rss_kb fds tasks race_actors
samples="$work/samples"
: > "$samples"
started=$(date +%s)
while (( $(date +%s) - started < secs )); do
  sleep 10
  elapsed=$(( $(date +%s) - started ))
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$relay/status")
  fds=$(ls "/proc/$relay/fd" | wc -l)
  curl -sf "$url/metrics" > "$work/metrics" || : > "$work/metrics"
  tasks=$(metric relayrace_tokio_tasks)
  actors=$(metric relayrace_race_actors)
  printf '%8s %10s %6s %7s %12s\n' "${elapsed}s" "$rss" "$fds" "${tasks:-?}" "${actors:-?}"
  echo "$elapsed $rss $fds ${tasks:-0} ${actors:-0}" >> "$samples"
done
kill "${pids[@]}" 2>/dev/null || true

answered=$(awk '/requests in/ {sum += $1} END {print sum}' "$work/json.out" "$work/sse.out")
echo "requests answered by wrk: ${answered:-?} (plus the clients that left)"
# The median (or, with `min`, the least) of column COL over samples with FROM <= elapsed < TO.
# Tasks and race actors rise and fall with the requests in flight at the moment of a sample: a
# leak shows as a rising floor, so they are judged by their least value.
median() {
  awk -v col="$1" -v from="$2" -v to="$3" '$1 >= from && $1 < to {print $col}' "$samples" \
    | sort -n | awk -v pick="${4:-median}" '{v[NR] = $1}
      END {if (!NR) print 0; else if (pick == "min") print v[1]; else print v[int((NR + 1) / 2)]}'
}
flat=yes
last_from=$(( secs - 60 ))
for column in 2:rss_kb:median 3:fds:median 4:tasks:min 5:race_actors:min; do
  col=${column%%:*}
  rest=${column#*:}
  name=${rest%%:*}
  pick=${rest#*:}
  base=$(median "$col" 60 120 "$pick")
  last=$(median "$col" "$last_from" "$secs" "$pick")
  verdict=$(awk -v b="$base" -v l="$last" 'BEGIN {
    grow = l - b; limit = b * 0.05; if (limit < 2) limit = 2;
    printf "%s", (grow <= limit) ? "flat" : "GROWING" }')
  [[ $verdict == flat ]] || flat=no
  printf '%-12s %-6s first minute after warm-up %8s   last minute %8s   %s\n' "$name" "$pick" "$base" "$last" "$verdict"
done
if ! kill -0 "$relay" 2>/dev/null; then
  echo "the relay exited during the soak:" >&2
  tail -20 "$work/relay.log" >&2
  exit 1
fi
[[ $flat == yes ]]
