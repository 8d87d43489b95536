-- The cost the automatic-records hook adds to the operation it records: time
-- of N hook calls for a code execution with recording on (LRS configured),
-- against recording off. When bioxen.vm is present, also the round trip of a
-- VM exec with and without recording.
-- usage: bioxen bench/lrs/record_overhead.lua [N]   (LRS from BIOXEN_LRS_*)
local lrs = bioxen.lrs
local n = tonumber(arg[1] or 100000)
local code = "return 1 + 1"
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bx_timespec2; int clock_gettime(int, bx_timespec2 *); ]]
local function now()
  local ts = ffi.new("bx_timespec2")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local bench_record = lrs._bench_record
lrs.record(true)
local on = bench_record(n, code)
lrs.record(false)
local off = bench_record(n, code)
lrs.record(true)
print(("hook, recording on:  %.3f us per call (%d calls)"):format(on / n * 1e6, n))
print(("hook, recording off: %.3f us per call"):format(off / n * 1e6))
if bioxen.vm then
  local vm = bioxen.vm.create()
  local m = math.floor(n / 10)
  local function round_trips()
    local t0 = now()
    for _ = 1, m do vm:exec(code) end
    return (now() - t0) / m * 1e6
  end
  round_trips()
  lrs.record(false)
  local base = round_trips()
  lrs.record(true)
  local with = round_trips()
  lrs.record(false)
  local base2 = round_trips()
  print(("vm exec round trip: %.2f us without recording, %.2f us with, %.2f us without again; added %.2f us")
    :format(base, with, base2, with - (base + base2) / 2))
  vm:close()
end

