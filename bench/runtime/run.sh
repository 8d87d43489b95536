#!/usr/bin/env bash
# Runtime benchmarks, bioxen beside the luajit binary in one run:
# start-up (median of 300 runs in alternating rounds), fib(32) and n-body, peak memory of `-e ''`,
# and callgrind instruction counts of the compute benchmarks (noise-free).
# Usage: bash bench/runtime/run.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
B=target/release/bioxen
out=$(mktemp -d)

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

# alternating NAME ROUNDS RUNS ARGS...: bioxen and luajit with ARGS, in ROUNDS
# alternating rounds of RUNS runs each, so that a burst of load on this shared
# machine lands on both sides instead of one. Prints both medians.
alternating() {
  local name=$1 rounds=$2 runs=$3
  shift 3
  for r in $(seq "$rounds"); do
    hyperfine -N -w 1 -r "$runs" --export-json "$out/$name.$r.json" "$B $*" "luajit $*" >/dev/null 2>&1
  done
  python3 -c "
import glob, json, statistics
runs = [json.load(open(f))['results'] for f in glob.glob('$out/$name.*.json')]
print(*('%.6f' % statistics.median(t for r in runs for t in r[i]['times']) for i in (0, 1)))"
}
read -r sb sl < <(alternating start 10 30 -e "''")
read -r fb fl < <(alternating fib 5 2 bench/runtime/fib.lua 32)
read -r nb nl < <(alternating nbody 5 1 bench/vm/nbody.lua 5000000)

# GNU time reports the child's own peak RSS (a fork from Python would count Python's pages).
peak_kib() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
mb=$(peak_kib "$B" -e '')
ml=$(peak_kib luajit -e '')
faults() { /usr/bin/time -f %R "$@" 2>&1 >/dev/null | tail -1; }
fb_=$(faults "$B" -e '')
fl_=$(faults luajit -e '')

printf '%-28s %12s %12s %8s\n' "benchmark" "bioxen" "luajit" "ratio"
printf '%-28s %10.2fms %10.2fms %8s\n' "start-up -e '' (median)" "$(python3 -c "print($sb*1000)")" "$(python3 -c "print($sl*1000)")" "$(ratio "$sb" "$sl")"
printf '%-28s %11.3fs %11.3fs %8s\n' "fib(32) (median)" "$fb" "$fl" "$(ratio "$fb" "$fl")"
printf '%-28s %11.3fs %11.3fs %8s\n' "n-body 5e6 steps (median)" "$nb" "$nl" "$(ratio "$nb" "$nl")"
printf '%-28s %10sKiB %10sKiB %8s\n' "peak RSS of -e ''" "$mb" "$ml" "$(ratio "$mb" "$ml")"
printf '%-28s %12s %12s %8s\n' "page faults of -e ''" "$fb_" "$fl_" "$(ratio "$fb_" "$fl_")"
# Instruction counts are repeatable whatever else the machine is doing.
if command -v valgrind >/dev/null; then
  instr() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'; }
  ib=$(instr "$B" -e ''); il=$(instr luajit -e '')
  printf '%-28s %12s %12s %8s\n' "instructions: -e ''" "$ib" "$il" "$(ratio "$ib" "$il")"
  for s in "runtime/fib.lua 30" "vm/nbody.lua 300000"; do
    set -- $s
    ib=$(instr "$B" "bench/$1" "$2"); il=$(instr luajit "bench/$1" "$2")
    printf '%-28s %12s %12s %8s\n' "instructions: $1 $2" "$ib" "$il" "$(ratio "$ib" "$il")"
  done
fi
# bioxen.json beside lua-cjson (installed by tests/deps/apt.sh).
cjson=/usr/lib/x86_64-linux-gnu/lua/5.1
[ -f "$cjson/cjson.so" ] && LUA_CPATH="$cjson/?.so;;" "$B" bench/runtime/json.lua
# The start-up order list goes stale as code changes; below ~90% regenerate it
# with bench/runtime/startup_symbols.sh.
listed=$(wc -l < src/runtime/startup-symbols.txt)
present=$(nm --defined-only "$B" | awk '{print $3}' | sort -u | comm -12 - <(sort -u src/runtime/startup-symbols.txt) | wc -l)
echo "start-up order list: $present of $listed functions present in this build"
rm -rf "$out"
