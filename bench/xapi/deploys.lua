-- 50 guests deployed in parallel with bioxen.task vs one deploy alone.
-- usage: bioxen bench/xapi/deploys.lua N
local xapi, xcpng, task = bioxen.xapi, bioxen.xcpng, bioxen.task
local n = tonumber((...) or 50)
local function now() return tonumber(io.popen("date +%s.%N"):read("*l")) end
local sim = xapi.simulator({ user = "root", password = "pw",
  pool = { templates = { { name = "debian", boot_seconds = 0.5 } } } })
local x = xapi.connect({ url = sim.url, user = "root", password = "pw" })
local known = os.tmpname()
local function one(i)
  local t = now()
  local g = xcpng.deploy({ pool = x, template = "debian", name = "bench" .. i, memory = "512MiB",
    network = "Pool-wide network associated with eth0",
    ssh = { key = sim.ssh_key, known_hosts = known, accept_new = true } })
  assert(g:exec("true").ok)
  local took = now() - t
  xcpng.destroy(g)
  return took
end
local single = one(0)
print(("single deploy (clone, provision, VIF, start, 0.5 s boot, address, SSH, exec): %.3f s"):format(single))
local jobs = {}
for i = 1, n do jobs[i] = function() return one(i) end end
local t = now()
local times = task.all(jobs)
local wall = now() - t
local slowest, sum = 0, 0
for _, v in ipairs(times) do slowest = math.max(slowest, v) sum = sum + v end
print(("%d parallel deploys: wall %.3f s, slowest %.3f s, sum %.3f s (wall/slowest %.2f, sum/wall %.1fx)")
  :format(n, wall, slowest, sum, wall / slowest, sum / wall))
sim:stop()
