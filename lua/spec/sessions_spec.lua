local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local task = bioxen.task

local function expect(cond, what)
  if not cond then error("expected " .. what, 2) end
end

local n = 0
local function fresh_id()
  n = n + 1
  return "spec" .. n
end

for _, backend in ipairs({ "thread", "process" }) do
  describe("an interactive session on the " .. backend .. " backend", function()
    local m = bioxen.vm.manager()
    local function open(opts)
      opts = opts or {}
      opts.backend = backend
      return m:session(fresh_id(), opts)
    end

    it("evaluates statements and returns their output as soon as they ran", function()
      local s = open()
      s:send("x = 42\nprint('Value:', x)\n")
      local text, busy, incomplete = s:read({ timeout = 5 })
      eq(text, "Value:\t42\n")
      eq(busy, false)
      eq(incomplete, false)
    end)

    it("prints the values of expressions, like a REPL", function()
      local s = open()
      s:send("y = 6")
      s:send("y * 7")
      s:send("=y")
      s:send("1, 'two', nil")
      s:send("{ 1, 2, k = 'v' }")
      eq(s:read({ timeout = 5 }), '42\n6\n1\t"two"\tnil\n{ 1, 2, k = "v" }\n')
    end)

    it("accumulates a multi-line chunk until it is complete", function()
      local s = open()
      s:send("for i = 1, 3 do\n")
      local text, busy, incomplete = s:read({ timeout = 5 })
      eq({ text, busy, incomplete }, { "", false, true })
      s:send("  print(i)\n")
      eq({ s:read({ timeout = 5 }) }, { "", false, true })
      s:send("end\n")
      eq({ s:read({ timeout = 5 }) }, { "1\n2\n3\n", false, false })
      s:send("function f(a)\n  return a * 2\nend\nf(21)\n")
      eq(s:read({ timeout = 5 }), "42\n")
    end)

    it("reports syntax and runtime errors and stays usable", function()
      local s = open()
      s:send("x = = 1")
      expect(s:read({ timeout = 5 }):match("^Syntax: "), "a Syntax line")
      s:send("error('boom')")
      local text = s:read({ timeout = 5 })
      expect(text:match("^Runtime: .*boom"), "a Runtime line, got " .. text)
      s:send("print('still here')")
      eq(s:read({ timeout = 5 }), "still here\n")
    end)

    it("never loses or duplicates output across reads", function()
      local s = open()
      for i = 1, 50 do s:send(("print(%d)"):format(i)) end
      local want = {}
      for i = 1, 50 do want[#want + 1] = tostring(i) .. "\n" end
      eq(s:read({ timeout = 5 }), table.concat(want))
      eq({ s:read({ timeout = 0 }) }, { "", false, false })
    end)

    it("says evaluation is still in progress when the timeout passes first", function()
      local s = open()
      s:send("print('early')")
      s:send("local t = os.clock() while os.clock() - t < 0.3 do end print('late')")
      local text, busy = s:read({ timeout = 0.02 })
      eq(busy, true)
      expect(text == "" or text == "early\n", "only the first input's output, got " .. text)
      local rest, busy2 = s:read({ timeout = 10 })
      eq(busy2, false)
      eq(text .. rest, "early\nlate\n")
    end)

    it("interrupts running input and keeps the session", function()
      local s = open()
      s:send("z = 1 while true do end")
      local _, busy = s:read({ timeout = 0.05 })
      eq(busy, true)
      s:interrupt()
      local text, busy2 = s:read({ timeout = 10 })
      eq(busy2, false)
      expect(text:match("Interrupted"), "an Interrupted line, got " .. text)
      s:send("z")
      eq(s:read({ timeout = 5 }), "1\n")
    end)

    it("stops input at the session's timeout", function()
      local s = open({ timeout = 0.1 })
      s:send("while true do end")
      expect(s:read({ timeout = 10 }):match("^Timeout: "), "a Timeout line")
    end)

    it("streams output larger than a pipe buffer", function()
      local s = open()
      s:send("print(string.rep('x', 300000))")
      local text = s:read({ timeout = 10 })
      eq(#text, 300001)
    end)

    it("applies output_limit to each input", function()
      local s = open({ output_limit = 1000 })
      s:send("for i = 1, 1000 do print(i) end")
      local text = s:read({ timeout = 10 })
      expect(text:match("OutputLimit: "), "an OutputLimit line")
    end)

    it("keeps the sandbox (strict by default)", function()
      local s = open()
      s:send("os.execute('true')")
      expect(s:read({ timeout = 5 }):match("^Sandbox: "), "a Sandbox line")
    end)

    it("runs exec and exec_async in order with the input", function()
      local s = open()
      s:send("v = 10")
      local r = s:exec("print('in exec') return v + 1")
      eq({ r.ok, r.values[1], r.stdout }, { true, 11, "in exec\n" })
      local job = m:exec_async(s.id, "return v * 2")
      eq(job:wait().values[1], 20)
      eq(s:read({ timeout = 5 }), "")
    end)

    it("switches package environments with set_env", function()
      local dir = bioxen.env.dirs().data .. "/envs/spec_" .. backend .. "/current/tree/share/lua/5.1"
      os.execute(("mkdir -p %q"):format(dir))
      local f = assert(io.open(dir .. "/specmod.lua", "w"))
      f:write("return { answer = 42 }\n")
      f:close()
      local strict = open()
      raises("InteractiveSession", strict.set_env, strict, "spec_" .. backend)
      raises("NotFound", strict.set_env, strict, "no_such_env")
      local s = open({ sandbox = "standard" })
      s:send("require('specmod')")
      expect(s:read({ timeout = 5 }):match("NotFound"), "NotFound before set_env")
      s:set_env("spec_" .. backend)
      s:send("require('specmod').answer")
      eq(s:read({ timeout = 5 }), "42\n")
      local e = open({ env = "spec_" .. backend })
      e:send("require('specmod').answer + 1")
      eq(e:read({ timeout = 5 }), "43\n")
    end)

    it("detaches and attaches through the manager", function()
      local s = open()
      local id = s.id
      m:send(id, "w = 'kept'")
      m:detach(id)
      eq(m:list()[id].attached, false)
      raises("Detach", m.send, m, id, "w")
      raises("Detach", s.send, s, "w")
      raises("Detach", m.detach, m, id)
      local again = m:attach(id)
      eq(again, s)
      raises("Attach", m.attach, m, id)
      m:send(id, "w")
      eq(m:read(id, { timeout = 5 }), "\"kept\"\n")
    end)

    it("lists sessions with their details", function()
      local s = open()
      local info = m:list()[s.id]
      eq(info.backend, backend)
      eq(info.interactive, true)
      eq(info.attached, true)
      eq(info.status, "idle")
      expect(type(info.created) == "number" and type(info.last_used) == "number", "times")
      if backend == "process" then
        expect(type(info.pid) == "number", "a pid")
      else
        eq(info.pid, nil)
      end
    end)

    it("drives 100 sessions concurrently from bioxen.task", function()
      local count = backend == "thread" and 100 or 100
      local tasks = {}
      for i = 1, count do
        tasks[i] = task.spawn(function()
          local s = open()
          s:send(("n = %d"):format(i))
          s:send("for k = 1, 3 do print(n * k) end")
          local text = s:read({ timeout = 30 })
          m:terminate(s.id)
          return text
        end)
      end
      local results = task.all(tasks)
      for i = 1, count do
        eq(results[i], ("%d\n%d\n%d\n"):format(i, i * 2, i * 3))
      end
    end)

    m:close()
  end)
end

describe("a process session whose process dies", function()
  it("reports it with kind ProcessRegistry", function()
    local m = bioxen.vm.manager()
    local s = m:session("doomed", { backend = "process" })
    local pid = s:pid()
    s:send("while true do end")
    os.execute("kill -9 " .. pid)
    -- The reader thread notices the pipe closing; the read ends with the crash.
    local text = s:read({ timeout = 10 })
    expect(text:match("Crashed"), "a Crashed line, got " .. text)
    eq(s:status(), "dead")
    raises("ProcessRegistry", s.send, s, "1")
    eq(m:list().doomed.status, "dead")
    m:close()
  end)
end)

describe("the VM manager", function()
  it("creates, runs, lists and terminates VMs", function()
    local m = bioxen.vm.manager()
    local v = m:create("w1", { backend = "thread" })
    eq(m:get("w1"), v)
    eq(m:exec("w1", "return 2 + 2").values[1], 4)
    eq(m:exec_async("w1", "return 3 * 3"):wait().values[1], 9)
    local info = m:list().w1
    eq({ info.backend, info.interactive, info.attached }, { "thread", false, true })
    expect(type(info.created) == "number", "created")
    raises("SessionAlreadyExists", m.create, m, "w1")
    raises("InteractiveSession", m.send, m, "w1", "1")
    m:terminate("w1")
    raises("SessionNotFound", m.get, m, "w1")
    raises("SessionNotFound", m.exec, m, "nope", "return 1")
    raises("SessionNotFound", m.terminate, m, "nope")
    m:close()
    raises("VMManager", m.create, m, "w2")
    raises("VMManager", m.list, m)
  end)

  it("creates process VMs with pids", function()
    local m = bioxen.vm.manager()
    m:create("p1", { backend = "process" })
    expect(type(m:list().p1.pid) == "number", "a pid")
    eq(m:exec("p1", "return 1").values[1], 1)
    m:close()
  end)

  it("checks its arguments", function()
    local m = bioxen.vm.manager()
    raises("Argument", m.create, m, 42)
    raises("Argument", m.session, m, "")
    raises("Argument", m.session, m, "x", { colour = "red" })
    raises("Argument", m.session, m, "x", { backend = "cloud" })
    m:close()
  end)
end)

describe("a persistent session", function()
  -- The session host this spec starts is stopped whatever happens.
  local function with_host(body)
    return function()
      local ok, e = pcall(body)
      pcall(bioxen.session.host_request, { op = "stop" }, false)
      if not ok then error(e, 0) end
    end
  end
  it("outlives its manager and is refused to a second attacher", with_host(function()
    local m1 = bioxen.vm.manager()
    local s = m1:session("spec_persist", { persistent = true })
    s:send("kept = 'yes'")
    eq(s:read({ timeout = 5 }), "")
    m1:close()
    local m2 = bioxen.vm.manager()
    local s2 = m2:attach("spec_persist")
    s2:send("kept")
    eq(s2:read({ timeout = 5 }), "\"yes\"\n")
    eq(m2:list().spec_persist.persistent, true)
    local m3 = bioxen.vm.manager()
    local e = raises("Attach", m3.attach, m3, "spec_persist")
    expect(tostring(e.holder):match("^pid %d+"), "the holder's pid, got " .. tostring(e.holder))
    local s3 = m3:attach("spec_persist", { force = true })
    s3:send("kept .. '!'")
    eq(s3:read({ timeout = 5 }), "\"yes!\"\n")
    raises("SessionAlreadyExists", bioxen.session.open, "spec_persist", { persistent = true })
    m3:terminate("spec_persist")
    raises("SessionNotFound", m2.attach, bioxen.vm.manager(), "spec_persist")
  end))

  it("runs on the process backend in the session host too", with_host(function()
    local m = bioxen.vm.manager()
    local s = m:session("spec_pp", { persistent = true, backend = "process" })
    s:send("t = {}\nfor i = 1, 3 do t[i] = i * i end\nt")
    eq(s:read({ timeout = 5 }), "{ 1, 4, 9 }\n")
    local conn = bioxen.session.host_connect()
    local host_pid = conn:pid()
    conn:close()
    local info = m:list().spec_pp
    eq(info.backend, "process")
    expect(type(info.pid) == "number" and info.pid ~= host_pid, "the child's own pid")
    m:detach("spec_pp")
    local again = m:attach("spec_pp")
    eq(again.backend, "process")
    again:send("os.exit(1)")
    expect(again:read({ timeout = 5 }):match("^Sandbox"), "the sandbox holds in the host")
    m:terminate("spec_pp")
  end))
end)
