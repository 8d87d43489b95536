#!/usr/bin/env bash
# LRS benchmarks: delivery rate to Ralph (filesystem backend, on 127.0.0.1),
# batched (BATCH statements per POST) against one statement per POST, and the
# cost of the automatic-records hook. Each rate is measured against a fresh Ralph
# (its filesystem backend re-reads its whole file on every POST, so it slows
# down as it fills). Needs the test venv (bash tests/deps/python.sh).
# usage: bash bench/lrs/run.sh [N] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}
batch=${2:-1000}
cargo build --release -q
bin=$PWD/target/release/bioxen
py=$PWD/target/pyenv/bin/python
work=$(mktemp -d)
ralph=
trap '[ -n "$ralph" ] && kill $ralph 2>/dev/null; rm -rf "$work"' EXIT

start_ralph() {
  [ -n "$ralph" ] && { kill $ralph; wait $ralph 2>/dev/null || true; }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  dir=$(mktemp -d -p "$work")
  "$py" tests/lrs/ralph_server.py "$dir" "$port" bench bench-pass 2>"$dir/log" &
  ralph=$!
  for _ in $(seq 600); do
    curl -s -o /dev/null "http://127.0.0.1:$port/__heartbeat__" && break
    sleep 0.1
  done
  export BIOXEN_LRS_ENDPOINT=http://127.0.0.1:$port/xAPI BIOXEN_LRS_USER=bench BIOXEN_LRS_PASSWORD=bench-pass
  export BIOXEN_HOME=$dir/home
}

echo "== delivery to Ralph $("$py" -c 'import importlib.metadata as m; print(m.version("ralph-malph"))') ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
start_ralph
"$py" bench/lrs/ralph_raw.py "$BIOXEN_LRS_ENDPOINT" bench bench-pass "$n" "$batch"
start_ralph
"$bin" bench/lrs/throughput.lua "$n" 1000 "$batch"
start_ralph
"$bin" bench/lrs/throughput.lua 200 200 1
echo "== automatic-records hook (per recorded event)"
export BIOXEN_LRS_ENDPOINT=http://127.0.0.1:9/xAPI BIOXEN_HOME=$work/hook  # recording on, nothing delivered
"$bin" bench/lrs/record_overhead.lua
