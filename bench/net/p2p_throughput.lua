-- Messages between two child VMs, the bioxen way: (1) a channel between two
-- thread VMs, (2) TCP on 127.0.0.1 between two networked thread VMs (lines).
-- Usage: bioxen bench/net/p2p_throughput.lua [messages=200000] [repeat=3]
local vm, channel, now = bioxen.vm, bioxen.channel, bioxen.channel.now
local N = tonumber(arg and arg[1]) or 200000
local MSG = "ACGTACGTACGTACGTACGTACGTACGTACGT" -- 32 bytes
local REPEAT = tonumber(arg and arg[2]) or 3 -- best of, the machine is shared

local function pair(opts)
  local a = vm.create{ backend = "thread", timeout = 0, networked = opts.net, grants = opts.grants, channels = opts.channels }
  local b = vm.create{ backend = "thread", timeout = 0, networked = opts.net, grants = opts.grants, channels = opts.channels }
  return a, b
end

local function channel_once()
  local ch, ports = channel{ capacity = 4096 }, nil
  local a, b = pair{ channels = { ch = ch } }
  local t0 = now()
  local rx = b:exec_async([[local n = 0 for _ in channels.ch:iter{ batch = 256 } do n = n + 1 end return n]])
  local tx = a:exec_async(([[local ch = channels.ch for i = 1, %d do ch:send(%q) end ch:close()]]):format(N, MSG))
  assert(tx:wait().ok)
  local r = rx:wait()
  local dt = now() - t0
  assert(r.values[1] == N, r.error)
  a:close() b:close()
  return dt
end

local function tcp_once()
  local rendezvous = channel{ capacity = 1 }
  local a, b = pair{ net = true, grants = { net = { "127.0.0.1:*" } }, channels = { rv = rendezvous } }
  local t0 = now()
  local rx = b:exec_async([[
    local l = net.listen{ host = "127.0.0.1", port = 0 }
    channels.rv:send(l:port())
    local c = l:accept(30)
    local n = 0
    while true do
      local line = c:read_line()
      if line == nil then break end
      n = n + 1
    end
    return n
  ]])
  local tx = a:exec_async(([[
    local port = channels.rv:recv(30)
    local c = net.connect{ host = "127.0.0.1", port = port }
    local batch = {}
    for i = 1, 100 do batch[i] = %q end
    local chunk = table.concat(batch, "\n") .. "\n"
    for i = 1, %d / 100 do c:write(chunk) end
    c:close()
  ]]):format(MSG, N))
  local w = tx:wait()
  assert(w.ok, w.error)
  local r = rx:wait()
  local dt = now() - t0
  assert(r.values[1] == N, tostring(r.error or r.values[1]))
  a:close() b:close()
  return dt
end

local function best(f)
  local b = math.huge
  for _ = 1, REPEAT do b = math.min(b, f()) end
  return b
end
local dt = best(channel_once)
print(("bioxen channel, thread VMs:       %7d messages in %.3fs = %8.0f msg/s (best of %d)"):format(N, dt, N / dt, REPEAT))
dt = best(tcp_once)
print(("bioxen net TCP lines, thread VMs: %7d messages in %.3fs = %8.0f msg/s (best of %d)"):format(N, dt, N / dt, REPEAT))
