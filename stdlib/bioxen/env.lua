-- bioxen.env: system facts, bioxen's folders, other Lua interpreters and
-- luarocks on PATH, validation, and the persistent configuration file.
local native = ...
local json = require("bioxen.json")
local env = { dirs = native.dirs }

--- System facts: os, arch, cpus, memory, versions, whether the JIT is on.
function env.facts()
  local f = native.facts()
  f.luajit_version = jit.version
  f.jit = jit.status()
  return f
end

local INTERPRETERS = { "lua", "lua5.1", "lua5.2", "lua5.3", "lua5.4", "luajit", "luarocks" }

local function which(name)
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local path = dir .. "/" .. name
    local f = io.open(path, "rb")
    if f then f:close() return path end
  end
end

local function version_of(path)
  local flag = path:match("luarocks$") and "--version" or "-v"
  local p = io.popen(("%q %s 2>&1"):format(path, flag))
  if not p then return nil end
  local out = p:read("*a") or ""
  p:close()
  return out:match("%d+%.%d+[%.%d%-%w]*")
end

--- Other Lua interpreters and luarocks on PATH: name -> { path, version }.
function env.detect()
  local found = {}
  for _, name in ipairs(INTERPRETERS) do
    local path = which(name)
    if path then found[name] = { path = path, version = version_of(path) } end
  end
  return found
end

local function writable(dir)
  os.execute(("mkdir -p %q 2>/dev/null"):format(dir))
  local probe = dir .. "/.bioxen-write-test"
  local f = io.open(probe, "w")
  if not f then return false end
  f:close()
  os.remove(probe)
  return true
end

--- A report of problems, each { check, problem, fix }; empty when all is well.
function env.validate()
  local problems = {}
  for name, dir in pairs(native.dirs()) do
    if not writable(dir) then
      problems[#problems + 1] = {
        check = name .. " folder",
        problem = ("%s is not writable"):format(dir),
        fix = ("mkdir -p %q && chmod u+rwx %q, or set BIOXEN_HOME to a writable folder"):format(dir, dir),
      }
    end
  end
  if not jit.status() then
    problems[#problems + 1] = { check = "jit", problem = "the JIT compiler is off", fix = "remove -joff from the command line" }
  end
  local ok, err = pcall(env.config.load)
  if not ok then
    problems[#problems + 1] = { check = "config", problem = tostring(err), fix = "fix or remove " .. env.config.path() }
  end
  return problems
end

-- The configuration file: JSON in the config folder, written atomically.
local config = {}
env.config = config

function config.path()
  return native.dirs().config .. "/config.json"
end

--- The whole configuration as a table ({} when there is no file yet).
function config.load()
  local f = io.open(config.path(), "rb")
  if not f then return {} end
  local text = f:read("*a")
  f:close()
  local ok, value = pcall(json.decode, text)
  if not ok then
    error(bioxen.error("Config", ("%s is not valid JSON (%s)"):format(config.path(), value.message)), 2)
  end
  return value
end

--- Writes the whole configuration (temporary file, then rename).
function config.save(values)
  local path = config.path()
  os.execute(("mkdir -p %q"):format(native.dirs().config))
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(json.encode(values, { pretty = true }), "\n")
  f:close()
  assert(os.rename(tmp, path))
end

local function walk(t, key)
  for part in key:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

--- Reads a dotted key (`lrs.endpoint`), or `default` when unset.
function config.get(key, default)
  local v = walk(config.load(), key)
  if v == nil then return default end
  return v
end

--- Sets a dotted key and saves; `nil` removes it.
function config.set(key, value)
  local all = config.load()
  local t, last = all, nil
  local parts = {}
  for part in key:gmatch("[^%.]+") do parts[#parts + 1] = part end
  for i = 1, #parts - 1 do
    if type(t[parts[i]]) ~= "table" then t[parts[i]] = {} end
    t = t[parts[i]]
  end
  last = parts[#parts]
  t[last] = value
  config.save(all)
end

--- Health checks for `bioxen doctor` (the checks() contract: docs/api/doctor.md): versions,
--- the JIT, bioxen's folders, the configuration file, other Lua interpreters.
function env.checks()
  local doctor = require("bioxen.doctor")
  local f = env.facts()
  local checks = {
    doctor.ok("bioxen version", ("bioxen %s, %s, %s/%s"):format(f.bioxen_version, f.luajit_version, f.os, f.arch)),
  }
  if f.jit then
    checks[#checks + 1] = doctor.ok("JIT compiler", "on (" .. table.concat({ select(2, jit.status()) }, " ") .. ")")
  else
    checks[#checks + 1] = doctor.problem("JIT compiler", "off: Lua code runs interpreted, many times slower",
      "remove -joff from the command line (or call jit.on())")
  end
  local dirs = native.dirs()
  for _, label in ipairs({ "config", "data", "cache", "runtime" }) do
    for _, c in ipairs(doctor.folder_checks(label, dirs[label])) do checks[#checks + 1] = c end
  end
  local ok, err = pcall(config.load)
  if ok then
    local exists = doctor.path_kind(config.path()) ~= nil
    checks[#checks + 1] = doctor.ok("configuration file", config.path() .. (exists and "" or " (not written yet: bioxen init)"))
  else
    checks[#checks + 1] = doctor.problem("configuration file", tostring(err),
      ("fix the JSON in %s, or move it away and run bioxen init"):format(config.path()))
  end
  local found, names = env.detect(), {}
  for _, name in ipairs(INTERPRETERS) do
    local e = found[name]
    if e and name ~= "luarocks" then names[#names + 1] = ("%s %s (%s)"):format(name, e.version or "?", e.path) end
  end
  checks[#checks + 1] = doctor.ok("other Lua interpreters", #names > 0 and table.concat(names, ", ") or "none on PATH (not needed)")
  local rocks = found.luarocks
  checks[#checks + 1] = doctor.ok("luarocks", rocks
    and ("%s %s (not needed: bioxen pkg installs rocks itself)"):format(rocks.path, rocks.version or "?")
    or "not on PATH (not needed: bioxen pkg installs rocks itself)")
  return checks
end

return env
