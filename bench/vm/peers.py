"""Peers for bench/vm: lupa (a Python LuaRuntime per VM) and the predecessor's
approach (a `lua` subprocess per VM, output read after a fixed wait).
Prints one "name<TAB>value<TAB>unit" line per measurement."""
import os
import subprocess
import sys
import time

import lupa
import lupa.luajit21 as lupa_luajit

here = os.path.dirname(os.path.abspath(__file__))


def report(name, value, unit):
    print(f"{name}\t{value:.3f}\t{unit}", flush=True)


def best_per_op(n, f, batches=5):
    best = float("inf")
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def lupa_cycle():
    rt = lupa.LuaRuntime()
    assert rt.execute("return 2+2") == 4
    del rt


report("lupa create+exec+close", best_per_op(2000, lupa_cycle) * 1e6, "us")
rt = lupa.LuaRuntime()
report("lupa exec round trip", best_per_op(50000, lambda: rt.execute("return 1")) * 1e6, "us")
report("lupa default Lua", 0, rt.eval("_VERSION"))

for w in ("fib", "nbody"):
    code = open(os.path.join(here, w + ".lua")).read()
    best = float("inf")
    for _ in range(3):
        j = lupa_luajit.LuaRuntime()
        t0 = time.perf_counter()
        j.execute(code)
        best = min(best, time.perf_counter() - t0)
    report(f"{w} lupa luajit21", best * 1e3, "ms")


def predecessor(wait):
    p = subprocess.Popen(["lua", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(b"print(2+2)\n")
    p.stdin.close()
    if wait:
        time.sleep(0.5)  # the predecessor's fixed wait before reading output
    out = p.stdout.read()
    p.wait()
    assert out.strip() == b"4", out


report("predecessor subprocess per VM, before its wait",
       best_per_op(200, lambda: predecessor(False), batches=3) * 1e6, "us")
report("predecessor subprocess per VM, with its 0.5 s wait",
       best_per_op(3, lambda: predecessor(True), batches=1) * 1e6, "us")
