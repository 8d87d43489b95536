-- bioxen init: first-run set-up (default package profile and environment, an
-- optional LRS and XCP-ng pool, each tested before it is saved, the log file),
-- or `bioxen init --project DIR`: a project skeleton. Plain prompts on a
-- terminal; every answer also has a flag, so it runs without one.
local doctor = require("bioxen.doctor")
local config = bioxen.env.config

local USAGE = [[
usage: bioxen init [options]              set up bioxen for this user
       bioxen init --project DIR [--force] create a project skeleton in DIR
       bioxen init --types                 (re)write the type definitions only

On a terminal, init asks about everything not given as a flag. Without one
(or with --yes) unanswered questions take their defaults.
  --profile NAME        default package profile (default: standard)
  --env NAME            environment to create with that profile (default: default)
  --no-env              do not create an environment
  --lrs URL             Learning Record Store endpoint, e.g. http://127.0.0.1:8100/xAPI
  --lrs-user USER       its basic-auth user        --lrs-password PASSWORD
  --no-lrs              no LRS (the default without a terminal)
  --pool NAME           XCP-ng pool to save under NAME
  --pool-url URL        its XAPI address, e.g. https://10.0.0.2
  --pool-user USER      --pool-password PASSWORD   --pool-fingerprint SHA256
  --no-pool             no pool (the default without a terminal)
  --log-file LEVEL      write a log file at LEVEL (info, debug...) or off (default)
  -y, --yes             never prompt: defaults for everything not given]]

-- Arguments ------------------------------------------------------------------

local opts = {}
local VALUED = {
  ["--profile"] = "profile", ["--env"] = "env", ["--lrs"] = "lrs", ["--lrs-user"] = "lrs_user",
  ["--lrs-password"] = "lrs_password", ["--pool"] = "pool", ["--pool-url"] = "pool_url",
  ["--pool-user"] = "pool_user", ["--pool-password"] = "pool_password",
  ["--pool-fingerprint"] = "pool_fingerprint", ["--log-file"] = "log_file", ["--project"] = "project",
}
local FLAGS = {
  ["--no-env"] = "no_env", ["--no-lrs"] = "no_lrs", ["--no-pool"] = "no_pool", ["-y"] = "yes",
  ["--yes"] = "yes", ["--force"] = "force", ["--types"] = "types_only",
}
do
  local args, i = { ... }, 1
  while i <= #args do
    local a = args[i]
    local key, inline = a:match("^(%-%-[%w%-]+)=(.*)$")
    key = key or a
    if a == "-h" or a == "--help" then
      print(USAGE)
      os.exit(0)
    elseif VALUED[key] then
      local v = inline
      if v == nil then
        i = i + 1
        v = args[i]
      end
      if v == nil then
        io.stderr:write("bioxen init: ", key, " needs a value (see bioxen init --help)\n")
        os.exit(2)
      end
      opts[VALUED[key]] = v
    elseif FLAGS[a] then
      opts[FLAGS[a]] = true
    else
      io.stderr:write("bioxen init: unknown argument ", a, " (see bioxen init --help)\n")
      os.exit(2)
    end
    i = i + 1
  end
end

