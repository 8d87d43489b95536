-- bioxen.cluster: a pool of child VMs (bioxen.vm) working through a list of
-- inputs. Each worker slot runs a task that takes the next item, calls the
-- cluster's function in its VM (the call yields under bioxen.task), and posts
-- the outcome on a bioxen.channel that `each`/`map`/`map_async` read.
-- `scatter`/`gather` are MPI-style: one slice of a list per worker.
--
-- Failures: an error raised by the function is that item's failure (the worker
-- stays). A worker that crashes, is killed or times out is closed and replaced,
-- and its item goes back to the queue once, so another VM retries it; a second
-- such failure reports the item as failed with the error. Every item finishes
-- exactly once: nothing is lost or duplicated.
local cluster = {}

local Cluster = {}
Cluster.__index = Cluster

local function raise(kind, message, details, level)
  error(bioxen.error(kind, message, details), (level or 1) + 1)
end

-- Kinds that mean the worker VM itself is gone or unusable.
local WORKER_FAILURE = {
  Crashed = true, Dead = true, Closed = true, Timeout = true, Killed = true,
  MemoryLimit = true, Cancelled = true,
  Ssh = true, -- a remote (xcpng) worker whose guest or connection is gone
}
cluster.worker_failures = WORKER_FAILURE

local OPTIONS = { size = "number", backend = "string", sandbox = "string", env = "any",
  timeout = "number", memory_limit = "number", package_path = "table", retries = "number" }
local OPTION_NAMES = "size, backend, sandbox, env, timeout, memory_limit, package_path, retries"

