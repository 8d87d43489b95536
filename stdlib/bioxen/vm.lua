-- bioxen.vm: the Lua half. The public interface over pluggable backends.
-- A backend is `vm.backends[name] = { create = function(opts) return handle end }`;
-- a handle has exec(code) -> result table, and optionally exec_async(code) -> job,
-- call(name, ...) -> result table, status(), close(), pid(). Native backends:
-- "thread" and "process"; "xcpng" registers itself from bioxen.xcpng.
local native = ...
local vm = { backends = {} }

vm.backends.thread = { create = native.thread_create, native = true }
if native.process_create then
  vm.backends.process = { create = native.process_create, native = true }
end
vm.now = native.now            -- monotonic seconds, for timing
vm.pool = native.process_pool  -- vm.pool(n): warm pool size of the process backend
vm.default_backend = native.process_create and "process" or "thread"

local OPTIONS = {
  id = "string", backend = "string", sandbox = "string", memory_limit = "number",
  timeout = "number", output_limit = "number", result_limit = "number",
  globals = "table", package_path = "table", lua_executable = "string",
  restart = "boolean", pool = "boolean",
  networked = "boolean", grants = "table", channels = "table", env = "string",
}

-- Automatic learning records (bioxen.lrs, docs/lrs.md): no-ops unless an LRS is configured.
local records
local function lrs_hook()
  records = records or require("bioxen.lrs").hook
  return records
end

local live = setmetatable({}, { __mode = "v" })   -- id -> VM, for ids and vm.list
local counter = 0

local VM = {}
VM.__index = VM

local function raise(kind, message, details)
  error(bioxen.error(kind, message, details), 3)
end

local function check_options(opts, extra)
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    raise("Argument", "vm.create needs an options table, got " .. type(opts))
  end
  local copy = {}
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if extra and extra[k] ~= nil then want = extra[k] end -- a backend's own options
    if want == nil and not (type(k) == "string" and k:match("^x_")) then
      raise("Argument", ("unknown VM option '%s' (known: id, backend, sandbox, memory_limit, timeout, "
        .. "output_limit, result_limit, globals, package_path, lua_executable, restart, "
        .. "networked, grants, channels, env)"):format(tostring(k)))
    end
    if want ~= nil and want ~= "any" and type(v) ~= want then
      raise("Argument", ("VM option %s must be a %s, got %s"):format(k, want, type(v)))
    end
    copy[k] = v
  end
  return copy
end

