-- bioxen.channel: the Lua half. Native code (src/std/channel) keeps the bounded
-- queue; this file copies values in and out: strings, numbers, booleans and nil
-- go as they are, tables as LuaJIT string.buffer encodings. The same file is
-- loaded into child VMs, so a channel has the same methods everywhere.
local native = ...
local encode, decode = native.buffer.encode, native.buffer.decode
local bind = native.bind
local wait_async, wait_blocking, can_yield = native.wait_async, native.wait_blocking, native.can_yield
local native_close, info, now = native.close, native.info, native.now
local isyieldable = coroutine and coroutine.isyieldable
local type, pairs, tostring, pcall, error = type, pairs, tostring, pcall, error
local make_error = native.error

local function raise(kind, message, details)
  error(make_error(kind, message, details), 3)
end

local Channel = {}
Channel.__index = Channel

-- The raw per-value functions of each channel object, out of reach of the code
-- using it (in a child VM, that code must not forge encoded tables).
local SEND, RECV, RECV_INTO = setmetatable({}, { __mode = "k" }), setmetatable({}, { __mode = "k" }),
  setmetatable({}, { __mode = "k" })

-- Where in `v` the first value that cannot be copied sits, and what it is.
local function find_bad(v, path, depth)
  if depth > 100 then return path, "a table nested more than 100 deep (a cycle?)" end
  for k, x in pairs(v) do
    local tk = type(k)
    if tk == "table" then
      local bp, what = find_bad(k, path .. "[key]", depth + 1)
      if bp then return bp, what end
    elseif tk ~= "string" and tk ~= "number" and tk ~= "boolean" then
      return path, "a key that is a " .. tk
    end
    local p = tk == "string" and k:match("^[%a_][%w_]*$") and (path .. "." .. k)
      or (path .. "[" .. (tk == "string" and ("%q"):format(k) or tostring(k)) .. "]")
    local tx = type(x)
    if tx == "table" then
      local bp, what = find_bad(x, p, depth + 1)
      if bp then return bp, what end
    elseif tx ~= "string" and tx ~= "number" and tx ~= "boolean" then
      return p, "a " .. tx
    end
  end
end

local function pack(v)
  local t = type(v)
  if t == "table" then
    local ok, s = pcall(encode, v)
    if ok then return s, true end
    local where, what = find_bad(v, "value", 0)
    raise("Value", ("cannot copy %s through a channel: %s is %s; only nil, booleans, numbers, strings and tables of those are copied")
      :format("this table", where or "value", what or tostring(s)), { path = where })
  elseif t == "string" or t == "number" or t == "boolean" or t == "nil" then
    return v, false
  end
  raise("Value", "cannot copy a " .. t .. " through a channel: only nil, booleans, numbers, strings and tables of those are copied")
end

local function wait(h, sending, timeout)
  if isyieldable and isyieldable() and can_yield() then
    return wait_async(h, sending, timeout)
  end
  return wait_blocking(h, sending, timeout)
end

local function remaining(deadline)
  if not deadline then return nil end
  local r = deadline - now()
  return r > 0 and r or 0
end

--- Sends a copy of `v`, waiting while the channel is full (back-pressure).
--- Raises `Closed` on a closed channel, `Timeout` after `timeout` seconds.
function Channel:send(v, timeout)
  local payload, is_table = pack(v)
  local try_send = SEND[self]
  local ok, why = try_send(payload, is_table)
  if ok then return true end
  if why then raise("Closed", "the channel is closed") end
  local h = self.handle
  local deadline = timeout and now() + timeout
  while true do
    if not wait(h, true, remaining(deadline)) then
      raise("Timeout", ("channel send timed out after %gs (the channel stayed full)"):format(timeout), { timeout = timeout })
    end
    ok, why = try_send(payload, is_table)
    if ok then return true end
    if why then raise("Closed", "the channel is closed") end
  end
end

--- Sends without waiting: false when the channel is full.
function Channel:try_send(v)
  local payload, is_table = pack(v)
  local ok, why = SEND[self](payload, is_table)
  if why then raise("Closed", "the channel is closed") end
  return ok
end

local function unpack_msg(v, st)
  if st == 2 then return decode(v), true end
  return v, true
