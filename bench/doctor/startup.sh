#!/usr/bin/env bash
# Start-up cost of the logging configuration, bioxen beside luajit in one run:
# `-e ''` with no configuration file, with a configuration file that does not
# mention logging, and with the log file on (BIOXEN_LOG_FILE=info), plus
# callgrind instruction counts of the same (noise-free), and the rate of log
# lines written to a rotating file.
# Usage: bash bench/doctor/startup.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
B=$PWD/target/release/bioxen
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/plain/config" "$out/configured/config" "$out/logging"
echo '{"pkg": {"profile": "standard"}, "lrs": {"record": false}}' >"$out/configured/config/config.json"

median() { python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results']; print(' '.join('%.3f' % (x['median'] * 1000) for x in r))" "$1"; }

hyperfine -N -w 30 -r 500 --export-json "$out/start.json" \
  "luajit -e ''" \
  "env BIOXEN_HOME=$out/empty $B -e ''" \
  "env BIOXEN_HOME=$out/configured $B -e ''" \
  "env BIOXEN_HOME=$out/logging BIOXEN_LOG_FILE=info $B -e ''" >/dev/null
read -r l e c f < <(median "$out/start.json")
echo "start-up -e '' (median of 500, ms): luajit $l | bioxen: no config $e, config without log $c, log file on $f"
echo "  note: 'env' adds its own exec to the bioxen rows; luajit runs directly"

if command -v valgrind >/dev/null; then
  count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | awk '/Collected/ {print $4}'; }
  echo "instructions (callgrind): luajit $(count luajit -e '')" \
    "| bioxen no config $(BIOXEN_HOME=$out/empty count "$B" -e '')" \
    "| config without log $(BIOXEN_HOME=$out/configured count "$B" -e '')" \
    "| log file on $(BIOXEN_HOME=$out/logging BIOXEN_LOG_FILE=info count "$B" -e '')"
fi

N=200000
code="local info = bioxen.log.info for i = 1, $N do info('line ' .. i) end"
hyperfine -N -w 1 -r 5 --export-json "$out/flood.json" \
  "env BIOXEN_HOME=$out/flood1 BIOXEN_LOG_FILE=info BIOXEN_LOG_MAX_SIZE=1M BIOXEN_LOG_KEEP=3 $B -e \"$code\"" \
  "env BIOXEN_HOME=$out/flood2 BIOXEN_LOG_FILE=info BIOXEN_LOG_FORMAT=json BIOXEN_LOG_MAX_SIZE=1M BIOXEN_LOG_KEEP=3 $B -e \"$code\"" >/dev/null
read -r t j < <(median "$out/flood.json")
python3 -c "import sys; n=$N; print('log file, %d lines rotated at 1M keeping 3: text %.0f lines/s, JSON %.0f lines/s' % (n, n / ($t / 1000), n / ($j / 1000)))"
