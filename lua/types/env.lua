---@meta
-- bioxen.env: system facts, bioxen's folders, interpreters, configuration.

---@class bioxen.env.Facts
---@field os string
---@field arch string
---@field cpus integer
---@field memory integer bytes
---@field bioxen_version string
---@field luajit_version string
---@field jit boolean
---@field pid integer
---@field executable string

---@class bioxen.env.Dirs
---@field config string
---@field data string
---@field cache string
---@field runtime string

---@class bioxen.env.Problem
---@field check string
---@field problem string
---@field fix string

---@class bioxen.env
bioxen.env = {}

---@return bioxen.env.Facts
function bioxen.env.facts() end

---bioxen's folders (all under $BIOXEN_HOME when it is set).
---@return bioxen.env.Dirs
function bioxen.env.dirs() end

---Lua interpreters and luarocks on PATH.
---@return table<string, {path: string, version: string?}>
function bioxen.env.detect() end

---Problems with this installation, each with what to do; empty when all is well.
---@return bioxen.env.Problem[]
function bioxen.env.validate() end

---@class bioxen.env.config
bioxen.env.config = {}
---@return string
function bioxen.env.config.path() end
---@return table
function bioxen.env.config.load() end
---@param values table
function bioxen.env.config.save(values) end
---Reads a dotted key such as "lrs.endpoint".
---@param key string
---@param default? any
---@return any
function bioxen.env.config.get(key, default) end
---Sets a dotted key and saves; nil removes it.
---@param key string
---@param value any
function bioxen.env.config.set(key, value) end
