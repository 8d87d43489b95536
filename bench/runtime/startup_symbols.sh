#!/usr/bin/env bash
# Regenerates src/runtime/startup-symbols.txt: the functions bioxen runs while
# starting up (`-e ''` and a script file), which build.rs hands to the linker
# (--symbol-ordering-file) so they sit together at the front of .text. Start-up
# then maps a few hundred KiB of code instead of pages all over a 12 MiB text.
# Rerun after dependency or start-up changes (bench/runtime/run.sh reports how
# many of the listed symbols the current binary still has).
# Usage: bash bench/runtime/startup_symbols.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
B=target/release/bioxen
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo 'local x = 1' > "$out/script.lua"
for run in "-e ''" "$out/script.lua"; do
  eval valgrind --tool=callgrind --callgrind-out-file="$out/cg.\$RANDOM" --compress-strings=no \
    --demangle=no "$B" "$run" >/dev/null 2>&1
done
# Callgrind names functions of every object; keep those defined in bioxen.
nm --defined-only "$B" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u > "$out/defined"
cat "$out"/cg.* | sed -n 's/^fn=\(([0-9]*) \)\{0,1\}//p' | sort -u > "$out/ran"
comm -12 "$out/ran" "$out/defined" > src/runtime/startup-symbols.txt
echo "$(wc -l < src/runtime/startup-symbols.txt) start-up functions written to src/runtime/startup-symbols.txt"
