#!/usr/bin/env bash
# Session round trips side by side: bioxen thread and process sessions, and the
# predecessor's fixed-wait pattern. Usage: bash bench/sessions/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=target/release/bioxen
[ -x "$BIN" ] || cargo build --release
export BIOXEN_HOME="$(mktemp -d)"
trap 'rm -rf "$BIOXEN_HOME"' EXIT
ours="$("$BIN" bench/sessions/roundtrip.lua "${ROUNDS:-20000}")"
theirs="$(python3 bench/sessions/predecessor.py "${PRED_ROUNDS:-5}")"
echo "$ours"
echo "$theirs"
pred=$(echo "$theirs" | awk '$1 == "predecessor" {print $2}')
echo "$ours" | while read -r name us; do
  awk -v n="$name" -v us="$us" -v p="$pred" \
    'BEGIN { printf "%s session: %.2f us per send+read of print(1); predecessor %.0f us (%.0fx slower)\n", n, us, p, p / us }'
done
