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
