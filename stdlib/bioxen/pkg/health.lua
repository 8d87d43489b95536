-- bioxen.pkg.health: health checks (hashes, require in a sandboxed VM, system
-- libraries) and recommendations from the catalog.
local U = require("bioxen.pkg.util")
local native = U.native()
local E = require("bioxen.pkg.envs")
local P = require("bioxen.pkg.profiles")
local write_file = U.write_file
local sorted_keys = U.sorted_keys
local cache_dir = U.cache_dir
local run = U.run
local load_state = E.load_state
local read_env = E.read_env
local envs = E.envs

local LR = require("bioxen.pkg.luarocks")

local M = {}

-- ---------------------------------------------------------------------------
-- health and recommendations

local function modules_of(state, tree)
  local mods = {}
  for pname, p in pairs(state.packages) do
    for file in pairs(p.files or {}) do
      local lua = file:match("^share/lua/[%d%.]+/(.+)%.lua$")
      local so = file:match("^lib/lua/[%d%.]+/(.+)%.so$")
      local m = lua or so
      if m then
        m = m:gsub("/init$", ""):gsub("/", ".")
        mods[#mods + 1] = { module = m, package = pname, c = so ~= nil, file = tree .. "/" .. file }
      end
    end
  end
  table.sort(mods, function(a, b) return a.module < b.module end)
  return mods
end

-- Requires each pure-Lua module in a sandboxed `standard` child VM when
-- bioxen.vm is available, and C modules (which child VMs cannot load) in a
-- separate bioxen process with only the environment on its path. A Lua module
-- the sandbox refuses (it requires a C module, or uses `package`) is tried in
-- that process too, which decides.
local function try_requires(env, mods)
  local paths = envs.paths(env)
  local failures = {}
  local ok_vm, vm = pcall(require, "bioxen.vm")
  local rest = {}
  local child
  for _, m in ipairs(mods) do
    if ok_vm and not m.c then
      if not child then
        child = vm.create({ sandbox = "standard", package_path = { paths.lua_dir }, timeout = 30 })
      end
      local r = child:exec(("require(%q)"):format(m.module))
      if not r.ok then
        -- what the sandbox refuses (a C module that lpeg's re requires, `package`
        -- that penlight uses) is tried again in the process below, which decides
        rest[#rest + 1] = m
      end
    else
      rest[#rest + 1] = m
    end
  end
  if child then child:close() end
  if #rest > 0 then
    local code = { "package.path = arg[1] package.cpath = arg[2]" }
    for _, m in ipairs(rest) do
      code[#code + 1] = ("do local ok, e = pcall(require, %q) if not ok then io.write(%q, '\\t', (tostring(e):gsub('\\n', ' ')), '\\n') end end")
        :format(m.module, m.module)
    end
    local script = cache_dir() .. "/health-" .. bioxen.env.facts().pid .. ".lua"
    native.mkdirs(cache_dir())
    write_file(script, table.concat(code, "\n"))
    local exe = bioxen.env.facts().executable or "bioxen"
    local r = run({ exe, script, paths.path, paths.cpath })
    os.remove(script)
    for line in r.output:gmatch("[^\n]+") do
      local m, err = line:match("^([^\t]+)\t(.*)$")
      if m then failures[m] = err end
    end
  end
  return failures
end

--- Checks an environment: file hashes against the recorded ones, `require` of
--- every module, system libraries of C modules. Returns { ok, problems = {
--- { package, problem, fix } } }.
function M.health(opts)
  local env = read_env(opts)
  local state = load_state(env)
  local problems = {}
  local tree = envs.paths(env).tree
  local function add(p, problem, fix) problems[#problems + 1] = { package = p, problem = problem, fix = fix } end
  local actual = native.tree(tree)
  local owner = {}
  for pname, p in pairs(state.packages) do
    for file, sha in pairs(p.files or {}) do
      owner[file] = pname
      if not actual[file] then
        add(pname, file .. " is missing", ("bioxen pkg install --locked --env %s"):format(env))
      elseif actual[file] ~= sha then
        add(pname, file .. " was modified since it was installed",
          ("bioxen pkg install --locked --env %s"):format(env))
      end
    end
  end
  for file in pairs(actual) do
    if not owner[file] and file ~= LR.MANIFEST then add(nil, file .. " belongs to no package", "remove " .. tree .. "/" .. file) end
  end
  local mods = modules_of(state, tree)
  local failures = try_requires(env, mods)
  for _, m in ipairs(mods) do
    if failures[m.module] then
      add(m.package, ("require(%q) fails: %s"):format(m.module, failures[m.module]),
        ("bioxen pkg install --env %s %s  (reinstall), or bioxen pkg remove --env %s %s"):format(env, m.package, env, m.package))
    end
    if m.c then
      local r = run({ "ldd", m.file })
      for lib in r.output:gmatch("([%w%.%-%_+]+) => not found") do
        add(m.package, ("%s needs the system library %s, which is not installed"):format(m.module, lib),
          ("install the package that provides %s (apt-file search %s), e.g. sudo apt-get install %s"):format(lib, lib,
            (lib:gsub("%.so.*$", ""):gsub("^lib", "lib") .. "-dev")))
      end
    end
  end
  table.sort(problems, function(a, b) return (a.package or "") .. a.problem < (b.package or "") .. b.problem end)
  return { ok = #problems == 0, env = env, problems = problems, modules = #mods }
end

--- Suggestions from the catalog given what is installed: { package, reason }.
function M.recommend(opts)
  local env = read_env(opts)
  local installed = load_state(env).packages
  local c = P.catalog()
  local out, seen = {}, {}
  local function suggest(p, reason)
    if installed[p] or seen[p] then return end
    seen[p] = true
    out[#out + 1] = { package = p, reason = reason }
  end
  for _, name in ipairs(sorted_keys(installed)) do
    for _, r in ipairs(c.recommendations[name] or {}) do suggest(r.package, r.reason) end
  end
  for _, cname in ipairs(sorted_keys(c.collections)) do
    local col, have = c.collections[cname], {}
    for _, p in ipairs(col.packages) do
      if installed[p] then have[#have + 1] = p end
    end
    if #have > 0 then
      for _, p in ipairs(col.packages) do
        suggest(p, ("completes the %s collection (%s) with %s installed"):format(cname, col.summary,
          table.concat(have, ", ")))
      end
    end
  end
  return out
end

return M
