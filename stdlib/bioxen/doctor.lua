-- bioxen.doctor: health checks composed from every library's own `checks()`.
--
-- The contract (docs/api/doctor.md): a library's public module may export
-- `checks()` returning a list of checks
--   { name = "...", status = "ok" | "warning" | "problem", detail = "...", fix = "..." }
-- where `fix` (required unless ok) is the exact command or setting that fixes it.
-- `doctor.run()` walks the registry of libraries (crate::library::LIBRARIES), calls
-- each checks() it finds (concurrently, as bioxen.task tasks) or, for a library
-- without one, the plug-in stdlib/bioxen/doctor/NAME.lua (a function of the
-- library's module returning checks), and returns a report
-- that `bioxen doctor`, `bioxen doctor --json`, the REPL and tests all share.
local native = ...
local doctor = {
  libraries = native.libraries,
  make_dir = native.make_dir,
  http_get = native.http_get,
  native = native.native,
  free_space = native.free_space,
  isatty = native.isatty,
  type_definitions = native.type_definitions,
}

local STATUSES = { ok = true, warning = true, problem = true }

--- A check record. `fix` is required for anything not ok.
function doctor.check(name, status, detail, fix)
  if not STATUSES[status] then
    error(bioxen.error("Argument", ("check %q: status must be ok, warning or problem, got %s"):format(
      tostring(name), tostring(status))), 2)
  end
  if status ~= "ok" and (type(fix) ~= "string" or fix == "") then
    error(bioxen.error("Argument", ("check %q is %s but names no fix: say which command or setting fixes it"):format(
      tostring(name), status)), 2)
  end
  return { name = name, status = status, detail = detail, fix = fix }
end

function doctor.ok(name, detail) return doctor.check(name, "ok", detail) end
function doctor.warning(name, detail, fix) return doctor.check(name, "warning", detail, fix) end
function doctor.problem(name, detail, fix) return doctor.check(name, "problem", detail, fix) end

-- Helpers that checks functions share ------------------------------------

--- The first executable named `name` on PATH, or nil.
function doctor.which(name)
  if name:find("/") then
    local f = io.open(name, "rb")
    if f then f:close() return name end
    return nil
  end
  for dir in (os.getenv("PATH") or ""):gmatch("[^:]+") do
    local path = dir .. "/" .. name
    if native.path_kind(path) == "file" then return path end
  end
end

--- Runs a shell command; returns its output and whether it exited 0.
function doctor.capture(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"::$?\"")
  local out = p:read("*a")
  p:close()
  local body, code = out:match("^(.-)::(%d+)%s*$")
  return body or out, tonumber(code) == 0
end

--- The message of an error value (bioxen errors are userdata or tables).
function doctor.message(e)
  local ok, m = pcall(function() return e.message end)
  if ok and m ~= nil then return tostring(m) end
  return tostring(e)
end

--- The kind of an error value, or nil.
function doctor.kind(e)
  local ok, k = pcall(function() return e.kind end)
  return ok and k or nil
end

--- `1048576`, `512K`, `10M`, `1G` -> bytes (numbers pass through).
function doctor.parse_size(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local n, unit = v:match("^%s*(%d+)%s*(%a*)%s*$")
  if not n then return nil end
  local mult = ({ [""] = 1, B = 1, K = 1024, KB = 1024, KIB = 1024, M = 2 ^ 20, MB = 2 ^ 20, MIB = 2 ^ 20,
    G = 2 ^ 30, GB = 2 ^ 30, GIB = 2 ^ 30 })[unit:upper()]
  return mult and tonumber(n) * mult
end

function doctor.human_size(n)
  local units = { "B", "KiB", "MiB", "GiB", "TiB" }
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(n) or ("%.1f %s"):format(n, units[i])
end

doctor.path_kind = native.path_kind

local function is_dir(path) return native.path_kind(path) == "directory" end
local function exists(path) return native.path_kind(path) ~= nil end

--- Checks one of bioxen's folders: it exists (or can be made), is a folder,
--- is writable, and has free space. Thresholds: config keys
--- doctor.free_space_warning (default 1G) and doctor.free_space_problem (100M).
function doctor.folder_checks(label, dir)
  local name = label .. " folder"
  if exists(dir) and not is_dir(dir) then
    return { doctor.problem(name, dir .. " exists but is not a folder",
      ("mv %q %q.bak (bioxen needs a folder there), or set BIOXEN_HOME to another place"):format(dir, dir)) }
  end
  local why = native.make_dir(dir)
  if not is_dir(dir) then
    return { doctor.problem(name, ("%s does not exist and cannot be created (%s)"):format(dir, tostring(why)),
      ("mkdir -p %q (check the permissions of its parent), or set BIOXEN_HOME to a writable folder"):format(dir)) }
  end
  local probe = dir .. "/.bioxen-doctor-probe"
  local f = io.open(probe, "w")
  if not f then
    return { doctor.problem(name, dir .. " is not writable",
      ("chmod u+rwx %q (or chown $USER %q), or set BIOXEN_HOME to a writable folder"):format(dir, dir)) }
  end
  f:close()
  os.remove(probe)
  local config = bioxen.env.config
  local ok, warn_at = pcall(config.get, "doctor.free_space_warning", "1G")
  warn_at = ok and doctor.parse_size(warn_at) or 2 ^ 30
  local ok2, problem_at = pcall(config.get, "doctor.free_space_problem", "100M")
  problem_at = ok2 and doctor.parse_size(problem_at) or 100 * 2 ^ 20
  local free = native.free_space(dir)
  local detail = ("%s (%s free)"):format(dir, doctor.human_size(free))
  if free < problem_at then
    return { doctor.problem(name, detail .. ": almost no space left",
      ("free space on the file system of %q (du -sh %q/* shows what bioxen keeps there)"):format(dir, dir)) }
  elseif free < warn_at then
    return { doctor.warning(name, detail .. ": little space left",
      ("free space on the file system of %q, or lower doctor.free_space_warning"):format(dir)) }
  end
  return { doctor.ok(name, detail) }
end

-- doctor's own checks: host tools no other library owns yet ----------------

local HEADERS = { "lua.h", "luaconf.h", "lualib.h", "lauxlib.h", "luajit.h" }

--- The C compiler for C rocks ($CC, else cc, gcc or clang on PATH).
function doctor.compiler_check()
  local cc = os.getenv("CC")
  local candidates = cc and cc ~= "" and { cc:match("^%S+") } or { "cc", "gcc", "clang" }
  for _, name in ipairs(candidates) do
    local path = doctor.which(name)
    if path then
      local out, ok = doctor.capture(("%q --version"):format(path))
      if ok then
        return doctor.ok("C compiler", ("%s (%s)"):format(path, out:match("[^\n]*")))
      end
      return doctor.problem("C compiler", ("%s does not run: %s"):format(path, out:match("[^\n]*")),
        "reinstall it: sudo apt-get install --reinstall gcc (Debian/Ubuntu), or set CC to a working compiler")
    end
  end
  if cc and cc ~= "" then
    return doctor.problem("C compiler", ("CC=%s is not on PATH"):format(cc),
      "set CC to an installed compiler (e.g. export CC=gcc), or unset CC")
  end
  return doctor.problem("C compiler", "no cc, gcc or clang on PATH: packages with C code cannot be built",
    "sudo apt-get install gcc (Debian/Ubuntu), sudo dnf install gcc (Fedora), xcode-select --install (macOS), or set CC")
end

--- The LuaJIT headers bioxen carries for building C rocks. Contract: the library
--- that carries them exports `luajit_headers()` (in its Lua half) or `headers()`
--- (in its native half), returning the folder that holds lua.h, luaconf.h,
--- lualib.h, lauxlib.h and luajit.h.
function doctor.headers_check(libs)
  for _, lib in ipairs(libs) do
    local find
    local ok, mod = pcall(require, "bioxen." .. lib.name)
    if ok and type(mod) == "table" and type(mod.luajit_headers) == "function" then
      find = mod.luajit_headers
    elseif lib.native then
      local okn, n = pcall(native.native, lib.name)
      if okn and n and type(n.headers) == "function" then find = n.headers end
    end
    if find then
      local ok2, dir = pcall(find)
      if not ok2 or type(dir) ~= "string" then
        return doctor.problem("LuaJIT headers", ("bioxen.%s cannot write out its headers: %s"):format(lib.name, tostring(dir)),
          "check that the data folder is writable (see the env checks), then run bioxen doctor again")
      end
      local missing = {}
      for _, h in ipairs(HEADERS) do
        if not exists(dir .. "/" .. h) then missing[#missing + 1] = h end
      end
      if #missing > 0 then
        return doctor.problem("LuaJIT headers", ("%s lacks %s"):format(dir, table.concat(missing, ", ")),
          "reinstall bioxen (cargo install --path .) so the headers it carries are written out again")
      end
      return doctor.ok("LuaJIT headers", dir .. " (carried by bioxen." .. lib.name .. ")")
    end
  end
  return doctor.warning("LuaJIT headers",
    "this build carries no LuaJIT headers (no library exports luajit_headers(): the package curator, bioxen.pkg, is not built in), so C rocks cannot be built",
    "build bioxen from a source tree that includes the curator (bioxen.pkg), or install libluajit-5.1-dev for other tools")
end

--- doctor's own checks: the build tools for C rocks (compiler, headers) and the
--- type definitions `bioxen init` wrote.
function doctor.checks()
  local checks = {
    doctor.compiler_check(),
    doctor.headers_check(native.libraries()),
  }
  -- lua-language-server definitions written by `bioxen init`, if any.
  local types_dir = doctor.types_dir()
  if exists(types_dir) then
    local stale = {}
    for rel, text in pairs(native.type_definitions()) do
      local f = io.open(types_dir .. "/" .. rel, "rb")
      local current = f and f:read("*a")
      if f then f:close() end
      if current ~= text then stale[#stale + 1] = rel end
    end
    if #stale > 0 then
      table.sort(stale)
      checks[#checks + 1] = doctor.warning("type definitions",
        ("%s is out of date (%s)"):format(types_dir, table.concat(stale, ", ")), "bioxen init --types")
    else
      checks[#checks + 1] = doctor.ok("type definitions", types_dir)
    end
  end
  return checks
end

--- Where `bioxen init` writes the type definitions for lua-language-server.
function doctor.types_dir()
  return bioxen.env.dirs().data .. "/types/" .. bioxen.env.facts().bioxen_version
end

--- Writes the embedded type definitions to types_dir(); returns the folder.
function doctor.write_types()
  local dir = doctor.types_dir()
  for rel, text in pairs(native.type_definitions()) do
    local sub = (dir .. "/" .. rel):match("^(.*)/[^/]*$")
    local why = native.make_dir(sub)
    if why then error(bioxen.error("Io", ("cannot create %s: %s"):format(sub, why), { path = sub }), 2) end
    local f = io.open(dir .. "/" .. rel, "wb")
    if not f then
      error(bioxen.error("Io", ("cannot write %s/%s"):format(dir, rel), { path = dir }), 2)
    end
    f:write(text)
    f:close()
  end
  return dir
end

-- Running every check -----------------------------------------------------

--- The checks function for a library: its own checks(), else its plug-in.
function doctor.checks_of(name)
  local ok, mod = pcall(require, "bioxen." .. name)
  if not ok then
    return function()
      return { doctor.problem("library loads", ("bioxen.%s fails to load: %s"):format(name, tostring(mod)),
        "report this as a bug in bioxen (bioxen doctor --json shows the details)") }
    end
  end
  if type(mod) == "table" and type(mod.checks) == "function" then return mod.checks, name .. ".checks()" end
  if native.has_plugin(name) then
    local plugin = require("bioxen.doctor." .. name)
    return function() return plugin(mod) end, "stdlib/bioxen/doctor/" .. name .. ".lua"
  end
end

local function run_one(lib)
  local fn, where = doctor.checks_of(lib.name)
  if not fn then return nil end
  local ok, checks = pcall(fn)
  if not ok then
    return { doctor.problem("checks", ("%s raised: %s"):format(where, tostring(checks)),
      "report this as a bug in bioxen (bioxen doctor --json shows the details)") }
  end
  if type(checks) ~= "table" then
    return { doctor.problem("checks", ("%s returned %s, not a list of checks"):format(where, type(checks)),
      "report this as a bug in bioxen") }
  end
  for i, c in ipairs(checks) do
    if type(c) ~= "table" or type(c.name) ~= "string" then
      return { doctor.problem("checks", ("%s: check %d is not a { name, status, detail, fix } table"):format(where, i),
        "report this as a bug in bioxen") }
    end
  end
  return checks
end

--- Runs every library's checks (or only those named in opts.only) and returns
--- { checks = { {library, name, status, detail, fix}... }, problems, warnings, ok }.
function doctor.run(opts)
  opts = opts or {}
  local only
  if opts.only then
    only = {}
    for _, n in ipairs(opts.only) do only[n] = true end
  end
  local libs = {}
  for _, lib in ipairs(native.libraries()) do
    if not only or only[lib.name] then libs[#libs + 1] = lib end
  end
  local task = bioxen.task
  local handles = {}
  for i, lib in ipairs(libs) do
    handles[i] = task.spawn(run_one, lib)
  end
  local report = { checks = {}, problems = 0, warnings = 0 }
  for i, lib in ipairs(libs) do
    local ok, checks = pcall(task.wait, handles[i])
    if not ok then checks = { doctor.problem("checks", tostring(checks), "report this as a bug in bioxen") } end
    for _, c in ipairs(checks or {}) do
      local status = STATUSES[c.status] and c.status or "problem"
      report.checks[#report.checks + 1] = {
        library = lib.name, name = tostring(c.name), status = status,
        detail = c.detail ~= nil and tostring(c.detail) or nil,
        fix = c.fix ~= nil and tostring(c.fix) or nil,
      }
      if status == "problem" then report.problems = report.problems + 1 end
      if status == "warning" then report.warnings = report.warnings + 1 end
    end
  end
  report.ok = report.problems == 0
  return report
end

--- What library bioxen.NAME is and its checks, as text (the REPL's `.help NAME`).
function doctor.help(name)
  for _, lib in ipairs(native.libraries()) do
    if lib.name == name then
      local out = { ("bioxen.%s: %s (docs/api/%s.md)"):format(lib.name, lib.summary, lib.name) }
      local report = doctor.run({ only = { name } })
      if #report.checks > 0 then out[#out + 1] = doctor.format(report) end
      return table.concat(out, "\n")
    end
  end
  error(bioxen.error("NotFound", ("no library bioxen.%s (bioxen --help lists them)"):format(tostring(name))), 2)
end

--- The report as text, grouped by library; fixes on their own line.
function doctor.format(report)
  local out, last = {}, nil
  local width = 0
  for _, c in ipairs(report.checks) do width = math.max(width, #c.name) end
  for _, c in ipairs(report.checks) do
    if c.library ~= last then
      out[#out + 1] = (last and "\n" or "") .. c.library
      last = c.library
    end
    local mark = ({ ok = "ok", warning = "warning", problem = "PROBLEM" })[c.status]
    out[#out + 1] = ("  %-8s %-" .. width .. "s  %s"):format(mark, c.name, c.detail or "")
    if c.fix and c.status ~= "ok" then
      out[#out + 1] = ("  %-8s %-" .. width .. "s  fix: %s"):format("", "", c.fix)
    end
  end
  local function plural(n, word) return ("%d %s%s"):format(n, word, n == 1 and "" or "s") end
  out[#out + 1] = ("\n%s, %s, %s"):format(plural(#report.checks, "check"), plural(report.problems, "problem"),
    plural(report.warnings, "warning"))
  return table.concat(out, "\n")
end

return doctor
