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
local function clock(id)
  local ts = ffi.new("bx_timespec2")
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local function now() return clock(1) end          -- CLOCK_MONOTONIC
local function cpu() return clock(3) end          -- CLOCK_THREAD_CPUTIME_ID: this thread only
local bench_record = lrs._bench_record
lrs.record(true)
local on = bench_record(n, code)
lrs.record(false)
local off = bench_record(n, code)
lrs.record(true)
print(("hook, recording on:  %.3f us per call (%d calls)"):format(on / n * 1e6, n))
print(("hook, recording off: %.3f us per call"):format(off / n * 1e6))
if bioxen.vm then
  local m = math.floor(n / 5)
  for _, backend in ipairs({ "thread", "process" }) do
    local vm = bioxen.vm.create{ backend = backend }
    local function round_trip()
      local t0, c0 = now(), cpu()
      for _ = 1, m do vm:exec(code) end
      return (now() - t0) / m * 1e6, (cpu() - c0) / m * 1e6
    end
    round_trip()
    -- alternate off/on several times; report medians of wall time and of the
    -- calling thread's CPU time (the part of the exec path the hook adds to,
    -- unaffected by other processes and by the recorder thread)
    local off, on, off_cpu, on_cpu = {}, {}, {}, {}
    for i = 1, 7 do
      lrs.record(false) off[i], off_cpu[i] = round_trip()
      lrs.record(true) on[i], on_cpu[i] = round_trip()
    end
    for _, t in ipairs({ off, on, off_cpu, on_cpu }) do table.sort(t) end
    print(("vm exec (%s backend, %d execs x7): round trip %.2f us without recording, %.2f us with (%+.2f us); calling thread CPU %.2f us vs %.2f us (%+.2f us)")
      :format(backend, m, off[4], on[4], on[4] - off[4], off_cpu[4], on_cpu[4], on_cpu[4] - off_cpu[4]))
    vm:close()
  end
end
