local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local cluster, task = bioxen.cluster, bioxen.task

local function range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

for _, backend in ipairs({ "thread", "process" }) do
  describe("cluster (" .. backend .. ")", function()
    it("maps in input order with env globals", function()
      local c = cluster.new{ size = 2, backend = backend, env = { OFFSET = 100 }, timeout = 10 }
      local r, failures = c:map("function(x) return { x = x, y = x * x + OFFSET } end", range(25))
      eq(failures, nil)
      eq(r.n, 25)
      for i = 1, 25 do eq(r[i], { x = i, y = i * i + 100 }) end
      c:close()
    end)
    it("reports an error raised by the function as that item's failure, without retrying", function()
      local c = cluster.new{ size = 2, backend = backend, timeout = 10 }
      local r, failures = c:map("function(x) if x == 4 then error('no fours') end return x end", range(6))
      eq({ r[1], r[3], r[4], r[5], r[6] }, { 1, 3, nil, 5, 6 })
      eq(#failures, 1)
      eq(failures[1].index, 4)
      eq(failures[1].attempts, 1)
      assert(failures[1].error:find("no fours"), failures[1].error)
      eq(c.stats.replaced, 0)
      c:close()
    end)
    it("replaces a timed-out worker, retries its item once, then reports it failed", function()
      local c = cluster.new{ size = 2, backend = backend, timeout = 0.3 }
      local r, failures = c:map("function(x) if x == 2 then while true do end end return x * 10 end", range(5))
      eq({ r[1], r[2], r[3], r[4], r[5] }, { 10, nil, 30, 40, 50 })
      eq(#failures, 1)
      eq({ failures[1].index, failures[1].kind, failures[1].attempts }, { 2, "Timeout", 2 })
      eq(c.stats.retried, 1)
      eq(c.stats.replaced, 2)
      -- the replacements work
      local again = c:map("function(x) return -x end", { 1, 2 })
      eq({ again[1], again[2] }, { -1, -2 })
      c:close()
    end)
    it("calls back as each item finishes, each exactly once", function()
      local c = cluster.new{ size = 3, backend = backend, timeout = 10 }
      local seen = {}
      local n = c:each("function(s) return #s end", { "a", "bb", "ccc", "dddd" }, function(i, v, failure)
        eq(failure, nil)
        seen[i] = (seen[i] or 0) + 1
        eq(v, i)
      end)
      eq(n, 4)
      eq(seen, { 1, 1, 1, 1 })
      c:close()
    end)
    it("starts work with map_async and waits for it later", function()
      local c = cluster.new{ size = 2, backend = backend, timeout = 10 }
      local job = c:map_async("return function(x) local t = os.clock() while os.clock() - t < 0.05 do end return x .. '!' end", { "a", "b", "c" })
      eq(job.n, 3)
      raises("Busy", c.map, c, "function(x) return x end", { 1 })
      local other = task.spawn(function() return "meanwhile" end)
      eq(task.wait(other), "meanwhile")
      local r, failures = job:wait()
      eq({ r[1], r[2], r[3], failures }, { "a!", "b!", "c!", nil })
      eq(job:wait()[1], "a!", "wait again gives the same results")
      eq(c:map("function(x) return x end", { 7 })[1], 7, "usable again")
      c:close()
    end)
    it("scatters a list over the workers and gathers from each", function()
      local c = cluster.new{ size = 3, backend = backend, timeout = 10 }
      eq(c:scatter(range(10)), { 4, 3, 3 })
      local sums = c:gather("function(chunk, slot) local s = 0 for _, x in ipairs(chunk) do s = s + x end return { slot = slot, sum = s } end")
      eq(sums, { n = 3, { slot = 1, sum = 10 }, { slot = 2, sum = 18 }, { slot = 3, sum = 27 } })
      eq(c:gather(), { n = 3, { 1, 2, 3, 4 }, { 5, 6, 7 }, { 8, 9, 10 } }, "without a function: the chunks")
      local _, failures = c:gather("function(chunk, slot) if slot == 2 then error('bad slice') end return #chunk end")
      eq(#failures, 1)
      eq(failures[1].index, 2)
      assert(failures[1].error:find("bad slice"), failures[1].error)
      eq(c:scatter({ "x" }), { 1, 0, 0 }, "fewer items than workers")
      eq(c:gather("function(chunk) return #chunk end"), { n = 3, 1, 0, 0 })
      raises("Argument", c.scatter, c, "not a list")
      c:close()
      raises("Closed", c.scatter, c, { 1 })
    end)
  end)
end

describe("cluster", function()
  it("survives a worker killed mid-map: its item is retried, nothing lost or duplicated", function()
    local c = cluster.new{ size = 2, backend = "process", timeout = 20 }
    local slow = "function(x) local t = os.clock() while os.clock() - t < 0.15 do end return x * 2 end"
    local victim = c:vms()[1]:pid()
    assert(victim, "process workers have a pid")
    local killer = task.spawn(function()
      task.sleep(0.2)
      os.execute("kill -9 " .. victim)
    end)
    local counts = {}
    local values = {}
    c:each(slow, range(10), function(i, v, failure)
      eq(failure, nil, "item " .. i)
      counts[i] = (counts[i] or 0) + 1
      values[i] = v
    end)
    task.wait(killer)
    for i = 1, 10 do
      eq(counts[i], 1, "item " .. i .. " finished once")
      eq(values[i], i * 2)
    end
    eq(c.stats.replaced >= 1, true, "the killed worker was replaced")
    eq(c.stats.retried >= 1, true, "its item was retried")
    assert(c:vms()[1]:pid() ~= victim)
    c:close()
  end)
  it("gives a replaced worker its slice again when it dies mid-gather", function()
    local c = cluster.new{ size = 2, backend = "process", timeout = 20 }
    c:scatter(range(6))
    local victim = c:vms()[2]:pid()
    local killer = task.spawn(function()
      task.sleep(0.2)
      os.execute("kill -9 " .. victim)
    end)
    local r, failures = c:gather("function(chunk) local t = os.clock() while os.clock() - t < 0.5 do end local s = 0 for _, x in ipairs(chunk) do s = s + x end return s end")
    task.wait(killer)
    eq(failures, nil)
    eq(r, { n = 2, 6, 15 })
    eq(c.stats.replaced, 1)
    assert(c:vms()[2]:pid() ~= victim)
    c:close()
  end)
  it("raises a clear error for gather before scatter", function()
    local c = cluster.new{ size = 1, backend = "thread" }
    raises("Argument", c.gather, c)
    c:close()
  end)
  it("reports the remaining items when no worker can be replaced, instead of hanging", function()
    local c = cluster.new{ size = 1, backend = "thread", timeout = 0.2 }
    c:_break_spawning("no more VMs")
    local r, failures = c:map("function(x) if x == 1 then while true do end end return x end", { 1, 2, 3 })
    eq(#failures, 3)
    eq(failures[1].kind, "Timeout")
    eq(failures[2].kind, "Crashed")
    assert(failures[3].error:find("no more VMs"), failures[3].error)
    c:close()
  end)
  it("refuses bad options and closed use", function()
    raises("Argument", cluster.new, { size = 0 })
    raises("Argument", cluster.new, { sise = 2 })
    raises("Argument", cluster.new, { size = "2" })
    raises("Argument", cluster.new, { env = 5 })
    -- a string env names a package environment, as vm.create's env
    local e = raises("NotFound", cluster.new, { size = 2, backend = "thread", env = "no-such-env" })
    eq(e.env, "no-such-env")
    local dir = bioxen.env.dirs().data .. "/envs/spec_cluster/current/tree/share/lua/5.1"
    os.execute(("mkdir -p %q"):format(dir))
    local f = assert(io.open(dir .. "/clustermod.lua", "w"))
    f:write("return { k = 4 }\n")
    f:close()
    local pc = cluster.new{ size = 2, backend = "process", env = "spec_cluster" }
    eq(pc:map("function(x) return x * require('clustermod').k end", { 1, 2 }), { 4, 8, n = 2 })
    pc:close()
    local c = cluster.new{ size = 1, backend = "thread" }
    raises("Argument", c.map, c, function(x) return x end, { 1 })
    raises("Argument", c.map, c, "function(x) return x end", "not a list")
    local r = c:map("function(x) return x end", {})
    eq(r.n, 0)
    c:close()
    raises("Closed", c.map, c, "function(x) return x end", { 1 })
  end)
  it("reports a function source that does not compile on every item", function()
    local c = cluster.new{ size = 1, backend = "thread" }
    local r, failures = c:map("function(x) return x +* 1 end", { 1, 2 })
    eq(#failures, 2)
    eq(failures[1].kind, "Syntax")
    c:close()
  end)
end)

-- The same cluster over pool guests of the XAPI simulator, each with a real sshd.
describe("cluster (xcpng)", function()
  local xapi, xcpng = bioxen.xapi, bioxen.xcpng
  -- one bioxen upload for both tests: the simulator's guests share this host's file system
  local dir = os.tmpname()
  os.remove(dir)
  local BOOT = 2 -- seconds a "slow" guest takes to boot: serial deploys of two would take twice that

  local function pool(hosts)
    local sim = xapi.simulator({ user = "root", password = "pw", pool = { hosts = hosts, templates = {
      { name = "debian", boot_seconds = 0 }, { name = "slow", boot_seconds = BOOT } } } })
    local x = xapi.connect({ url = sim.url, user = "root", password = "pw" })
    local so = { key = sim.ssh_key, known_hosts = os.tmpname(), accept_new = true, timeout = 10 }
    return sim, x, so
  end
  local function counts(x)
    local vms = 0
    for _, r in pairs(x.VM.get_all_records()) do if not r.is_a_template then vms = vms + 1 end end
    return vms, #x.VDI.get_all()
  end

  it("deploys its guests in parallel, maps in input order, survives a guest dying mid-map, leaks nothing", function()
    local sim, x, so = pool()
    -- the guests share the simulator's file system: upload bioxen once, so the
    -- timing below measures deploys, not uploads
    local warm = xcpng.deploy({ pool = x, template = "debian", name = "warm", ssh = so })
    xcpng.ensure_bioxen(warm, dir)
    xcpng.destroy(warm)

    local t0 = bioxen.vm.now()
    local c = cluster.new{ size = 2, backend = "xcpng", pool = x, template = "slow", memory = "512MiB", vcpus = 1,
      ssh = so, guest_dir = dir, sandbox = "trusted", timeout = 20 }
    local took = bioxen.vm.now() - t0
    assert(took < 2 * BOOT - 0.2, ("two guests that boot in %ss each took %.2fs: deployed one after the other?")
      :format(BOOT, took))
    eq({ counts(x) }, { 2, 2 })
    local guests = {}
    for slot, v in ipairs(c:vms()) do
      guests[slot] = x.VM.get_by_name_label("bioxen-" .. v.id)[1]
      eq(x.VM.get_memory_static_max(guests[slot]), 512 * 2^20, "the backend's options reach vm.create")
      eq(x.VM.get_VCPUs_at_startup(guests[slot]), 1)
    end

    local r, failures = c:map("function(s) return s:upper() .. #s end", { "a", "bb", "ccc", "dddd", "eeeee" })
    eq(failures, nil)
    eq({ r.n, r[1], r[2], r[3], r[4], r[5] }, { 5, "A1", "BB2", "CCC3", "DDDD4", "EEEEE5" })

    -- slot 1's guest is switched off while it runs an item: the item is retried
    -- on another worker (slot 2, or slot 1's replacement guest)
    local SLOW = "function(x) local ffi = require('ffi') pcall(ffi.cdef, 'int usleep(unsigned int)') "
      .. "ffi.C.usleep(600000) return x * 10 end"
    local killer = task.spawn(function()
      task.sleep(0.3)
      x.VM.hard_shutdown(guests[1])
    end)
    local seen = {}
    c:each(SLOW, { 1, 2, 3, 4 }, function(i, v, failure)
      eq(failure, nil, "item " .. i)
      eq(v, i * 10)
      seen[i] = (seen[i] or 0) + 1
    end)
    task.wait(killer)
    eq(seen, { 1, 1, 1, 1 }, "every item finished exactly once")
    eq({ c.stats.replaced, c.stats.retried }, { 1, 1 })
    eq({ counts(x) }, { 2, 2 }, "the dead guest was destroyed, its replacement deployed")
    local replacement = x.VM.get_by_name_label("bioxen-" .. c:vms()[1].id)[1]
    assert(replacement ~= guests[1])
    eq(c:map("function(x) return -x end", { 1, 2, 3 }), { -1, -2, -3, n = 3 })
    c:close()
    eq({ counts(x) }, { 0, 0 }, "no VM or VDI left after close")
    sim:stop()
  end)

  it("checks the backend's options before deploying anything, and cleans up when a guest cannot start", function()
    local sim, x, so = pool({ { name = "small", memory_mib = 2048, cpus = 2 } })
    local e = raises("Argument", cluster.new, { size = 2, backend = "xcpng", pool = x, templat = "debian" })
    assert(e.message:find("the xcpng backend also takes: .*template"), e.message)
    raises("Argument", cluster.new, { size = 2, backend = "xcpng", pool = x, template = 5 })
    raises("Argument", cluster.new, { size = 2, backend = "no-such-backend" })
    eq({ counts(x) }, { 0, 0 })
    -- a pool too small for three guests: the ones that started are destroyed
    e = raises("Xapi", cluster.new, { size = 3, backend = "xcpng", pool = x, template = "debian",
      memory = "1GiB", ssh = so, guest_dir = dir })
    eq(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY")
    eq({ counts(x) }, { 0, 0 })
    os.execute("rm -rf " .. dir)
    sim:stop()
  end)
end)
