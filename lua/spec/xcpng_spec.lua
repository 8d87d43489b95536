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
    for i = 1, 5 do
      jobs[i] = function()
        local g = xcpng.deploy({ pool = x, template = "debian", name = "p" .. i, ssh = so })
        local out = g:exec("echo " .. i).stdout
        xcpng.destroy(g)
        return out
      end
    end
    eq(task.all(jobs), { "1\n", "2\n", "3\n", "4\n", "5\n" })
    eq({ counts(x) }, { 0, 0 })
    sim:stop()
  end)
end)
