-- Checks for bioxen.lrs (a doctor plug-in: see docs/api/doctor.md): the LRS is
-- configured, reachable and accepts the credentials; the spool is draining.
local doctor = require("bioxen.doctor")

local FIX_AUTH = "set the right credentials: bioxen init --lrs URL --lrs-user USER --lrs-password PASSWORD "
  .. "(or the lrs.auth config keys, or BIOXEN_LRS_USER / BIOXEN_LRS_PASSWORD)"

return function(lrs)
  local st = lrs.status()
  if not st.endpoint then
    local checks = { doctor.ok("LRS", "not configured (optional: bioxen init --lrs URL)") }
    if (st.pending or 0) > 0 then
      checks[#checks + 1] = doctor.warning("LRS spool", ("%d statement(s) wait in %s but no LRS is configured"):format(st.pending, st.spool),
        "configure the LRS (bioxen init --lrs URL), then bioxen lrs flush")
    end
    return checks
  end
  local checks = {}
  local ok, err = pcall(lrs.query, { limit = 1 })
  if ok then
    checks[#checks + 1] = doctor.ok("LRS", st.endpoint .. " (reachable, credentials accepted)")
  elseif doctor.kind(err) == "LrsAuth" then
    checks[#checks + 1] = doctor.problem("LRS", ("%s refused the credentials (HTTP %s)"):format(st.endpoint, tostring(select(2, pcall(function() return err.status end)))), FIX_AUTH)
  elseif doctor.kind(err) == "LrsUnreachable" then
    checks[#checks + 1] = doctor.problem("LRS", ("%s is not reachable: %s"):format(st.endpoint, doctor.message(err)),
      "start the LRS, or correct the address: bioxen init --lrs URL (or BIOXEN_LRS_ENDPOINT)")
  else
    checks[#checks + 1] = doctor.problem("LRS", ("%s does not answer a query: %s"):format(st.endpoint, tostring(err)),
      "check that the endpoint is the xAPI root (it ends in /xAPI for Ralph): bioxen init --lrs URL")
  end
  local pending = st.pending or 0
  if pending == 0 then
    checks[#checks + 1] = doctor.ok("LRS spool", "empty (" .. st.spool .. ")")
  else
    local last = st.last_error and (" last error: " .. doctor.message(st.last_error)) or ""
    local status = ok and "warning" or "problem"
    checks[#checks + 1] = doctor.check("LRS spool", status,
      ("%d statement(s) waiting since %s.%s"):format(pending, tostring(st.oldest or "?"), last),
      "bioxen lrs flush (after fixing the LRS check above)")
  end
  if (st.rejected or 0) > 0 then
    checks[#checks + 1] = doctor.warning("LRS rejected", ("%d statement(s) were refused by the LRS"):format(st.rejected),
      "bioxen lrs tail --rejected shows them and why")
  end
  return checks
end
