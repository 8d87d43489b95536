---@meta bioxen

-- Root fields of the global `bioxen` table added by the hot reload issue.
-- (Libraries themselves are typed in lua/types/NAME.lua.)

---@class bioxen
---@field pretty bioxen.pretty
---@field hotreload bioxen.hotreload
---@field repl bioxen.repl
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
