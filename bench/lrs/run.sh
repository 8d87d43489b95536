#!/usr/bin/env bash
# LRS benchmarks: delivery rate to Ralph (filesystem backend, on 127.0.0.1) beside
# Ralph's own ceiling in the same run (bench/lrs/ralph_raw.py: pre-built batches
# POSTed by a client that does nothing else), one statement per POST, and the
# cost of the automatic-records hook on a VM exec. Each rate is measured against
# a fresh Ralph (its filesystem backend re-reads its whole file on every POST to
# check ids, so it slows down as it fills). Needs the test venv (bash tests/deps/python.sh).
# usage: bash bench/lrs/run.sh [N]
#   SKIP_SINGLE=1 / SKIP_HOOK=1 / SKIP_CONCURRENCY=1 leave parts out
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-20000}
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

echo "== delivery of $n statements to Ralph $("$py" -c 'import importlib.metadata as m; print(m.version("ralph-malph"))') ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
# Ralph's ceiling with the batch sizes bioxen uses (1,000: the old default; 10,000: the default now)
for batch in 1000 10000; do
  start_ralph
  "$py" bench/lrs/ralph_raw.py "$BIOXEN_LRS_ENDPOINT" bench bench-pass "$n" "$batch"
done
if [ -z "${SKIP_CONCURRENCY:-}" ]; then
  # Does Ralph serve POSTs in parallel? (it does not: one event loop, a blocking backend)
  start_ralph
  "$py" bench/lrs/ralph_raw.py "$BIOXEN_LRS_ENDPOINT" bench bench-pass "$n" 1000 2
fi
# bioxen end to end (send in lists of 1,000, each synced to the spool; the sender
# POSTs what is pending, up to batch_size = 10,000), then with batches of 1,000
start_ralph
"$bin" bench/lrs/throughput.lua "$n" 1000
start_ralph
"$bin" bench/lrs/throughput.lua "$n" 1000 1000
# delivery only, like the Python client: spool first with no LRS, then time `bioxen lrs flush`
start_ralph
env -u BIOXEN_LRS_ENDPOINT "$bin" bench/lrs/throughput.lua "$n" 1000 spool-only
cat "$BIOXEN_HOME"/data/lrs/spool/*.jsonl > "$work/statements.jsonl"
t0=$(date +%s.%N)
"$bin" lrs flush >/dev/null
t1=$(date +%s.%N)
python3 -c "import sys; n, t = int(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2]); print(f'bioxen lrs flush (default batches), {n} statements from the spool: {t:.3f} s: {n / t:.0f} statements/s')" "$n" "$t0" "$t1"
# Ralph's ceiling on the very statements bioxen sent (bioxen's are larger than the
# Python client's: actor name and objectType, verb display, registration per run)
start_ralph
STATEMENTS=$work/statements.jsonl "$py" bench/lrs/ralph_raw.py "$BIOXEN_LRS_ENDPOINT" bench bench-pass "$n" 10000
start_ralph
[ -n "${SKIP_SINGLE:-}" ] || "$bin" bench/lrs/throughput.lua 200 200 1
echo "== automatic-records hook on a VM exec (load $(cut -d' ' -f1 /proc/loadavg))"
export BIOXEN_LRS_ENDPOINT=http://127.0.0.1:9/xAPI BIOXEN_HOME=$work/hook  # recording on, nothing delivered
[ -n "${SKIP_HOOK:-}" ] || "$bin" bench/lrs/record_overhead.lua
