#!/usr/bin/env bash
# The relay's own cost, side by side with going direct and with a minimal forwarding proxy
# (the floor), on loopback with release builds. One command: bench/run.sh [SECONDS]
#
# Starts: a fast mock upstream (examples/bench_mock.rs), a second mock that answers 503 at once,
# the floor proxy (examples/bench_floor.rs), the relay on one provider, and the relay with a
# failing primary in front of that provider. Drives load with wrk (installed from Debian if
# missing) and prints added latency (p50/p99, concurrency 1: small JSON and SSE requests,
# Claude-Code-shaped streamed requests of 20 KB, 180 KB and 1 MB from examples/bench_body.rs,
# and a stream of 2,000 events), throughput with 32 connections, the relay's resident memory
# idle and under load, and the failover cost.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
BASE="${RELAYRACE_BENCH_PORT:-19100}"

if ! command -v wrk >/dev/null; then
  echo "wrk not found; installing it from Debian (apt-get install wrk)" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || {
    echo "could not install wrk: install it (apt-get install wrk) and run again" >&2; exit 1; }
fi

cargo build --release --quiet --bin relayrace --example bench_mock --example bench_floor \
  --example bench_body
BIN=target/release
WORK="$(mktemp -d)"
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
"$BIN/examples/bench_body" 20000 > "$WORK/b20k.json"
"$BIN/examples/bench_body" 180000 > "$WORK/b180k.json"
"$BIN/examples/bench_body" 1000000 > "$WORK/b1m.json"
"$BIN/examples/bench_body" 20000 long > "$WORK/long.json"

MOCK=$((BASE + 1)); DOWN=$((BASE + 2)); FLOOR=$((BASE + 3)); RELAY=$((BASE + 4)); FAILOVER=$((BASE + 5))
provider() { # name url priority
  printf '  - name: %s\n    type: anthropic_compatible\n    base_url: http://127.0.0.1:%s\n    priority: %s\n' "$1" "$2" "$3"
}
{ echo "providers:"; provider mock "$MOCK" 1; } > "$WORK/relay.yaml"
{ echo "routing:"; echo "  failover: true"; echo "health:"; echo "  failure_threshold: 1000000000"
  echo "providers:"; provider down "$DOWN" 1; provider mock "$MOCK" 2; } > "$WORK/failover.yaml"

"$BIN/examples/bench_mock" "127.0.0.1:$MOCK" & PIDS+=($!)
"$BIN/examples/bench_mock" "127.0.0.1:$DOWN" 503 & PIDS+=($!)
"$BIN/examples/bench_floor" "127.0.0.1:$FLOOR" "http://127.0.0.1:$MOCK/" & PIDS+=($!)
"$BIN/relayrace" serve --config "$WORK/relay.yaml" --listen "127.0.0.1:$RELAY" 2>"$WORK/relay.log" & RELAY_PID=$!; PIDS+=($RELAY_PID)
"$BIN/relayrace" serve --config "$WORK/failover.yaml" --listen "127.0.0.1:$FAILOVER" 2>"$WORK/failover.log" & PIDS+=($!)

for port in $MOCK $DOWN $FLOOR $RELAY $FAILOVER; do
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done
rss() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm() { awk '/^VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
IDLE_RSS="$(rss $RELAY_PID)"

# wrk's latency distribution in microseconds: "50%" and "99%" lines.
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s$/,"",v); print v*1000000}}'; }
pct() { grep -E "^ +$2%" "$1" | awk '{print $2}' | to_us; }
seq1() { # url kind -> "p50 p99"; kinds json and sse are small bodies, the others files
  case $2 in
    json|sse) wrk -t1 -c1 -d"${SECS}s" --latency -s "bench/$2.lua" "$1" > "$WORK/out" 2>&1 ;;
    *) BENCH_BODY="$WORK/$2.json" wrk -t1 -c1 -d"${SECS}s" --latency -s bench/body.lua "$1" \
         > "$WORK/out" 2>&1 ;;
  esac
  echo "$(pct "$WORK/out" 50) $(pct "$WORK/out" 99)"
}
KINDS=(json sse b20k b180k b1m long)
rps() { wrk -t2 -c32 -d"${SECS}s" -s bench/json.lua "$1" 2>&1 | awk '/Requests\/sec/ {print $2}'; }

