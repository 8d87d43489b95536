-- bioxen.xcpng on the pool simulator, whose guests run a real sshd.
local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local xapi, xcpng, ssh, task = bioxen.xapi, bioxen.xcpng, bioxen.ssh, bioxen.task

local NET = "Pool-wide network associated with eth0"

local function setup(extra)
  local p = { templates = {
    { name = "debian", boot_seconds = 0 },
    { name = "no-agent", guest_agent = false, boot_seconds = 0 },
    { name = "no-clean", clean_shutdown = false, boot_seconds = 0 },
  } }
  for k, v in pairs(extra or {}) do p[k] = v end
  local sim = xapi.simulator({ user = "root", password = "pw", pool = p })
  local x = xapi.connect({ url = sim.url, user = "root", password = "pw" })
  local known = os.tmpname()
  local sshopts = { key = sim.ssh_key, known_hosts = known, accept_new = true, timeout = 10 }
  return sim, x, sshopts
end

local function counts(x)
  local vms = 0
  for _, r in pairs(x.VM.get_all_records()) do if not r.is_a_template then vms = vms + 1 end end
  return vms, #x.VDI.get_all()
end

describe("xcpng", function()
  it("deploys, runs commands over SSH, shuts down and destroys without leaks", function()
    local sim, x, so = setup()
    local g = xcpng.deploy({ pool = x, template = "debian", name = "g", memory = "512MiB", vcpus = 2,
      network = NET, ssh = so })
    assert(g.address:match("^127%."), g.address)
    local r = g:exec("echo out; echo err >&2; exit 4")
    eq({ r.ok, r.status, r.stdout, r.stderr }, { false, 4, "out\n", "err\n" })
    eq(x.VM.get_memory_static_max(g.vm), 512 * 2^20)
    eq(x.VM.get_VCPUs_at_startup(g.vm), 2)
    eq(#x.VM.get_VIFs(g.vm), 1)
    eq(xcpng.shutdown(g), "clean")
    xcpng.destroy(g)
    eq({ counts(x) }, { 0, 0 })
    sim:stop()
  end)

  it("falls back to a hard shutdown when the guest cannot shut down cleanly", function()
    local sim, x, so = setup()
    local g = xcpng.deploy({ pool = x, template = "no-clean", name = "g", ssh = false })
    eq(xcpng.shutdown(g), "hard")
    xcpng.destroy(g)
    sim:stop()
  end)

  it("times out and cleans up when the guest never reports an address", function()
    local sim, x, so = setup()
    local e = raises("Timeout", xcpng.deploy, { pool = x, template = "no-agent", name = "silent",
      address_timeout = 1, ssh = so })
    assert(e.message:match("xe%-guest%-utilities"), e.message)
    eq({ counts(x) }, { 0, 0 })
    sim:stop()
  end)

  it("explains a missing template, a memory violation and a full pool before creating anything", function()
    local sim, x, so = setup({ hosts = { { name = "small", memory_mib = 2048, cpus = 2 } } })
    local e = raises("NotFound", xcpng.deploy, { pool = x, template = "centos", name = "z" })
    assert(e.message:match("there are: .*debian"), e.message)
    e = raises("Argument", xcpng.deploy, { pool = x, template = "debian", name = "z", memory = "64MiB" })
    eq(e.code, "MEMORY_CONSTRAINT_VIOLATION")
    e = raises("Xapi", xcpng.deploy, { pool = x, template = "debian", name = "z", memory = "8GiB" })
    eq(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY")
    raises("Argument", xcpng.deploy, { pool = x, template = "debian", name = "z", vcpus = 8 })
    eq({ counts(x) }, { 0, 0 })
    sim:stop()
  end)

  it("cleans up when the host runs out of memory at start", function()
    local sim, x, so = setup({ hosts = { { name = "small", memory_mib = 2048, cpus = 2 } } })
    local a = xcpng.deploy({ pool = x, template = "debian", name = "a", memory = "1GiB", ssh = false })
    local e = raises("Xapi", xcpng.deploy, { pool = x, template = "debian", name = "b", memory = "1GiB", ssh = so })
    eq(e.code, "HOST_NOT_ENOUGH_FREE_MEMORY")
    eq({ counts(x) }, { 1, 1 })
    xcpng.destroy(a)
    sim:stop()
  end)

  it("refuses a changed host key, naming both fingerprints", function()
    local sim, x, so = setup()
    local g = xcpng.deploy({ pool = x, template = "debian", name = "g", ssh = false })
    local f = io.open(so.known_hosts, "w")
    f:write(g.address, " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    f:close()
    local e = raises("Ssh", ssh.connect, { host = g.address, key = sim.ssh_key, known_hosts = so.known_hosts, accept_new = true })
    assert(e.message:match("MISMATCH"), e.message)
    eq(e.host, g.address)
    assert(e.known_fingerprint:match("^SHA256:") and e.offered_fingerprint:match("^SHA256:"))
    assert(e.known_fingerprint ~= e.offered_fingerprint)
    xcpng.destroy(g)
    sim:stop()
  end)

  it("refuses an unknown host unless accept_new, and a wrong key", function()
    local sim, x, so = setup()
    local g = xcpng.deploy({ pool = x, template = "debian", name = "g", ssh = false })
    local empty = os.tmpname()
    local e = raises("Ssh", ssh.connect, { host = g.address, key = sim.ssh_key, known_hosts = empty })
    assert(e.message:match("unknown host"), e.message)
    local other = os.tmpname()
    os.remove(other)
    os.execute(("ssh-keygen -q -t ed25519 -N '' -f %s"):format(other))
    e = raises("Ssh", ssh.connect, { host = g.address, key = other, known_hosts = empty, accept_new = true })
    assert(e.message:match("authentication failed"), e.message)
    xcpng.destroy(g)
    sim:stop()
  end)

  it("raises Ssh when the guest dies mid-exec", function()
    local sim, x, so = setup()
    local g = xcpng.deploy({ pool = x, template = "debian", name = "g", ssh = so })
    local running = task.spawn(function() return g:exec("sleep 20") end)
    task.sleep(0.3)
    x.VM.hard_shutdown(g.vm)
    local e = raises("Ssh", task.wait, running)
    assert(e.message:match("lost"), e.message)
    xcpng.destroy(g)
    sim:stop()
  end)

  it("deploys many guests in parallel under bioxen.task", function()
    local sim, x, so = setup()
    local jobs = {}
    for i = 1, 8 do
      jobs[i] = function()
        local g = xcpng.deploy({ pool = x, template = "debian", name = "p" .. i, ssh = so })
        local out = g:exec("echo " .. i).stdout
        xcpng.destroy(g)
        return out
      end
    end
    eq(task.all(jobs), { "1\n", "2\n", "3\n", "4\n", "5\n", "6\n", "7\n", "8\n" })
    eq({ counts(x) }, { 0, 0 })
    -- every new host key was recorded, none lost to a parallel writer
    local lines = 0
    for _ in io.lines(so.known_hosts) do lines = lines + 1 end
    eq(lines, 8)
    sim:stop()
  end)
end)

describe("xcpng VM backend", function()
  it("runs Lua in a pool guest behind bioxen.vm's interface, then destroys the guest", function()
    local sim, x, so = setup()
    local dir = os.tmpname()
    os.remove(dir)
    local v = bioxen.vm.create({ backend = "xcpng", pool = x, template = "debian", memory = "1GiB", vcpus = 2,
      ssh = so, guest_dir = dir, timeout = 5 })
    local r = v:exec("x = 41 print('hi') return x + 1, nil, {a = 1}")
    eq({ r.ok, r.n, r.values[1], r.values[2], r.values[3].a, r.stdout }, { true, 3, 42, nil, 1, "hi\n" })
    eq(v:call("tostring", 5), "5")
    eq(v:exec("return x").values[1], 41, "state persists between execs")
    r = v:exec("error('boom')")
    eq({ r.ok, r.kind }, { false, "Runtime" })
    r = v:exec("return io.open")
    eq({ r.ok, r.kind }, { false, "Sandbox" }, "the guest's sandbox follows the same options")
    r = v:exec("while true do end")
    eq({ r.ok, r.kind }, { false, "Timeout" }, "and so do its limits")
    eq(v:exec_async("return 7"):wait().values[1], 7)
    local ran = x.VM.get_by_name_label("bioxen-" .. v.id)
    eq(#ran, 1)
    -- the guest dies mid-exec: the caller gets kind Ssh, and close still cleans up
    local job = v:exec_async("while true do end")
    task.sleep(0.5)
    x.VM.hard_shutdown(ran[1])
    local e = raises("Ssh", job.wait, job)
    assert(e.message:match("lost") or e.message:match("exited"), e.message)
    eq(v:status(), "dead")
    v:close()
    eq(v:status(), "dead")
    eq({ counts(x) }, { 0, 0 })
    os.execute("rm -rf " .. dir)
    sim:stop()
  end)

  it("runs several exec_async jobs on one guest at once, each result with its job", function()
    local sim, x, so = setup()
    local dir = os.tmpname()
    os.remove(dir)
    local v = bioxen.vm.create({ backend = "xcpng", pool = x, template = "debian", ssh = so, guest_dir = dir,
      sandbox = "trusted", timeout = 10, max_jobs = 4 })
    v:exec("x = 41")
    -- jobs that wait (without using a CPU) until a gate file appears: all four
    -- can only finish if all four are in flight at once
    local gate = os.tmpname()
    os.remove(gate)
    local GATED = "local ffi = require('ffi') pcall(ffi.cdef, 'int usleep(unsigned int)') "
      .. "while not io.open(%q) do ffi.C.usleep(10000) end return %d, x"
    local jobs = {}
    for i = 1, 4 do jobs[i] = v:exec_async(GATED:format(gate, i)) end
    task.sleep(0.2)
    for i = 1, 4 do eq(jobs[i]:done(), false, "job " .. i .. " waits for the gate") end
    eq(#v._h.workers, 4, "the caller's VM and three siblings, one SSH channel each")
    io.open(gate, "w"):close()
    local first = jobs[1]:wait(20)
    eq({ first.values[1], first.values[2] }, { 1, 41 }, "the first job ran in the caller's VM, with its state")
    for i = 2, 4 do
      local r = jobs[i]:wait(20)
      eq({ r.ok, r.values[1], r.values[2] }, { true, i, nil }, "a sibling VM has its own state")
    end
    os.remove(gate)
    -- a job that waits without using a CPU (this machine may have few)
    local SLEEP = "local ffi = require('ffi') pcall(ffi.cdef, 'int usleep(unsigned int)') "
      .. "ffi.C.usleep(%d) return %d, x"
    local function batch(n, us)
      local js = {}
      for i = 1, n do js[i] = v:exec_async(SLEEP:format(us, i)) end
      local got = {}
      for i = 1, n do
        local r = js[i]:wait()
        assert(r.ok, r.error)
        got[i] = r.values[1]
      end
      return got
    end
    -- max_jobs = 4: a fifth job waits for a free channel instead of opening one
    eq(batch(5, 100000), { 1, 2, 3, 4, 5 })
    eq(#v._h.workers, 4)
    -- a cancelled job stops its sibling; the caller's VM and its state live on
    local busy = v:exec_async("x = 1")
    busy:wait()
    local a, b = v:exec_async(SLEEP:format(300000, 1)), v:exec_async(SLEEP:format(5000000, 2))
    b:cancel()
    eq(a:wait().values[1], 1)
    eq(b:status(), "cancelled")
    eq(v:exec("return x").values[1], 1)
    eq(v:status(), "idle")
    v:close()
    eq({ counts(x) }, { 0, 0 })
    os.execute("rm -rf " .. dir)
    sim:stop()
  end)
end)
