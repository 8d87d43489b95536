#!/usr/bin/env bash
# The predecessor's way: two `lua` processes (lua5.1 + Debian's lua-socket)
# exchanging the same 32-byte messages over TCP on 127.0.0.1, one per line.
# Usage: bash bench/net/luasocket_p2p.sh [messages=200000] [repeat=3]
set -euo pipefail
N=${1:-200000}
REPEAT=${2:-3}
MSG=ACGTACGTACGTACGTACGTACGTACGTACGT
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
once() {
rm -f "$tmp/port"
start=$(date +%s.%N)
lua5.1 -e "
  local socket = require('socket')
  local s = assert(socket.bind('127.0.0.1', 0))
  local _, port = s:getsockname()
  local f = io.open('$tmp/port', 'w') f:write(port) f:close()
  local c = assert(s:accept())
  local n = 0
  while true do
    local line = c:receive('*l')
    if not line then break end
    n = n + 1
  end
  assert(n == $N, 'received ' .. n)
" &
rx=$!
while [ ! -s "$tmp/port" ]; do sleep 0.01; done
lua5.1 -e "
  local socket = require('socket')
  local c = assert(socket.connect('127.0.0.1', $(cat "$tmp/port")))
  for i = 1, $N do assert(c:send('$MSG\n')) end
  c:close()
"
wait $rx
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" 'BEGIN { printf "%.6f\n", b - a }'
}
best=$(for _ in $(seq "$REPEAT"); do once; done | sort -n | head -1)
awk -v n="$N" -v dt="$best" -v r="$REPEAT" 'BEGIN { printf "LuaSocket, two lua5.1 processes: %7d messages in %.3fs = %8.0f msg/s (best of %d)\n", n, dt, n / dt, r }'
