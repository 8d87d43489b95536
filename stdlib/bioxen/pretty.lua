-- bioxen.pretty: readable text for any Lua value. The REPL prints results with
-- it; scripts can use it for debugging output. Tables are nested and indented
-- (on one line when short), keys sorted, cycles marked, depth and length
-- limited with a marker, strings quoted; ANSI colours only when asked.
local pretty = {}

local DEFAULTS = { depth = 4, items = 40, width = 80, indent = "  ", color = false }

local COLORS = {
  string = "\27[32m",
  number = "\27[36m",
  boolean = "\27[33m",
  ["nil"] = "\27[90m",
  other = "\27[35m",
  marker = "\27[90m",
}
local RESET = "\27[0m"

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not KEYWORDS[s]
end

local function quote(s)
  return (("%q"):format(s):gsub("\\\n", "\\n"):gsub("\r", "\\r"):gsub("%z", "\\0"))
end

-- Order: numbers ascending, then strings, then everything else by type and text.
local TYPE_RANK = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then
    return (TYPE_RANK[ta] or 9) < (TYPE_RANK[tb] or 9) or
      ((TYPE_RANK[ta] or 9) == (TYPE_RANK[tb] or 9) and ta < tb)
  end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function paint(opts, kind, text)
  if not opts.color then return text end
  return (COLORS[kind] or COLORS.other) .. text .. RESET
end

local function scalar(v, opts)
  local t = type(v)
  if t == "string" then return paint(opts, "string", quote(v)) end
  if t == "number" or t == "boolean" or t == "nil" then return paint(opts, t, tostring(v)) end
  local mt = getmetatable(v)
  if t == "userdata" or t == "cdata" or (type(mt) == "table" and rawget(mt, "__tostring")) then
    local ok, s = pcall(tostring, v)
    if ok and type(s) == "string" then return paint(opts, "other", s) end
  end
  return paint(opts, "other", tostring(v))
end

-- Renders v; `visiting` holds the tables on the current path (cycle detection).
local function render(v, opts, level, visiting)
  if type(v) ~= "table" then return scalar(v, opts) end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then return scalar(v, opts) end
  if visiting[v] then return paint(opts, "marker", "<cycle " .. tostring(v) .. ">") end
  if level >= opts.depth then
    return next(v) == nil and "{}" or paint(opts, "marker", "{...}")
  end
  local n = #v
  local keys = {}
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  table.sort(keys, key_less)
  visiting[v] = true
  local parts, total, shown = {}, n + #keys, 0
  for i = 1, n do
    if shown >= opts.items then break end
    parts[#parts + 1] = render(v[i], opts, level + 1, visiting)
    shown = shown + 1
  end
  for _, k in ipairs(keys) do
    if shown >= opts.items then break end
    local key = is_identifier(k) and k or "[" .. render(k, opts, opts.depth, visiting) .. "]"
    parts[#parts + 1] = key .. " = " .. render(v[k], opts, level + 1, visiting)
    shown = shown + 1
  end
  visiting[v] = nil
  if total > shown then
    parts[#parts + 1] = paint(opts, "marker", ("... (%d more)"):format(total - shown))
  end
  if #parts == 0 then return "{}" end
  local flat = "{ " .. table.concat(parts, ", ") .. " }"
  local visible = flat:gsub("\27%[[%d;]*m", "")
  if #visible + #opts.indent * level <= opts.width and not visible:find("\n") then return flat end
  local pad = opts.indent:rep(level + 1)
  return "{\n" .. pad .. table.concat(parts, ",\n" .. pad) .. "\n" .. opts.indent:rep(level) .. "}"
end

local function options(opts)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  if opts ~= nil then
    if type(opts) ~= "table" then
      error(bioxen.error("Argument", "pretty options must be a table, got " .. type(opts)), 3)
    end
    for k, v in pairs(opts) do
      if DEFAULTS[k] == nil then
        error(bioxen.error("Argument", "unknown pretty option '" .. tostring(k) ..
          "' (known: depth, items, width, indent, color)"), 3)
      end
      o[k] = v
    end
  end
  return o
end

--- The readable text of `v`.
function pretty.format(v, opts)
  return render(v, options(opts), 0, {})
end

--- Formats every value of a call's results, separated by tabs, counting nils.
function pretty.values(opts, ...)
  local o = options(opts)
  local out = {}
  for i = 1, select("#", ...) do
    out[i] = render((select(i, ...)), o, 0, {})
  end
  return table.concat(out, "\t")
end

--- Prints each argument formatted (like print, but readable).
function pretty.print(...)
  io.stdout:write(pretty.values(nil, ...), "\n")
end

return pretty
