---@meta
-- bioxen.log: levelled, structured logging to stderr (BIOXEN_LOG, --log, --debug).

---@class bioxen.log
bioxen.log = {}

---@param message string
---@param fields? table<string, any> rendered as key=value, sorted
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
---@param level "trace"|"debug"|"info"|"warn"|"error"
---@return boolean
function bioxen.log.enabled(level) end