--- Creates a VM; see docs/api/vm.md for the options.
function vm.create(opts)
  -- Remote backends register from their library; a backend may declare extra options.
  local wanted = type(opts) == "table" and opts.backend
  if wanted == "xcpng" and vm.backends.xcpng == nil then require("bioxen.xcpng") end
  opts = check_options(opts, wanted and vm.backends[wanted] and vm.backends[wanted].options)
  local remote = wanted and vm.backends[wanted] and vm.backends[wanted].remote
  if opts.env ~= nil and opts.sandbox ~= "standard" and opts.sandbox ~= "trusted" then
    raise("Argument", ("env = %q needs sandbox = \"standard\": a strict VM cannot require packages")
      :format(opts.env))
  end
  -- A remote backend reproduces the environment in its guest (bioxen.xcpng).
  if opts.package_path == nil and opts.sandbox == "standard" and not remote then
    -- the package environment `env` names, else the active one: its pure-Lua tree (bioxen.pkg)
    if opts.env ~= nil and not bioxen.pkg.envs.exists(opts.env) then
      raise("NotFound", ("no package environment %q (bioxen env list shows them)"):format(opts.env),
        { env = opts.env })
    end
    local dir = bioxen.pkg.envs.paths(opts.env).lua_dir
    local f = io.open(dir)
    if f then
      f:close()
      opts.package_path = { dir }
    end
  end
  if not remote then opts.env = nil end
  if opts.id == nil then
    repeat
      counter = counter + 1
      opts.id = "vm" .. counter
    until live[opts.id] == nil
  end
  local existing = live[opts.id]
  if existing ~= nil and existing:status() ~= "dead" then
    raise("SessionAlreadyExists", ("a VM with id '%s' already exists; close it first or choose another id")
      :format(opts.id), { id = opts.id })
  end
  local name = opts.backend or vm.default_backend
  if opts.lua_executable and opts.backend == nil then name = "process" end
  local backend = vm.backends[name]
  if backend == nil then
    local names = {}
    for n in pairs(vm.backends) do names[#names + 1] = '"' .. n .. '"' end
    table.sort(names)
    raise("Argument", ("unknown VM backend '%s' (registered: %s)"):format(name, table.concat(names, ", ")))
  end
  local handle = backend.create(opts)
  local v = setmetatable({ id = opts.id, backend = name, sandbox = opts.sandbox or "strict", _h = handle }, VM)
  live[opts.id] = v
  v._created = native.now()
  local token = lrs_hook().vm_created(v.id, name)
  if token then
    -- A VM dropped without close is still recorded as terminated: a proxy
    -- collected with the VM tells bioxen.lrs (which records it once).
    v._lrs = token
    local proxy = newproxy(true)
    getmetatable(proxy).__gc = function() records.vm_collected(token) end
    v._lrs_gc = proxy
  end
  return v
end

local function check_code(code)
  if type(code) ~= "string" then
    raise("Argument", "exec needs Lua source code as a string, got " .. type(code))
  end
end

--- Runs code; returns { ok, values, n, stdout, stderr, kind, error, duration, truncated }.
function VM:exec(code)
  check_code(code)
  local r = self._h:exec(code)
  lrs_hook().code_executed(self.id, code, r)
  return r
end

local exec_async, recorded_job

--- Runs code without waiting; the job's wait() yields under bioxen.task.
--- With learning records on, the job records its exec when its result is first
--- waited for (the job is then a table forwarding to the backend's job).
function VM:exec_async(code)
  local job = exec_async(self, code)
  if not lrs_hook().enabled() then return job end
  local id = self.id
  return recorded_job(job, function(r) lrs_hook().code_executed(id, code, r) end)
end

-- A job forwarding to `job` whose result is recorded when first waited for.
function recorded_job(job, record)
  local recorded = false
  return setmetatable({}, { __index = function(_, k)
    local m = job[k]
    if type(m) ~= "function" then return m end
    if k == "wait" then
      return function(_, ...)
        local r = job:wait(...)
        if not recorded and type(r) == "table" then recorded = true; record(r) end
        return r
      end
    end
    return function(_, ...) return m(job, ...) end
  end, __tostring = function() return tostring(job) end })
end

function exec_async(self, code)
  check_code(code)
  if self._h.exec_async then return self._h:exec_async(code) end
  -- Backends without their own async path run exec in a bioxen.task.
  local h = self._h
  local t = bioxen.task.spawn(function() return h:exec(code) end)
  return {
    wait = function(_, timeout)
      if timeout == nil then return bioxen.task.wait(t) end
      local deadline = os.clock() + timeout
      while t:status() == "running" do
        if os.clock() >= deadline then
          raise("Timeout", ("the job did not finish within %s s"):format(timeout))
        end
        bioxen.task.sleep(0.01)
      end
      return bioxen.task.wait(t)
    end,
    done = function() return t:status() ~= "running" end,
    cancel = function() t:cancel() end,
    status = function() return t:status() end,
  }
end

--- Calls the VM's global function `name`; returns its values or raises.
function VM:call(name, ...)
  if type(name) ~= "string" then
    raise("Argument", "call needs the name of a global function, got " .. type(name))
  end
  local r = self._h:call(name, ...)
  lrs_hook().function_called(self.id, name, r)
  if not r.ok then
    raise(r.kind or "Runtime", r.error or "call failed", { vm = self.id, ["function"] = name })
  end
  return unpack(r.values, 1, r.n)
end

--- Calls the VM's global function `name` without waiting; the job's wait()
--- gives the result table (values in r.values).
function VM:call_async(name, ...)
  if type(name) ~= "string" then
    raise("Argument", "call_async needs the name of a global function, got " .. type(name))
  end
  local job
  if self._h.call_async then
    job = self._h:call_async(name, ...)
  else
    local h, args = self._h, { n = select("#", ...), ... }
    local t = bioxen.task.spawn(function() return h:call(name, unpack(args, 1, args.n)) end)
    job = {
      wait = function() return bioxen.task.wait(t) end,
      done = function() return t:status() ~= "running" end,
      cancel = function() t:cancel() end,
      status = function() return t:status() end,
    }
  end
  if not lrs_hook().enabled() then return job end
  return recorded_job(job, function(r) lrs_hook().function_called(self.id, name, r) end)
end

--- "idle" | "busy" | "dead" (closed VMs are "dead").
function VM:status()
  return self._h:status()
end

function VM:pid()
  return self._h.pid and self._h:pid() or nil
end

--- Closes the VM; idempotent. Also happens on garbage collection and at exit.
function VM:close()
  if self._lrs then
    lrs_hook().vm_closed(self.id, nil, self._lrs) -- recorded once, even if the VM died before
  elseif self._h:status() ~= "dead" then
    lrs_hook().vm_closed(self.id, native.now() - (self._created or 0))
  end
  self._h:close()
  if live[self.id] == self then live[self.id] = nil end
end

function VM:__tostring()
  return ("vm %s (%s, %s, %s)"):format(self.id, self.backend, self.sandbox, self:status())
end

--- One-shot: create, exec, close; returns the result table.
function vm.run(code, opts)
  check_code(code)
  local v = vm.create(opts)
  local ok, r = pcall(v.exec, v, code)
  v:close()
  if not ok then error(r, 2) end
  return r
end

--- The live VMs: { id, backend, sandbox, status, pid } for each, sorted by id.
function vm.list()
  local out = {}
  for id, v in pairs(live) do
    local status = v:status()
    if status ~= "dead" or v.backend == "process" then
      out[#out + 1] = { id = id, backend = v.backend, sandbox = v.sandbox, status = status, pid = v:pid() }
    end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

--- Looks a live VM up by id; raises SessionNotFound when there is none.
function vm.get(id)
  local v = live[id]
  if v == nil or v:status() == "dead" then
    raise("SessionNotFound", ("no live VM with id '%s'"):format(tostring(id)), { id = id })
  end
  return v
end

--- A manager that owns VMs and interactive sessions by id (see docs/api/session.md).
function vm.manager(opts)
  return bioxen.session.manager(vm, opts)
end

-- Durations at debug level (docs/api/log.md); nothing is wrapped otherwise.
local log = require("bioxen.log")
log.instrument(vm, "vm", { "create", "run" })
log.instrument(VM, "vm", { "exec", "call", "close" })

return vm
