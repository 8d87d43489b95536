---@meta
-- Type definitions for bioxen.vm.manager() and bioxen.session (docs/api/session.md).

---@class bioxen.SessionOptions
---@field backend? "thread"|"process" default "thread"
---@field sandbox? "strict"|"standard"|"trusted"
---@field memory_limit? number bytes
---@field timeout? number seconds per chunk (default: none)
---@field output_limit? number bytes per input
---@field result_limit? number bytes returned by exec
---@field globals? table
---@field package_path? string[]
---@field env? string package environment to require from
---@field persistent? boolean live in the session host
---@field force? boolean take over an attached persistent session
---@field channels? table<string, bioxen.Channel> channels its code sees as `channels.NAME` (not persistent)
---@field networked? boolean networking as for VMs, with grants (not persistent)
---@field grants? {net: string[]}

---@class bioxen.Session
---@field id string
---@field backend string
---@field sandbox string
---@field env? string
---@field persistent boolean
---@field attached boolean
---@field created number
---@field last_used number
local Session = {}

--- Feeds input like a REPL.
---@param text string
function Session:send(text) end

--- Output since the last read, once the input sent so far was evaluated.
---@param opts? {timeout?: number}|number
---@return string text
---@return boolean busy evaluation still in progress
---@return boolean incomplete an unfinished chunk waits for more lines
function Session:read(opts) end

---@param code string
---@return bioxen.vm.Result
function Session:exec(code) end

---@param code string
---@return bioxen.vm.Job
function Session:exec_async(code) end

--- Forgets an unfinished chunk.
function Session:reset() end

function Session:interrupt() end

---@param name string
function Session:set_env(name) end

---@return "idle"|"busy"|"dead"
function Session:status() end

---@return integer?
function Session:pid() end

function Session:detach() end

---@param force? boolean
---@return bioxen.Session
function Session:attach(force) end

function Session:close() end

---@class bioxen.ManagerEntry
---@field backend string
---@field status string
---@field created number
---@field last_used number
---@field attached boolean
---@field pid? integer
---@field interactive boolean
---@field persistent boolean
---@field env? string

---@class bioxen.Manager
local Manager = {}

---@param id string
---@param opts? bioxen.vm.Options
---@return bioxen.vm.VM
function Manager:create(id, opts) end

---@param id string
---@param opts? bioxen.SessionOptions
---@return bioxen.Session
function Manager:session(id, opts) end

---@param id string
---@return bioxen.vm.VM|bioxen.Session
function Manager:get(id) end

---@param id string
---@param code string
---@return bioxen.vm.Result
function Manager:exec(id, code) end

---@param id string
---@param code string
---@return bioxen.vm.Job
function Manager:exec_async(id, code) end

---@param id string
function Manager:terminate(id) end

---@param id string
---@param text string
function Manager:send(id, text) end

---@param id string
---@param opts? {timeout?: number}|number
---@return string text
---@return boolean busy
---@return boolean incomplete
function Manager:read(id, opts) end

---@param id string
function Manager:detach(id) end

---@param id string
---@param opts? {force?: boolean}
---@return bioxen.Session
function Manager:attach(id, opts) end

---@return table<string, bioxen.ManagerEntry>
function Manager:list() end

function Manager:close() end

---@class bioxen.session
---@field lost? {pid: integer, sessions: string[]}
local session = {}

---@param id string
---@param opts? bioxen.SessionOptions
---@return bioxen.Session
function session.open(id, opts) end

---@param id string
---@param force? boolean
---@return bioxen.Session
function session.attach_persistent(id, force) end

---@param start? boolean
---@return userdata conn
---@return {pid: integer, sessions: string[]}? lost
function session.host_connect(start) end

---@param req table
---@return table reply
function session.host_request(req) end

---@param name string
---@return string folder
function session.env_path(name) end

---@return bioxen.Manager
function bioxen.vm.manager() end

return session
