-- Checks for bioxen.session (a doctor plug-in: see docs/api/doctor.md): the
-- session host that keeps persistent sessions: running, not running, or gone
-- and leaving a stale socket or lost sessions behind.
local doctor = require("bioxen.doctor")

return function()
  local native = doctor.native("session")
  local s = native.host_status()
  local sessions = type(s.sessions) == "table" and s.sessions or {}
  local pid = type(s.pid) == "number" and s.pid or nil -- JSON null arrives as bioxen.json.null
  if s.running then
    return { doctor.ok("session host", ("running (pid %s) on %s, %d persistent session(s)"):format(
      tostring(pid or "?"), s.socket, #sessions)) }
  end
  local checks = {}
  if doctor.path_kind(s.socket) then
    checks[#checks + 1] = doctor.problem("session host",
      ("%s is a stale socket: no session host answers on it%s"):format(s.socket,
        pid and (" (its host, pid %s, is gone)"):format(tostring(pid)) or ""),
      ("rm %q (the next bioxen session command starts a new host)"):format(s.socket))
  end
  if pid then
    checks[#checks + 1] = doctor.warning("session host",
      ("the session host (pid %s) died; sessions lost: %s"):format(tostring(pid),
        #sessions > 0 and table.concat(sessions, ", ") or "none"),
      "bioxen session status (records what was lost and cleans up), then recreate them with bioxen session new NAME")
  end
  if #checks == 0 then
    checks[1] = doctor.ok("session host", "not running (started on demand by bioxen session)")
  end
  return checks
end
