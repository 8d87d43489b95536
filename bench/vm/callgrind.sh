#!/usr/bin/env bash
# Instructions per thread-backend create + exec("return 2+2") + close, all
# threads of the process counted (the caller's, the VM builder's), with
# callgrind: stable on a shared machine where wall clock is not.
#   bash bench/vm/callgrind.sh [N] [BINARY]     (default 1000, target/release/bioxen)
# Runs bench/vm/cycle.lua with 0 and N cycles; prints the difference / N.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
bin=${2:-target/release/bioxen}
[ "$bin" != target/release/bioxen ] || cargo build --release -q
out=$(mktemp -d)
total() {
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg.$1" \
    "$bin" bench/vm/cycle.lua "$1" >/dev/null 2>&1
  cat "$out"/cg."$1"-* | awk '/^summary:/ { s += $2 } END { print s }'
}
base=$(total 0)
full=$(total "$n")
echo "$(( (full - base) / n )) instructions per create+exec+close (N=$n, $bin)"
rm -rf "$out"
