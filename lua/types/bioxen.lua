---@meta bioxen
-- Type definitions for lua-language-server: the global `bioxen` table. Each
-- library's file adds its field with `---@class bioxen` / `---@field NAME ...`.

---An error value raised by bioxen: test `e.kind`, read `e.message`.
---@class bioxen.Error
---@field kind string
---@field message string

---@class bioxen
---@field doctor bioxen.doctor
---@field log bioxen.log
bioxen = {}

---Builds an error value to raise: error(bioxen.error("Kind", "message", { field = ... }), 2).
---@param kind string
---@param message string
---@param fields? table
---@return bioxen.Error
function bioxen.error(kind, message, fields) end
