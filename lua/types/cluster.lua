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

---@param fn string
---@param inputs any[]
---@return integer count
function Cluster:scatter(fn, inputs) end

---@return table results
---@return bioxen.cluster.Failure[]|nil failures
function Cluster:gather() end

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
