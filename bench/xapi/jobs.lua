-- Concurrent exec_async jobs on one xcpng VM (pool simulator in-process): N jobs that
-- each wait S seconds in the guest (no CPU), first on fresh sibling channels, then
-- again on the open ones; wall time against the sum (what one-at-a-time would take).
-- usage: bioxen bench/xapi/jobs.lua [N=8] [S=1]
local n, secs = tonumber((...) or 8), tonumber(select(2, ...) or 1)
local xapi, now = bioxen.xapi, bioxen.vm.now
local sim = xapi.simulator({ user = "root", password = "pw",
  pool = { templates = { { name = "debian", boot_seconds = 0 } } } })
local x = xapi.connect({ url = sim.url, user = "root", password = "pw" })
local dir = os.tmpname()
os.remove(dir)
local known = os.tmpname()
local t0 = now()
local v = bioxen.vm.create({ backend = "xcpng", pool = x, template = "debian", sandbox = "trusted",
  ssh = { key = sim.ssh_key, known_hosts = known, accept_new = true }, guest_dir = dir, max_jobs = n,
  timeout = secs + 30 })
print(("create (deploy, bioxen upload, first VM): %.2f s"):format(now() - t0))
local CODE = ("local ffi = require('ffi') pcall(ffi.cdef, 'int usleep(unsigned int)') ffi.C.usleep(%d) return %%d")
  :format(math.floor(secs * 1e6))
local function round(label)
  local start, jobs = now(), {}
  for i = 1, n do jobs[i] = v:exec_async(CODE:format(i)) end
  for i = 1, n do assert(jobs[i]:wait().values[1] == i) end
  local wall = now() - start
  print(("%s: %d jobs of %.1f s in %.2f s wall (one at a time: %.1f s; %.1fx)"):format(label, n, secs, wall,
    n * secs, n * secs / wall))
end
round("fresh channels")
round("open channels")
v:close()
os.execute("rm -rf " .. dir)
os.remove(known)
sim:stop()
