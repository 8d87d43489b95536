-- bioxen.xapi against the pool simulator: sessions, calls, failures, tasks, events.
local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local xapi, task = bioxen.xapi, bioxen.task

local TEMPLATE = "Debian Bookworm 12"

local function pool(extra)
  local p = { session_timeout = 86400, templates = { { name = TEMPLATE, boot_seconds = 0, sshd = false } } }
  for k, v in pairs(extra or {}) do p[k] = v end
  return xapi.simulator({ user = "root", password = "secret", pool = p })
end

describe("xapi", function()
  it("logs in, calls with sugar and call(), and logs out", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local refs = x.VM.get_by_name_label(TEMPLATE)
    eq(#refs, 1)
    eq(x:call("VM.get_name_label", refs[1]), TEMPLATE)
    assert(refs[1]:match("^OpaqueRef:"), refs[1])
    x:close()
    local e = raises("Xapi", x.call, x, "VM.get_all")
    eq(e.code, "SESSION_CLOSED")
    sim:stop()
  end)

  it("refuses a wrong password with SESSION_AUTHENTICATION_FAILED", function()
    local sim = pool()
    local e = raises("Xapi", xapi.connect, { url = sim.url, user = "root", password = "wrong" })
    eq(e.code, "SESSION_AUTHENTICATION_FAILED")
    eq(e.params[1], "root")
    assert(e.message:match("refused the user name or password"), e.message)
    sim:stop()
  end)

  it("logs in again and retries when the session expires mid-script", function()
    local sim = pool({ session_timeout = 0.3 })
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local first = x:ref()
    task.sleep(0.5)
    eq(#x.VM.get_by_name_label(TEMPLATE), 1)
    assert(x:ref() ~= first, "a new session was made")
    sim:stop()
  end)

  it("follows HOST_IS_SLAVE from a pool member to the master", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local master = x.pool.get_master(x.pool.get_all()[1])
    local member
    for _, h in ipairs(x.host.get_all()) do if h ~= master then member = x.host.get_address(h) end end
    local y = xapi.connect({ url = "http://" .. member .. "/", user = "root", password = "secret" })
    eq(y.url, sim.url)
    eq(#y.VM.get_by_name_label(TEMPLATE), 1)
    sim:stop()
  end)

  it("raises XAPI failures with code, params and a meaning", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local t = x.VM.get_by_name_label(TEMPLATE)[1]
    local e = raises("Xapi", x.VM.start, t, false, false)
    eq(e.code, "VM_IS_TEMPLATE")
    e = raises("Xapi", x.VM.nonsense, t)
    eq(e.code, "MESSAGE_METHOD_UNKNOWN")
    e = raises("Xapi", x.VM.start, t)
    eq(e.code, "MESSAGE_PARAMETER_COUNT_MISMATCH")
    eq(e.params, { "VM.start", "4", "2" })
    local vm = x.VM.clone(t, "v")
    x.VM.set_is_a_template(vm, false)
    e = raises("Xapi", x.VM.set_memory_limits, vm, 512 * 2^20, 256 * 2^20, 256 * 2^20, 256 * 2^20)
    eq(e.code, "MEMORY_CONSTRAINT_VIOLATION")
    e = raises("Xapi", x.VM.set_VCPUs_at_startup, vm, 4)
    eq(e.code, "INVALID_VALUE")
    e = raises("Xapi", x.VM.clean_shutdown, vm)
    eq(e.code, "VM_BAD_POWER_STATE")
    eq({ e.params[2], e.params[3] }, { "running", "halted" })
    assert(e.message:match("must be running"), e.message)
    e = raises("Xapi", x.VM.get_record, "OpaqueRef:nope")
    eq(e.code, "HANDLE_INVALID")
    sim:stop()
  end)

  it("sends and reads int64 as strings (numbers in Lua)", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local vm = x.VM.clone(x.VM.get_by_name_label(TEMPLATE)[1], "v")
    local big = 6 * 2^30
    x.VM.set_memory_limits(vm, 2^30, big, big, big)
    eq(x.VM.get_memory_static_max(vm), big)
    eq(x.VM.get_record(vm).memory_dynamic_max, big)
    eq(type(x.host.compute_free_memory(x.host.get_all()[1])), "number")
    sim:stop()
  end)

  it("runs Async calls as tasks that wait and clean up", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local t = x.VM.get_by_name_label(TEMPLATE)[1]
    local handle = x.Async.VM.clone(t, "async-clone")
    assert(handle.ref:match("^OpaqueRef:"))
    local vm = handle:wait()
    eq(x.VM.get_name_label(vm), "async-clone")
    eq(#x.task.get_all(), 0, "the task was destroyed")
    x.VM.set_is_a_template(vm, false)
    local e = raises("Xapi", function() return x.Async.VM.clean_shutdown(vm):wait() end)
    eq(e.code, "VM_BAD_POWER_STATE")
    sim:stop()
  end)

  it("reports HOST_NOT_ENOUGH_FREE_MEMORY when the hosts are full", function()
    local sim = pool({ hosts = { { name = "small", memory_mib = 2048, cpus = 4 } } })
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local t = x.VM.get_by_name_label(TEMPLATE)[1]
    local a = x.VM.clone(t, "a")
    x.VM.set_is_a_template(a, false)
    x.VM.start(a, false, false)
    local b = x.VM.clone(t, "b")
    x.VM.set_is_a_template(b, false)
    local e = raises("Xapi", x.VM.start, b, false, false)
    eq(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY")
    eq(x.VM.get_power_state(b), "Halted")
    sim:stop()
  end)

  it("iterates event.from with its token", function()
    local sim = pool()
    local x = xapi.connect({ url = sim.url, user = "root", password = "secret" })
    local events = x:events({ classes = { "vm" }, timeout = 1 })
    local first = events() -- the current VMs come first
    eq(first.class, "vm")
    while x.event_token == nil do events() end
    local changer = task.spawn(function()
      task.sleep(0.05)
      x.VM.set_name_label(x.VM.get_by_name_label(TEMPLATE)[1], "renamed")
    end)
    local seen
    for _ = 1, 20 do
      local ev = events()
      if ev and ev.operation == "mod" then seen = ev break end
    end
    task.wait(changer)
    eq(seen.snapshot.name_label, "renamed")
    sim:stop()
  end)

  it("reports HTTP failures as kind Xapi with the cause", function()
    local e = raises("Xapi", xapi.connect, { url = "http://127.0.0.1:1/", user = "u", password = "p" })
    eq(e.code, "HTTP")
    assert(e.message:match("cannot reach"), e.message)
    raises("Argument", xapi.connect, { url = "ftp://x", user = "u", password = "p" })
    raises("Argument", xapi.transport, "https://x", { fingerprint = "abc" })
  end)
end)
