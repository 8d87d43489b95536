-- bioxen.pkg.profiles: the catalog (shipped collections and profiles merged with
-- the user's JSON files) and profile list/show/create.
local U = require("bioxen.pkg.util")
local native = U.native()
local json = require("bioxen.json")
local V = require("bioxen.pkg.version")
local envlib = require("bioxen.env")
local fail = U.fail
local read_file = U.read_file
local write_file = U.write_file
local sorted_keys = U.sorted_keys
local encode = U.encode

local M = {}

-- ---------------------------------------------------------------------------
-- catalogs: shipped data merged with the user's JSON files

local function user_files(kind)
  local dir = envlib.dirs().config .. "/pkg/" .. kind
  local out = {}
  for _, name in ipairs(native.list(dir)) do
    local key = name:match("^(.+)%.json$")
    if key then
      local text = read_file(dir .. "/" .. name)
      local ok, value = pcall(json.decode, text or "")
      if not ok or type(value) ~= "table" then
        fail("Catalog", ("%s/%s is not a valid JSON %s file"):format(dir, name, kind), { file = dir .. "/" .. name })
      end
      out[key] = value
    end
  end
  return out
end

--- The catalog: { collections, profiles, recommendations }, user files overriding shipped ones.
function M.catalog()
  local shipped = require("bioxen.pkg.catalog")
  local c = { collections = {}, profiles = {}, recommendations = shipped.recommendations }
  for k, v in pairs(shipped.collections) do c.collections[k] = v end
  for k, v in pairs(shipped.profiles) do c.profiles[k] = v end
  for k, v in pairs(user_files("collections")) do c.collections[k] = v end
  for k, v in pairs(user_files("profiles")) do v.user = true c.profiles[k] = v end
  return c
end


function M.list()
  local c, out = M.catalog(), {}
  for _, name in ipairs(sorted_keys(c.profiles)) do
    local p = c.profiles[name]
    out[#out + 1] = { name = name, summary = p.summary, packages = p.packages, user = p.user }
  end
  return out
end

function M.show(name)
  local p = M.catalog().profiles[name]
  if not p then
    local names = {}
    for _, q in ipairs(M.list()) do names[#names + 1] = q.name end
    fail("NotFound", ("no profile %q (profiles: %s)"):format(tostring(name), table.concat(names, ", ")))
  end
  return { name = name, summary = p.summary, packages = p.packages, user = p.user }
end

--- Saves a user profile (config/pkg/profiles/NAME.json).
function M.create(name, packages, summary)
  if type(name) ~= "string" or not name:match("^[%w][%w%-%_]*$") then
    fail("Argument", "a profile name is letters, digits, - and _ (e.g. lab-2024)")
  end
  for _, p in ipairs(packages or {}) do
    local ok, err = V.parse_dependency(p)
    if not ok then fail("Argument", err) end
  end
  local dir = envlib.dirs().config .. "/pkg/profiles"
  native.mkdirs(dir)
  write_file(dir .. "/" .. name .. ".json", encode({ summary = summary or "user profile", packages = packages or {} }))
  return dir .. "/" .. name .. ".json"
end

return M