# Latency drifts on a shared machine, so direct, floor and relay are measured in turn, ROUNDS
# times (SECS/ROUNDS seconds each), and each figure is the median of its rounds.
ROUNDS="${RELAYRACE_BENCH_ROUNDS:-3}"
median() { tr ' ' '\n' | sort -n | awk '{v[NR]=$1} END {print v[int((NR + 1) / 2)]}'; }
port_of() { case $1 in direct) echo "$MOCK";; floor) echo "$FLOOR";; relay) echo "$RELAY";; esac; }
declare -A P50 P99 RUNS50 RUNS99
SECS_FULL="$SECS"; SECS=$(( (SECS_FULL + ROUNDS - 1) / ROUNDS ))
for kind in "${KINDS[@]}"; do
  for _ in $(seq "$ROUNDS"); do
    for target in direct floor relay; do
      read -r p50 p99 < <(seq1 "http://127.0.0.1:$(port_of $target)/v1/messages" "$kind")
      RUNS50[$target,$kind]+="$p50 "; RUNS99[$target,$kind]+="$p99 "
    done
  done
  for target in direct floor relay; do
    P50[$target,$kind]=$(echo ${RUNS50[$target,$kind]} | median)
    P99[$target,$kind]=$(echo ${RUNS99[$target,$kind]} | median)
  done
done
# Throughput too: direct, floor and relay in turn, ROUNDS times; the median of each.
declare -A RPS RUNS_RPS
for _ in $(seq "$ROUNDS"); do
  for target in direct floor relay; do
    RUNS_RPS[$target]+="$(rps "http://127.0.0.1:$(port_of $target)/v1/messages") "
  done
done
for target in direct floor relay; do RPS[$target]=$(echo ${RUNS_RPS[$target]} | median); done
RPS_DIRECT="${RPS[direct]}"; RPS_FLOOR="${RPS[floor]}"; RPS_RELAY="${RPS[relay]}"
LOAD_RSS="$(hwm $RELAY_PID)"
SECS="$SECS_FULL"
read -r FO50 FO99 < <(seq1 "http://127.0.0.1:$FAILOVER/v1/messages" json)

added() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f", a - b}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.0f%%", 100 * a / b}'; }
echo
echo "relayrace benchmark: $(nproc) cores, loopback, release build, ${SECS}s per measurement"
echo "(latency and throughput: medians of $ROUNDS interleaved rounds of $(( (SECS + ROUNDS - 1) / ROUNDS ))s)"
echo
# p99 of separate runs is noisy: a slow tail in the direct run can make an "added" p99
# negative, so the absolute figures are printed beside it.
printf '%-22s %8s %8s %10s %10s\n' "latency, c=1 (µs)" "p50" "p99" "added p50" "added p99"
for kind in "${KINDS[@]}"; do
  for target in direct floor relay; do
    if [ "$target" = direct ]; then extra=("" ""); else
      extra=("$(added "${P50[$target,$kind]}" "${P50[direct,$kind]}")" \
             "$(added "${P99[$target,$kind]}" "${P99[direct,$kind]}")"); fi
    printf '%-22s %8.0f %8.0f %10s %10s\n' "  $kind, $target" "${P50[$target,$kind]}" \
      "${P99[$target,$kind]}" "${extra[0]}" "${extra[1]}"
  done
done
times() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN {printf "%.2f", (a - d) / (b - d)}'; }
printf '%s' "relay added / floor added, p50:"
for kind in "${KINDS[@]}"; do
  printf ' %s %sx' "$kind" "$(times "${P50[relay,$kind]}" "${P50[floor,$kind]}" "${P50[direct,$kind]}")"
done
echo
echo "(b20k, b180k, b1m: Claude-Code-shaped streamed requests of that size; long: 2,000 events)"
echo
printf '%-34s %10s\n' "throughput, 32 connections (req/s)" ""
printf '%-34s %10s\n' "  direct" "$RPS_DIRECT"
printf '%-34s %10s %s\n' "  floor" "$RPS_FLOOR" "($(ratio "$RPS_FLOOR" "$RPS_DIRECT") of direct)"
printf '%-34s %10s %s\n' "  relay" "$RPS_RELAY" "($(ratio "$RPS_RELAY" "$RPS_DIRECT") of direct, $(ratio "$RPS_RELAY" "$RPS_FLOOR") of the floor)"
echo
printf '%-34s %10s\n' "relay resident memory, idle (MB)" "$IDLE_RSS"
printf '%-34s %10s\n' "relay resident memory, peak (MB)" "$LOAD_RSS"
echo
printf '%-34s %10s %10s\n' "failover after an immediate 503 (µs)" "p50" "p99"
printf '%-34s %10s %10s\n' "  extra over the fallback alone" \
  "$(added "$FO50" "${P50[relay,json]}")" "$(added "$FO99" "${P99[relay,json]}")"
