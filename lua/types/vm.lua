---@meta
-- bioxen.vm: sandboxed child VMs (process and thread backends).

---@class bioxen.vm.Options
---@field id? string unique among live VMs (default "vmN")
---@field backend? "process"|"thread"|string default "process"
---@field sandbox? "strict"|"standard"|"trusted" default "strict"
---@field memory_limit? number bytes (default 64 MiB, 0 = none)
---@field timeout? number seconds per exec (default 10, 0 = none)
---@field output_limit? number bytes of stdout+stderr per exec (default 1 MiB)
---@field result_limit? number bytes of returned values per exec (default 16 MiB)
---@field globals? table copied into the VM's globals
---@field package_path? string[] standard sandbox: folders for pure-Lua require
---@field env? string standard sandbox: the package environment to require from (default: the active one)
---@field restart? boolean process backend: restart after a kill (default true)
---@field lua_executable? string process backend: external interpreter, e.g. "lua5.4"

---@class bioxen.vm.Result
---@field ok boolean
---@field values any[]
---@field n integer
---@field stdout string
---@field stderr string
---@field kind? "Syntax"|"Runtime"|"Timeout"|"MemoryLimit"|"Sandbox"|"Crashed"|"OutputLimit"|"Value"|"Cancelled"|"Dead"|"Closed"
---@field error? string
---@field duration number seconds
---@field truncated boolean

---@class bioxen.vm.Job
local Job = {}
---The result table; yields under bioxen.task. Raises kind "Timeout" after `timeout` seconds.
---@param timeout? number
---@return bioxen.vm.Result
function Job:wait(timeout) end
---@return boolean
function Job:done() end
---@return "running"|"done"|"failed"|"cancelled"
function Job:status() end
function Job:cancel() end

---@class bioxen.vm.VM
---@field id string
---@field backend string
---@field sandbox string
local VM = {}
---@param code string
---@return bioxen.vm.Result
function VM:exec(code) end
---@param code string
---@return bioxen.vm.Job
function VM:exec_async(code) end
---Calls a global function of the VM; returns its values or raises.
---@param name string
---@return any ...
function VM:call(name, ...) end
---Starts a call; the job's wait() gives the result table.
---@param name string
---@return bioxen.vm.Job
function VM:call_async(name, ...) end
---@return "idle"|"busy"|"dead"
function VM:status() end
---@return integer?
function VM:pid() end
function VM:close() end

---@class bioxen.vm
---@field backends table<string, {create: fun(opts: table): table}>
---@field default_backend string
bioxen.vm = {}

---@param opts? bioxen.vm.Options
---@return bioxen.vm.VM
function bioxen.vm.create(opts) end
---@param code string
---@param opts? bioxen.vm.Options
---@return bioxen.vm.Result
function bioxen.vm.run(code, opts) end
---@return {id: string, backend: string, sandbox: string, status: string, pid?: integer}[]
function bioxen.vm.list() end
---@param id string
---@return bioxen.vm.VM
function bioxen.vm.get(id) end
---@param n integer warm pool size of the process backend
function bioxen.vm.pool(n) end
---@return number monotonic seconds
function bioxen.vm.now() end
