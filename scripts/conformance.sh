#!/usr/bin/env bash
# Runs the fault conformance suite (tests/conformance) and writes its scenario table, with the
# outcomes and times this run measured, into docs/conformance.md (between the conformance
# markers); the table is also printed.
#
#   scripts/conformance.sh          the suite as CI runs it (~25 s of tests, time-scaled where said)
#   scripts/conformance.sh --full   also the long scenarios at real scale (~90 s more)
#
# The rows of properties covered by other tests (keys never logged, client credentials never
# forwarded, ...) come from running those tests here too.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=ci
case "${1:-}" in
  "") ;;
  --full) mode=full ;;
  *) echo "usage: $0 [--full]" >&2; exit 2 ;;
esac

target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir/conformance"
results="$(cd "$target_dir/conformance" && pwd)/results.tsv"
: > "$results"

extra=()
if [[ $mode == full ]]; then
  extra=(--include-ignored)
fi

echo "== cargo test --test conformance ($mode)" >&2
RELAYRACE_CONFORMANCE_REPORT="$results" cargo test --test conformance -- "${extra[@]}" >&2

# reference ID SCENARIO EXPECTED WHERE CARGO-TEST-ARGS...: runs one test that covers the row.
reference() {
  local id=$1 scenario=$2 expected=$3 where=$4
  shift 4
  local test_name="${*: -1}"
  echo "== cargo test $* -- --exact" >&2
  local output
  if output=$(cargo test "$@" -- --exact 2>&1) && grep -q "test result: ok. 1 passed" <<<"$output"; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$scenario" "covered by \`$where\` \`$test_name\`" \
      "$expected" "passes (run by this script)" "—" >> "$results"
  else
    echo "$output" >&2
    echo "referenced test failed: $where $test_name" >&2
    exit 1
  fi
}

reference 08b "post-commit failure recorded against the provider's health" \
  "the provider's health records a stream that broke after the commit" \
  tests/relay/streaming.rs --test relay streaming::a_post_commit_failure_counts_against_the_providers_health
reference 13b "401/403 from a provider in \`auth: passthrough\` mode" \
  "the client's own credential was refused: the error reaches the client unchanged, health is left alone" \
  tests/relay/failover.rs --test relay failover::with_passthrough_a_refused_client_credential_reaches_the_client_and_health_is_untouched
reference 13c "a refused relay key with nobody else to serve" \
  "a 502 that says the relay's credential was refused, never a 401 the client would take for its own" \
  tests/relay/failover.rs --test relay failover::a_refused_relay_key_alone_is_a_502_that_says_so_not_a_401
reference 16b "every provider unreachable (connection refused)" \
  "a clean, bounded error" \
  tests/relay/failover.rs --test relay failover::every_provider_unreachable_is_a_clean_502
reference 19b "the relay never logs a key" \
  "no provider or relay key in the logs (TRACE), /status or error bodies" \
  tests/secrets.rs --test secrets keys_never_appear_in_logs_status_or_error_bodies_and_clients_cannot_forge_log_lines
reference 19c "client credentials are never forwarded" \
  "the client's key stays at the relay; the provider gets the provider key" \
  tests/relay/auth.rs --test relay auth::an_accepted_key_works_on_either_header_and_never_travels_upstream
reference 19d "... unless the provider is in passthrough mode" \
  "an \`auth: passthrough\` provider gets the client's own credential" \
  tests/relay/auth.rs --test relay auth::passthrough_forwards_the_clients_own_credential
reference 19e "redirects are not followed by the provider client" \
  "the HTTP client's redirect policy is none" \
  src/upstream/http/tests.rs --lib upstream::http::tests::a_redirect_is_not_followed_and_is_a_bad_gateway

table="$(dirname "$results")/table.md"
{
  echo "Produced by \`scripts/conformance.sh$([[ $mode == full ]] && echo ' --full')\` on $(date -u '+%Y-%m-%d %H:%M UTC'):" \
    "$(nproc) cores, $(rustc --version | cut -d' ' -f1-2), the test profile (unoptimised)."
  echo
  echo "| # | scenario | configuration | expected | measured outcome | measured time |"
  echo "|---|---|---|---|---|---|"
  sort -t $'\t' -k1,1 "$results" |
    awk -F '\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }'
} > "$table"

doc=docs/conformance.md
begin='<!-- conformance:begin -->'
end='<!-- conformance:end -->'
if ! grep -qF "$begin" "$doc" || ! grep -qF "$end" "$doc"; then
  echo "$doc lacks the $begin / $end markers" >&2
  exit 1
fi
awk -v table="$table" -v begin="$begin" -v end="$end" '
  $0 == begin { print; print ""; while ((getline line < table) > 0) print line; print ""; skip = 1; next }
  $0 == end { skip = 0 }
  !skip { print }
' "$doc" > "$doc.new"
mv "$doc.new" "$doc"
cat "$table"
echo "== wrote $doc ($(grep -c '' "$results") rows)" >&2
