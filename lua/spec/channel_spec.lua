local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local channel, task = bioxen.channel, bioxen.task

describe("channel", function()
  it("copies nil, booleans, numbers, strings and nested tables in order", function()
    local ch = channel{ capacity = 8 }
    local t = { name = "seq1", counts = { A = 3, C = 1 }, list = { 1, 2, 3 }, [5] = true }
    for _, v in ipairs({ "text", 42, 1.5, true, false }) do ch:send(v) end
    ch:send(nil)
    ch:send(t)
    ch:send("bin\0ary\255")
    eq({ ch:recv(), ch:recv(), ch:recv(), ch:recv(), (ch:recv()) }, { "text", 42, 1.5, true, false })
    local v, ok = ch:recv()
    eq({ v, ok }, { nil, true }, "a sent nil is a value")
    local got = ch:recv()
    eq(got, t)
    assert(got ~= t, "tables are copied, not shared")
    eq(ch:recv(), "bin\0ary\255")
  end)
  it("copies at send time", function()
    local ch = channel{ capacity = 2 }
    local t = { n = 1 }
    ch:send(t)
    t.n = 2
    eq(ch:recv().n, 1)
  end)
  it("refuses values it cannot copy, naming them", function()
    local ch = channel{ capacity = 2 }
    local e = raises("Value", ch.send, ch, { jobs = { { run = print } } })
    assert(e.message:find("value.jobs[1].run is a function", 1, true), e.message)
    eq(e.path, "value.jobs[1].run")
    e = raises("Value", ch.send, ch, coroutine.create(function() end))
    assert(e.message:find("thread"), e.message)
    raises("Value", ch.send, ch, { [print] = 1 })
    local cyc = {} cyc.self = cyc
    raises("Value", ch.send, ch, cyc)
    eq(ch:len(), 0, "nothing was queued")
  end)
  it("applies back-pressure when full", function()
    local ch = channel{ capacity = 2 }
    local sent = 0
    local producer = task.spawn(function()
      for i = 1, 5 do ch:send(i) sent = i end
    end)
    task.sleep(0.02)
    eq(sent, 2, "the producer waits at capacity")
    eq(ch:len(), 2)
    eq(producer:status(), "running")
    eq(ch:try_send(99), false)
    local got = {}
    for _ = 1, 5 do got[#got + 1] = ch:recv(1) end
    task.wait(producer)
    eq(got, { 1, 2, 3, 4, 5 })
  end)
  it("times out a send on a full channel and a recv on an empty one", function()
    local ch = channel{ capacity = 1 }
    ch:send("x")
    local e = raises("Timeout", ch.send, ch, "y", 0.03)
    eq(e.timeout, 0.03)
    eq(ch:recv(), "x")
    raises("Timeout", ch.recv, ch, 0.03)
  end)
  it("wakes a waiting receiver from another task", function()
    local ch = channel{ capacity = 4 }
    local consumer = task.spawn(function() return ch:recv(2) end)
    task.sleep(0.01)
    ch:send({ ok = true })
    eq(task.wait(consumer), { ok = true })
  end)
  it("closes: sends fail, receivers drain then see the end", function()
    local ch = channel{ capacity = 4 }
    ch:send(1) ch:send(2)
    ch:close()
    eq(ch:is_closed(), true)
    local e = raises("Closed", ch.send, ch, 3)
    assert(e.message:find("closed"), e.message)
    eq({ ch:recv() }, { 1, true })
    eq({ ch:recv() }, { 2, true })
    eq({ ch:recv() }, { nil, false })
    eq({ ch:try_recv() }, { nil, false })
  end)
  it("releases a receiver waiting on a channel that gets closed", function()
    local ch = channel{ capacity = 1 }
    local t = task.spawn(function() return select("#", ch:recv(2)), ch:recv() end)
    task.sleep(0.01)
    ch:close()
    local n, v = task.wait(t)
    eq({ n, v }, { 2, nil })
  end)
  it("iterates until closed and drained", function()
    local ch = channel{ capacity = 3 }
    task.spawn(function() for i = 1, 10 do ch:send(i * i) end ch:close() end)
    local sum = 0
    for v in ch do sum = sum + v end
    eq(sum, 385)
    local again = channel{ capacity = 2 }
    again:send("a") again:close()
    local seen = {}
    for v in again:iter() do seen[#seen + 1] = v end
    eq(seen, { "a" })
  end)
  it("takes queued values in batches", function()
    local ch = channel{ capacity = 8 }
    for i = 1, 5 do ch:send(i % 2 == 0 and { n = i } or i) end
    local vals, n = ch:recv_batch(3)
    eq({ n, vals }, { 3, { 1, { n = 2 }, 3 } })
    vals, n = ch:recv_batch()
    eq({ n, vals }, { 2, { { n = 4 }, 5 } })
    raises("Timeout", ch.recv_batch, ch, 4, 0.02)
    task.spawn(function() for i = 1, 600 do ch:send(i) end ch:close() end)
    local sum, count = 0, 0
    for v in ch:iter{ batch = 64 } do sum, count = sum + v, count + 1 end
    eq({ count, sum }, { 600, 600 * 601 / 2 })
    eq(ch:recv_batch(), nil, "closed and drained")
  end)
  it("has a monotonic clock for timing", function()
    local a = channel.now()
    task.sleep(0.01)
    assert(channel.now() - a >= 0.009)
  end)
  it("reports its size, capacity and state", function()
    local ch = channel.new(3)
    ch:send(1)
    eq({ ch:len(), ch:capacity(), ch:is_closed() }, { 1, 3, false })
    assert(tostring(ch):find("1/3"), tostring(ch))
    eq(channel.is_channel(ch), true)
    eq(channel.is_channel({}), false)
  end)
  it("refuses a bad capacity", function()
    raises("Argument", channel, { capacity = 0 })
    raises("Argument", channel, { capacity = 1.5 })
    raises("Argument", channel.new, -3)
  end)
end)

for _, backend in ipairs({ "thread", "process" }) do
  describe("channel in " .. backend .. " VMs", function()
    local vm = bioxen.vm
    it("is handed over at creation with the same methods, both ways", function()
      local jobs, results = channel{ capacity = 8 }, channel{ capacity = 8 }
      local w = vm.create{ backend = backend, timeout = 10, channels = { jobs = jobs, results = results } }
      local job = w:exec_async([[
        local n = 0
        for item in channels.jobs do
          channels.results:send({ id = item.id, len = #item.seq, tag = tostring(channels.jobs):match("^channel") })
          n = n + 1
        end
        channels.results:close()
        return n
      ]])
      for i = 1, 5 do jobs:send({ id = i, seq = ("ACGT"):rep(i) }) end
      jobs:close()
      local got = {}
      for r in results do got[#got + 1] = r end
      eq(#got, 5)
      eq(got[3], { id = 3, len = 12, tag = "channel" })
      local r = job:wait(10)
      eq({ r.ok, r.values[1] }, { true, 5 }, r.error)
      w:close()
    end)
    it("applies back-pressure to a child VM's sends", function()
      local ch = channel{ capacity = 2 }
      local w = vm.create{ backend = backend, timeout = 10, channels = { ch = ch } }
      local job = w:exec_async([[for i = 1, 6 do channels.ch:send(i) end return "sent"]])
      task.sleep(0.2)
      eq(ch:len(), 2, "the child waits while the channel is full")
      eq(job:done(), false)
      local got = {}
      for _ = 1, 6 do got[#got + 1] = ch:recv(5) end
      eq(got, { 1, 2, 3, 4, 5, 6 })
      eq(job:wait(10).values[1], "sent")
      w:close()
    end)
    it("shows a child VM a closed channel: recv ends, send raises Closed", function()
      local ch = channel{ capacity = 2 }
      ch:send("last")
      ch:close()
      local w = vm.create{ backend = backend, timeout = 10, channels = { ch = ch } }
      local r = w:exec([[
        local a, ok1 = channels.ch:recv(1)
        local b, ok2 = channels.ch:recv(1)
        local ok, e = pcall(channels.ch.send, channels.ch, 1)
        return a, ok1, b, ok2, e.kind
      ]])
      eq({ r.ok, r.values[1], r.values[2], r.values[3], r.values[4], r.values[5] }, { true, "last", true, nil, false, "Closed" })
      w:close()
    end)
    it("times out a child's recv, and a VM timeout stops a child waiting on a channel", function()
      local ch = channel{ capacity = 1 }
      local w = vm.create{ backend = backend, timeout = 0.5, channels = { ch = ch } }
      local r = w:exec([[local ok, e = pcall(channels.ch.recv, channels.ch, 0.05) return e.kind]])
      eq(r.values[1], "Timeout")
      local t0 = channel.now()
      local stuck = w:exec_async([[return channels.ch:recv()]]):wait(10)
      eq(stuck.ok, false)
      eq(stuck.kind, "Timeout")
      assert(channel.now() - t0 < 5, "the wait ended at the VM's timeout")
      w:close()
    end)
    it("loses and duplicates nothing with several producers and consumers on a tiny channel", function()
      local ch, out = channel{ capacity = 3 }, channel{ capacity = 3 }
      local function producer(first)
        local w = vm.create{ backend = backend, timeout = 30, channels = { ch = ch } }
        return w, w:exec_async(("for i = %d, %d do channels.ch:send(i) end"):format(first, first + 999))
      end
      local p1, j1 = producer(1)
      local p2, j2 = producer(1001)
      local cw = vm.create{ backend = backend, timeout = 30, channels = { ch = ch, out = out } }
      local cj = cw:exec_async("local n = 0 for v in channels.ch do channels.out:send(v) n = n + 1 end channels.out:close() return n")
      local seen, host_n = {}, 0
      local host = task.spawn(function()
        for v in ch do seen[v] = (seen[v] or 0) + 1 host_n = host_n + 1 end
      end)
      local relay = task.spawn(function()
        for v in out do seen[v] = (seen[v] or 0) + 1 end
      end)
      eq(j1:wait(30).ok, true)
      eq(j2:wait(30).ok, true)
      ch:close()
      task.wait(host)
      local r = cj:wait(30)
      task.wait(relay)
      eq(r.ok, true, r.error)
      eq(r.values[1] + host_n, 2000)
      for i = 1, 2000 do eq(seen[i], 1, "value " .. i) end
      p1:close() p2:close() cw:close()
    end)
    it("keeps its raw functions out of the child's reach", function()
      local ch = channel{ capacity = 1 }
      local w = vm.create{ backend = backend, channels = { ch = ch } }
      local r = w:exec("local keys = {} for k in pairs(channels.ch) do keys[#keys + 1] = k end return keys")
      eq(r.values[1], { "handle" })
      w:close()
    end)
    it("refuses channels that are not channels", function()
      raises("Argument", vm.create, { backend = backend, channels = { x = {} } })
      raises("Argument", vm.create, { backend = backend, channels = "ch" })
    end)
  end)
end

-- Channels handed to an interactive session: its input and its exec use them,
-- on both local backends (a process session's reader serves them over the pipe).
for _, backend in ipairs({ "thread", "process" }) do
  describe("channel in an interactive " .. backend .. " session", function()
    it("is usable from the session's input and exec, with back-pressure and close", function()
      local jobs, results = channel{ capacity = 4 }, channel{ capacity = 2 }
      local m = bioxen.vm.manager()
      local s = m:session("chan-" .. backend, { backend = backend, timeout = 20,
        channels = { jobs = jobs, results = results } })
      jobs:send("acgt")
      jobs:send({ seq = "gg" })
      s:send("local a, b = channels.jobs:recv(5), channels.jobs:recv(5)\n"
        .. "channels.results:send(#a + #b.seq) print(a, b.seq)")
      eq(s:read({ timeout = 10 }), "acgt\tgg\n")
      eq(results:recv(5), 6)
      -- more than the capacity: the session waits for room while the host takes
      s:send("for i = 1, 9 do channels.results:send(i) end channels.results:close() print('sent')")
      local got = {}
      for v in results do got[#got + 1] = v end
      eq(got, { 1, 2, 3, 4, 5, 6, 7, 8, 9 })
      eq(s:read({ timeout = 10 }), "sent\n")
      -- exec runs in the same session, with the same channels
      jobs:send(21)
      local r = s:exec("return channels.jobs:recv(5) * 2, channels.jobs:len()")
      eq({ r.ok, r.values[1], r.values[2] }, { true, 42, 0 })
      jobs:close()
      s:send("print(channels.jobs:recv(5)) channels.jobs:send(1)")
      assert(s:read({ timeout = 10 }):match("^nil\tfalse\nClosed: "), "a closed channel in the session")
      s:send("print(channels.nope)")
      eq(s:read({ timeout = 10 }), "nil\n", "only the channels handed to it")
      m:close()
    end)
  end)
end

describe("channel in a session", function()
  it("is refused for a persistent session, which outlives this script", function()
    local e = raises("Argument", bioxen.session.open, "chan-persist",
      { persistent = true, channels = { c = channel{ capacity = 1 } } })
    assert(e.message:find("persistent"), e.message)
  end)
end)
