-- bioxen.log: the Lua half. Levelled logging is native (src/std/log); this adds
-- the log file's health for `bioxen doctor`.
local native = ...
local log = {}
for k, v in pairs(native) do log[k] = v end

--- Health checks (contract: docs/api/doctor.md): the log file, when configured.
function log.status()
  local doctor = require("bioxen.doctor")
  local f = native.file()
  if not f then
    return { doctor.ok("log file", "off (turn on with BIOXEN_LOG_FILE=info or the log.file config key)") }
  end
  local checks = {}
  local dir = f.path:match("^(.*)/[^/]*$")
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