local done, skipped, failed = {}, {}, {}
local function did(fmt, ...) done[#done + 1] = fmt:format(...) end
local function skip(fmt, ...) skipped[#skipped + 1] = fmt:format(...) end
local function fail(fmt, ...) failed[#failed + 1] = fmt:format(...) end

local function finish()
  print()
  print("bioxen init: what was done")
  for _, line in ipairs(done) do print("  - " .. line) end
  if #skipped > 0 then
    print("skipped (not in this build):")
    for _, line in ipairs(skipped) do print("  - " .. line) end
  end
  if #failed > 0 then
    print("not done:")
    for _, line in ipairs(failed) do print("  ! " .. line) end
  end
  if #failed > 0 then os.exit(1) end
end

-- Type definitions and project skeleton ---------------------------------------

local function write_types()
  local dir = doctor.write_types()
  did("wrote the type definitions for lua-language-server to %s", dir)
  return dir
end

if opts.types_only then
  write_types()
  finish()
  return
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then
    error(bioxen.error("Io", ("cannot write %s: %s"):format(path, tostring(err)), { path = path }), 0)
  end
  f:write(text)
  f:close()
  did("wrote %s", path)
end

if opts.project then
  local dir = opts.project:gsub("/+$", "")
  if dir == "" then dir = "/" end
  local name = dir:match("([^/]+)$") or "project"
  local files = { "main.lua", "bioxen.lock", ".luarc.json", "spec/main_spec.lua" }
  if not opts.force then
    for _, rel in ipairs(files) do
      if doctor.path_kind(dir .. "/" .. rel) then
        io.stderr:write(("bioxen init: %s/%s already exists; use --force to overwrite the skeleton files\n"):format(dir, rel))
        os.exit(1)
      end
    end
  end
  for _, sub in ipairs({ dir, dir .. "/spec" }) do
    local why = doctor.make_dir(sub)
    if why then
      io.stderr:write(("bioxen init: cannot create %s: %s\n"):format(sub, why))
      os.exit(1)
    end
  end
  local types = write_types()
  write_file(dir .. "/main.lua", ([[
-- %s: a bioxen project. Run it with `bioxen main.lua [NAME]`,
-- test it with `bioxen test spec`.
local project = {}

--- A greeting for `who`.
function project.greet(who)
  return ("Hello, %%s!"):format(who or "world")
end

-- require("main") (as the specs do) gets the functions; running it prints.
if ... == "main" then return project end

print(project.greet(arg and arg[1]))
local facts = bioxen.env.facts()
print(("bioxen %%s, %%s, on %%s/%%s"):format(facts.bioxen_version, facts.luajit_version, facts.os, facts.arch))
]]):format(name))
  write_file(dir .. "/spec/main_spec.lua", [[
-- Specs for main.lua: run from the project folder with `bioxen test spec`.
local spec = ...
local describe, it, eq = spec.describe, spec.it, spec.eq
local project = require("main")

describe("main", function()
  it("greets by name", function()
    eq(project.greet("Ada"), "Hello, Ada!")
  end)
  it("greets the world by default", function()
    eq(project.greet(), "Hello, world!")
  end)
end)
]])
  -- The lockfile: the curator's own empty lock when it offers one.
  local lock
  local pkg = bioxen.pkg
  if pkg and type(pkg.lock) == "table" and type(pkg.lock.empty) == "function" then
    lock = pkg.lock.empty()
  end
  if type(lock) ~= "string" then
    lock = bioxen.json.encode({ lockfile = 1, packages = {} }, { pretty = true }) .. "\n"
  end
  write_file(dir .. "/bioxen.lock", lock)
  write_file(dir .. "/.luarc.json", bioxen.json.encode({
    ["$schema"] = "https://raw.githubusercontent.com/LuaLS/vscode-lua/master/setting/schema.json",
    ["runtime.version"] = "LuaJIT",
    ["workspace.library"] = { types },
    ["workspace.checkThirdParty"] = false,
    ["diagnostics.globals"] = { "bioxen" },
  }, { pretty = true }) .. "\n")
  did("project %s is ready: cd %s && bioxen main.lua && bioxen test spec", name, dir)
  finish()
  return
end

-- Questions ------------------------------------------------------------------

local interactive = not opts.yes and doctor.isatty(0)

local function ask(question, default, secret)
  if not interactive then return default end
  -- Echo goes off before the prompt shows, so nothing typed after it is echoed.
  if secret then os.execute("stty -echo 2>/dev/null") end
  io.write(question, default and default ~= "" and (" [" .. default .. "]") or "", ": ")
  io.flush()
  local line = io.read("*l")
  if secret then
    os.execute("stty echo 2>/dev/null")
    io.write("\n")
  end
  if line == nil then return default end
  line = line:match("^%s*(.-)%s*$")
  if line == "" then return default end
  return line
end

local function yes_no(question, default)
  if not interactive then return default end
  while true do
    local a = ask(question .. (default and " (Y/n)" or " (y/N)"), nil)
    if a == nil then return default end
    a = a:lower()
    if a == "y" or a == "yes" then return true end
    if a == "n" or a == "no" then return false end
    io.write("please answer y or n\n")
  end
end

if interactive then
  print("bioxen init: set-up for " .. (os.getenv("USER") or "this user") .. " (Enter takes the [default])")
  print("configuration file: " .. config.path())
end

local settings = {}

-- Default package profile and environment.
local profile_names = "minimal, standard, full, development, production, networking"
if bioxen.pkg and bioxen.pkg.profile and interactive then
  local ok, list = pcall(bioxen.pkg.profile.list)
  if ok then
    local names = {}
    for _, p in ipairs(list) do names[#names + 1] = p.name end
    profile_names = table.concat(names, ", ")
  end
end
local profile = opts.profile or ask(("Default package profile (%s)"):format(profile_names), "standard")
settings["pkg.profile"] = profile
local make_env = not opts.no_env
if make_env and not opts.env and interactive then
  make_env = yes_no(("Create a package environment with the %s profile now?"):format(profile), true)
end
if make_env then
  local env_name = opts.env or ask("Environment name", "default")
  local pkg = bioxen.pkg
  local envs = pkg and type(pkg.envs) == "table" and pkg.envs
  local create = envs and envs.create
  if not pkg then
    skip("environment %s not created: the package curator (bioxen.pkg) is not in this build; "
      .. "build bioxen from a tree that includes it, then run bioxen init again", env_name)
  elseif type(create) ~= "function" then
    fail("environment %s not created: this build's bioxen.pkg has no envs.create()", env_name)
  else
    local ok, err = pcall(create, env_name, { profile = profile })
    if ok then
      did("created package environment %s with the %s profile", env_name, profile)
      if type(envs.use) == "function" and pcall(envs.use, env_name) then
        did("made %s the active environment", env_name)
      end
    else
      fail("environment %s not created: %s (fix it, then: bioxen env create %s --profile %s)",
        env_name, tostring(err), env_name, profile)
    end
  end
end

-- Learning Record Store: tested (reachable, credentials accepted) before saving.
local lrs_url = opts.lrs
if not lrs_url and not opts.no_lrs and interactive and yes_no("Configure a Learning Record Store (xAPI)?", false) then
  lrs_url = ask("LRS endpoint (e.g. http://127.0.0.1:8100/xAPI)", nil)
end
if lrs_url then
  local user = opts.lrs_user or ask("LRS user", nil)
  local password = opts.lrs_password or (user and ask("LRS password", nil, true))
  local base = lrs_url:gsub("/+$", "")
  local ok, about = pcall(doctor.http_get, base .. "/about", { timeout = 5 })
  if not ok then
    fail("LRS %s not saved: it is not reachable (%s); start it or correct the URL, then run bioxen init --lrs URL again",
      lrs_url, doctor.message(about))
  else
    local ok2, r = pcall(doctor.http_get, base .. "/statements?limit=1", {
      user = user, password = password, timeout = 5,
      headers = { ["X-Experience-API-Version"] = "1.0.3" },
    })
    if not ok2 then
      fail("LRS %s not saved: %s", lrs_url, doctor.message(r))
    elseif r.status == 401 or r.status == 403 then
      fail("LRS %s not saved: it refused the credentials (HTTP %d); check --lrs-user and --lrs-password", lrs_url, r.status)
    elseif r.status ~= 200 then
      fail("LRS %s not saved: GET /statements answered HTTP %d, not 200; is this an xAPI endpoint?", lrs_url, r.status)
    else
      settings["lrs.endpoint"] = base
      if user then
        settings["lrs.auth.user"] = user
        settings["lrs.auth.password"] = password
      end
      did("LRS %s answered and accepted the credentials: saved as lrs.endpoint", base)
    end
  end
end

-- XCP-ng pool: tested through bioxen.xapi before saving.
local pool = opts.pool
if not pool and not opts.no_pool and interactive and yes_no("Configure an XCP-ng pool?", false) then
  pool = ask("Pool name", "default")
end
if pool then
  local p = {
    url = opts.pool_url or ask("Pool address (https://HOST)", nil),
    user = opts.pool_user or ask("Pool user", "root"),
  }
  p.password = opts.pool_password or ask("Pool password", nil, true)
  p.fingerprint = opts.pool_fingerprint or ask("TLS certificate SHA-256 fingerprint (empty: ask the pool)", nil)
  local xapi = bioxen.xapi
  local test = xapi and xapi.connect
  if not p.url then
    fail("pool %s not saved: no address given (--pool-url https://HOST)", pool)
  elseif not xapi then
    skip("pool %s not saved: XCP-ng support (bioxen.xapi) is not in this build, so it cannot be tested", pool)
  elseif type(test) ~= "function" then
    fail("pool %s not saved: this build's bioxen.xapi cannot test a connection", pool)
  else
    local ok, conn = pcall(test, { url = p.url, user = p.user, password = p.password, fingerprint = p.fingerprint, timeout = 10 })
    if ok then
      pcall(function() conn:close() end)
      settings["xapi.pools." .. pool] = p
      did("pool %s at %s answered and accepted the credentials: saved as xapi.pools.%s", pool, p.url, pool)
    else
      fail("pool %s not saved: %s", pool, doctor.message(conn))
    end
  end
end

-- Log file.
local log_file = opts.log_file or (interactive and ask("Write a log file? (off, info, debug)", "off")) or nil
if log_file == nil then
  -- Not asked and not given: leave the setting as it is.
elseif log_file ~= "off" and not log_file:match("^[%w_:=,]+$") then
  fail("log file setting %q ignored: give a level like info or debug, or off", log_file)
else
  settings["log.file"] = log_file
end

-- Write the configuration, keys in a stable order.
local keys = {}
for k in pairs(settings) do keys[#keys + 1] = k end
table.sort(keys)
local ok, err = pcall(function()
  for _, k in ipairs(keys) do config.set(k, settings[k]) end
end)
if not ok then
  fail("configuration not written to %s: %s", config.path(), tostring(err))
else
  if settings["lrs.auth.password"] or settings["xapi.pools." .. tostring(pool)] then
    os.execute(("chmod 600 %q"):format(config.path()))
  end
  for _, k in ipairs(keys) do
    local v = settings[k]
    local shown = type(v) == "table" and "{...}" or tostring(v)
    if k:match("password") then shown = "(hidden)" end
    did("set %s = %s", k, shown)
  end
  did("wrote %s", config.path())
end
write_types()
did("check everything with: bioxen doctor")
finish()
