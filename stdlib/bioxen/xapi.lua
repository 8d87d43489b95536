-- bioxen.xapi: XAPI sessions for XCP-ng / XenServer pools.
-- The native half moves XML-RPC over HTTP(S); this half keeps the session
-- (login, re-login on SESSION_INVALID, reconnect to the master on HOST_IS_SLAVE,
-- logout), raises failures as kind "Xapi", and adds the x.VM.method(...) sugar,
-- Async task handles and the event.from iterator.
local native = ...
local task = require("bioxen.task")
local xapi = {}

local DOUBLE = { __xapi = "double" }
local ARRAY = { __xapi = "array" }

--- Marks a number to be sent as an XML-RPC double (whole numbers go as XAPI int64 strings).
function xapi.double(n) return setmetatable({ n }, DOUBLE) end
--- Marks a table to be sent as an array even when empty.
function xapi.array(t) return setmetatable(t or {}, ARRAY) end

xapi.NULL = "OpaqueRef:NULL"

-- What the common failure codes mean, for messages people can act on.
local MEANINGS = {
  SESSION_AUTHENTICATION_FAILED = "the pool refused the user name or password",
  SESSION_INVALID = "the session is unknown or expired; log in again",
  HOST_IS_SLAVE = "this host is a pool member, not the master; connect to the master at %1",
  MESSAGE_METHOD_UNKNOWN = "the pool does not know the method %1",
  MESSAGE_PARAMETER_COUNT_MISMATCH = "%1 takes %2 parameters (session included), it was given %3",
  VM_BAD_POWER_STATE = "the VM %1 must be %2 for this, but it is %3",
  VM_IS_TEMPLATE = "%1 is a template; clone it and start the clone",
  MEMORY_CONSTRAINT_VIOLATION = "the memory settings break the rule: %1",
  INVALID_VALUE = "invalid value: %1 (got %2)",
  HOST_NOT_ENOUGH_FREE_MEMORY = "no host has enough free memory: the VM needs %1 bytes, the best host has %2",
  HANDLE_INVALID = "the %1 reference %2 does not exist (deleted, or from another pool)",
  UUID_INVALID = "no %1 has uuid %2",
  VM_LACKS_FEATURE_SHUTDOWN = "the guest %1 cannot shut down cleanly (no guest agent); use hard_shutdown",
  VDI_IN_USE = "the disk %1 is in use by a running VM",
  DEVICE_ALREADY_EXISTS = "device %1 is already used on this VM",
  FIELD_TYPE_ERROR = "the parameter %1 has the wrong type",
  SR_FULL = "the storage repository is full: %1 bytes requested, %2 available",
  TASK_CANCELLED = "the task %1 was cancelled",
  OPERATION_NOT_ALLOWED = "%1",
}

local function explain(code, params)
  local m = MEANINGS[code]
  if not m then
    return #params > 0 and (code .. " " .. table.concat(params, ", ")) or code
  end
  return (m:gsub("%%(%d)", function(i) return tostring(params[tonumber(i)] or "?") end))
end

local function raise(desc, method, level)
  local code = tostring(desc[1] or "UNKNOWN_ERROR")
  local params = {}
  for i = 2, #desc do params[#params + 1] = tostring(desc[i]) end
  error(bioxen.error("Xapi", ("%s: %s (%s)"):format(method, explain(code, params), code),
    { code = code, params = params, method = method }), level or 3)
end
xapi._raise = raise

-- Fields XAPI types int64 but sends as strings: turned back into numbers.
local INT_FIELDS = {}
for name in ([[memory_static_min memory_static_max memory_dynamic_min memory_dynamic_max
  memory_overhead memory_target memory_total memory_free memory_actual VCPUs_max VCPUs_at_startup
  VCPUs_number virtual_size physical_utilisation physical_size virtual_allocation MTU domid
  API_version_major API_version_minor]]):gmatch("%S+") do INT_FIELDS[name] = true end
xapi.INT_FIELDS = INT_FIELDS

local function ints(record)
  if type(record) ~= "table" then return record end
  for k, v in pairs(record) do
    if INT_FIELDS[k] and type(v) == "string" then record[k] = tonumber(v) or v end
  end
  return record
end

local function convert(method, v)
  local op = method:match("%.([%w_]+)$") or ""
  if op == "get_record" then return ints(v) end
  if op == "get_all_records" then
    for _, r in pairs(v) do ints(r) end
    return v
  end
  if op == "compute_free_memory" then return tonumber(v) end
  local field = op:match("^get_(.+)$")
  if field and INT_FIELDS[field] and type(v) == "string" then return tonumber(v) or v end
  return v
end

local Session = {}
local Task = {}
Task.__index = Task

local CLASS_PROXY = {}

local function proxy(session, prefix)
  return setmetatable({}, {
    __index = function(t, name)
      if prefix == "Async" then
        local p = proxy(session, "Async." .. name)
        rawset(t, name, p)
        return p
      end
      local method = prefix .. "." .. name
      local f = function(...) return session:call(method, ...) end
      rawset(t, name, f)
      return f
    end,
  })
end

Session.__index = function(self, key)
  local m = Session[key]
  if m ~= nil then return m end
  if type(key) == "string" and key:sub(1, 1) ~= "_" then
    local p = proxy(self, key)
    rawset(self, key, p)
    return p
  end
end

local function split_url(url)
  local scheme, rest = url:match("^(https?)://([^/]+)")
  return scheme, rest
end

