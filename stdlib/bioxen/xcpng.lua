-- bioxen.xcpng: guests on an XCP-ng pool, composed from bioxen.xapi and bioxen.ssh.
-- deploy = clone/copy the template, provision, memory and vCPUs (checked first),
-- a VIF on the named network, start, wait for the guest agent's address, SSH in.
-- Any failure part way destroys what was created (VM and its VDIs).
local xapi = require("bioxen.xapi")
local ssh = require("bioxen.ssh")
local task = require("bioxen.task")
local xcpng = {}

local NULL = xapi.NULL
local MIB = 1024 * 1024
local UNITS = { [""] = 1, b = 1, k = 1024, kib = 1024, m = MIB, mib = MIB, g = 1024 * MIB, gib = 1024 * MIB,
  t = 1024 * 1024 * MIB, tib = 1024 * 1024 * MIB }

local function fail(kind, message, details, level)
  error(bioxen.error(kind, message, details), level or 3)
end

--- Bytes from a number (bytes) or a string like "512MiB", "2G".
function xcpng.size(v, what)
  if type(v) == "number" then return v end
  if type(v) == "string" then
    local n, unit = v:lower():gsub("%s", ""):match("^([%d%.]+)(%a*)$")
    if n and UNITS[unit] then return math.floor(tonumber(n) * UNITS[unit]) end
  end
  fail("Argument", ("%s must be bytes or a size like \"2GiB\", got %s"):format(what, tostring(v)))
end

local function mib(n) return ("%d MiB"):format(math.floor(n / MIB)) end

