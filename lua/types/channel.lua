---@meta
-- bioxen.channel: bounded channels that copy values (docs/api/channel.md).

---@class bioxen.Channel
local Channel = {}

---Queues a copy of `v`, waiting while full; raises `Closed`, `Timeout`, `Value`.
---@param v nil|boolean|number|string|table
---@param timeout? number
---@return true
function Channel:send(v, timeout) end

---@param v nil|boolean|number|string|table
---@return boolean queued
function Channel:try_send(v) end

---`value, true`, or `nil, false` once closed and drained; raises `Timeout`.
---@param timeout? number
---@return any value
---@return boolean ok
function Channel:recv(timeout) end

---@return any value
---@return boolean ok
function Channel:try_recv() end

---@param max? integer default 256
---@param timeout? number
---@return any[]|nil values
---@return integer|nil n
function Channel:recv_batch(max, timeout) end

---@param opts? {batch?: integer}
---@return fun(): any
function Channel:iter(opts) end

function Channel:close() end
---@return integer
function Channel:len() end
---@return integer
function Channel:capacity() end
---@return boolean
function Channel:is_closed() end

---@class bioxen.channel
---@overload fun(opts?: {capacity?: integer}): bioxen.Channel
local channel = {}

---@param capacity? integer default 1024
---@return bioxen.Channel
function channel.new(capacity) end

---@param v any
---@return boolean
function channel.is_channel(v) end

---Seconds on a monotonic clock.
---@return number
function channel.now() end

bioxen.channel = channel
return channel
