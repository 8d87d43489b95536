#!/usr/bin/env bash
# Installing the `standard` profile from the local mirror of real rocks
# (tests/deps/rocks.sh) into a fresh environment: bioxen against Debian's
# `luarocks install` of the same packages into a fresh tree; then a --locked
# reinstall from bioxen's cache (a new environment from the lockfile).
# One run each; prints seconds and the ratio. Usage: bash bench/pkg/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/deps/rocks.sh
cargo build --release -q
BIOXEN=$PWD/target/release/bioxen
REPO=$PWD/target/rocks/repo
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 -u -m http.server --bind 127.0.0.1 0 --directory "$REPO" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "port" "$WORK/server.log" 2>/dev/null && break; sleep 0.05; done
PORT=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
URL=http://127.0.0.1:$PORT

# The profile's packages, read from the catalog bioxen ships.
PACKAGES=$(BIOXEN_HOME=$WORK/probe "$BIOXEN" -e 'print(table.concat(bioxen.pkg.profile.show("standard").packages, " "))')
echo "standard profile: $PACKAGES"

now() { date +%s.%N; }

t0=$(now)
BIOXEN_HOME=$WORK/bx "$BIOXEN" env create bench --profile standard --server "$URL" --quiet >/dev/null
t1=$(now)
for p in $PACKAGES; do
  luarocks --lua-version=5.1 --tree "$WORK/lr" --only-server="$URL" install "$p" >"$WORK/luarocks-$p.log" 2>&1 ||
    { echo "luarocks install $p failed:"; cat "$WORK/luarocks-$p.log"; exit 1; }
done
t2=$(now)
BIOXEN_HOME=$WORK/bx "$BIOXEN" env export bench >"$WORK/bench.lock"
t3=$(now)
BIOXEN_HOME=$WORK/bx "$BIOXEN" env import "$WORK/bench.lock" --name again --quiet >/dev/null
t4=$(now)

python3 - "$t0" "$t1" "$t2" "$t3" "$t4" <<'PY'
import sys
t0, t1, t2, t3, t4 = map(float, sys.argv[1:])
bx, lr, locked = t1 - t0, t2 - t1, t4 - t3
print(f"bioxen env create --profile standard : {bx:6.2f} s")
print(f"luarocks install (same packages)     : {lr:6.2f} s")
print(f"ratio luarocks / bioxen               : {lr / bx:6.1f}x")
print(f"bioxen --locked reinstall from cache  : {locked:6.3f} s")
PY
