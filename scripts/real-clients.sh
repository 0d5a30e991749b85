#!/usr/bin/env bash
# Real clients through the relay: the official Anthropic Python SDK and Claude Code, against the
# example config's simulated providers (one of them flaky, so failovers happen). Installs the SDK
# from PyPI and Claude Code from npm if they are missing. One command: scripts/real-clients.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PORT="${RELAYRACE_PORT:-18787}"
python3 -c "import anthropic" 2>/dev/null || pip install -q anthropic
command -v claude >/dev/null || npm install -g @anthropic-ai/claude-code >/dev/null
cargo build --release --quiet --bin relayrace
target/release/relayrace serve --config config.example.yaml --listen "127.0.0.1:$PORT" 2>/tmp/relayrace-real-clients.log &
RELAY=$!
trap 'kill $RELAY 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
export ANTHROPIC_BASE_URL="http://127.0.0.1:$PORT"

echo "== Anthropic Python SDK"
python3 scripts/sdk_check.py

echo "== Claude Code (claude -p)"
WORKDIR="$(mktemp -d)"
(cd "$WORKDIR" && ANTHROPIC_API_KEY=relay-key CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
  DISABLE_AUTOUPDATER=1 timeout 120 claude -p "Say hello")
echo
echo "== relay log (one line per request)"
grep "request finished" /tmp/relayrace-real-clients.log | sed 's/\x1b\[[0-9;]*m//g' | tail -n 12
