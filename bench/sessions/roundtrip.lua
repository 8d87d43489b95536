-- send + read round trip of `print(1)` on interactive sessions, thread and
-- process backends. Prints one line per backend: name, microseconds per round
-- trip. Usage: bioxen bench/sessions/roundtrip.lua [ROUNDS]
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bx_timespec;
  int clock_gettime(int clk, bx_timespec *ts);
]]
local ts = ffi.new("bx_timespec")
local function now()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local rounds = tonumber(arg[1]) or 20000
local m = bioxen.vm.manager()
local kinds = {
  { "thread", { backend = "thread" } },
  { "process", { backend = "process" } },
  { "persistent", { persistent = true } },
}
for _, k in ipairs(kinds) do
  local backend, opts = k[1], k[2]
  if backend == "persistent" then rounds = math.min(rounds, 5000) end
  local s = m:session("bench-" .. backend, opts)
  for _ = 1, 1000 do
    s:send("print(1)")
    assert(s:read() == "1\n")
  end
  local best = math.huge
  for _ = 1, 3 do
    local t0 = now()
    for _ = 1, rounds do
      s:send("print(1)")
      local out = s:read()
      if out ~= "1\n" then error("unexpected output " .. out) end
    end
    best = math.min(best, (now() - t0) / rounds)
  end
  print(("%s\t%.2f"):format(backend, best * 1e6))
  if backend == "persistent" then m:terminate("bench-persistent") end
end
m:close()
bioxen.session.host_request({ op = "stop" })