function Session:_login()
  local ok, v = self._t:call("session.login_with_password",
    { self._user, self._password, xapi.API_VERSION, self._originator })
  if ok then
    self._ref = v
    return
  end
  if v[1] == "HOST_IS_SLAVE" and not self._redirected then
    -- The master's address (XAPI gives an IP; the simulator an IP:port).
    local scheme = split_url(self.url)
    local master = tostring(v[2])
    bioxen.log.info("xapi: " .. self.url .. " is a pool member; reconnecting to the master " .. master)
    self.url = scheme .. "://" .. master .. "/"
    self._t = native.transport(self.url, self._tls)
    self._redirected = true
    return self:_login()
  end
  raise(v, "session.login_with_password", 4)
end

--- x:call("VM.get_by_name_label", "debian-12"): the session reference is added for you.
function Session:call(method, ...)
  if not self._ref then
    error(bioxen.error("Xapi", method .. ": the session is closed", { code = "SESSION_CLOSED", params = {} }), 2)
  end
  if method:match("^Async%.") then
    local ref = self:_raw(method, ...)
    return setmetatable({ ref = ref, session = self, method = method }, Task)
  end
  return convert(method, self:_raw(method, ...))
end

function Session:_raw(method, ...)
  local params = { self._ref, ... }
  local ok, v = self._t:call(method, params)
  if ok then return v end
  local code = v[1]
  if code == "SESSION_INVALID" then
    bioxen.log.info("xapi: session expired; logging in again and retrying " .. method)
    self:_login()
    params[1] = self._ref
    ok, v = self._t:call(method, params)
    if ok then return v end
  elseif code == "HOST_IS_SLAVE" then
    self._redirected = false
    local scheme = split_url(self.url)
    self.url = scheme .. "://" .. tostring(v[2]) .. "/"
    self._t = native.transport(self.url, self._tls)
    self:_login()
    params[1] = self._ref
    ok, v = self._t:call(method, params)
    if ok then return v end
  end
  raise(v, method, 4)
end

--- Logs out. Safe to call twice.
function Session:close()
  if self._ref then
    pcall(self._t.call, self._t, "session.logout", { self._ref })
    self._ref = nil
  end
end

function Session:ref() return self._ref end

--- Iterates event.from: `for ev in x:events{classes={"vm","task"}} do ... end`.
--- Each event: {id, class, operation, ref, snapshot}. Options: timeout (seconds
--- per poll, default 30), token (start after it), max_polls (stop after that many).
function Session:events(opts)
  opts = opts or {}
  local classes = xapi.array(opts.classes or { "*" })
  local token = opts.token or ""
  local timeout = opts.timeout or 30
  local polls, max = 0, opts.max_polls
  local queue, head = {}, 1
  return function()
    while head > #queue do
      if max and polls >= max then return nil end
      polls = polls + 1
      local r = self:call("event.from", classes, token, xapi.double(timeout))
      token = r.token
      self.event_token = token
      queue, head = r.events or {}, 1
      for _, e in ipairs(queue) do ints(e.snapshot) end
    end
    local e = queue[head]
    head = head + 1
    return e
  end
end

--- Polls the task until it ends, destroys it and returns its result (a
--- reference for VM.clone and friends, nil for void calls). Yields under
--- bioxen.task between polls. Raises kind Xapi with the task's error code.
function Task:wait(timeout)
  local s = self.session
  local deadline = timeout and (os.time() + timeout)
  local delay = 0.005
  while true do
    local status = s:call("task.get_status", self.ref)
    if status ~= "pending" then
      local result, info
      if status == "success" then
        result = s:call("task.get_result", self.ref)
      else
        info = s:call("task.get_error_info", self.ref)
      end
      pcall(s.call, s, "task.destroy", self.ref)
      if status == "success" then
        local inner = type(result) == "string" and result:match("<value>(.-)</value>")
        if inner then return inner end
        if result == "" then return nil end
        return result
      end
      if status == "cancelled" and #info == 0 then info = { "TASK_CANCELLED", self.ref } end
      raise(info, self.method, 3)
    end
    if deadline and os.time() > deadline then
      error(bioxen.error("Timeout", ("%s: task %s still pending after %ss"):format(self.method, self.ref, timeout)), 2)
    end
    task.sleep(delay)
    delay = math.min(delay * 2, 0.5)
  end
end

function Task:status() return self.session:call("task.get_status", self.ref) end
function Task:cancel() return self.session:call("task.cancel", self.ref) end

xapi.API_VERSION = "2.21"

--- connect{url, user, password, verify_tls=true, fingerprint=nil, timeout=60, originator="bioxen"}
function xapi.connect(opts)
  if type(opts) ~= "table" then
    error(bioxen.error("Argument", "xapi.connect wants a table: {url=..., user=..., password=...}"), 2)
  end
  for _, k in ipairs({ "url", "user", "password" }) do
    if type(opts[k]) ~= "string" then
      error(bioxen.error("Argument", ("xapi.connect needs %s= (a string)"):format(k)), 2)
    end
  end
  local tls = { verify_tls = opts.verify_tls ~= false, fingerprint = opts.fingerprint, timeout = opts.timeout }
  local url = opts.url
  if not url:match("/$") and not url:match("^https?://[^/]+/") then url = url .. "/" end
  local s = setmetatable({
    url = url,
    _tls = tls,
    _t = native.transport(url, tls),
    _user = opts.user,
    _password = opts.password,
    _originator = opts.originator or "bioxen",
  }, Session)
  s:_login()
  return s
end

--- simulator{listen="127.0.0.1:0", user, password, pool={...}}: an in-process pool simulator.
xapi.simulator = native.simulator
xapi.transport = native.transport

return xapi
