-- The cost the automatic-records hook adds to the operation it records.
-- 1. The hook alone: N hook calls for a code execution, recording on and off.
-- 2. A VM exec's round trip with and without recording, for the thread and the
--    process backends: R repetitions of a block of B execs with recording off,
--    then on, then on, then off (ABBA, so a drift in load cancels out), and the
--    medians over all blocks of the on-minus-off difference of each pair, in
--    wall-clock time and in CPU time of the calling thread (the part of the exec
--    path the hook adds to; unaffected by other processes and by the recorder).
-- usage: bioxen bench/lrs/record_overhead.lua [N] [R] [B]   (LRS from BIOXEN_LRS_*)
local lrs = bioxen.lrs
local n = tonumber(arg[1] or 100000)
local reps = tonumber(arg[2] or 40)
local block = tonumber(arg[3] or 1000)
local code = "return 1 + 1"
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } bx_timespec2; int clock_gettime(int, bx_timespec2 *); ]]
local ts = ffi.new("bx_timespec2")
local function clock(id)
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local function now() return clock(1) end          -- CLOCK_MONOTONIC
local function cpu() return clock(3) end          -- CLOCK_THREAD_CPUTIME_ID: this thread only
local bench_record = lrs._bench_record
assert(lrs.record(true), "recording is off: set BIOXEN_LRS_ENDPOINT")
local on = bench_record(n, code)
local t0 = now()
lrs._sync_recorder()
local drain = now() - t0 + on -- the recorder worked along during the burst
lrs.record(false)
local off = bench_record(n, code)
lrs.record(true)
lrs._sync_recorder()
print(("hook alone, recording on:  %.3f us per call (%d calls)"):format(on / n * 1e6, n))
print(("hook alone, recording off: %.3f us per call"):format(off / n * 1e6))
print(("recorder thread (statement built, hashed, spooled; off the calling thread): %.2f us per record, wall clock of the burst until spooled")
  :format(drain / n * 1e6))

local function median(t)
  table.sort(t)
  local m = #t
  if m % 2 == 1 then return t[(m + 1) / 2] end
  return (t[m / 2] + t[m / 2 + 1]) / 2
end

local function quartiles(t)
  table.sort(t)
  return t[math.max(1, math.floor(#t * 0.25 + 0.5))], t[math.max(1, math.floor(#t * 0.75 + 0.5))]
end

for _, backend in ipairs({ "thread", "process" }) do
  local vm = bioxen.vm.create{ backend = backend }
  local function run(recording)
    lrs.record(recording)
    local t0, c0 = now(), cpu()
    for _ = 1, block do vm:exec(code) end
    local wall, cpu_ = (now() - t0) / block * 1e6, (cpu() - c0) / block * 1e6
    return wall, cpu_
  end
  run(false) run(true) -- warm up (JIT, the journal's pages)
  local d_wall, d_cpu, w_off, w_on, c_off, c_on = {}, {}, {}, {}, {}, {}
  for _ = 1, reps do
    local a_w, a_c = run(false)
    local b_w, b_c = run(true)
    local b2_w, b2_c = run(true)
    local a2_w, a2_c = run(false)
    d_wall[#d_wall + 1] = (b_w + b2_w - a_w - a2_w) / 2
    d_cpu[#d_cpu + 1] = (b_c + b2_c - a_c - a2_c) / 2
    w_off[#w_off + 1], w_on[#w_on + 1] = (a_w + a2_w) / 2, (b_w + b2_w) / 2
    c_off[#c_off + 1], c_on[#c_on + 1] = (a_c + a2_c) / 2, (b_c + b2_c) / 2
    lrs._sync_recorder() -- between repetitions: the recorder's backlog does not pile up
  end
  lrs.record(true)
  local q1, q3 = quartiles(d_wall)
  local cq1, cq3 = quartiles(d_cpu)
  print(("vm exec, %s backend (%d x ABBA blocks of %d execs): round trip %.2f us off, %.2f us on: %+.2f us added (median; quartiles %+.2f..%+.2f)")
    :format(backend, reps, block, median(w_off), median(w_on), median(d_wall), q1, q3))
  print(("vm exec, %s backend: calling thread CPU %.2f us off, %.2f us on: %+.2f us added (median; quartiles %+.2f..%+.2f)")
    :format(backend, median(c_off), median(c_on), median(d_cpu), cq1, cq3))
  vm:close()
end
