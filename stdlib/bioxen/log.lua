-- bioxen.log: the Lua half. Levelled logging is native (src/std/log); this adds
-- reading the log file back (entries, components), timing operations, and the
-- log file's health for `bioxen doctor`.
local native = ...
local log = {}
for k, v in pairs(native) do log[k] = v end

local LEVELS = { TRACE = 1, DEBUG = 2, INFO = 3, WARN = 4, ERROR = 5 }
log.LEVELS = LEVELS

--- The log file's path: the configured one, else where it would be.
function log.path()
  local f = native.file()
  return f and f.path or (bioxen.env.dirs().data .. "/logs/bioxen.log")
end

--- The log files that exist, oldest first (bioxen.log.N ... bioxen.log.1, bioxen.log).
function log.files()
  local path = log.path()
  local dir, base = path:match("^(.*)/([^/]*)$")
  local numbered = {}
  local p = io.popen(("ls -1 %q 2>/dev/null"):format(dir))
  for name in p:lines() do
    local n = name:sub(1, #base + 1) == base .. "." and tonumber(name:sub(#base + 2))
    if n then numbered[#numbered + 1] = n end
  end
  p:close()
  table.sort(numbered, function(a, b) return a > b end)
  local files = {}
  for _, n in ipairs(numbered) do files[#files + 1] = path .. "." .. n end
  if io.open(path, "rb") then files[#files + 1] = path end
  return files
end

--- The component of an event: a Rust library's module path
--- (bioxen::library::NAME::...), another bioxen module (bioxen::NAME), or the
--- `component` field a Lua caller gave.
function log.component_of(target, message)
  local c = message and message:match('component="?([%w_%.%-]+)')
  if c then return c end
  if not target then return nil end
  return target:match("^bioxen::library::([%w_]+)") or target:match("^bioxen::([%w_]+)") or target
end

--- One line of the log file (text or JSON) as
--- { time, level, target, component, message, line }.
function log.parse(line)
  local e
  if line:sub(1, 1) == "{" then
    local ok, v = pcall(bioxen.json.decode, line)
    if ok and type(v) == "table" then
      local fields = v.fields or {}
      local message = tostring(fields.message or "")
      for k, val in pairs(fields) do
        if k ~= "message" then message = message .. (" %s=%s"):format(k, tostring(val)) end
      end
      e = { time = v.timestamp, level = v.level, target = v.target, message = message }
    end
  end
  if not e then
    local time, level, target, message = line:match("^(%S+)%s+(%u+)%s+([%w_:%.%-]+):%s?(.*)$")
    e = { time = time, level = level, target = target, message = message or line }
  end
  e.component = log.component_of(e.target, e.message)
  e.line = line
  return e
end

--- Whether an entry passes { component = NAME, level = "info" } (minimum level).
function log.matches(e, filter)
  if filter.level and (LEVELS[e.level or ""] or 0) < LEVELS[filter.level:upper()] then return false end
  if filter.component and e.component ~= filter.component then return false end
  return true
end

--- The entries of every log file, oldest first, filtered by
--- { component, level, last = N (only the last N) }.
function log.entries(filter)
  filter = filter or {}
  if filter.level and not LEVELS[filter.level:upper()] then
    error(bioxen.error("Argument", ("level must be trace, debug, info, warn or error, got %q"):format(filter.level)), 2)
  end
  local out = {}
  for _, path in ipairs(log.files()) do
    local h = io.open(path, "rb")
    if h then
      for line in h:lines() do
        if line ~= "" then
          local e = log.parse(line)
          if log.matches(e, filter) then
            out[#out + 1] = e
            if filter.last and #out > filter.last * 2 then
              out = { unpack(out, #out - filter.last + 1) }
            end
          end
        end
      end
      h:close()
    end
  end
  if filter.last and #out > filter.last then out = { unpack(out, #out - filter.last + 1) } end
  return out
end

--- Runs fn(...) and logs its duration at debug level as
--- "<operation> took N ms component=<component>"; returns fn's results and
--- re-raises its error (logged with ok=false).
function log.timed(component, operation, fn, ...)
  local t0 = native.clock()
  local results = { pcall(fn, ...) }
  local t1 = native.clock()
  if native.enabled("debug") then
    native.debug(("%s took %.3f ms"):format(operation, (t1 - t0) * 1000),
      { component = component, ok = results[1] })
  end
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

--- Wraps `module[name]` for each name so every call logs its duration at debug
--- level through `timed` (component, operation = name). Does nothing when debug
--- logging is off for this process (the level is fixed at start-up), so it costs
--- nothing in normal runs. Returns the module. Libraries call it on their public
--- functions: `return bioxen.log.instrument(vm, "vm", { "create", "run" })`.
function log.instrument(module, component, names)
  if not native.enabled("debug") then return module end
  for _, name in ipairs(names) do
    local f = module[name]
    if type(f) ~= "function" then
      error(bioxen.error("Argument", ("instrument: %s.%s is not a function"):format(component, tostring(name))), 2)
    end
    module[name] = function(...) return log.timed(component, name, f, ...) end
  end
  return module
end

--- Health checks (the checks() contract: docs/api/doctor.md): the log file, when configured.
function log.checks()
  local doctor = require("bioxen.doctor")
  local f = native.file()
  if not f then
    return { doctor.ok("log file", "off (turn on with BIOXEN_LOG_FILE=info or the log.file config key)") }
  end
  local checks = {}
  local dir = f.path:match("^(.*)/[^/]*$")
  doctor.make_dir(dir)
  local probe = io.open(f.path, "ab")
  if probe then
    probe:close()
    checks[1] = doctor.ok("log file", ("%s (%s, %s, rotated at %s, %d kept)"):format(
      f.path, f.filter, f.format, doctor.human_size(f.max_size), f.keep))
  else
    checks[1] = doctor.problem("log file", f.path .. " cannot be written",
      ("mkdir -p %q && chmod u+rwx %q, or turn file logging off (BIOXEN_LOG_FILE=off)"):format(dir, dir))
  end
  for _, why in ipairs(f.ignored) do
    checks[#checks + 1] = doctor.warning("log setting", "ignored " .. why,
      "fix the value (see docs/configuration.md, section Logging)")
  end
  return checks
end

return log
