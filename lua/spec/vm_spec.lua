local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local vm = bioxen.vm
local task = bioxen.task

local function ok_values(r, ...)
  assert(r.ok, ("exec failed: %s: %s"):format(tostring(r.kind), tostring(r.error)))
  eq(r.values, { ... })
end

for _, backend in ipairs({ "thread", "process" }) do
  local function new(opts)
    opts = opts or {}
    opts.backend = backend
    return vm.create(opts)
  end

  describe("vm (" .. backend .. " backend)", function()
    it("runs code and returns values, stdout and stderr", function()
      local v = new()
      local r = v:exec("return 2 + 2")
      eq(r.ok, true)
      eq(r.values[1], 4)
      eq(r.stdout, "")
      eq(r.stderr, "")
      eq(r.truncated, false)
      assert(type(r.duration) == "number" and r.duration >= 0)
      eq(v:exec('print("Hello, BioXen!")').stdout, "Hello, BioXen!\n")
      eq(v:exec('print(1, nil, true)').stdout, "1\tnil\ttrue\n")
      v:close()
    end)

    it("keeps globals between execs and copies initial globals in", function()
      local v = new({ globals = { n = 10, list = { 1, 2, { deep = "yes" } } } })
      ok_values(v:exec("x = 1"))
      ok_values(v:exec("return x, n, list[3].deep"), 1, 10, "yes")
      -- the same source run again runs again (it may reuse its compiled chunk)
      for i = 1, 3 do ok_values(v:exec("count = (count or 0) + 1 return count"), i) end
      v:close()
    end)

    it("copies values by value, including nils and nested tables", function()
      local v = new()
      local r = v:exec("return nil, false, 1.5, 'str', { a = { b = { 1, 2 } } }, nil")
      eq(r.n, 6)
      eq(r.values[2], false)
      eq(r.values[5], { a = { b = { 1, 2 } } })
      local t = { 1 }
      local r2 = new():exec("return 1")
      t[1] = 2
      eq(r2.values[1], 1)
      v:close()
    end)

    it("calls global functions with copied arguments", function()
      local v = new()
      v:exec("function add(a, b) return a + b, { sum = a + b } end")
      local s, t = v:call("add", 2, 3)
      eq(s, 5)
      eq(t, { sum = 5 })
      local e = raises("Runtime", v.call, v, "missing")
      assert(e.message:find("missing"), e.message)
      v:exec("function boom() error('broken') end")
      e = raises("Runtime", v.call, v, "boom")
      assert(e.message:find("broken"), e.message)
      e = raises("Value", v.call, v, "add", print, 1)
      assert(e.message:find("function"), e.message)
      local cyc = {} cyc.me = cyc
      e = raises("Value", v.call, v, "add", cyc, 1)
      assert(e.message:find("cycle"), e.message)
      v:close()
    end)

    it("reports each failure kind in the result", function()
      local v = new({ timeout = 0.2, memory_limit = 16 * 2^20, output_limit = 64 })
      local function kind(code) local r = v:exec(code) eq(r.ok, false) return r.kind, r end
      eq(kind("return +"), "Syntax")
      eq(kind("error('x')"), "Runtime")
      eq(kind("while true do end"), "Timeout")
      eq(kind("local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end"), "MemoryLimit")
      eq(kind("return io.open('x')"), "Sandbox")
      local k, r = kind("for i = 1, 100 do print('0123456789') end")
      eq(k, "OutputLimit")
      eq(r.truncated, true)
      eq(#r.stdout, 64)
      eq(kind("return print"), "Value")
      ok_values(v:exec("return 'still fine'"), "still fine")
      v:close()
    end)

    it("gives a readable error message for sandbox denials", function()
      local v = new()
      local r = v:exec("os.execute('id')")
      eq(r.kind, "Sandbox")
      assert(r.error:find("os.execute is not available in the strict sandbox"), r.error)
      assert(r.error:find('sandbox = "trusted"'), r.error)
      v:close()
    end)

    it("runs code asynchronously; waiting yields to other tasks", function()
      local v = new()
      local job = v:exec_async("local s = 0 for i = 1, 3e7 do s = s + i end return s")
      local ticks = 0
      local ticker = task.spawn(function()
        while not job:done() do ticks = ticks + 1 task.sleep(0.001) end
      end)
      local r = job:wait()
      task.wait(ticker)
      ok_values(r, 3e7 * (3e7 + 1) / 2)
      eq(job:done(), true)
      eq(job:status(), "done")
      eq(job:wait().values[1], r.values[1])
      v:close()
    end)

    it("cancels a running job and times out a wait", function()
      local v = new()
      local job = v:exec_async("while true do end")
      raises("Timeout", job.wait, job, 0.05)
      job:cancel()
      local r = job:wait()
      eq(r.kind, "Cancelled")
      eq(job:status(), "cancelled")
      ok_values(v:exec("return 1"), 1)
      v:close()
    end)

    it("reports idle, busy and dead", function()
      local v = new()
      eq(v:status(), "idle")
      local job = v:exec_async("local t = os.clock() while os.clock() - t < 0.3 do end")
      task.sleep(0.05)
      eq(v:status(), "busy")
      job:wait()
      eq(v:status(), "idle")
      v:close()
      eq(v:status(), "dead")
    end)

    it("closes idempotently and refuses work afterwards", function()
      local v = new()
      v:close()
      v:close()
      raises("Closed", v.exec, v, "return 1")
    end)

    it("refuses a duplicate id with SessionAlreadyExists, frees it on close", function()
      local v = new({ id = "dup-" .. backend })
      local e = raises("SessionAlreadyExists", vm.create, { backend = backend, id = "dup-" .. backend })
      eq(e.id, "dup-" .. backend)
      v:close()
      new({ id = "dup-" .. backend }):close()
    end)

    it("lists live VMs with id, backend, status and pid", function()
      local v = new({ id = "listed-" .. backend })
      local found
      for _, info in ipairs(vm.list()) do
        if info.id == "listed-" .. backend then found = info end
      end
      assert(found, "the VM is listed")
      eq(found.backend, backend)
      eq(found.status, "idle")
      if backend == "process" then assert(type(found.pid) == "number") else eq(found.pid, nil) end
      v:close()
      for _, info in ipairs(vm.list()) do assert(info.id ~= "listed-" .. backend) end
    end)

    it("runs one-shot code with vm.run", function()
      local r = vm.run("return ... == nil, 6 * 7", { backend = backend })
      eq(r.values, { true, 42 })
    end)

    it("keeps each VM's state apart", function()
      local a, b = new(), new()
      a:exec("shared = 'a'")
      eq(b:exec("return shared").values[1], nil)
      a:close() b:close()
    end)

    it("strict: only the allow-list", function()
      local v = new()
      ok_values(v:exec([[return type(string.format), type(table.sort), type(math.floor), type(bit.band),
        type(coroutine.wrap), type(os.time), type(os.clock), type(os.date), type(os.difftime),
        rawget(_G, "io"), rawget(_G, "debug"), rawget(_G, "jit"), rawget(_G, "require"), rawget(string, "dump")]]),
        "function", "function", "function", "function", "function", "function", "function", "function", "function")
      ok_values(v:exec("return load('return 1 + 1')()"), 2)
      eq(v:exec("return collectgarbage('collect')").kind, "Sandbox")
      v:close()
    end)

    it("standard: require from package_path and bioxen.json", function()
      local dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. dir .. "/lib"))
      local f = assert(io.open(dir .. "/lib/greet.lua", "w"))
      f:write("local M = {} function M.hi(n) return 'hi ' .. n end return M")
      f:close()
      local v = new({ sandbox = "standard", package_path = { dir } })
      ok_values(v:exec("return require('lib.greet').hi('you')"), "hi you")
      ok_values(v:exec("return require('bioxen.json').encode({ 1, 2 })"), "[1,2]")
      local r = v:exec("return require('nope')")
      eq(r.kind, "NotFound")
      eq(v:exec("return require('ffi')").kind, "Sandbox")
      eq(v:exec("return io").kind, "Sandbox")
      v:close()
      os.execute("rm -rf " .. dir)
    end)

    it("trusted: the full library, still its own state", function()
      local v = new({ sandbox = "trusted" })
      ok_values(v:exec("return type(io.open), type(require('ffi').new), type(jit.version)"),
        "function", "function", "string")
      eq(v:exec("io.write('via io.write')").stdout, "via io.write")
      ok_values(v:exec("return require('bioxen.json').decode('[3]')[1]"), 3)
      v:close()
    end)

    it("closes VMs that are garbage collected", function()
      collectgarbage() collectgarbage()
      local before = #vm.list()
      do local v = new() v:exec("return 1") end
      eq(#vm.list(), before + 1)
      collectgarbage() collectgarbage()
      eq(#vm.list(), before)
    end)
  end)
end

describe("vm with an external interpreter (lua_executable)", function()
  it("gives the same result tables from lua5.4, with OS limits only", function()
    local v = vm.create({ lua_executable = "lua5.4", timeout = 0.3, globals = { n = 5 }, output_limit = 32 })
    eq(v.backend, "process")
    ok_values(v:exec("return 2 + 2, _VERSION, n"), 4, "Lua 5.4", 5)
    eq(v:exec("print('hi')").stdout, "hi\n")
    v:exec("function add(a, b) return a + b end")
    eq(v:call("add", 2, 3), 5)
    eq(v:exec("return +").kind, "Syntax")
    eq(v:exec("error('x')").kind, "Runtime")
    eq(v:exec("return print").kind, "Value")
    local r = v:exec("while true do print('0123456789') end")
    eq({ r.kind, r.truncated, #r.stdout }, { "OutputLimit", true, 32 })
    local ok = v:exec("return os.execute('true')").values[1]
    eq(ok, nil)
    eq(v:exec("while true do end").kind, "Timeout")
    eq(v:status(), "dead")
    ok_values(v:exec("return n"), 5)
    v:close()
  end)

  it("fails clearly for a missing interpreter", function()
    local e = raises("Crashed", vm.create, { lua_executable = "no-such-lua" })
    assert(e.message:find("no%-such%-lua"), e.message)
  end)
end)

describe("vm options", function()
  it("rejects unknown options and bad values clearly", function()
    local e = raises("Argument", vm.create, { backnd = "thread" })
    assert(e.message:find("backnd"), e.message)
    e = raises("Argument", vm.create, { backend = "nope" })
    assert(e.message:find("thread"), e.message)
    e = raises("Argument", vm.create, { backend = "thread", sandbox = "loose" })
    assert(e.message:find("strict"), e.message)
    e = raises("Argument", vm.create, { backend = "thread", timeout = "5" })
    assert(e.message:find("timeout"), e.message)
    e = raises("Value", vm.create, { backend = "thread", globals = { f = print } })
    assert(e.message:find("globals.f"), e.message)
  end)

  it("defaults to the process backend", function()
    local v = vm.create()
    eq(v.backend, "process")
    assert(v:pid())
    v:close()
  end)

  it("accepts backends registered from Lua with the same result tables", function()
    vm.backends.echo = { create = function(opts)
      return {
        exec = function(_, code)
          return { ok = true, values = { code }, n = 1, stdout = "", stderr = "", duration = 0, truncated = false }
        end,
        call = function(_, name) return { ok = true, values = { name }, n = 1 } end,
        status = function() return "idle" end,
        close = function() end,
      }
    end }
    local v = vm.create({ backend = "echo" })
    eq(v:exec("hello").values[1], "hello")
    eq(v:call("fn"), "fn")
    eq(v:exec_async("later"):wait().values[1], "later")
    v:close()
    vm.backends.echo = nil
  end)
end)
