-- Checks for bioxen.pkg (a doctor plug-in: see docs/api/doctor.md): the active
-- package environment and its health, and the package servers it installs from.
local doctor = require("bioxen.doctor")

local function environment_checks(pkg)
  local name = pkg.envs.active()
  if not pkg.envs.exists(name) then
    return { doctor.warning("package environment", ("the active environment %q does not exist yet"):format(name),
      ("bioxen env create %s --profile standard (or bioxen init)"):format(name)) }
  end
  local summary
  for _, e in ipairs(pkg.envs.list()) do
    if e.name == name then
      summary = ("%s (generation %d, %d package%s)"):format(name, e.generation, e.packages, e.packages == 1 and "" or "s")
    end
  end
  local checks = { doctor.ok("package environment", summary or name) }
  local ok, health = pcall(pkg.health, { env = name })
  if not ok then
    checks[#checks + 1] = doctor.problem("package health", ("the health check of %s failed: %s"):format(name, tostring(health)),
      ("bioxen pkg health --env %s shows the details"):format(name))
  elseif health.ok or #(health.problems or {}) == 0 then
    checks[#checks + 1] = doctor.ok("package health", "every file matches its recorded hash and every module loads")
  else
    for _, p in ipairs(health.problems) do
      checks[#checks + 1] = doctor.problem("package health", ("%s: %s"):format(tostring(p.package), tostring(p.problem)),
        p.fix or ("bioxen pkg health --env %s"):format(name))
    end
  end
  return checks
end

--- Package servers (pkg.servers in the configuration, else luarocks.org): any
--- HTTP answer means reachable; a local folder must hold a manifest. A configured
--- server out of reach is a problem; the default one only a warning.
local function server_checks()
  local configured = bioxen.env.config.get("pkg.servers")
  local servers = type(configured) == "table" and #configured > 0 and configured or nil
  local list = servers or { "https://luarocks.org" }
  local checks = {}
  local results = {}
  local handles = {}
  for i, server in ipairs(list) do
    handles[i] = bioxen.task.spawn(function()
      if not server:match("^%a[%w+.-]*://") or server:match("^file://") then
        local dir = server:gsub("^file://", "")
        if doctor.path_kind(dir .. "/manifest") == "file" or doctor.path_kind(dir .. "/manifest-5.1") == "file" then
          return doctor.ok("package server", dir .. " (local folder with a manifest)")
        end
        return doctor.problem("package server", dir .. " has no manifest file",
          ("luarocks-admin make-manifest %s, or remove it from pkg.servers"):format(dir))
      end
      local ok, r = pcall(doctor.http_get, server:gsub("/+$", "") .. "/", { timeout = 5 })
      if ok then return doctor.ok("package server", ("%s (HTTP %d)"):format(server, r.status)) end
      local why = doctor.message(r)
      if servers then
        return doctor.problem("package server", ("%s is not reachable: %s"):format(server, why),
          "check the network or the address, or remove it: bioxen.env.config.set(\"pkg.servers\", {...})")
      end
      return doctor.warning("package server", ("%s (the default) is not reachable: %s"):format(server, why),
        "check the network, or set a reachable mirror: bioxen.env.config.set(\"pkg.servers\", { \"https://MIRROR\" })")
    end)
  end
  for i, h in ipairs(handles) do
    local ok, c = pcall(bioxen.task.wait, h)
    results[i] = ok and c or doctor.problem("package server", list[i] .. ": " .. tostring(c), "report this as a bug in bioxen")
  end
  for _, c in ipairs(results) do checks[#checks + 1] = c end
  return checks
end

return function(pkg)
  local checks = environment_checks(pkg)
  for _, c in ipairs(server_checks()) do checks[#checks + 1] = c end
  return checks
end