-- The chosen backend's own options (bioxen.vm.backends[name].options, e.g. the
-- xcpng backend's pool, template, memory, vcpus, ssh...): a remote backend
-- registers itself when its library loads.
local function backend_options(name)
  if name == "xcpng" and bioxen.vm.backends.xcpng == nil then require("bioxen.xcpng") end
  local b = bioxen.vm.backends[name]
  if b == nil then
    local names = {}
    for n in pairs(bioxen.vm.backends) do names[#names + 1] = '"' .. n .. '"' end
    table.sort(names)
    raise("Argument", ("unknown VM backend '%s' for the cluster (registered: %s)")
      :format(tostring(name), table.concat(names, ", ")), nil, 3)
  end
  return b.options or {}, b.remote
end

--- new{ size = N, backend = "process"|"thread"|"xcpng", sandbox = "standard", env = {globals},
---      timeout = seconds per item (default 60), memory_limit = bytes, retries = 1,
---      env = "name" (a package environment the workers require from, as vm.create's env),
---      ...the backend's own options (xcpng: pool, template, memory, vcpus, ssh, ...) }
--- The workers start in parallel under bioxen.task (a remote backend deploys N guests at once).
function cluster.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then raise("Argument", "cluster.new needs an options table", nil, 2) end
  if opts.backend ~= nil and type(opts.backend) ~= "string" then
    raise("Argument", ("cluster option backend must be a string, got %s"):format(type(opts.backend)), nil, 2)
  end
  local backend = opts.backend or bioxen.vm.default_backend
  local own, remote = backend_options(backend)
  local vmopts = {}
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if want == nil and own[k] ~= nil then
      -- passed to bioxen.vm.create unchanged (it checks the type against the backend's list)
      vmopts[k] = v
    elseif want == nil then
      local extra = {}
      for name in pairs(own) do extra[#extra + 1] = name end
      table.sort(extra)
      raise("Argument", ("unknown cluster option '%s' (known: %s%s)"):format(tostring(k), OPTION_NAMES,
        #extra > 0 and ("; the %s backend also takes: %s"):format(backend, table.concat(extra, ", ")) or ""),
        nil, 2)
    elseif k == "env" and type(v) ~= "table" and type(v) ~= "string" then
      raise("Argument", ("cluster option env must be a table of globals or the name of a package "
        .. "environment, got %s"):format(type(v)), nil, 2)
    elseif want ~= "any" and type(v) ~= want then
      raise("Argument", ("cluster option %s must be a %s, got %s"):format(k, want, type(v)), nil, 2)
    end
  end
  local size = opts.size or 2
  if size < 1 or size ~= math.floor(size) then
    raise("Argument", "cluster size must be a whole number >= 1, got " .. tostring(size), nil, 2)
  end
  local c = setmetatable({
    size = size,
    backend = backend,
    remote = remote,
    sandbox = opts.sandbox or "standard",
    env = opts.env,
    timeout = opts.timeout or 60,
    memory_limit = opts.memory_limit,
    package_path = opts.package_path,
    vmopts = vmopts,
    retries = opts.retries or 1,
    workers = {},
    counter = 0,
    stats = { items = 0, failed = 0, retried = 0, replaced = 0 },
  }, Cluster)
  -- All workers start at once (deploying a guest takes seconds); if one cannot
  -- start, the others are closed and the first error is raised.
  local starts = {}
  for slot = 1, size do
    starts[slot] = bioxen.task.spawn(function() return c:_spawn(slot) end)
  end
  local failure
  for slot = 1, size do
    local ok, w = pcall(bioxen.task.wait, starts[slot])
    if ok then c.workers[slot] = w elseif failure == nil then failure = w end
  end
  if failure ~= nil then
    for _, w in pairs(c.workers) do pcall(w.vm.close, w.vm) end
    error(failure, 0)
  end
  return c
end

-- A remote VM raises (kind Ssh) when its guest or connection is lost, where a
-- local VM returns a failed result (kind Crashed): a remote worker's exec and
-- call_async give such errors back as results, so a lost guest is replaced and
-- its item retried like a crashed process.
local function as_result(e)
  local kind = type(e) == "table" and e.kind or "Crashed"
  local message = type(e) == "table" and e.message or tostring(e)
  return { ok = false, kind = kind, error = message, values = {}, n = 0 }
end

local function guarded(v)
  local g = setmetatable({}, { __index = v, __tostring = function() return tostring(v) end })
  function g.exec(_, code)
    local ok, r = pcall(v.exec, v, code)
    if ok then return r end
    return as_result(r)
  end
  function g.call_async(_, name, ...)
    local ok, job = pcall(v.call_async, v, name, ...)
    if not ok then
      local failed = as_result(job)
      return { wait = function() return failed end, done = function() return true end,
        cancel = function() end, status = function() return "failed" end }
    end
    return setmetatable({
      wait = function(_, ...)
        local done, r = pcall(job.wait, job, ...)
        if done then return r end
        return as_result(r)
      end,
    }, { __index = job })
  end
  for _, m in ipairs({ "call", "exec_async", "status", "pid", "close" }) do
    g[m] = function(_, ...) return v[m](v, ...) end
  end
  g.vm = v
  return g
end

function Cluster:_spawn(slot)
  self.counter = self.counter + 1
  local opts = {
    backend = self.backend, sandbox = self.sandbox,
    timeout = self.timeout, memory_limit = self.memory_limit, package_path = self.package_path,
  }
  if type(self.env) == "string" then opts.env = self.env else opts.globals = self.env end
  for k, v in pairs(self.vmopts or {}) do opts[k] = v end
  local w = bioxen.vm.create(opts)
  if self.remote then w = guarded(w) end
  return { vm = w, slot = slot, fn = nil, serial = self.counter }
end

function Cluster:_replace(slot)
  local old = self.workers[slot]
  pcall(old.vm.close, old.vm)
  self.stats.replaced = self.stats.replaced + 1
  self.workers[slot] = self:_spawn(slot)
  return self.workers[slot]
end

-- Test hook: makes the next worker creations fail (simulates a host that can
-- no longer start VMs).
function Cluster:_break_spawning(message)
  self._spawn = function() error(bioxen.error("Crashed", message or "cannot start a VM"), 0) end
end

-- The function source as a chunk that returns the function.
local function chunk_of(fn_source)
  if type(fn_source) == "function" then
    raise("Argument", "pass the function as Lua source text (e.g. \"function(x) return x * 2 end\"): "
      .. "functions cannot be copied into another VM", nil, 3)
  end
  if type(fn_source) ~= "string" then
    raise("Argument", "the function must be Lua source text, got " .. type(fn_source), nil, 3)
  end
  if fn_source:match("^%s*function[%s%(]") then return "return " .. fn_source end
  return fn_source
end

-- Makes sure worker `w` has the function loaded; false, result on failure.
local function install(w, chunk)
  if w.fn == chunk then return true end
  local r = w.vm:exec("__bioxen_cluster_fn = (function() " .. chunk .. "\nend)()\n"
    .. "assert(type(__bioxen_cluster_fn) == 'function', 'the cluster function source must produce a function')")
  if not r.ok then return false, r end
  w.fn = chunk
  return true
end

-- Starts the work; outcomes arrive on the returned channel as
-- { i = index, ok = bool, value = v, kind = k, error = e, attempts = n }.
function Cluster:_start(fn_source, inputs)
  if self.closed then raise("Closed", "the cluster is closed", nil, 3) end
  if type(inputs) ~= "table" then raise("Argument", "inputs must be a list, got " .. type(inputs), nil, 3) end
  if self._busy then
    raise("Busy", "the cluster is still working on a previous map, each, map_async or gather; "
      .. "wait for it first, or use a second cluster", nil, 3)
  end
  local chunk = chunk_of(fn_source)
  local n = #inputs
  local queue, head = {}, 1
  for i = 1, n do queue[i] = { i = i, attempts = 0 } end
  local done = bioxen.channel{ capacity = math.max(1, n) }
  local remaining = n
  local stats = self.stats
  local function finish(item, r)
    remaining = remaining - 1
    if not r.ok then stats.failed = stats.failed + 1 end
    done:send({ i = item.i, ok = r.ok, value = r.value, kind = r.kind, error = r.error, attempts = item.attempts })
    if remaining == 0 then
      self._busy = false
      done:close()
    end
  end
  if n == 0 then done:close() return done, 0 end
  self._busy = true
  stats.items = stats.items + n
  local tasks, live = {}, self.size
  -- A slot whose worker cannot be replaced stops; when none is left, the
  -- items still queued are reported failed rather than waited for forever.
  local function slot_lost(why)
    live = live - 1
    if live > 0 then return end
    while queue[head] do
      local item = queue[head]
      queue[head] = nil
      head = head + 1
      finish(item, { ok = false, kind = "Crashed", error = "no worker left to run it: " .. why })
    end
  end
  for slot = 1, self.size do
    tasks[slot] = bioxen.task.spawn(function()
      while true do
        local item = queue[head]
        if item == nil then return end
        queue[head] = nil
        head = head + 1
        item.attempts = item.attempts + 1
        local w = self.workers[slot]
        local ok, r = install(w, chunk)
        if ok then
          local job = w.vm:call_async("__bioxen_cluster_fn", inputs[item.i])
          r = job:wait()
        end
        if r.ok then
          finish(item, { ok = true, value = r.values[1] })
        elseif WORKER_FAILURE[r.kind] then
          -- the worker is gone or stuck: replace it, and retry the item once
          -- on another worker (the replacement, or another slot's)
          local replaced, err = pcall(self._replace, self, slot)
          if item.attempts <= self.retries and (replaced or live > 1) then
            stats.retried = stats.retried + 1
            head = head - 1
            queue[head] = item
          else
            finish(item, { ok = false, kind = r.kind, error = r.error })
          end
          if not replaced then
            slot_lost(tostring(err))
            return
          end
        else
          finish(item, { ok = false, kind = r.kind, error = r.error })
        end
      end
    end)
  end
  self._tasks = tasks
  return done, n
end

--- Calls `fn(input)` for each input across the workers; `callback(i, value, failure)`
--- as each item finishes (completion order). `failure` is nil or
--- { index, kind, error, attempts }. Returns the number of items.
function Cluster:each(fn_source, inputs, callback)
  local done, n = self:_start(fn_source, inputs)
  for o in done:iter() do
    if o.ok then
      callback(o.i, o.value, nil)
    else
      callback(o.i, nil, { index = o.i, kind = o.kind, error = o.error, attempts = o.attempts })
    end
  end
  return n
end

local function collect(done, n)
  local results, failures = {}, nil
  for o in done:iter() do
    if o.ok then
      results[o.i] = o.value
    else
      failures = failures or {}
      failures[#failures + 1] = { index = o.i, kind = o.kind, error = o.error, attempts = o.attempts }
    end
  end
  if failures then table.sort(failures, function(a, b) return a.index < b.index end) end
  results.n = n
  return results, failures
end

--- `fn(input)` for every input, spread over the workers. Returns the results in
--- input order (`results.n` = #inputs) and a list of failures (nil when none):
--- { index, kind, error, attempts }.
function Cluster:map(fn_source, inputs)
  return collect(self:_start(fn_source, inputs))
end

--- Starts `fn(input)` over `inputs` and returns at once (other tasks run
--- meanwhile): a handle whose `wait()` returns `results, failures` as `map`.
function Cluster:map_async(fn_source, inputs)
  local done, n = self:_start(fn_source, inputs)
  local results, failures
  return {
    n = n,
    wait = function()
      if not results then results, failures = collect(done, n) end
      return results, failures
    end,
  }
end

-- Splits a list into `parts` contiguous slices whose lengths differ by at most one.
local function slices(data, parts)
  local n, out, first = #data, {}, 1
  for p = 1, parts do
    local len = math.floor(n / parts) + (p <= n % parts and 1 or 0)
    local slice = {}
    for i = 1, len do slice[i] = data[first + i - 1] end
    out[p], first = slice, first + len
  end
  return out
end

-- Puts `slice` in worker `w`'s global `chunk`; false, failure result when the VM refuses.
local function give_slice(w, slice)
  if not w.can_take_slice then
    local r = w.vm:exec("function __bioxen_cluster_take(v) chunk = v end")
    if not r.ok then return false, r end
    w.can_take_slice = true
  end
  local ok, err = pcall(w.vm.call, w.vm, "__bioxen_cluster_take", slice)
  if ok then return true end
  return false, { ok = false, kind = type(err) ~= "string" and err.kind or "Crashed", error = tostring(err) }
end

--- MPI-style scatter: splits the list `data` into one contiguous slice per
--- worker and puts slice i in worker i's global `chunk`. The slices stay on
--- the host too, so a worker replaced later gets its slice back. Returns the
--- slice lengths by worker.
function Cluster:scatter(data)
  if self.closed then raise("Closed", "the cluster is closed", nil, 2) end
  if type(data) ~= "table" then
    raise("Argument", "scatter needs a list to split over the workers, got " .. type(data)
      .. " (to run a function over inputs without waiting, use map_async)", nil, 2)
  end
  if self._busy then raise("Busy", "the cluster is still working; wait for it first", nil, 2) end
  local parts = slices(data, self.size)
  local lengths = {}
  for slot = 1, self.size do
    local ok, r = give_slice(self.workers[slot], parts[slot])
    if not ok and WORKER_FAILURE[r.kind] then ok, r = give_slice(self:_replace(slot), parts[slot]) end
    if not ok then
      raise(r.kind or "Crashed", ("worker %d could not take its slice: %s"):format(slot, tostring(r.error)), nil, 2)
    end
    lengths[slot] = #parts[slot]
  end
  self._slices = parts
  return lengths
end

-- Runs the installed function on worker `slot`'s chunk; a worker that dies is
-- replaced, given its slice again, and retried up to `retries` times.
function Cluster:_gather_one(slot, chunk)
  local attempts = 0
  while true do
    attempts = attempts + 1
    local w = self.workers[slot]
    local ok, r = install(w, chunk)
    if ok then r = w.vm:exec_async(("return __bioxen_cluster_fn(chunk, %d)"):format(slot)):wait() end
    if r.ok then return true, r.values[1] end
    local retry = WORKER_FAILURE[r.kind] and attempts <= self.retries
    if WORKER_FAILURE[r.kind] then
      local replaced, err = pcall(function()
        local given, failure = give_slice(self:_replace(slot), self._slices[slot])
        if not given then error(failure.error, 0) end
      end)
      if not replaced then
        return false, { index = slot, kind = "Crashed", error = "no worker to run it: " .. tostring(err), attempts = attempts }
      end
    end
    if not retry then return false, { index = slot, kind = r.kind, error = r.error, attempts = attempts } end
    self.stats.retried = self.stats.retried + 1
  end
end

--- MPI-style gather after `scatter(data)`: runs `fn(chunk, slot)` in every
--- worker at once and returns `results, failures`, results by worker slot
--- (`results.n` = size). Without `fn`, returns each worker's `chunk` as it is.
function Cluster:gather(fn_source)
  if not self._slices then raise("Argument", "gather() needs a scatter(data) first", nil, 2) end
  if self.closed then raise("Closed", "the cluster is closed", nil, 2) end
  if self._busy then raise("Busy", "the cluster is still working; wait for it first", nil, 2) end
  local chunk = chunk_of(fn_source or "function(chunk) return chunk end")
  self._busy = true
  local results, failures, tasks = { n = self.size }, nil, {}
  for slot = 1, self.size do
    tasks[slot] = bioxen.task.spawn(function()
      local ok, ok_gathered, value = pcall(self._gather_one, self, slot, chunk)
      if ok and ok_gathered then
        results[slot] = value
      else
        failures = failures or {}
        failures[#failures + 1] = ok and value
          or { index = slot, kind = "Crashed", error = tostring(ok_gathered), attempts = 1 }
      end
    end)
  end
  for _, t in ipairs(tasks) do bioxen.task.wait(t) end
  self._busy = false
  if failures then table.sort(failures, function(a, b) return a.index < b.index end) end
  return results, failures
end

--- The worker VMs, by slot (for inspection: `c:workers()[1]:pid()`).
function Cluster:vms()
  local out = {}
  for slot, w in ipairs(self.workers) do out[slot] = w.vm end
  return out
end

function Cluster:close()
  if self.closed then return end
  self.closed = true
  for _, w in ipairs(self.workers) do pcall(w.vm.close, w.vm) end
end

function Cluster:__tostring()
  return ("cluster (%d %s workers, %d items, %d failed, %d retried)"):format(
    self.size, self.backend, self.stats.items, self.stats.failed, self.stats.retried)
end

return cluster
