#!/usr/bin/env bash
# All bioxen.net / channel / cluster benchmarks, side by side with the
# predecessor's way (LuaSocket between lua processes). Release build.
# Usage: bash bench/net/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q
BX=target/release/bioxen
echo "== load: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "== channel throughput between two thread VMs"
$BX bench/net/channel_throughput.lua 1000000
echo "== cluster:map scaling"
$BX bench/net/cluster_scaling.lua 16 thread
$BX bench/net/cluster_scaling.lua 16 process
echo "== messages between two VMs vs the predecessor's LuaSocket processes"
$BX bench/net/p2p_throughput.lua 200000
bash bench/net/luasocket_p2p.sh 200000
