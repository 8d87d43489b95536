---@meta

---@class bioxen.xapi
local xapi = {}

---@class XapiConnectOptions
---@field url string https://pool-master/ (http:// for the simulator)
---@field user string
---@field password string
---@field verify_tls? boolean default true; false is logged loudly
---@field fingerprint? string SHA-256 of the server certificate (pinning)
---@field timeout? number seconds per request (default 60)
---@field originator? string

---@class XapiTask
---@field ref string
local XapiTask = {}
---@param timeout? number
---@return string|nil result
function XapiTask:wait(timeout) end
---@return string status
function XapiTask:status() end
function XapiTask:cancel() end

---@class XapiEvent
---@field id string
---@field class string
---@field operation "add"|"mod"|"del"
---@field ref string
---@field snapshot table|nil

---@class XapiSession
---@field url string
---@field event_token string|nil
---@field [string] table sugar: x.VM.get_record(ref)
local XapiSession = {}
---@param method string
---@return any
function XapiSession:call(method, ...) end
---@param opts? {classes?: string[], timeout?: number, token?: string, max_polls?: integer}
---@return fun(): XapiEvent|nil
function XapiSession:events(opts) end
---@return string|nil
function XapiSession:ref() end
function XapiSession:close() end

---@param opts XapiConnectOptions
---@return XapiSession
function xapi.connect(opts) end

---@param n number
---@return table marker sent as an XML-RPC double
function xapi.double(n) end

---@param t? table
---@return table marker sent as an array
function xapi.array(t) end

---@type string
xapi.NULL = "OpaqueRef:NULL"

---@class XapiSimulator
---@field url string
---@field ssh_key string|nil
local XapiSimulator = {}
function XapiSimulator:stop() end
function XapiSimulator:wait() end

---@param opts {listen?: string, user: string, password: string, pool?: table}
---@return XapiSimulator
function xapi.simulator(opts) end

return xapi
