-- bioxen.pkg.version: LuaRocks version numbers and constraints, with the same
-- semantics as LuaRocks (luarocks/core/vers.lua):
--   "1.2.3-1": numbers separated by . - _, an optional revision after the last "-";
--   words count as small values (alpha < beta < pre < rc < release) and
--   scm, cvs and dev sort above every numbered release;
--   constraints "==", "~=", "<", "<=", ">", ">=", "~>" ("~> 1.13" keeps every
--   component given: 1.13.x), a bare version means "==".
local M = {}

local DELTAS = {
  dev = 120000000, scm = 110000000, cvs = 100000000,
  rc = -1000, pre = -10000, beta = -100000, alpha = -1000000,
}

local mt = {}
mt.__index = mt

function mt.__eq(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i] ~= b[i] then return false end
  end
  if a.revision and b.revision then return a.revision == b.revision end
  return true
end

function mt.__lt(a, b)
  for i = 1, math.max(#a, #b) do
    local x, y = a[i] or 0, b[i] or 0
    if x ~= y then return x < y end
  end
  if not a.revision or not b.revision then return false end
  return a.revision < b.revision
end

function mt.__le(a, b) return not (b < a) end
function mt.__tostring(v) return v.string end

--- Parses "1.2.3-1" into a comparable version. As in LuaRocks, a tail it cannot
--- read (e.g. "+dfsg") counts as 0 and is kept in `v.unparsed`.
function M.parse(text)
  if type(text) ~= "string" then return nil, "a version must be a string" end
  local v = setmetatable({ string = text }, mt)
  local s = text:match("^%s*(.-)%s*$")
  local main, revision = s:match("(.*)%-(%d+)$")
  if revision then
    s = main
    v.revision = tonumber(revision)
  end
  local i = 1
  while #s > 0 do
    local token, rest = s:match("^(%d+)[%.%-%_]*(.*)")
    if token then
      local n = tonumber(token)
      v[i] = v[i] and v[i] + n / 100000 or n
      i = i + 1
    else
      token, rest = s:match("^(%a+)[%.%-%_]*(.*)")
      if not token then
        -- as LuaRocks: what cannot be read counts as 0 (and is reported)
        v[i] = 0
        v.unparsed = s
        break
      end
      v[i] = DELTAS[token] or (token:byte() / 1000)
    end
    s = rest
  end
  return v
end

local function must(text)
  local v, err = M.parse(text)
  if not v then error(bioxen.error("Version", err), 3) end
  return v
end

--- -1, 0 or 1 as LuaRocks orders the two version strings.
function M.compare(a, b)
  local x, y = must(a), must(b)
  if x == y then return 0 end
  return x < y and -1 or 1
end

--- Sorts version strings, newest first (as LuaRocks lists them).
function M.sort(list)
  local parsed = {}
  for _, s in ipairs(list) do parsed[s] = must(s) end
  table.sort(list, function(a, b) return parsed[b] < parsed[a] end)
  return list
end

local OPERATORS = {
  ["=="] = "==", ["~="] = "~=", [">"] = ">", ["<"] = "<", [">="] = ">=", ["<="] = "<=", ["~>"] = "~>",
  [""] = "==", ["="] = "==", ["!="] = "~=",
}

--- Parses "name >= 1.0, < 2" into { name = "name", constraints = {{op, version}...}, text }.
function M.parse_dependency(text)
  if type(text) ~= "string" then
    return nil, "a dependency must be a string like \"name >= 1.0\""
  end
  local name, rest = text:match("^%s*([%w%.%-%_]*)%s*(.*)")
  if not name or name == "" then
    return nil, ("dependency %q has no package name"):format(text)
  end
  local dep = { name = name:lower(), constraints = {}, text = text }
  while rest and #rest > 0 do
    local pin, op, ver, more = rest:match("^(@?)([<>=~!]*)%s*([%w%.%_%-]+)[%s,]*(.*)")
    if not op then
      return nil, ("dependency %q: cannot read the constraint %q"):format(text, rest)
    end
    local norm = OPERATORS[op]
    if not norm then
      return nil, ("dependency %q: unknown operator %q (use ==, ~=, <, <=, >, >= or ~>)"):format(text, op)
    end
    local v, err = M.parse(ver)
    if not v then return nil, ("dependency %q: %s"):format(text, err) end
    dep.constraints[#dep.constraints + 1] = { op = norm, version = v, text = norm .. " " .. ver, pin = pin == "@" or nil }
    rest = more
  end
  return dep
end

local function partial(v, wanted)
  for i, w in ipairs(wanted) do
    if w ~= (v[i] or 0) then return false end
  end
  if wanted.revision then return wanted.revision == v.revision end
  return true
end

--- Whether a version satisfies one constraint.
function M.satisfies(v, c)
  if type(v) == "string" then v = must(v) end
  local w, op = c.version, c.op
  if op == "==" then return v == w
  elseif op == "~=" then return not (v == w)
  elseif op == ">" then return w < v
  elseif op == "<" then return v < w
  elseif op == ">=" then return w <= v
  elseif op == "<=" then return v <= w
  elseif op == "~>" then return partial(v, w)
  end
  return false
end

--- Whether a version satisfies every constraint of a dependency; the first
--- constraint it fails as a second result.
function M.matches(v, dep)
  if type(v) == "string" then v = must(v) end
  for _, c in ipairs(dep.constraints) do
    if not M.satisfies(v, c) then return false, c end
  end
  return true
end

return M
