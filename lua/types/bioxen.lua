---@meta
-- The root of the bioxen standard library. Libraries load on first use:
-- `bioxen.json` and `require("bioxen.json")` are the same table.

---An error value raised by bioxen: test `e.kind`, read `e.message`; library
---errors may carry more fields (e.g. `code`, `params`, `line`).
---@class bioxen.Error
---@field kind string
---@field message string
---@field traceback? string

---@class bioxen
bioxen = {}

---Builds an error value for `error(...)`; kinds survive re-raising through bioxen.
---@param kind string
---@param message string
---@param details? table<string, any>
---@return bioxen.Error
function bioxen.error(kind, message, details) end

return bioxen
