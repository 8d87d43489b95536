---@meta
-- bioxen.json: JSON encode and decode.

---@class bioxen.json
---@field null lightuserdata Stands for JSON null in both directions.
bioxen.json = {}

---@class bioxen.json.EncodeOptions
---@field pretty? boolean Indent with two spaces (keys are always sorted).

---Encodes a value. A table with keys exactly 1..n (n >= 1) is an array; any other
---table is an object with every key (numbers written as strings); an empty table is
---`{}` unless marked with `json.array`. Raises kind "Json" for functions, cycles,
---userdata, NaN and infinities, and boolean or table keys.
---@param value any
---@param opts? bioxen.json.EncodeOptions
---@return string
function bioxen.json.encode(value, opts) end

---Decodes JSON. Raises kind "Json" with `line` and `column` of bad input.
---Decoded arrays carry the array marker, so `[]` round-trips.
---@param text string
---@return any
function bioxen.json.decode(text) end

---Marks a table (or a new empty one) as a JSON array.
---@param t? table
---@return table
function bioxen.json.array(t) end
