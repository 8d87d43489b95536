---@meta bioxen.hotreload

---@class bioxen.hotreload
local hotreload = {}

--- Reloads a required module from its file and patches its table in place.
--- A new version may define `__reload(old_state)` to carry state over.
---@param name string
---@return boolean ok
---@return any? err error of kind "Reload" (fields module, file, line) when the new version failed
function hotreload.reload(name) end

--- Requires the module if needed and reloads it whenever its file changes.
---@param name string
---@return any module
function hotreload.watch(name) end

---@param name string
function hotreload.unwatch(name) end

--- Applies pending reloads of watched modules now; returns how many were reloaded.
---@return integer
function hotreload.poll() end

---@return string[]
function hotreload.watched() end

-- Shortcuts on the global `bioxen` table.
---@class bioxen
---@field hotreload bioxen.hotreload
bioxen = bioxen or {}

--- Shortcut to bioxen.hotreload.reload.
---@param name string
---@return boolean ok
---@return any? err
function bioxen.reload(name) end

--- Shortcut to bioxen.hotreload.watch.
---@param name string
---@return any module
function bioxen.watch(name) end

return hotreload
