---@meta
-- bioxen.log: levelled, structured logging to stderr (BIOXEN_LOG, --log, --debug)
-- and an optional rotated log file (BIOXEN_LOG_FILE, log.file), read back with
-- bioxen.log.entries or `bioxen logs`.

---@alias bioxen.log.Level "trace"|"debug"|"info"|"warn"|"error"

---@class bioxen.log.Entry
---@field time? string RFC 3339 timestamp
---@field level? string "TRACE".."ERROR"
---@field target? string tracing target (module path, or "lua")
---@field component? string library, or the component= field a Lua caller gave
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
bioxen.log = {}

---@param message string
---@param fields? table<string, any> rendered as key=value, sorted; `component` names the component
function bioxen.log.trace(message, fields) end
---@param message string
---@param fields? table<string, any>
function bioxen.log.debug(message, fields) end
---@param message string
---@param fields? table<string, any>
function bioxen.log.info(message, fields) end
---@param message string
---@param fields? table<string, any>
function bioxen.log.warn(message, fields) end
---@param message string
---@param fields? table<string, any>
function bioxen.log.error(message, fields) end

---Whether a level would be written (to skip building expensive messages).
---@param level bioxen.log.Level
---@return boolean
function bioxen.log.enabled(level) end

---The log file settings in force, or nil when file logging is off.
---@return bioxen.log.FileSettings?
function bioxen.log.file() end

---The log file's path (configured, or where it would be).
---@return string
function bioxen.log.path() end

---Existing log files, oldest first.
---@return string[]
function bioxen.log.files() end

---Entries of every log file, oldest first.
---@param filter? { component?: string, level?: bioxen.log.Level, last?: integer }
---@return bioxen.log.Entry[]
function bioxen.log.entries(filter) end

---@param line string
---@return bioxen.log.Entry
function bioxen.log.parse(line) end

---@param entry bioxen.log.Entry
---@param filter { component?: string, level?: bioxen.log.Level }
---@return boolean
function bioxen.log.matches(entry, filter) end

---@param target? string
---@param message? string
---@return string?
function bioxen.log.component_of(target, message) end

---Runs fn(...) and logs "<operation> took N ms" at debug level with the component;
---returns fn's results and re-raises its error.
---@param component string
---@param operation string
---@param fn function
---@return any ...
function bioxen.log.timed(component, operation, fn, ...) end

---Wraps module[name] for each name with timed (only when debug logging is on); returns the module.
---@generic T: table
---@param module T
---@param component string
---@param names string[]
---@return T
function bioxen.log.instrument(module, component, names) end

---Monotonic seconds, for timing.
---@return number
function bioxen.log.clock() end

---"device:inode" of a file, or nil.
---@param path string
---@return string?
function bioxen.log.file_id(path) end

---Health checks for bioxen doctor (the checks() contract).
---@return bioxen.doctor.Check[]
function bioxen.log.checks() end
