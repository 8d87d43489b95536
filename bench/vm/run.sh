#!/usr/bin/env bash
# bioxen.vm benchmarks side by side with the peers, in one run:
#   bash bench/vm/run.sh
# Builds the release binary, makes a venv with lupa under target/, runs
# bench/vm/bench.lua (bioxen) and bench/vm/peers.py (lupa, the predecessor's
# approach), then prints one table with ratios. Needs luajit and lua on PATH.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
venv=target/bench-vm-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c "import lupa" 2>/dev/null || "$venv/bin/pip" install -q lupa
out=target/bench-vm
mkdir -p "$out"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
./target/release/bioxen bench/vm/bench.lua bench/vm | tee "$out/bioxen.tsv" >&2
"$venv/bin/python" bench/vm/peers.py | tee "$out/peers.tsv" >&2
"$venv/bin/python" - "$out/bioxen.tsv" "$out/peers.tsv" <<'PY'
import sys
m = {}
for path in sys.argv[1:]:
    for line in open(path):
        name, value, unit = line.rstrip("\n").split("\t")
        m[name] = (float(value), unit)

def v(name):
    return m[name][0]

def row(what, target, name, peers=()):
    val, unit = m[name]
    cells = [f"{val:.1f} {unit}"] + [f"{v(p):.1f} ({v(p) / val:.2f}x ours)" for p in peers]
    print(f"| {what} | {target} | " + " | ".join(cells) + " |")

print("| measurement | target | bioxen | peers |")
print("|---|---|---|---|")
row("thread: create + exec(`return 2+2`) + close", "<= 50 us", "thread create+exec+close",
    ["lupa create+exec+close"])
row("thread: the same, CPU of the host process per cycle", "", "thread create+exec+close host CPU")
row("process (warm pool): create + exec + close", "<= 300 us", "process create+exec+close",
    ["predecessor subprocess per VM, before its wait", "predecessor subprocess per VM, with its 0.5 s wait"])
row("process: the same, host CPU per cycle (child not counted)", "", "process create+exec+close host CPU")
row("thread: exec round trip", "<= 2 us", "thread exec round trip", ["lupa exec round trip"])
row("thread: the same, CPU time (runs on the calling thread)", "", "thread exec round trip host CPU")
row("process: exec round trip", "<= 40 us", "process exec round trip")
row("10,000 idle thread VMs, RSS", "<= 600 MiB", "10000 idle thread VMs RSS")
for w in ("fib", "nbody"):
    print(f"| {w}: strict thread VM / bioxen host, CPU time | <= 1.05 | {v(f'{w} strict thread / host, CPU time'):.3f}x | |")
    for b in ("thread", "process"):
        print(f"| {w} in a strict {b} VM / luajit binary | <= 1.05 | "
              f"{v(f'{w} strict {b} / luajit'):.3f}x ({v(f'{w} strict {b} VM'):.0f} ms vs "
              f"{v(f'{w} luajit binary'):.0f} ms); vs the bioxen host: {v(f'{w} strict {b} / host'):.3f}x "
              f"({v(f'{w} bioxen host'):.0f} ms) | lupa luajit21: {v(f'{w} lupa luajit21'):.0f} ms |")
PY
