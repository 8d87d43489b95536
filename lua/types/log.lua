---@meta bioxen.log
-- Type definitions for lua-language-server: bioxen.log.

---@alias bioxen.log.Level "trace"|"debug"|"info"|"warn"|"error"

---@class bioxen.log.Entry
---@field time? string RFC 3339 timestamp
---@field level? string "TRACE".."ERROR"
---@field target? string tracing target (module path, or "lua")
---@field component? string library or component= field
---@field message string
---@field line string the raw line

---@class bioxen.log.FileSettings
---@field path string
---@field filter string level or target=level list
---@field format "text"|"json"
---@field max_size integer bytes before rotation
---@field keep integer rotated files kept
---@field ignored string[] settings that were ignored, with why

---@class bioxen.log
---@field LEVELS table<string, integer>
local log = {}

---Logs at a level; fields are appended as key=value (a `component` field names the component).
---@param message string
---@param fields? table
function log.trace(message, fields) end
---@param message string
---@param fields? table
function log.debug(message, fields) end
---@param message string
---@param fields? table
function log.info(message, fields) end
---@param message string
---@param fields? table
function log.warn(message, fields) end
---@param message string
---@param fields? table
function log.error(message, fields) end

---Whether a level would be logged anywhere.
---@param level bioxen.log.Level
---@return boolean
function log.enabled(level) end

---The log file settings in force, or nil when file logging is off.
---@return bioxen.log.FileSettings?
function log.file() end

---The log file's path (configured, or where it would be).
---@return string
function log.path() end

---Existing log files, oldest first.
---@return string[]
function log.files() end

---Entries of every log file, oldest first.
---@param filter? { component?: string, level?: bioxen.log.Level, last?: integer }
---@return bioxen.log.Entry[]
function log.entries(filter) end

---@param line string
---@return bioxen.log.Entry
function log.parse(line) end

---@param entry bioxen.log.Entry
---@param filter { component?: string, level?: bioxen.log.Level }
---@return boolean
function log.matches(entry, filter) end

---@param target? string
---@param message? string
---@return string?
function log.component_of(target, message) end

---Runs fn(...) and logs "<operation> took N ms" at debug level with the component.
---@generic R
---@param component string
---@param operation string
---@param fn fun(...): R
---@return R
function log.timed(component, operation, fn, ...) end

---Monotonic seconds, for timing.
---@return number
function log.clock() end

---"device:inode" of a file, or nil.
---@param path string
---@return string?
function log.file_id(path) end

---Health checks for bioxen doctor (the checks() contract).
---@return bioxen.doctor.Check[]
function log.checks() end

return log
