---@meta
-- bioxen.cluster: a pool of child VMs (docs/api/cluster.md).

---@class bioxen.cluster.Failure
---@field index integer
---@field kind string
---@field error string
---@field attempts integer

---@class bioxen.Cluster
---@field size integer
---@field backend string
---@field stats {items: integer, failed: integer, retried: integer, replaced: integer}
local Cluster = {}

---`fn(input)` for every input; results in input order (`results.n`), failures or nil.
---@param fn string Lua source: "function(x) ... end" or a chunk returning a function
---@param inputs any[]
---@return table results
---@return bioxen.cluster.Failure[]|nil failures
function Cluster:map(fn, inputs) end

---@param fn string
---@param inputs any[]
---@param callback fun(index: integer, value: any, failure: bioxen.cluster.Failure|nil)
---@return integer count
function Cluster:each(fn, inputs, callback) end

---@class bioxen.cluster.Job
---@field n integer the number of inputs
---@field wait fun(): table, bioxen.cluster.Failure[]|nil results in input order, failures

--- Starts `fn(input)` over `inputs` and returns at once.
---@param fn string
---@param inputs any[]
---@return bioxen.cluster.Job
function Cluster:map_async(fn, inputs) end

--- Splits the list into one contiguous slice per worker, stored as the worker's global `chunk`.
---@param data any[]
---@return integer[] lengths slice lengths by worker
function Cluster:scatter(data) end

--- Runs `fn(chunk, slot)` on every worker at once (without `fn`: returns the chunks).
---@param fn? string
---@return table results by worker slot (`results.n` = size)
---@return bioxen.cluster.Failure[]|nil failures
function Cluster:gather(fn) end

---@return table[] vms
function Cluster:vms() end

function Cluster:close() end

---@class bioxen.cluster
local cluster = {}

---Options: the cluster's own, plus the chosen backend's (xcpng: pool, template, memory, vcpus, ssh, ...), passed to vm.create.
---@param opts? {size?: integer, backend?: string, sandbox?: string, env?: table|string, timeout?: number, memory_limit?: integer, package_path?: string[], retries?: integer, pool?: table, template?: string, memory?: string|integer, vcpus?: integer, ssh?: table, [string]: any}
---@return bioxen.Cluster
function cluster.new(opts) end

bioxen.cluster = cluster
return cluster
