-- Checks for bioxen.xapi (a doctor plug-in: see docs/api/doctor.md): every pool
-- in the configuration (xapi.pools.NAME = { url, user, password, fingerprint,
-- verify_tls }) is reachable, accepts its credentials, and shows the pinned
-- TLS certificate.
local doctor = require("bioxen.doctor")

local function check_pool(xapi, name, p)
  local label = "pool " .. name
  if type(p) ~= "table" or type(p.url) ~= "string" or type(p.user) ~= "string" or type(p.password) ~= "string" then
    return doctor.problem(label, "xapi.pools." .. name .. " needs url, user and password",
      ("bioxen init --pool %s --pool-url https://HOST --pool-user root --pool-password PASSWORD"):format(name))
  end
  local ok, s = pcall(xapi.connect, { url = p.url, user = p.user, password = p.password,
    fingerprint = p.fingerprint, verify_tls = p.verify_tls, timeout = 10 })
  if ok then
    if type(s) == "table" and s.close then pcall(s.close, s) end
    return doctor.ok(label, p.url .. (p.fingerprint and " (certificate matches the pinned fingerprint)" or ""))
  end
  local msg = doctor.message(s)
  if msg:match("does not match the pinned") then
    return doctor.problem(label, ("%s: TLS certificate fingerprint mismatch (%s)"):format(p.url, msg),
      ("if the pool's certificate was renewed, read the new one: openssl s_client -connect HOST:443 </dev/null | "
        .. "openssl x509 -noout -fingerprint -sha256, and set xapi.pools.%s.fingerprint to it; otherwise do not connect"):format(name))
  elseif msg:match("SESSION_AUTHENTICATION_FAILED") or msg:match("authentication") then
    return doctor.problem(label, ("%s refused the credentials of %s"):format(p.url, p.user),
      ("set the right password: bioxen init --pool %s --pool-url %s --pool-user %s --pool-password PASSWORD"):format(name, p.url, p.user))
  end
  return doctor.problem(label, ("%s cannot be reached: %s"):format(p.url, msg),
    ("check that the pool master is up and the address is right (xapi.pools.%s.url)"):format(name))
end

return function(xapi)
  local pools = bioxen.env.config.get("xapi.pools")
  if type(pools) ~= "table" or next(pools) == nil then
    return { doctor.ok("XCP-ng pools", "none configured (optional: bioxen init --pool NAME --pool-url URL ...)") }
  end
  local names = {}
  for name in pairs(pools) do names[#names + 1] = name end
  table.sort(names)
  local handles = {}
  for i, name in ipairs(names) do
    handles[i] = bioxen.task.spawn(check_pool, xapi, name, pools[name])
  end
  local checks = {}
  for i, h in ipairs(handles) do
    local ok, c = pcall(bioxen.task.wait, h)
    checks[i] = ok and c or doctor.problem("pool " .. names[i], tostring(c), "report this as a bug in bioxen")
  end
  return checks
end
