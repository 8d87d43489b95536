-- tests/xapi.rs: a package environment reproduced in a pool guest by the guest's
-- own curator. `guest_env.lua ok` expects it to work (the mirror is up);
-- `guest_env.lua unreachable` expects a clear failure and no leaked VM.
local mode = ...
local xapi, spec = bioxen.xapi, nil
local sim = xapi.simulator({ user = "root", password = "pw",
  pool = { templates = { { name = "debian", boot_seconds = 0 } } } })
local x = xapi.connect({ url = sim.url, user = "root", password = "pw" })
local so = { key = sim.ssh_key, known_hosts = os.tmpname(), accept_new = true, timeout = 10 }
-- one uploaded bioxen for every guest of this test (they share this machine)
local dir = os.getenv("BIOXEN_HOME") .. "/guest-bin"

local function guests()
  local n = 0
  for _, r in pairs(x.VM.get_all_records()) do if not r.is_a_template then n = n + 1 end end
  return n, #x.VDI.get_all()
end

local function remote(opts)
  local o = { backend = "xcpng", pool = x, template = "debian", ssh = so, guest_dir = dir, sandbox = "standard" }
  for k, v in pairs(opts) do o[k] = v end
  return bioxen.vm.create(o)
end

local CODE = "local inspect = require('inspect') return inspect({ 1, a = 'b' }), inspect._VERSION"

if mode == "ok" then
  local here = bioxen.vm.create({ sandbox = "standard", env = "sci" })
  local want = here:exec(CODE)
  here:close()
  assert(want.ok, "local standard VM: " .. tostring(want.error))

  local v = remote({ env = "sci" })
  local r = v:exec(CODE)
  assert(r.ok, "guest: " .. tostring(r.error))
  assert(r.values[1] == want.values[1] and r.values[2] == want.values[2],
    ("guest %q %q vs local %q %q"):format(r.values[1], r.values[2], want.values[1], want.values[2]))
  -- the guest's curator built its own environment of the same lockfile
  local h = v._h
  local lock = h.guest:exec(h.exe .. " env export sci")
  assert(lock.ok and lock.stdout == bioxen.pkg.envs.export("sci"), "guest lockfile: " .. lock.stdout .. lock.stderr)
  -- a second install of the same lockfile finds it there
  assert(bioxen.xcpng.install_env(h.guest, h.exe, "sci", bioxen.pkg.envs.export("sci")) == "present")
  -- its C rock was compiled in the guest: the guest's own bioxen loads it
  local c = h.guest:exec(h.exe .. [[ -e "print(require('makedemo').answer())"]], { env = { BIOXEN_ENV = "sci" } })
  assert(c.ok and c.stdout == "42\n", "C rock in the guest: " .. c.stdout .. c.stderr)
  -- packages outside the environment stay out, as locally
  local miss = v:exec("return require('lfs')")
  assert(not miss.ok and miss.error:match("not found"), tostring(miss.error))
  print("guest " .. h.guest.address .. ": " .. r.values[1])
  v:close()

  -- sandbox = "standard" without env: the active environment, as for a local VM
  bioxen.pkg.envs.use("sci")
  v = remote({})
  r = v:exec(CODE)
  assert(r.ok and r.values[1] == want.values[1], "active environment in the guest: " .. tostring(r.error))
  v:close()
  print("active environment reproduced")

  -- env needs a sandbox that can require, locally and remotely
  local ok0, e0 = pcall(bioxen.vm.create, { env = "sci" })
  assert(not ok0 and e0.kind == "Argument" and e0.message:match("standard"), tostring(e0))
  ok0, e0 = pcall(remote, { env = "sci", sandbox = "strict" })
  assert(not ok0 and e0.kind == "Argument", tostring(e0))
  -- an environment that does not exist is refused before anything is deployed
  local ok, e = pcall(remote, { env = "nope" })
  assert(not ok and e.kind == "NotFound" and e.message:match('"nope"'), tostring(e))
  local n, d = guests()
  assert(n == 0 and d == 0, ("leaked %d VMs, %d VDIs"):format(n, d))
  print("OK")
elseif mode == "broken" then
  local ok, e = pcall(remote, { env = "sci", name = "tampered" })
  assert(not ok, "the guest installed a rock whose source changed")
  print(e.kind, e.message)
  assert(e.kind == "Locked" and e.message:match("bioxen.lock records"), e.kind) -- the guest curator's kind
  assert(e.message:match("guest 127%.[%d.]+ %(tampered%)") and e.message:match('package environment "sci"'),
    e.message)
  local n, d = guests()
  assert(n == 0 and d == 0, ("the failed deploy leaked %d VMs, %d VDIs"):format(n, d))
  print("OK")
elseif mode == "unreachable" then
  local ok, e = pcall(remote, { env = "sci", name = "lonely" })
  assert(not ok, "the guest installed packages from a stopped server")
  print(e.kind, e.message)
  assert(e.message:match("guest 127%.[%d.]+ %(lonely%)") and e.message:match('package environment "sci"'),
    e.message)
  assert(e.guest and e.env == "sci" and e.stage == "install", "error details")
  local n, d = guests()
  assert(n == 0 and d == 0, ("the failed deploy leaked %d VMs, %d VDIs"):format(n, d))
  print("OK")
end
sim:stop()