end

--- The next value, waiting for one. Returns `value, true`, or `nil, false` once
--- the channel is closed and drained. Raises `Timeout` after `timeout` seconds.
function Channel:recv(timeout)
  local try_recv = RECV[self]
  local v, st = try_recv()
  if st == 1 then return v, true end
  if st == 2 then return decode(v), true end
  if st == 3 then return nil, false end
  local h = self.handle
  local deadline = timeout and now() + timeout
  while true do
    if not wait(h, false, remaining(deadline)) then
      raise("Timeout", ("channel recv timed out after %gs"):format(timeout), { timeout = timeout })
    end
    v, st = try_recv()
    if st == 1 or st == 2 then return unpack_msg(v, st) end
    if st == 3 then return nil, false end
  end
end

--- The next value if one is queued: `value, true`; otherwise `nil, false`.
function Channel:try_recv()
  local v, st = RECV[self]()
  if st == 1 or st == 2 then return unpack_msg(v, st) end
  return nil, false
end

--- Up to `max` values at once (at least one, waiting for it like `recv`):
--- a list, or nil once the channel is closed and drained. Faster than `recv`
--- per value, but takes every queued value up to `max` for this receiver.
function Channel:recv_batch(max, timeout)
  local vals, kinds = {}, {}
  local n = self:_fill(vals, kinds, max or 256, timeout)
  if n < 0 then return nil end
  for i = 1, n do if kinds[i] == 2 then vals[i] = decode(vals[i]) end end
  return vals, n
end

-- Fills vals/kinds with up to `max` values, waiting for the first; -1 when closed and drained.
function Channel:_fill(vals, kinds, max, timeout)
  local recv_into = RECV_INTO[self]
  local n = recv_into(vals, kinds, max)
  if n ~= 0 then return n end
  local h = self.handle
  local deadline = timeout and now() + timeout
  while n == 0 do
    if not wait(h, false, remaining(deadline)) then
      raise("Timeout", ("channel recv timed out after %gs"):format(timeout), { timeout = timeout })
    end
    n = recv_into(vals, kinds, max)
  end
  return n
end

--- Closes the channel: sends fail, receivers drain what is queued, then get nil.
function Channel:close()
  native_close(self.handle)
end

function Channel:len() return (info(self.handle)) end
function Channel:capacity() local _, c = info(self.handle) return c end
function Channel:is_closed() local _, _, c = info(self.handle) return c end

--- `for v in ch:iter() do ... end` (or `for v in ch do`): values until the channel
--- is closed and drained. A sent nil also ends the loop.
function Channel:iter(opts)
  local batch = type(opts) == "table" and opts.batch or nil
  if not batch or batch <= 1 then
    return function() return (self:recv()) end
  end
  -- batched: one native call per `batch` queued values
  local vals, kinds, i, n = {}, {}, 1, 0
  return function()
    if i > n then
      n = self:_fill(vals, kinds, batch)
      if n < 0 then return nil end
      i = 1
    end
    local v = vals[i]
    if kinds[i] == 2 then v = decode(v) end
    vals[i] = nil
    i = i + 1
    return v
  end
end
Channel.__call = function(self) return (self:recv()) end

function Channel:__tostring()
  local n, c, closed = info(self.handle)
  return ("channel (%d/%d%s)"):format(n, c, closed and ", closed" or "")
end

local channel = {}

--- Wraps a native handle (used for channels handed to child VMs).
function channel.wrap(handle)
  local send, recv, recv_into = bind(handle)
  local ch = setmetatable({ handle = handle }, Channel)
  SEND[ch], RECV[ch], RECV_INTO[ch] = send, recv, recv_into
  return ch
end

--- `bioxen.channel{ capacity = 1024 }` or `bioxen.channel.new(1024)`.
function channel.new(opts)
  local capacity = opts
  if type(opts) == "table" then capacity = opts.capacity end
  return channel.wrap(native.new(capacity))
end

--- Seconds on a monotonic clock (for timing).
channel.now = now

function channel.is_channel(v)
  return getmetatable(v) == Channel
end

return setmetatable(channel, { __call = function(_, opts) return channel.new(opts) end })
