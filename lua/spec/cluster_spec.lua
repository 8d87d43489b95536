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
