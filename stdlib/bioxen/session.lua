-- bioxen.session: interactive sessions and the VM manager (the Lua half).
-- The native half (src/std/session) runs sessions on the thread and process
-- backends and talks to the session host; this file composes it:
--   session.open(opts)         an interactive session (local or persistent)
--   session.manager(vm, opts)  what bioxen.vm.manager() returns
--   session.host_*             persistent sessions for the `bioxen session` verbs
local native = ...
local session = { native = native }

local function raise(kind, message, details)
  error(bioxen.error(kind, message, details), 3)
end

local function now()
  return os.time()
end

------------------------------------------------------------------ the host

--- Connects to the session host (starting it when needed). Returns the
--- connection and, when a previous host had died, { pid, sessions } it lost.
function session.host_connect(start)
  local conn, lost = native.host_connect(start ~= false)
  if lost then session.lost = lost end
  return conn, lost
end

--- One request on a fresh connection (for list, new, kill...).
function session.host_request(req, start)
  local conn, lost = session.host_connect(start)
  local ok, r = pcall(conn.request, conn, req)
  conn:close()
  if not ok then error(r, 2) end
  return r, lost
end

--- The package folder of environment `name` (the curator's layout).
function session.env_path(name)
  if type(name) ~= "string" or name == "" or name:find("[/\\]") or name:find("%.%.") then
    raise("Argument", ("env must be the name of a package environment, got %s"):format(tostring(name)))
  end
  local data = bioxen.env.dirs().data
  local tree = ("%s/envs/%s/current/tree"):format(data, name)
  local ok = io.open(tree .. "/share/lua/5.1", "r")
  if not ok then
    raise("NotFound", ("package environment '%s' not found (no %s/share/lua/5.1); create it with "
      .. "`bioxen pkg` first (package environments come from the curator)"):format(name, tree), { env = name })
  end
  ok:close()
  return tree .. "/share/lua/5.1"
end

------------------------------------------------------------------ sessions

local Session = {}
Session.__index = Session
session.Session = Session

local SESSION_OPTIONS = {
  backend = "string", sandbox = "string", memory_limit = "number", timeout = "number",
  output_limit = "number", result_limit = "number", globals = "table", package_path = "table",
  env = "string", persistent = "boolean", id = "string", force = "boolean",
  networked = "boolean", grants = "table", channels = "table",
}

local function check_session_options(opts)
  if opts == nil then return {} end
  if type(opts) ~= "table" then raise("Argument", "session options must be a table, got " .. type(opts)) end
  local copy = {}
  for k, v in pairs(opts) do
    local want = SESSION_OPTIONS[k]
    if want == nil then
      raise("Argument", ("unknown session option '%s' (known: backend, sandbox, memory_limit, timeout, "
        .. "output_limit, globals, package_path, env, persistent, force, networked, grants, channels)")
        :format(tostring(k)))
    end
    if type(v) ~= want then
      raise("Argument", ("session option %s must be a %s, got %s"):format(k, want, type(v)))
    end
    copy[k] = v
  end
  return copy
end

local function check_id(id)
  if type(id) ~= "string" or id == "" then
    raise("Argument", "a session id must be a non-empty string, got " .. tostring(id))
  end
end

--- Opens an interactive session: opts as vm.create's plus env and persistent.
function session.open(id, opts)
  check_id(id)
  opts = check_session_options(opts)
  if opts.env then
    opts.package_path = opts.package_path or {}
    table.insert(opts.package_path, 1, session.env_path(opts.env))
    if (opts.sandbox or "strict") == "strict" then opts.sandbox = "standard" end
  end
  local s = setmetatable({
    id = id, env = opts.env, sandbox = opts.sandbox or "strict", created = now(), last_used = now(),
    attached = true, interactive = true, persistent = opts.persistent or false,
  }, Session)
  if opts.persistent then
    if opts.channels ~= nil or opts.networked ~= nil or opts.grants ~= nil then
      raise("Argument", "channels, networked and grants are for sessions of this process: a persistent "
        .. "session lives in the session host and outlives this script's channels and grants")
    end
    s.backend = opts.backend or "thread"
    local conn = session.host_connect(true)
    s._conn = conn
    local ok, e = pcall(conn.request, conn, {
      op = "new", name = id, backend = s.backend, sandbox = opts.sandbox, memory_limit = opts.memory_limit,
      timeout = opts.timeout, output_limit = opts.output_limit, package_path = opts.package_path,
    })
    if not ok then conn:close(); error(e, 2) end
    s:_attach_remote(opts.force)
  else
    s.backend = opts.backend or "thread"
    local nopts = {
      id = id, backend = s.backend, sandbox = opts.sandbox, memory_limit = opts.memory_limit,
      timeout = opts.timeout or 0, output_limit = opts.output_limit, result_limit = opts.result_limit,
      globals = opts.globals, package_path = opts.package_path,
      networked = opts.networked, grants = opts.grants, channels = opts.channels,
    }
    s._h = native.create(nopts)
  end
  return s
end

--- Attaches to an existing persistent session (another process may have made it).
function session.attach_persistent(id, force)
  check_id(id)
  local conn = session.host_connect(true)
  local s = setmetatable({ id = id, backend = "?", persistent = true, interactive = true,
    created = now(), last_used = now(), attached = true, _conn = conn }, Session)
  local ok, e = pcall(s._attach_remote, s, force)
  if not ok then
    conn:close()
    error(e, 2)
  end
  return s
end

function Session:_attach_remote(force)
  local r = self._conn:request({ op = "attach", name = self.id, force = force or false,
    holder = native.holder("a bioxen script") })
  self.attached = true
  if r.backend then self.backend = r.backend end
  if r.created then self.created = math.floor(r.created) end
  if r.sandbox then self.sandbox = r.sandbox end
  self._pid = r.session_pid
end

function Session:_remote(req)
  req.name = self.id
  local ok, r = pcall(self._conn.request, self._conn, req)
  if not ok then
    if type(r) == "userdata" and r.host_died then self._dead = r.message end
    error(r, 3)
  end
  return r
end

function Session:_check()
  if self._closed then
    raise("InteractiveSession", ("session '%s' is closed"):format(self.id), { id = self.id })
  end
  if not self.attached then
    raise("Detach", ("session '%s' is detached; attach it again (m:attach('%s')) to use it"):format(self.id, self.id),
      { id = self.id })
  end
end

--- Feeds input like a REPL: lines run as they complete; expressions print their values.
function Session:send(text)
  self:_check()
  if type(text) ~= "string" then raise("Argument", "send needs text (a string), got " .. type(text)) end
  self.last_used = now()
  if self._conn then
    self:_remote({ op = "send", text = text })
  else
    local ok, e = pcall(self._h.send, self._h, text)
    if not ok then
      if self.backend == "process" and self._h:status() == "dead" then
        raise("ProcessRegistry", tostring(e.message or e), { id = self.id })
      end
      error(e, 2)
    end
  end
end

--- Everything printed by the input sent so far, once it is evaluated (or at
--- the timeout): text, busy (still evaluating), incomplete (a chunk waits for more lines).
function Session:read(opts)
  self:_check()
  local timeout
  if type(opts) == "number" then timeout = opts
  elseif type(opts) == "table" then timeout = opts.timeout
  elseif opts ~= nil then raise("Argument", "read takes { timeout = seconds } or a number of seconds") end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    raise("Argument", "read needs a timeout in seconds >= 0, got " .. tostring(timeout))
  end
  self.last_used = now()
  if self._conn then
    local r = self:_remote({ op = "read", timeout = timeout })
    return r.text, r.busy, r.incomplete
  end
  return self._h:read(timeout)
end

--- Runs code as vm:exec does (a result table), in order with the input.
function Session:exec_async(code)
  self:_check()
  if type(code) ~= "string" then raise("Argument", "exec needs Lua source code as a string, got " .. type(code)) end
  self.last_used = now()
  if self._conn then
    -- Persistent: the exec runs in the session host; a task waits for it.
    local t = bioxen.task.spawn(function() return self:exec(code) end)
    return {
      wait = function() return bioxen.task.wait(t) end,
      done = function() return t:status() ~= "running" end,
      cancel = function() self:interrupt() end,
      status = function() return t:status() end,
    }
  end
  return self._h:exec_async(code)
end

function Session:exec(code)
  if self._conn then
    self:_check()
    if type(code) ~= "string" then raise("Argument", "exec needs Lua source code as a string, got " .. type(code)) end
    self.last_used = now()
    local r = self:_remote({ op = "exec", code = code })
    return native.decode_result(r.result)
  end
  return self:exec_async(code):wait()
end

--- Stops the input being evaluated (like Ctrl-C); the session stays usable.
function Session:interrupt()
  if self._conn then return self:_remote({ op = "interrupt" }) end
  self._h:interrupt()
end

--- Forgets an unfinished chunk (input that waits for more lines).
function Session:reset()
  self:_check()
  if self._conn then return self:_remote({ op = "reset" }) end
  self._h:reset()
end

--- Switches the package environment `require` reads from (standard sandbox).
function Session:set_env(name)
  self:_check()
  local dir = session.env_path(name)
  if self.sandbox == "strict" then
    raise("InteractiveSession", ("session '%s' runs the strict sandbox, which has no require; "
      .. "open it with sandbox = \"standard\" (or env = ...) to use package environments"):format(self.id))
  end
  if self._conn then
    self:_remote({ op = "set_path", path = { dir } })
  else
    self._h:set_path({ dir })
  end
  self.env = name
end

function Session:status()
  if self._closed or self._dead then return "dead" end
  if self._conn then
    local ok, r
    if self.attached then
      ok, r = pcall(self._conn.request, self._conn, { op = "status", name = self.id })
    else
      ok, r = pcall(session.host_request, { op = "status", name = self.id }, false)
    end
    if not ok then return "dead" end
    return r.status
  end
  return self._h:status()
end

function Session:pid()
  if self._conn then return self._pid or self._conn:pid() end
  return self._h:pid()
end

--- Detaches: the session keeps running (persistent ones in the session host).
function Session:detach()
  if not self.attached then
    raise("Detach", ("session '%s' is not attached"):format(self.id), { id = self.id })
  end
  if self._conn then
    pcall(self._conn.request, self._conn, { op = "detach", name = self.id })
    self._conn:close()
  end
  self.attached = false
  require("bioxen.lrs").hook.session_detached(self.id, self.persistent and "session host" or "local")
end

--- Attaches again (a persistent session may be held elsewhere: kind Attach, unless force).
function Session:attach(force)
  if self.attached then return self end
  if self.persistent then
    self._conn = session.host_connect(true)
    self:_attach_remote(force)
  end
  self.attached = true
  require("bioxen.lrs").hook.session_attached(self.id, self.persistent and "session host" or "local")
  return self
end

--- Ends the session (a persistent one is killed in the session host).
function Session:close()
  if self._closed then return end
  self._closed = true
  if self._conn then
    if not self.attached then self._conn = session.host_connect(true) end
    pcall(self._conn.request, self._conn, { op = "kill", name = self.id })
    self._conn:close()
  else
    self._h:close()
  end
end

function Session:__tostring()
  return ("session %s (%s%s, %s)"):format(self.id, self.backend, self.persistent and ", persistent" or "",
    self:status())
end

------------------------------------------------------------------ the manager

local Manager = {}
Manager.__index = Manager
session.Manager = Manager

--- bioxen.vm.manager(): owns VMs and sessions by id; m:close() ends them all.
function session.manager(vm)
  return setmetatable({ _vm = vm, _entries = {}, _closed = false }, Manager)
end

function Manager:_open()
  if self._closed then raise("VMManager", "this VM manager was closed; create a new one with bioxen.vm.manager()") end
end

function Manager:_entry(id)
  self:_open()
  check_id(id)
  local e = self._entries[id]
  if e == nil then
    raise("SessionNotFound", ("no VM or session with id '%s' in this manager (m:list() shows them)"):format(id),
      { id = id })
  end
  return e
end

function Manager:_session(id)
  local e = self:_entry(id)
  if not e.interactive then
    raise("InteractiveSession", ("'%s' is a VM, not an interactive session; create it with m:session(id)"):format(id),
      { id = id })
  end
  return e.obj
end

--- Creates a VM (opts as bioxen.vm.create); a duplicate id raises SessionAlreadyExists.
function Manager:create(id, opts)
  self:_open()
  check_id(id)
  if self._entries[id] then
    raise("SessionAlreadyExists", ("this manager already has '%s'; terminate it first or choose another id"):format(id),
      { id = id })
  end
  if opts ~= nil and type(opts) ~= "table" then raise("Argument", "VM options must be a table, got " .. type(opts)) end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.id = id
  local ok, v = pcall(self._vm.create, o)
  if not ok then
    local kind = type(v) == "userdata" and v.kind
    if kind == "Argument" or kind == "SessionAlreadyExists" then error(v, 2) end
    raise(kind == "Crashed" and "ProcessRegistry" or "VMManager",
      ("cannot create VM '%s': %s"):format(id, tostring(v)), { id = id })
  end
  self._entries[id] = { obj = v, interactive = false, created = now(), last_used = now() }
  return v
end

--- Creates an interactive session (opts also take env = "name", persistent = true).
function Manager:session(id, opts)
  self:_open()
  check_id(id)
  if self._entries[id] then
    raise("SessionAlreadyExists", ("this manager already has '%s'; terminate it first or choose another id"):format(id),
      { id = id })
  end
  local s = session.open(id, opts)
  self._entries[id] = { obj = s, interactive = true }
  return s
end

--- The VM or session with this id.
function Manager:get(id)
  return self:_entry(id).obj
end

function Manager:exec(id, code)
  local e = self:_entry(id)
  e.last_used = now()
  local r = e.obj:exec(code)
  return r
end

function Manager:exec_async(id, code)
  local e = self:_entry(id)
  e.last_used = now()
  return e.obj:exec_async(code)
end

--- Ends a VM or session and forgets it.
function Manager:terminate(id)
  local e = self:_entry(id)
  e.obj:close()
  self._entries[id] = nil
end

function Manager:send(id, text)
  return self:_session(id):send(text)
end

function Manager:read(id, opts)
  return self:_session(id):read(opts)
end

function Manager:detach(id)
  return self:_session(id):detach()
end

--- Attaches a session again and returns it. An id this manager does not
--- know is looked up among the persistent sessions of the session host.
function Manager:attach(id, opts)
  self:_open()
  check_id(id)
  local force = type(opts) == "table" and opts.force or false
  local e = self._entries[id]
  if e == nil then
    local s = session.attach_persistent(id, force)
    self._entries[id] = { obj = s, interactive = true }
    return s
  end
  if not e.interactive then
    raise("InteractiveSession", ("'%s' is a VM, not an interactive session"):format(id), { id = id })
  end
  if e.obj.attached then
    if force then return e.obj end
    local holder = native.holder("this manager")
    raise("Attach", ("session '%s' is already attached, by %s; use it, or m:attach(id, { force = true })")
      :format(id, holder), { id = id, holder = holder })
  end
  return e.obj:attach(force)
end

--- id -> { backend, status, created, last_used, attached, pid, interactive, persistent }
function Manager:list()
  self:_open()
  local out = {}
  for id, e in pairs(self._entries) do
    local o = e.obj
    if e.interactive then
      out[id] = { backend = o.backend, status = o:status(), created = o.created, last_used = o.last_used,
        attached = o.attached, pid = o:pid(), interactive = true, persistent = o.persistent, env = o.env }
    else
      out[id] = { backend = o.backend, status = o:status(), created = e.created, last_used = e.last_used,
        attached = true, pid = o:pid(), interactive = false, persistent = false }
    end
  end
  return out
end

--- Closes every VM and local session; persistent sessions are detached and keep running.
function Manager:close()
  if self._closed then return end
  for id, e in pairs(self._entries) do
    if e.interactive and e.obj.persistent then
      if e.obj.attached then pcall(e.obj.detach, e.obj) end
    else
      pcall(e.obj.close, e.obj)
    end
    self._entries[id] = nil
  end
  self._closed = true
end

function Manager:__tostring()
  local n = 0
  for _ in pairs(self._entries) do n = n + 1 end
  return ("vm manager (%d entries%s)"):format(n, self._closed and ", closed" or "")
end

-- Durations at debug level (docs/api/log.md); nothing is wrapped otherwise.
require("bioxen.log").instrument(Session, "session", { "send", "read", "attach", "detach", "close" })

return session