local function resolve(x, class, name, what, filter)
  if type(name) ~= "string" then fail("Argument", ("deploy needs %s= (a name)"):format(what), nil, 4) end
  if name:match("^OpaqueRef:") then return name end
  local refs = x[class].get_by_name_label(name)
  local found = {}
  for _, r in ipairs(refs) do
    if not filter or filter(r) then found[#found + 1] = r end
  end
  if #found == 0 then
    local names = {}
    for _, rec in pairs(x[class].get_all_records()) do
      if not filter or rec.is_a_template then names[#names + 1] = rec.name_label end
    end
    table.sort(names)
    fail("NotFound", ("no %s named %q in the pool (there are: %s)"):format(what, name, table.concat(names, ", ")),
      { name = name }, 5)
  end
  return found[1]
end

local Guest = {}
Guest.__index = Guest

--- The VDIs behind a VM's disks.
local function vdis_of(x, vm)
  local out = {}
  for _, vbd in ipairs(x.VM.get_VBDs(vm)) do
    local vdi = x.VBD.get_VDI(vbd)
    if vdi ~= NULL then out[#out + 1] = vdi end
  end
  return out
end

--- Shuts a VM down: clean first, hard when the guest cannot (no guest agent).
function xcpng.shutdown(x, vm)
  if getmetatable(x) == Guest then x, vm = x.pool, x.vm end
  local state = x.VM.get_power_state(vm)
  if state == "Halted" then return "halted" end
  if state == "Running" then
    local ok, e = pcall(function() return x.Async.VM.clean_shutdown(vm):wait() end)
    if ok then return "clean" end
    if not (type(e) == "userdata" or type(e) == "table") or e.kind ~= "Xapi"
      or not (e.code == "VM_LACKS_FEATURE_SHUTDOWN" or e.code == "VM_LACKS_FEATURE") then
      error(e, 0)
    end
    bioxen.log.info("xcpng: " .. vm .. " cannot shut down cleanly; forcing it off")
  end
  x.Async.VM.hard_shutdown(vm):wait()
  return "hard"
end

--- Destroys a VM and its disks' VDIs (shutting it down first).
function xcpng.destroy(x, vm)
  if getmetatable(x) == Guest then
    if x.ssh then pcall(x.ssh.close, x.ssh) end
    x, vm = x.pool, x.vm
  end
  if x.VM.get_power_state(vm) ~= "Halted" then x.Async.VM.hard_shutdown(vm):wait() end
  local vdis = vdis_of(x, vm)
  x.VM.destroy(vm)
  for _, vdi in ipairs(vdis) do x.VDI.destroy(vdi) end
  require("bioxen.lrs").hook.guest_destroyed(x.url or "pool", vm)
end

--- Waits for the guest agent to report `0/ip` in the guest metrics.
function xcpng.wait_address(x, vm, timeout)
  local deadline = os.time() + timeout
  local delay = 0.05
  repeat
    local gm = x.VM.get_guest_metrics(vm)
    if gm ~= NULL then
      local nets = x.VM_guest_metrics.get_networks(gm)
      local ip = nets["0/ip"] or nets["0/ipv4/0"]
      if ip and ip ~= "" then return ip end
    end
    task.sleep(delay)
    delay = math.min(delay * 1.5, 1)
  until os.time() > deadline
  return nil
end

function Guest:exec(cmd, opts) return self.ssh:exec(cmd, opts) end
function Guest:stream(cmd, opts) return self.ssh:stream(cmd, opts) end
function Guest:upload(l, r) return self.ssh:upload(l, r) end
function Guest:download(r, l) return self.ssh:download(r, l) end
function Guest:shutdown() if self.ssh then pcall(self.ssh.close, self.ssh) end return xcpng.shutdown(self.pool, self.vm) end
function Guest:destroy() return xcpng.destroy(self) end

local function connect_ssh(address, o, deadline)
  local opts = {}
  for k, v in pairs(o) do opts[k] = v end
  opts.host = address
  while true do
    local ok, c = pcall(ssh.connect, opts)
    if ok then return c end
    -- Only "not listening yet" is retried; key mismatches and refused logins are not.
    if c.stage ~= "connect" or os.time() > deadline then error(c, 0) end
    task.sleep(0.2)
  end
end

--- deploy{pool, template, name, memory, vcpus, network, sr, ssh = {user, key, ...}, address_timeout}
function xcpng.deploy(o)
  if type(o) ~= "table" or type(o.pool) ~= "table" then
    fail("Argument", "xcpng.deploy needs pool = (a bioxen.xapi session)")
  end
  local x = o.pool
  if type(o.name) ~= "string" or o.name == "" then fail("Argument", "xcpng.deploy needs name= (the new VM's name)") end
  local memory = o.memory and xcpng.size(o.memory, "memory")
  local vcpus = o.vcpus
  if vcpus ~= nil and (type(vcpus) ~= "number" or vcpus < 1 or vcpus % 1 ~= 0) then
    fail("Argument", ("vcpus must be a whole number >= 1, got %s"):format(tostring(vcpus)))
  end
  local tpl = resolve(x, "VM", o.template, "template", function(r) return x.VM.get_is_a_template(r) end)
  local sr = o.sr and resolve(x, "SR", o.sr, "storage repository")
  local net = o.network and resolve(x, "network", o.network, "network")

  -- Constraints first, explained, before anything is created.
  local t = x.VM.get_record(tpl)
  if memory then
    if memory < t.memory_static_min then
      fail("Argument", ("memory %s is below the template's static minimum %s (XAPI would refuse with MEMORY_CONSTRAINT_VIOLATION: static_min <= dynamic_min <= dynamic_max <= static_max)")
        :format(mib(memory), mib(t.memory_static_min)), { code = "MEMORY_CONSTRAINT_VIOLATION" })
    end
    local best = 0
    for _, h in ipairs(x.host.get_all()) do best = math.max(best, x.host.compute_free_memory(h)) end
    if memory > best then
      fail("Xapi", ("no host can hold %s: the most free memory on a host is %s (HOST_NOT_ENOUGH_FREE_MEMORY)")
        :format(mib(memory), mib(best)), { code = "HOST_NOT_ENOUGH_FREE_MEMORY", params = { tostring(memory), tostring(best) } })
    end
  end
  if vcpus then
    local cpus = 0
    for _, h in ipairs(x.host.get_all()) do
      cpus = math.max(cpus, tonumber(x.host.get_cpu_info(h).cpu_count) or 0)
    end
    if cpus > 0 and vcpus > cpus then
      fail("Argument", ("vcpus = %d but the largest host has %d CPUs"):format(vcpus, cpus))
    end
  end

  local vm
  local ok, guest = pcall(function()
    if sr then
      vm = x.Async.VM.copy(tpl, o.name, sr):wait()
    else
      vm = x.Async.VM.clone(tpl, o.name):wait()
    end
    x.Async.VM.provision(vm):wait()
    x.VM.set_is_a_template(vm, false)
    if memory then
      x.VM.set_memory_limits(vm, math.min(t.memory_static_min, memory), memory, memory, memory)
    end
    if vcpus then
      if vcpus > t.VCPUs_max then
        x.VM.set_VCPUs_max(vm, vcpus)
        x.VM.set_VCPUs_at_startup(vm, vcpus)
      else
        x.VM.set_VCPUs_at_startup(vm, vcpus)
        x.VM.set_VCPUs_max(vm, vcpus)
      end
    end
    if net then
      local used, has = {}, false
      for _, vif in ipairs(x.VM.get_VIFs(vm)) do
        if x.VIF.get_network(vif) == net then has = true end
        used[x.VIF.get_device(vif)] = true
      end
      if not has then
        local dev = 0
        while used[tostring(dev)] do dev = dev + 1 end
        x.VIF.create({ device = tostring(dev), network = net, VM = vm, MAC = "", MTU = 1500,
          other_config = {}, qos_algorithm_type = "", qos_algorithm_params = {} })
      end
    end
    x.Async.VM.start(vm, false, false):wait()
    local timeout = o.address_timeout or 300
    local address = xcpng.wait_address(x, vm, timeout)
    if not address then
      fail("Timeout", ("guest %q did not report an address within %ds: the guest agent (xe-guest-utilities) must run in the template so XAPI learns the IP; the VM was destroyed")
        :format(o.name, timeout), { vm = vm }, 2)
    end
    local g = setmetatable({ pool = x, vm = vm, name = o.name, address = address }, Guest)
    if o.ssh ~= false then
      local so = o.ssh or {}
      g.ssh = connect_ssh(address, so, os.time() + (so.timeout or 60))
    end
    return g
  end)
  if ok then
    require("bioxen.lrs").hook.guest_deployed(x.url or "pool", o.name, o.template)
    return guest
  end
  if vm then
    local cleaned, why = pcall(xcpng.destroy, x, vm)
    if not cleaned then
      bioxen.log.error("xcpng: cleaning up " .. vm .. " after a failed deploy failed: " .. tostring(why))
    end
  end
  error(guest, 0)
end

-- ---------------------------------------------------------------- the "xcpng" VM backend
-- bioxen.vm.create{backend = "xcpng", pool = session, template = ..., memory = ..., vcpus = ...}
-- deploys a guest, makes sure it runs this bioxen version (uploading the binary over
-- SFTP when it does not), and starts a small server there (`bioxen -e`) that keeps a
-- bioxen.vm with the same sandbox and limits. Requests and result tables travel as
-- JSON lines over one long-running SSH channel.
local json = require("bioxen.json")

local REMOTE_KEYS = { backend = true, id = true, pool = true, template = true, memory = true, vcpus = true,
  network = true, sr = true, ssh = true, name = true, address_timeout = true, keep = true,
  guest_dir = true, guest_backend = true, env = true, env_servers = true, env_timeout = true, max_jobs = true }
local vm_now

-- The guest side: one VM, driven by one JSON request per line on stdin.
local SERVER = [[
local json, vm = bioxen.json, bioxen.vm
local v
local function pack(...) return { n = select("#", ...), ... } end
for line in io.lines() do
  local ok, res = pcall(function()
    local req = json.decode(line)
    if req.op == "create" then
      v = vm.create(req.opts)
      return { ok = true }
    elseif req.op == "exec" then
      return v:exec(req.code)
    elseif req.op == "call" then
      local args = req.args or {}
      for i = 1, req.n or 0 do if args[i] == json.null then args[i] = nil end end
      return v._h:call(req.name, unpack(args, 1, req.n or 0))
    elseif req.op == "status" then
      return { ok = true, status = v and v:status() or "dead" }
    elseif req.op == "close" then
      if v then v:close() end
      return { ok = true }
    end
    error(bioxen.error("Argument", "unknown request " .. tostring(req.op)))
  end)
  if not ok then
    res = { ok = false, kind = (type(res) ~= "string" and res.kind) or "Runtime",
      error = (type(res) ~= "string" and res.message) or tostring(res) }
  elseif type(res.values) == "table" then
    -- nil holes would end the JSON array early: send them as null
    for i = 1, res.n or 0 do if res.values[i] == nil then res.values[i] = json.null end end
  end
  io.write(json.encode(res), "\n")
  io.flush()
end
]]

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- The path of a bioxen in the guest with this version, uploading ours when needed.
function xcpng.ensure_bioxen(guest, dir)
  local facts = bioxen.env.facts()
  local want = "bioxen " .. facts.bioxen_version
  local r = guest:exec("command -v bioxen >/dev/null && bioxen -v")
  if r.ok and r.stdout:sub(1, #want + 1) == want .. " " then return "bioxen" end
  local f = assert(io.open(facts.executable, "rb"))
  local size = f:seek("end")
  f:close()
  dir = dir or "$HOME/.cache/bioxen/bin"
  local path = ("%s/bioxen-%s-%d"):format(dir, facts.bioxen_version, size)
  r = guest:exec(("mkdir -p %s && test -x %s && %s -v"):format(dir, path, path))
  if r.ok and r.stdout:sub(1, #want + 1) == want .. " " then return path end
  -- SFTP does not expand $HOME: resolve the folder first.
  local real = guest:exec("echo " .. dir).stdout:gsub("%s+$", "")
  local remote = ("%s/bioxen-%s-%d"):format(real, facts.bioxen_version, size)
  bioxen.log.info(("xcpng: uploading bioxen %s to %s:%s"):format(facts.bioxen_version, guest.address, remote))
  -- A part file of this guest's own: guests sharing a home folder (NFS, or the
  -- simulator's guest_dir) may upload at the same time; each rename is atomic.
  local part = ("%s.%s.part"):format(remote, tostring(guest.address):gsub("[^%w%.]", "_"))
  guest:upload(facts.executable, part)
  r = guest:exec(("chmod 755 %s && mv %s %s && %s -v"):format(part, part, remote, remote))
  if not (r.ok and r.stdout:sub(1, #want + 1) == want .. " ") then
    fail("Ssh", ("the uploaded bioxen does not run in guest %s: %s%s"):format(guest.address, r.stdout, r.stderr))
  end
  return remote
end

-- A worker is one SSH channel to one guest server process, which keeps one VM.
-- The first worker holds the VM the caller sees (exec, call and state go there);
-- exec_async jobs started while it is busy run on sibling workers (VMs with the
-- same options in the guest), opened on demand and kept for reuse, so several
-- jobs on one xcpng VM run at once, each result on its own channel.
local Worker = {}
Worker.__index = Worker

function Worker:request(req)
  while self.busy and not self.dead do task.sleep(0.001) end
  if self.dead then
    fail("Ssh", ("the VM in guest %s is closed"):format(self.address), nil, 3)
  end
  self.busy = true
  local ok, res = pcall(function()
    self.channel:write(json.encode(req) .. "\n")
    local buf = self.buf
    while true do
      local line, rest = buf:match("^([^\n]*)\n(.*)$")
      if line then
        self.buf = rest
        return json.decode(line)
      end
      local which, data = self.channel:read()
      if which == nil then
        fail("Ssh", ("the bioxen server in guest %s exited (status %s): %s"):format(self.address,
          tostring(data), self.stderr), nil, 2)
      elseif which == "stdout" then
        buf = buf .. data
      else
        self.stderr = (self.stderr .. data):sub(-4000)
      end
    end
  end)
  self.busy = false
  if not ok then
    self.dead = true
    error(res, 0)
  end
  return res
end

function Worker:close()
  if self.closed then return end
  self.closed = true
  if not self.dead and not self.busy then pcall(self.request, self, { op = "close" }) end
  self.dead = true
  pcall(self.channel.close, self.channel)
end

local function open_worker(guest, exe, vmopts)
  local channel = guest.ssh:open(exe .. " -e " .. shell_quote(SERVER))
  local w = setmetatable({ channel = channel, address = guest.address, buf = "", stderr = "" }, Worker)
  local created = w:request({ op = "create", opts = vmopts })
  if not created.ok then
    w:close()
    fail(created.kind or "Runtime", ("creating the VM in guest %s: %s"):format(guest.address,
      tostring(created.error)), nil, 2)
  end
  return w
end

local Remote = {}
Remote.__index = Remote

-- Requests to the caller's VM run one after another, in the order they came.
function Remote:_request(req)
  return self.workers[1]:request(req)
end

local function result(r)
  if type(r.values) == "table" then
    for i = 1, r.n or #r.values do if r.values[i] == json.null then r.values[i] = nil end end
  end
  return r
end

function Remote:exec(code) return result(self:_request({ op = "exec", code = code })) end

function Remote:call(name, ...)
  local n = select("#", ...)
  local args = { ... }
  for i = 1, n do if args[i] == nil then args[i] = json.null end end
  return result(self:_request({ op = "call", name = name, args = args, n = n }))
end

-- An idle worker for a job: the caller's VM when it is idle, else an idle
-- sibling, else a new sibling (up to max_jobs at once), else wait for one.
function Remote:_worker()
  while true do
    local main = self.workers[1]
    if main.dead then
      fail("Ssh", ("the VM in guest %s is closed"):format(self.guest.address), nil, 4)
    end
    for _, w in ipairs(self.workers) do
      if not w.busy and not w.dead and not w.reserved then return w end
    end
    local live = 0
    for _, w in ipairs(self.workers) do if not w.dead then live = live + 1 end end
    if live + self._opening < self.max_jobs then
      self._opening = self._opening + 1
      local ok, w = pcall(open_worker, self.guest, self.exe, self.vmopts)
      self._opening = self._opening - 1
      if not ok then error(w, 0) end
      self.workers[#self.workers + 1] = w
      return w
    end
    task.sleep(0.002)
  end
end

--- Starts an exec without waiting; jobs run concurrently (see Worker above).
function Remote:exec_async(code)
  if self.workers[1].dead then
    fail("Ssh", ("the VM in guest %s is closed"):format(self.guest.address), nil, 3)
  end
  local w = self:_worker()
  w.reserved = true
  local t = task.spawn(function()
    w.reserved = nil
    return result(w:request({ op = "exec", code = code }))
  end)
  return {
    worker = w,
    wait = function(_, timeout)
      if timeout ~= nil then
        local deadline = vm_now() + timeout
        while t:status() == "running" do
          if vm_now() >= deadline then
            fail("Timeout", ("the job did not finish within %s s"):format(timeout), nil, 3)
          end
          task.sleep(0.005)
        end
      end
      return task.wait(t)
    end,
    done = function() return t:status() ~= "running" end,
    status = function() return t:status() end,
    -- Stops the job: its guest server is stopped with its channel (a sibling's
    -- loss does not touch the caller's VM; cancelling a job on it closes the VM).
    cancel = function()
      if t:status() ~= "running" then return end
      t:cancel()
      w.reserved = nil
      w.dead = true
      pcall(w.channel.close, w.channel)
    end,
  }
end

function Remote:status()
  local main = self.workers[1]
  if self._closed or main.dead then return "dead" end
  if main.busy then return "busy" end
  return "idle"
end

function Remote:close()
  if self._closed then return end
  self._closed = true
  for _, w in ipairs(self.workers) do w:close() end
  if self.keep then
    if self.guest.ssh then pcall(self.guest.ssh.close, self.guest.ssh) end
  else
    local ok, e = pcall(xcpng.destroy, self.guest)
    if not ok then bioxen.log.error("xcpng: destroying guest " .. self.guest.vm .. " failed: " .. tostring(e)) end
  end
end

-- ---------------------------------------------------------------- package environments
-- env = NAME (or sandbox = "standard" with an active environment that has packages):
-- the local environment's lockfile is uploaded and the guest's own curator
-- reproduces it (`bioxen env import FILE --name NAME`), fetching from the servers
-- the lockfile names. The guest's VMs then use that environment's tree.

--- The lockfile of the environment a remote VM should reproduce, or nil.
local function env_lock(opts)
  local envs = require("bioxen.pkg").envs
  if opts.env ~= nil then
    if not envs.exists(opts.env) then
      fail("NotFound", ("no package environment %q to reproduce in the guest (bioxen env list shows them)")
        :format(opts.env), { env = opts.env }, 4)
    end
    return opts.env, envs.export(opts.env)
  end
  if opts.sandbox ~= "standard" then return nil end
  local name = envs.active()
  if not envs.exists(name) then return nil end
  local ok, text = pcall(envs.export, name)
  if not ok then return nil end -- no packages yet: nothing to reproduce, as locally
  return name, text
end

--- Reproduces a package environment in the guest with the guest's bioxen.
function xcpng.install_env(guest, exe, name, lock, opts)
  opts = opts or {}
  local what = ("guest %s (%s)"):format(guest.address, guest.name or guest.vm)
  local have = guest:exec(("%s env export %s 2>/dev/null"):format(exe, shell_quote(name)))
  if have.ok and have.stdout == lock then return "present" end
  local dir = guest:exec("mkdir -p $HOME/.cache/bioxen && echo $HOME/.cache/bioxen").stdout:gsub("%s+$", "")
  local file = ("%s/%s.lock"):format(dir, name)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(lock)
  f:close()
  local ok, e = pcall(guest.upload, guest, tmp, file)
  os.remove(tmp)
  if not ok then
    fail("Ssh", ("%s: uploading the lockfile of environment %q failed: %s"):format(what, name, tostring(e)),
      { guest = guest.address, env = name, stage = "upload" }, 3)
  end
  if have.ok then
    -- an environment of that name with other packages: replaced by the lockfile's
    guest:exec(("%s env remove %s"):format(exe, shell_quote(name)))
  end
  bioxen.log.info(("xcpng: installing package environment %s in %s"):format(name, what))
  local args = ""
  for _, s in ipairs(opts.servers or {}) do args = args .. " --server " .. shell_quote(s) end
  local r = guest:exec(("%s env import %s --name %s --quiet%s"):format(exe, shell_quote(file),
    shell_quote(name), args), { timeout = opts.timeout or 900 })
  if not r.ok then
    local out = (r.stderr ~= "" and r.stderr or r.stdout):gsub("%s+$", "")
    local kind, msg = out:match("bioxen env: (%u%a*): (.*)$")
    fail(kind or "Env", ("%s could not install package environment %q: %s"):format(what, name,
      msg or (out ~= "" and out or ("exit status " .. tostring(r.status)))),
      { guest = guest.address, env = name, stage = "install", status = r.status, stderr = r.stderr }, 3)
  end
  return "installed"
end

local function create_remote(opts)
  if type(opts.pool) ~= "table" then
    fail("Argument", "the xcpng backend needs pool = (a bioxen.xapi session, from bioxen.xapi.connect)")
  end
  -- Checked before anything is deployed: the environment to reproduce exists.
  local env_name, lock = env_lock(opts)
  local max_jobs = opts.max_jobs or 8
  if max_jobs < 1 or max_jobs % 1 ~= 0 then
    fail("Argument", ("max_jobs must be a whole number >= 1, got %s"):format(tostring(max_jobs)))
  end
  local guest = xcpng.deploy({ pool = opts.pool, template = opts.template, name = opts.name or ("bioxen-" .. opts.id),
    memory = opts.memory, vcpus = opts.vcpus, network = opts.network, sr = opts.sr, ssh = opts.ssh or {},
    address_timeout = opts.address_timeout })
  local ok, remote = pcall(function()
    local exe = xcpng.ensure_bioxen(guest, opts.guest_dir)
    if env_name then
      xcpng.install_env(guest, exe, env_name, lock, { servers = opts.env_servers, timeout = opts.env_timeout })
    end
    local vmopts = {}
    for k, v in pairs(opts) do if not REMOTE_KEYS[k] then vmopts[k] = v end end
    vmopts.backend = opts.guest_backend
    vmopts.env = env_name
    local main = open_worker(guest, exe, vmopts)
    return setmetatable({ guest = guest, exe = exe, vmopts = vmopts, workers = { main }, keep = opts.keep,
      max_jobs = max_jobs, _opening = 0 }, Remote)
  end)
  if ok then return remote end
  pcall(xcpng.destroy, guest)
  error(remote, 0)
end

do
  local vm = require("bioxen.vm")
  vm_now = vm.now
  vm.backends.xcpng = {
    create = create_remote,
    remote = true,
    options = { pool = "table", template = "string", memory = "any", vcpus = "number", network = "string",
      sr = "string", ssh = "table", name = "string", address_timeout = "number", keep = "boolean",
      guest_dir = "string", guest_backend = "string", env_servers = "table", env_timeout = "number",
      max_jobs = "number" },
  }
end

-- Durations at debug level (docs/api/log.md); nothing is wrapped otherwise.
require("bioxen.log").instrument(xcpng, "xcpng", { "deploy", "shutdown", "destroy" })

return xcpng
