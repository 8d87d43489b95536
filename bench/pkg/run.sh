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

# Wall-clock and CPU seconds (user+sys of the process and its children, so the
# compilers count too): CPU time does not depend on what else the machine runs.
python3 - "$BIOXEN" "$URL" "$WORK" $PACKAGES <<'PY'
import os, resource, subprocess, sys, time
bioxen, url, work, packages = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
env = dict(os.environ, BIOXEN_HOME=f"{work}/bx")
env.pop("BIOXEN_STDLIB", None)

def measure(cmds):
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    for c in cmds:
        p = subprocess.run(c, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"failed: {' '.join(c)}\n{p.stdout}{p.stderr}")
    r1, t1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

bx = measure([[bioxen, "env", "create", "bench", "--profile", "standard", "--server", url, "--quiet"]])
lr = measure([["luarocks", "--lua-version=5.1", "--tree", f"{work}/lr", f"--only-server={url}", "install", p]
              for p in packages])
with open(f"{work}/bench.lock", "w") as f:
    f.write(subprocess.run([bioxen, "env", "export", "bench"], env=env, capture_output=True, text=True, check=True).stdout)
locked = measure([[bioxen, "env", "import", f"{work}/bench.lock", "--name", "again", "--quiet"]])
print(f"{'':40} {'wall s':>8} {'cpu s':>8}")
print(f"{'bioxen env create --profile standard':40} {bx[0]:8.2f} {bx[1]:8.2f}")
print(f"{'luarocks install (same packages)':40} {lr[0]:8.2f} {lr[1]:8.2f}")
print(f"{'ratio luarocks / bioxen':40} {lr[0] / bx[0]:7.1f}x {lr[1] / bx[1]:7.1f}x")
print(f"{'bioxen --locked reinstall from cache':40} {locked[0]:8.3f} {locked[1]:8.3f}")
print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
PY
