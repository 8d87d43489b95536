-- Sustained delivery rate to an LRS: queue N statements (lists of CHUNK, each
-- synced to the spool), then flush; the rate counts from the first send until
-- the LRS has acknowledged the last statement.
-- usage: bioxen bench/lrs/throughput.lua N CHUNK [BATCH]   (LRS from BIOXEN_LRS_*)
local lrs = bioxen.lrs
local n, chunk = tonumber(arg[1] or 20000), tonumber(arg[2] or 1000)
if arg[3] then lrs.configure{ batch_size = tonumber(arg[3]) } end
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bx_timespec; int clock_gettime(int, bx_timespec *); ]]
local function now()
  local ts = ffi.new("bx_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local t0 = now()
local queued = 0
while queued < n do
  local list = {}
  for i = 1, math.min(chunk, n - queued) do
    list[i] = { verb = "completed", object = "https://example.org/bench/" .. (queued + i),
      result = { success = true, duration = "PT0.01S" } }
  end
  lrs.send(list)
  queued = queued + #list
end
local t1 = now()
lrs.flush()
local t2 = now()
print(("batch %d, %d statements: spooled in %.3f s (%.0f/s), delivered in %.3f s: %.0f statements/s sustained")
  :format(lrs.settings().batch_size, n, t1 - t0, n / (t1 - t0), t2 - t0, n / (t2 - t0)))
