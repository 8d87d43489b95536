-- Channel throughput between two thread-backend VMs: one sends N values, the
-- other receives them. Usage: bioxen bench/net/channel_throughput.lua [N] [repeat=3]
local vm, channel = bioxen.vm, bioxen.channel
local N = tonumber(arg and arg[1]) or 2000000
local REPEAT = tonumber(arg and arg[2]) or 3 -- best of, the machine is shared

local function now()
  return bioxen.channel.now and bioxen.channel.now() or os.clock()
end

local function run_once(label, value_src, n, batch)
  local ch = channel{ capacity = 4096 }
  local producer = vm.create{ backend = "thread", timeout = 0, channels = { ch = ch } }
  local consumer = vm.create{ backend = "thread", timeout = 0, channels = { ch = ch } }
  local t0 = now()
  local c = consumer:exec_async(batch and ([[
    local n = 0
    for v in channels.ch:iter{ batch = %d } do n = n + 1 end
    return n
  ]]):format(batch) or [[
    local ch, n = channels.ch, 0
    local recv = ch.recv
    while true do
      local v, ok = recv(ch)
      if not ok then break end
      n = n + 1
    end
    return n
  ]])
  local p = producer:exec_async(([[
    local ch = channels.ch
    local send = ch.send
    local v = %s
    for i = 1, %d do send(ch, v) end
    ch:close()
  ]]):format(value_src, n))
  local pr = p:wait()
  local cr = c:wait()
  local dt = now() - t0
  assert(pr.ok, pr.error)
  assert(cr.ok, cr.error)
  assert(cr.values[1] == n, "lost values: " .. tostring(cr.values[1]))
  producer:close() consumer:close()
  return dt
end

local function run(label, value_src, n, batch)
  local best = math.huge
  for _ = 1, REPEAT do best = math.min(best, run_once(label, value_src, n, batch)) end
  print(("%-34s %9d in %6.3fs = %6.2f M/s (best of %d)"):format(label, n, best, n / best / 1e6, REPEAT))
  return n / best
end

local STR, TBL = '"ACGTACGTAC"', '{ id = 7, seq = "ACGT", gc = 0.5 }'
print("send / recv, one value per call:")
local s1 = run("  small strings (\"ACGTACGTAC\")", STR, N)
local t1 = run("  small tables {id, seq, gc}", TBL, math.floor(N / 2))
print("send / iter{batch = 256}:")
local s2 = run("  small strings", STR, N, 256)
local t2 = run("  small tables", TBL, math.floor(N / 2), 256)
print(("best: strings %.2f M/s (target 2), tables %.2f M/s (target 1)")
  :format(math.max(s1, s2) / 1e6, math.max(t1, t2) / 1e6))
