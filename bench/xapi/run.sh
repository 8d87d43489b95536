#!/usr/bin/env bash
# bench/xapi: bioxen.xapi vs the XenAPI Python SDK on the same simulator, parallel
# deploys, and remote exec (bioxen.ssh vs `ssh host cmd` per call vs paramiko).
# usage: bash bench/xapi/run.sh   (needs: cargo build --release; bash tests/deps/python.sh)
#        ONLY=calls: only the calls/s rounds; BUSY=1: with one core kept busy (see below)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=target/release/bioxen
PY=target/pyenv/bin/python
N=${N:-4000}
ROUNDS=${ROUNDS:-7}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== XAPI calls/s (VM.get_power_state, sequential, one session; $ROUNDS alternating rounds of $N calls)"
# BUSY=1 keeps one core busy meanwhile: on a virtual machine an idle CPU takes
# 50-100 us to wake, and every call's round trip pays that on an idle machine.
if [ "${BUSY:-}" = 1 ]; then
  yes >/dev/null &
  echo "(one core kept busy by yes)"
fi
$B xapi-sim --listen 127.0.0.1:0 --user root --password pw >"$work/sim.out" 2>/dev/null &
for _ in $(seq 100); do [ -s "$work/sim.out" ] && break; sleep 0.05; done
URL=$(head -1 "$work/sim.out")
for r in $(seq "$ROUNDS"); do
  $B bench/xapi/calls.lua "$URL" "$N" | tee -a "$work/bio"
  $PY bench/xapi/calls.py "$URL" "$N" | tee -a "$work/py"
done
# The machine is shared: compare the best and the median round of each.
stats() { awk '{print $(NF-1)}' "$1" | sort -n | awk '{v[NR]=$1} END {print v[NR], v[int((NR+1)/2)]}'; }
read -r bbest bmed < <(stats "$work/bio")
read -r pbest pmed < <(stats "$work/py")
echo "bioxen best $bbest, median $bmed calls/s; XenAPI best $pbest, median $pmed calls/s"
awk -v a="$bbest" -v b="$pbest" -v c="$bmed" -v d="$pmed" \
  'BEGIN { printf "ratio bioxen/XenAPI: best %.1fx, median %.1fx\n", a / b, c / d }'
[ "${BUSY:-}" = 1 ] && kill %yes

[ "${ONLY:-}" = calls ] && exit 0

echo "== concurrent exec_async jobs on one xcpng VM"
$B bench/xapi/jobs.lua "${JOBS:-8}" 1

echo "== parallel deploys"
$B bench/xapi/deploys.lua "${DEPLOYS:-50}"

echo "== remote exec round trip (command: true)"
ssh-keygen -q -t ed25519 -N '' -f "$work/host" && ssh-keygen -q -t ed25519 -N '' -f "$work/client"
cp "$work/client.pub" "$work/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/sshd_config" <<CFG
ListenAddress 127.0.0.1:$PORT
HostKey $work/host
AuthorizedKeysFile $work/authorized_keys
PidFile none
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
LogLevel ERROR
MaxSessions 100
SetEnv HOME=$work/home
CFG
mkdir -p "$work/home"
mkdir -p /run/sshd
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>/dev/null &
sleep 0.3
E=${EXECS:-200}
$B bench/xapi/exec.lua "$PORT" "$work/client" "$work/known" "$E"
$PY bench/xapi/exec_paramiko.py "$PORT" "$work/client" "$E"
start=$(date +%s.%N)
for _ in $(seq "$E"); do
  ssh -q -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -i "$work/client" -p "$PORT" 127.0.0.1 true
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$E" 'BEGIN { printf "ssh host cmd per call: %d execs in %.3f s = %.2f ms/exec\n", n, e - s, (e - s) / n * 1000 }'
