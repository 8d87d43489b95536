---@meta bioxen.pretty

---@class bioxen.pretty.Options
---@field depth? integer levels shown before `{...}` (4)
---@field items? integer entries shown per table before `... (N more)` (40)
---@field width? integer one-line limit (80)
---@field indent? string indentation unit ("  ")
---@field color? boolean ANSI colours (false)

---@class bioxen.pretty
local pretty = {}

--- Readable text of a value: tables nested, keys sorted, cycles marked, strings quoted.
---@param value any
---@param opts? bioxen.pretty.Options
---@return string
function pretty.format(value, opts) end

--- Every argument formatted, separated by tabs (nils included).
---@param opts bioxen.pretty.Options|nil
---@param ... any
---@return string
function pretty.values(opts, ...) end

--- Prints every argument formatted.
---@param ... any
function pretty.print(...) end

return pretty
