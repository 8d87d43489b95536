-- bioxen.pkg: the curator. LuaRocks-compatible package environments with one
-- consistent version set each, a lockfile, generations with rollback, health
-- checks and recommendations. Rust primitives (sandboxed rockspec evaluation,
-- downloads, archives, hashes, linking) come in as `native`; the policy is here.
--
-- Layout (docs/packages.md):
--   DATA/envs/NAME/current -> gens/N         the active generation (symlink, swapped atomically)
--   DATA/envs/NAME/gens/N/{tree,state.json,bioxen.lock}
--   DATA/envs/ACTIVE                          the name `env use` chose
--   DATA/pkg/store/NAME/VERSION-KEY/{tree,info.json}   built packages, hard-linked into generations
--   CACHE/pkg/{manifests,rockspecs,downloads,build,local}
--
-- How `pkg.install` works, in file order:
--   servers and manifests  pkg.index reads every server's manifest (sandboxed Lua)
--   rockspecs              load_rockspecs fetches candidates' rockspecs in parallel
--   resolution             pkg.resolve: backtracking, one version per package,
--                          the conflict explained when nothing fits
--   building               realise: store entries that exist and are intact are
--                          reused; the rest are downloaded in parallel and built
--                          (build_one, one package per CPU) into the store
--   environments           commit: a new generation of hard links, staged, renamed,
--                          then `current` swapped; the lockfile is written with it
--   operations             install/remove/update/pin/rollback, each under the
--                          environment's lock (with_lock)
local native = ...
local json = require("bioxen.json")
local V = require("bioxen.pkg.version")
local envlib = require("bioxen.env")
local task = require("bioxen.task")

local pkg = { version = V }

local LUA_VERSION = "5.1"
local PROVIDED = { lua = "5.1-1", luajit = "2.1-1" }
local PLATFORMS = { "unix", "linux" } -- least to most specific, as LuaRocks applies them
local DEFAULT_SERVERS = { "https://luarocks.org" }
local MANIFEST_TTL = 60 -- seconds a downloaded manifest is reused

-- ---------------------------------------------------------------------------
-- small helpers

local function fail(kind, message, details)
  error(bioxen.error(kind, message, details), 0)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then fail("Io", ("cannot write %s: %s"):format(path, err)) end
  f:write(text)
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then fail("Io", ("cannot write %s: %s"):format(path, rerr)) end
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return native.is_dir(path)
end

local function dirname(p) return p:match("^(.*)/[^/]*$") or "." end
local function basename(p) return p:match("([^/]*)$") end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function say(opts, fmt, ...)
  if opts and opts.quiet then return end
  io.stderr:write(fmt:format(...), "\n")
end

local function data_dir() return envlib.dirs().data end
local function cache_dir() return envlib.dirs().cache .. "/pkg" end
local function envs_root() return data_dir() .. "/envs" end
local function store_root() return data_dir() .. "/pkg/store" end

local function encode(value)
  return json.encode(value, { pretty = true }) .. "\n"
end

local function run(argv, opts)
  return native.run(argv, opts)
end

-- ---------------------------------------------------------------------------
-- catalogs: shipped data merged with the user's JSON files

local function user_files(kind)
  local dir = envlib.dirs().config .. "/pkg/" .. kind
  local out = {}
  for _, name in ipairs(native.list(dir)) do
    local key = name:match("^(.+)%.json$")
    if key then
      local text = read_file(dir .. "/" .. name)
      local ok, value = pcall(json.decode, text or "")
      if not ok or type(value) ~= "table" then
        fail("Catalog", ("%s/%s is not a valid JSON %s file"):format(dir, name, kind), { file = dir .. "/" .. name })
      end
      out[key] = value
    end
  end
  return out
end

--- The catalog: { collections, profiles, recommendations }, user files overriding shipped ones.
function pkg.catalog()
  local shipped = require("bioxen.pkg.catalog")
  local c = { collections = {}, profiles = {}, recommendations = shipped.recommendations }
  for k, v in pairs(shipped.collections) do c.collections[k] = v end
  for k, v in pairs(shipped.profiles) do c.profiles[k] = v end
  for k, v in pairs(user_files("collections")) do c.collections[k] = v end
  for k, v in pairs(user_files("profiles")) do v.user = true c.profiles[k] = v end
  return c
end

pkg.profile = {}

function pkg.profile.list()
  local c, out = pkg.catalog(), {}
  for _, name in ipairs(sorted_keys(c.profiles)) do
    local p = c.profiles[name]
    out[#out + 1] = { name = name, summary = p.summary, packages = p.packages, user = p.user }
  end
  return out
end

function pkg.profile.show(name)
  local p = pkg.catalog().profiles[name]
  if not p then
    local names = {}
    for _, q in ipairs(pkg.profile.list()) do names[#names + 1] = q.name end
    fail("NotFound", ("no profile %q (profiles: %s)"):format(tostring(name), table.concat(names, ", ")))
  end
  return { name = name, summary = p.summary, packages = p.packages, user = p.user }
end

--- Saves a user profile (config/pkg/profiles/NAME.json).
function pkg.profile.create(name, packages, summary)
  if type(name) ~= "string" or not name:match("^[%w][%w%-%_]*$") then
    fail("Argument", "a profile name is letters, digits, - and _ (e.g. lab-2024)")
  end
  for _, p in ipairs(packages or {}) do
    local ok, err = V.parse_dependency(p)
    if not ok then fail("Argument", err) end
  end
  local dir = envlib.dirs().config .. "/pkg/profiles"
  native.mkdirs(dir)
  write_file(dir .. "/" .. name .. ".json", encode({ summary = summary or "user profile", packages = packages or {} }))
  return dir .. "/" .. name .. ".json"
end

-- ---------------------------------------------------------------------------
-- servers and manifests

-- Rocks installed from local files (`pkg install ./x-1.0-1.src.rock`) each get a
-- one-rock repository in the cache, which stays a source after the configured ones.
local function local_repos()
  local dir, out = envlib.dirs().cache .. "/pkg/local", {}
  for _, name in ipairs(native.list(dir)) do out[#out + 1] = dir .. "/" .. name end
  return out
end

local function servers(opts)
  local list = DEFAULT_SERVERS
  if opts and opts.servers and #opts.servers > 0 then
    list = opts.servers
  else
    local configured = envlib.config.get("pkg.servers")
    if type(configured) == "table" and #configured > 0 then list = configured end
  end
  local out = {}
  for _, s in ipairs(list) do out[#out + 1] = s end
  for _, s in ipairs(local_repos()) do out[#out + 1] = s end
  return out
end

local function is_url(s) return s:match("^%a[%w+.-]*://") ~= nil end

local function slug(s) return (s:gsub("[^%w%.%-]", "_")) end

local manifest_cache = {}

local function load_manifest(server, opts)
  if manifest_cache[server] then return manifest_cache[server] end
  local base = server:gsub("/+$", "")
  local text, source
  if not is_url(base) or base:match("^file://") then
    local dir = base:gsub("^file://", "")
    for _, name in ipairs({ "manifest", "manifest-" .. LUA_VERSION }) do
      text = read_file(dir .. "/" .. name)
      if text then source = dir .. "/" .. name break end
    end
  else
    local dir = cache_dir() .. "/manifests"
    native.mkdirs(dir)
    for _, name in ipairs({ "manifest", "manifest-" .. LUA_VERSION }) do
      local dest = dir .. "/" .. slug(base) .. "-" .. name
      -- as LuaRocks: a manifest fetched less than a minute ago is reused (pkg update refetches)
      local age = native.mtime(dest) and os.time() - native.mtime(dest)
      if age and age >= 0 and age < MANIFEST_TTL and not (opts and opts.refresh) then
        text, source = read_file(dest), base .. "/" .. name
        break
      end
      local r = native.fetch({ { url = base .. "/" .. name, dest = dest } }, { progress = false })[1]
      if not r.error then
        text, source = read_file(dest), base .. "/" .. name
        break
      end
    end
  end
  if not text then
    fail("Server", ("no LuaRocks manifest at %s (tried manifest-%s and manifest)"):format(server, LUA_VERSION),
      { server = server, fix = "check the URL or folder given with --server or in the pkg.servers setting" })
  end
  local m = native.eval(text, source, { limit = 200000000 })
  if type(m.repository) ~= "table" then
    fail("Server", source .. " is not a LuaRocks manifest (no repository table)", { server = server })
  end
  manifest_cache[server] = m
  return m
end

--- All versions on the servers: name -> version -> { server, rockspec = bool, src = bool }.
function pkg.index(opts)
  local index, failures, list = {}, {}, servers(opts)
  for _, server in ipairs(list) do
    -- as LuaRocks: a server that cannot be read is reported and skipped while others work
    local ok, m = pcall(load_manifest, server, opts)
    if not ok then
      failures[#failures + 1] = m
      m = { repository = {} }
    end
    for name, versions in pairs(m.repository) do
      local lname = name:lower()
      index[lname] = index[lname] or {}
      for version, arches in pairs(versions) do
        if not index[lname][version] and V.parse(version) then
          local e = { server = server:gsub("/+$", ""), name = lname, version = version }
          for _, a in ipairs(arches) do
            if a.arch == "rockspec" then e.rockspec = true end
            if a.arch == "src" then e.src = true end
          end
          if e.rockspec or e.src then index[lname][version] = e end
        end
      end
    end
  end
  if #failures == #list then error(failures[1], 0) end
  for _, f in ipairs(failures) do say(opts, "warning: %s", tostring(f)) end
  return index
end

-- ---------------------------------------------------------------------------
-- rockspecs

local function deep_merge(dst, src)
  for k, v in pairs(src) do
    if type(v) == "table" then
      if type(dst[k]) ~= "table" then dst[k] = {} end
      deep_merge(dst[k], v)
    else
      dst[k] = v
    end
  end
end

local function platform_overrides(t)
  if type(t) ~= "table" then return end
  if type(t.platforms) == "table" then
    for _, p in ipairs(PLATFORMS) do
      if type(t.platforms[p]) == "table" then deep_merge(t, t.platforms[p]) end
    end
  end
  t.platforms = nil
end

--- Evaluates rockspec text as LuaRocks does and applies this platform's overrides.
function pkg.rockspec(text, name)
  local spec = native.eval(text, name or "rockspec")
  if type(spec.package) ~= "string" or type(spec.version) ~= "string" then
    fail("Rockspec", (name or "rockspec") .. " has no package or version field")
  end
  for _, field in ipairs({ "build", "dependencies", "build_dependencies", "external_dependencies", "source" }) do
    platform_overrides(spec[field])
  end
  spec.name = spec.package:lower()
  spec.dependencies = spec.dependencies or {}
  -- build dependencies go into the same tree before the build, as LuaRocks installs them
  for _, d in ipairs(spec.build_dependencies or {}) do table.insert(spec.dependencies, d) end
  return spec
end

local function entry_urls(e)
  local stem = e.server .. "/" .. e.name .. "-" .. e.version
  return stem .. ".rockspec", e.src and (stem .. ".src.rock") or nil
end

local rockspec_cache = {}

--- Fetches (in parallel) and evaluates the rockspecs of index entries; cached.
local function load_rockspecs(entries)
  local want, jobs = {}, {}
  local dir = cache_dir() .. "/rockspecs"
  for _, e in ipairs(entries) do
    local url = entry_urls(e)
    if not rockspec_cache[url] and not want[url] then
      want[url] = e
      jobs[#jobs + 1] = { url = url, dest = dir .. "/" .. slug(url) }
    end
  end
  if #jobs > 0 then
    native.mkdirs(dir)
    for _, r in ipairs(native.fetch(jobs, { progress = false })) do
      if r.error then
        fail("Download", ("cannot fetch the rockspec %s: %s"):format(r.url, r.error), { url = r.url })
      end
      local spec = pkg.rockspec(read_file(r.path), basename(r.url))
      rockspec_cache[r.url] = { spec = spec, path = r.path, sha256 = r.sha256, url = r.url }
    end
  end
  local out = {}
  for i, e in ipairs(entries) do out[i] = rockspec_cache[(entry_urls(e))] end
  return out
end

-- ---------------------------------------------------------------------------
-- resolution: one version per package, conflicts explained

local function parse_request(r, from)
  if type(r) == "table" and r.name then return r end
  local dep, err = V.parse_dependency(r)
  if not dep then fail("Argument", err) end
  dep.from = from or "your request"
  return dep
end

--- Resolves requests (strings like "penlight >= 1.13" or parsed dependencies)
--- into one version per package. opts: servers, prefer = {name = version},
--- pins = {name = version}. Returns { packages = {name = entry}, order = {...} }.
function pkg.resolve(requests, opts)
  opts = opts or {}
  local index = opts.index or pkg.index(opts)
  local prefer, pins = opts.prefer or {}, opts.pins or {}
  local chosen, cons, agenda = {}, {}, {}
  local conflict
  local steps = 0

  local function versions_of(name)
    if PROVIDED[name] then return { PROVIDED[name] } end
    local list = {}
    for v in pairs(index[name] or {}) do list[#list + 1] = v end
    V.sort(list)
    return list
  end

  local function explain(name)
    local lines, versions = {}, versions_of(name)
    if #versions == 0 then
      local who = {}
      for _, c in ipairs(cons[name] or {}) do who[#who + 1] = c.from end
      return ("no package %q on the servers (%s), needed by %s"):format(name,
        table.concat(servers(opts), ", "), table.concat(who, ", "))
    end
    for _, v in ipairs(versions) do
      for _, c in ipairs(cons[name]) do
        local ok, bad = V.matches(v, c)
        if not ok then
          local label = PROVIDED[name] and (v .. " (provided by LuaJIT)") or v
          lines[#lines + 1] = ("  %s %s is excluded by %q from %s"):format(name, label,
            c.name .. " " .. bad.text, c.from)
          break
        end
      end
    end
    if chosen[name] then
      lines[#lines + 1] = ("  %s %s was already chosen"):format(name, chosen[name])
    end
    return ("no version of %s satisfies every constraint:\n%s"):format(name, table.concat(lines, "\n"))
  end

  local function note_conflict(name)
    if conflict then return end
    local cs = {}
    for _, c in ipairs(cons[name] or {}) do cs[#cs + 1] = { constraint = c.text, from = c.from } end
    conflict = { package = name, message = explain(name), constraints = cs }
  end

  local function deps_of(name, version)
    if PROVIDED[name] then return {} end
    local spec = load_rockspecs({ index[name][version] })[1].spec
    local out = {}
    for _, d in ipairs(spec.dependencies) do
      local dep, err = V.parse_dependency(d)
      if not dep then fail("Rockspec", ("%s %s: %s"):format(name, version, err)) end
      dep.from = name .. " " .. version
      out[#out + 1] = dep
    end
    return out
  end

  local function candidates(name)
    local list = {}
    for _, v in ipairs(versions_of(name)) do
      local ok = true
      for _, c in ipairs(cons[name]) do
        if not V.matches(v, c) then ok = false break end
      end
      if ok then list[#list + 1] = v end
    end
    local p = prefer[name]
    if p then
      for i, v in ipairs(list) do
        if v == p then table.remove(list, i) table.insert(list, 1, v) break end
      end
    end
    return list
  end

  local function add(dep)
    cons[dep.name] = cons[dep.name] or {}
    table.insert(cons[dep.name], dep)
    agenda[#agenda + 1] = dep.name
  end

  local function prefetch(deps)
    local entries = {}
    for _, d in ipairs(deps) do
      if not chosen[d.name] and not PROVIDED[d.name] and index[d.name] then
        local c = candidates(d.name)[1]
        if c then entries[#entries + 1] = index[d.name][c] end
      end
    end
    if #entries > 0 then load_rockspecs(entries) end
  end

  local function solve(i)
    steps = steps + 1
    if steps > 20000 then
      fail("Conflict", "dependency resolution gave up after 20000 steps; pin some versions to narrow the search")
    end
    if i > #agenda then return true end
    local name = agenda[i]
    if chosen[name] then
      for _, c in ipairs(cons[name]) do
        if not V.matches(chosen[name], c) then note_conflict(name) return false end
      end
      return solve(i + 1)
    end
    local list = candidates(name)
    if #list == 0 then note_conflict(name) return false end
    for _, v in ipairs(list) do
      chosen[name] = v
      local deps = deps_of(name, v)
      local mark = #agenda
      for _, d in ipairs(deps) do add(d) end
      prefetch(deps)
      if solve(i + 1) then return true end
      for j = #agenda, mark + 1, -1 do
        table.remove(cons[agenda[j]])
        agenda[j] = nil
      end
    end
    chosen[name] = nil
    return false
  end

  for name, version in pairs(pins) do
    add({ name = name, constraints = { { op = "==", version = V.parse(version), text = "== " .. version } },
      text = name .. " == " .. version, from = "the pin on " .. name })
  end
  local parsed = {}
  for _, r in ipairs(requests) do
    local dep = parse_request(r)
    parsed[#parsed + 1] = dep
    add(dep)
  end
  prefetch(parsed)
  if not solve(1) then
    fail("Conflict", conflict and conflict.message or "the requests cannot be satisfied together",
      conflict and { package = conflict.package, constraints = conflict.constraints } or nil)
  end

  -- the plan, dependencies before dependents (a cycle is cut where it closes)
  local plan, order, seen = {}, {}, {}
  for name, version in pairs(chosen) do
    if not PROVIDED[name] then
      local e = index[name][version]
      local rs = load_rockspecs({ e })[1]
      local deps = {}
      for _, d in ipairs(rs.spec.dependencies) do
        local dep = V.parse_dependency(d)
        if dep and not PROVIDED[dep.name] then deps[#deps + 1] = dep.name end
      end
      table.sort(deps)
      plan[name] = {
        name = name, version = version, server = e.server, src = e.src, rockspec = rs,
        dependencies = deps,
      }
    end
  end
  local function visit(name)
    if seen[name] then return end
    seen[name] = true
    for _, d in ipairs(plan[name].dependencies) do
      if plan[d] then visit(d) end
    end
    order[#order + 1] = name
  end
  for _, name in ipairs(sorted_keys(plan)) do visit(name) end
  return { packages = plan, order = order }
end

-- ---------------------------------------------------------------------------
-- building into the store

local function headers() return native.headers() end

local function lua_vars(tree)
  return {
    CC = os.getenv("CC") or "cc",
    LD = os.getenv("CC") or "cc",
    CFLAGS = "-O2 -fPIC",
    LIBFLAG = "-shared",
    LUA_INCDIR = headers(),
    LUA_LIBDIR = "",
    LUA_BINDIR = "",
    LUA = "bioxen",
    LUALIB = "",
    LUA_VERSION = LUA_VERSION,
    PREFIX = tree,
    LIBDIR = tree .. "/lib/lua/" .. LUA_VERSION,
    LUADIR = tree .. "/share/lua/" .. LUA_VERSION,
    BINDIR = tree .. "/bin",
    CONFDIR = tree .. "/etc",
  }
end

local function substitute(s, vars)
  return (tostring(s):gsub("%$%(([%w_]+)%)", function(k) return vars[k] or "" end))
end

local function copy_file(from, to)
  local ok, err = pcall(native.copy, from, to)
  if not ok then fail("Build", ("cannot install %s: %s"):format(from, tostring(err))) end
end

local function module_file(mod, src, ext)
  local path = mod:gsub("%.", "/")
  if src:match("init%.lua$") and not mod:match("%.init$") then path = path .. "/init" end
  return path .. ext
end

-- Runs fn over items with at most `n` at once (bioxen.task coroutines).
local function parallel(items, n, fn)
  if #items == 1 or n == 1 then
    for _, item in ipairs(items) do fn(item) end
    return
  end
  local next_i, errors, workers = 0, {}, {}
  for _ = 1, math.min(n, #items) do
    workers[#workers + 1] = task.spawn(function()
      while #errors == 0 do -- after a failure, start nothing new
        next_i = next_i + 1
        local i = next_i
        if i > #items then return end
        local ok, err = pcall(fn, items[i])
        if not ok then errors[#errors + 1] = err end
      end
    end)
  end
  for _, w in ipairs(workers) do task.wait(w) end
  if #errors > 0 then error(errors[1], 0) end
end

local CLASH = "static declaration of .luaL_setfuncs. follows non%-static"

local function compile_module(ctx, mod, info)
  local sources, defines, incdirs, libdirs, libraries = {}, {}, {}, {}, {}
  if type(info) == "string" then
    sources = { info }
  else
    for _, s in ipairs(info) do sources[#sources + 1] = s end
    for _, s in ipairs(info.sources or {}) do sources[#sources + 1] = s end
    if type(info.sources) == "string" then sources[#sources + 1] = info.sources end
    defines, incdirs = info.defines or {}, info.incdirs or {}
    libdirs, libraries = info.libdirs or {}, info.libraries or {}
  end
  local function attempt(extra)
    -- object files compile in parallel (one per CPU), then link
    local objects, failed = {}, nil
    local jobs = {}
    for i = 1, #sources do jobs[i] = i end
    parallel(jobs, bioxen.env.facts().cpus or 1, function(i)
      local src = sources[i]
      local obj = ctx.work .. "/obj/" .. mod .. "-" .. i .. ".o"
      native.mkdirs(dirname(obj))
      local argv = { ctx.vars.CC, "-O2", "-fPIC", "-I" .. ctx.vars.LUA_INCDIR }
      for _, d in ipairs(incdirs) do
        local dir = substitute(d, ctx.vars)
        if dir ~= "" then argv[#argv + 1] = "-I" .. dir end
      end
      for _, d in ipairs(defines) do argv[#argv + 1] = "-D" .. d end
      for _, d in ipairs(extra) do argv[#argv + 1] = d end
      for _, a in ipairs({ "-c", src, "-o", obj }) do argv[#argv + 1] = a end
      local r = run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } })
      if r.status ~= 0 then
        failed = failed or { r.output, table.concat(argv, " ") }
      else
        objects[i] = obj
      end
    end)
    if failed then return nil, failed[1], failed[2] end
    local so = ctx.tree .. "/lib/lua/" .. LUA_VERSION .. "/" .. module_file(mod, "", ".so")
    native.mkdirs(dirname(so))
    local argv = { ctx.vars.CC, "-shared", "-o", so }
    for _, o in ipairs(objects) do argv[#argv + 1] = o end
    for _, d in ipairs(libdirs) do
      local dir = substitute(d, ctx.vars)
      if dir ~= "" then argv[#argv + 1] = "-L" .. dir end
    end
    for _, l in ipairs(libraries) do argv[#argv + 1] = "-l" .. l end
    local r = run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } })
    if r.status ~= 0 then return nil, r.output, table.concat(argv, " ") end
    return true
  end
  local own_setfuncs = false
  for _, src in ipairs(sources) do
    local text = read_file(ctx.srcdir .. "/" .. src) or ""
    if text:match("static%s+void%s+luaL_setfuncs%s*%(") then own_setfuncs = true end
  end
  local ok, output, cmd
  if own_setfuncs then
    output = "static declaration of 'luaL_setfuncs' follows non-static (found in the source)"
  else
    ok, output, cmd = attempt({})
  end
  if not ok and output:match(CLASH) then
    -- Lua 5.1 modules such as lua-cjson 2.1.0 define their own static
    -- luaL_setfuncs, which LuaJIT 2.1's lauxlib.h declares: compile them against
    -- the Lua 5.1 API only (bioxen's headers hide the 5.2 additions on request).
    ctx.notes[#ctx.notes + 1] = ("%s: module %s defines its own luaL_setfuncs; compiled against the Lua 5.1 API only")
      :format(ctx.name, mod)
    ok, output, cmd = attempt({ "-DBIOXEN_LUA51_API_ONLY" })
  end
  if not ok then
    fail("Build", ("%s %s: the C module %s does not compile (the environment is unchanged):\n%s\ncommand: %s"):format(ctx.name, ctx.version, mod,
      output, cmd), { package = ctx.name, version = ctx.version, module = mod, output = output })
  end
end

-- A builtin build without `modules` (rockspec format 3.0): as LuaRocks, the Lua
-- files under src/ or lua/ (else the top folder, minus tests and examples) are the
-- modules, named by their path. (C sources are not auto-detected.)
local function autodetect_modules(ctx)
  local base = ""
  for _, d in ipairs({ "src", "lua" }) do
    if native.is_dir(ctx.srcdir .. "/" .. d) then base = d .. "/" break end
  end
  local modules = {}
  for file in pairs(native.tree(ctx.srcdir .. "/" .. base)) do
    local top = file:match("^([^/]+)/")
    local skip = base == "" and (top == "spec" or top == "test" or top == "tests" or top == "examples"
      or top == "doc" or top == "docs" or file:match("rockspec"))
    if file:match("%.lua$") and not skip then
      local mod = file:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      modules[mod] = base .. file
    end
  end
  return modules
end

local function build_builtin(ctx, build)
  if build.modules == nil and ctx.format3 then build.modules = autodetect_modules(ctx) end
  for _, mod in ipairs(sorted_keys(build.modules or {})) do
    local info = build.modules[mod]
    if type(info) == "string" and info:match("%.lua$") then
      copy_file(ctx.srcdir .. "/" .. info, ctx.vars.LUADIR .. "/" .. module_file(mod, info, ".lua"))
    else
      compile_module(ctx, mod, info)
    end
  end
end

local function shell(ctx, what, command)
  local env = {}
  for k, v in pairs(ctx.vars) do env[k] = v end
  local r = run({ "sh", "-c", command }, { cwd = ctx.srcdir, env = env })
  if r.status ~= 0 then
    fail("Build", ("%s %s: the %s command failed (exit %d):\n%s\ncommand: %s"):format(ctx.name, ctx.version, what,
      r.status, r.output, command), { package = ctx.name, version = ctx.version, output = r.output })
  end
end

local function make_args(ctx, build, variables, target)
  local argv = { "make" }
  if build.makefile then argv[#argv + 1] = "-f" argv[#argv + 1] = build.makefile end
  if target and target ~= "" then argv[#argv + 1] = target end
  for _, k in ipairs(sorted_keys(variables or {})) do
    argv[#argv + 1] = k .. "=" .. substitute(variables[k], ctx.vars)
  end
  return argv
end

local function build_make(ctx, build)
  local steps = {}
  if build.build_pass ~= false then steps[#steps + 1] = make_args(ctx, build, build.build_variables, build.build_target) end
  if build.install_pass ~= false then
    steps[#steps + 1] = make_args(ctx, build, build.install_variables, build.install_target or "install")
  end
  for _, argv in ipairs(steps) do
    local r = run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } })
    if r.status ~= 0 then
      fail("Build", ("%s %s: make failed (exit %d):\n%s\ncommand: %s"):format(ctx.name, ctx.version, r.status,
        r.output, table.concat(argv, " ")), { package = ctx.name, version = ctx.version, output = r.output })
    end
  end
end

local function build_cmake(ctx, build)
  local argv = { "cmake", "-H.", "-Bbuild.luarocks", "-DCMAKE_INSTALL_PREFIX=" .. ctx.tree }
  for _, k in ipairs(sorted_keys(build.variables or {})) do
    argv[#argv + 1] = "-D" .. k .. "=" .. substitute(build.variables[k], ctx.vars)
  end
  for _, step in ipairs({ argv, { "cmake", "--build", "build.luarocks" },
    { "cmake", "--build", "build.luarocks", "--target", "install" } }) do
    local r = run(step, { cwd = ctx.srcdir })
    if r.status ~= 0 then
      fail("Build", ("%s %s: cmake failed:\n%s\ncommand: %s"):format(ctx.name, ctx.version, r.output,
        table.concat(step, " ")), { package = ctx.name, version = ctx.version, output = r.output })
    end
  end
end

local function install_table(ctx, install)
  if type(install) ~= "table" then return end
  for kind, files in pairs(install) do
    if type(files) == "table" then
      for key, file in pairs(files) do
        local src = ctx.srcdir .. "/" .. file
        local name = type(key) == "number" and basename(file) or key
        if kind == "lua" then
          local dest = type(key) == "number" and basename(file) or module_file(key, file, ".lua")
          copy_file(src, ctx.vars.LUADIR .. "/" .. dest)
        elseif kind == "lib" then
          local dest = type(key) == "number" and basename(file) or module_file(key, file, ".so")
          copy_file(src, ctx.vars.LIBDIR .. "/" .. dest)
        elseif kind == "bin" then
          copy_file(src, ctx.vars.BINDIR .. "/" .. name)
        elseif kind == "conf" then
          copy_file(src, ctx.vars.CONFDIR .. "/" .. name)
        end
      end
    end
  end
end

local multiarch
-- Finds each of the rockspec's external_dependencies (a header and/or library)
-- under the usual prefixes and sets NAME_DIR, NAME_INCDIR, NAME_LIBDIR, as LuaRocks does.
local function external_deps(ctx, deps)
  if type(deps) ~= "table" then return end
  if multiarch == nil then
    local r = run({ ctx.vars.CC, "-print-multiarch" })
    multiarch = r.status == 0 and r.output:match("^%s*(%S+)") or false
  end
  for _, name in ipairs(sorted_keys(deps)) do
    local want, found = deps[name], false
    if type(want) == "table" then
      for _, prefix in ipairs({ "/usr", "/usr/local", "/opt/local" }) do
        local inc = prefix .. "/include"
        local libdirs = { prefix .. "/lib", prefix .. "/lib64" }
        if multiarch then table.insert(libdirs, 1, prefix .. "/lib/" .. multiarch) end
        local header_ok = not want.header or exists(inc .. "/" .. want.header)
        local libdir
        if want.library then
          for _, d in ipairs(libdirs) do
            for _, f in ipairs({ "lib" .. want.library .. ".so", "lib" .. want.library .. ".a", want.library }) do
              if not libdir and exists(d .. "/" .. f) and not native.is_dir(d .. "/" .. f) then libdir = d end
            end
          end
        end
        if header_ok and (not want.library or libdir) then
          ctx.vars[name .. "_DIR"], ctx.vars[name .. "_INCDIR"] = prefix, inc
          ctx.vars[name .. "_LIBDIR"] = libdir or (multiarch and prefix .. "/lib/" .. multiarch or prefix .. "/lib")
          found = true
          break
        end
      end
      if not found then
        local what = want.header or ("lib" .. tostring(want.library))
        fail("Build", ("%s %s needs the system library %s (%s), which is not installed (the environment is "
          .. "unchanged). Install its development package (apt-file search %s; e.g. sudo apt-get install lib%s-dev), "
          .. "then try again"):format(ctx.name, ctx.version, name, what, what,
          (want.library or name):lower()), { package = ctx.name, dependency = name, missing = what })
      end
    end
  end
end

local BUILDERS = {
  builtin = build_builtin, module = build_builtin, none = function() end,
  make = build_make, cmake = build_cmake,
  command = function(ctx, build)
    -- as LuaRocks: $(VAR) is substituted in the commands and VAR is also in the environment
    if build.build_command then shell(ctx, "build", substitute(build.build_command, ctx.vars)) end
    if build.install_command then shell(ctx, "install", substitute(build.install_command, ctx.vars)) end
  end,
}

local function archive_kind(path)
  local p = path:lower()
  return p:match("%.tar%.gz$") or p:match("%.tgz$") or p:match("%.zip$") or p:match("%.tar$")
end

local function pid_alive(pid) return native.is_dir("/proc/" .. pid) end

-- Removes what interrupted runs left behind (staging folders of dead processes).
local function sweep(dir)
  for _, name in ipairs(native.list(dir)) do
    local pid = name:match("%.tmp%-(%d+)$") or name:match("%.old%-(%d+)$")
    if pid and not pid_alive(pid) then native.remove_tree(dir .. "/" .. name) end
  end
end

local function store_dir(name, version, rockspec_sha)
  return ("%s/%s/%s-%s"):format(store_root(), name, version, rockspec_sha:sub(1, 16))
end

local function load_info(dir)
  local text = read_file(dir .. "/info.json")
  return text and json.decode(text)
end

-- Whether a store entry still holds exactly the files it was built with
-- (generations hard-link it, so an edit through an environment shows here).
local function store_intact(dir, info)
  local actual = native.tree(dir .. "/tree")
  for file, sha in pairs(info.files or {}) do
    if actual[file] ~= sha then return false end
  end
  for file in pairs(actual) do
    if not info.files[file] then return false end
  end
  return true
end

--- Builds one package from its downloaded artifact into the store (staged, then renamed).
local build_staged
local function build_one(item, opts)
  local ok, result = pcall(build_staged, item, opts)
  local pid = bioxen.env.facts().pid
  if not ok then
    -- Leave nothing half-built behind; the environment itself was never touched.
    native.remove_tree(store_dir(item.name, item.version, item.rockspec.sha256) .. ".tmp-" .. pid)
    native.remove_tree(cache_dir() .. "/build/" .. item.name .. "-" .. item.version .. ".tmp-" .. pid)
    error(result, 0)
  end
  return result
end

function build_staged(item, opts)
  local spec, name, version = item.rockspec.spec, item.name, item.version
  local final = store_dir(name, version, item.rockspec.sha256)
  local stage = final .. ".tmp-" .. bioxen.env.facts().pid
  local work = cache_dir() .. "/build/" .. name .. "-" .. version .. ".tmp-" .. bioxen.env.facts().pid
  native.remove_tree(stage)
  native.remove_tree(work)
  native.mkdirs(stage .. "/tree")
  native.mkdirs(work)
  local archive = item.download.path
  local srcdir = work .. "/src"
  local checkout -- a .src.rock of a git/scm source holds the source folder itself
  if item.src_rock then
    local rock = work .. "/rock"
    native.unpack(archive, rock)
    local url = spec.source and spec.source.url or ""
    local inner = basename(url:gsub("[?#].*$", ""))
    archive = rock .. "/" .. inner
    if inner == "" or not archive_kind(archive) or not exists(archive) then
      local dir = spec.source and spec.source.dir
      if not (dir and native.is_dir(rock .. "/" .. dir)) then
        dir = nil
        for _, e in ipairs(native.list(rock)) do
          if native.is_dir(rock .. "/" .. e) then dir = e break end
        end
      end
      if exists(archive) and not native.is_dir(archive) then
        checkout = nil -- a single file source, copied below
      elseif dir then
        checkout = rock .. "/" .. dir
      else
        fail("Build", ("%s %s: the .src.rock holds neither %s nor a source folder"):format(name, version, inner))
      end
    end
  end
  if checkout then
    srcdir = checkout
  else
    if spec.source and spec.source.md5 then
      local h = native.hash(archive)
      if h.md5 ~= spec.source.md5:lower() then
        fail("Hash", ("%s %s: the source %s has md5 %s but the rockspec says %s; the download or the rockspec is "
          .. "corrupt. Nothing was changed. Try again later, report it to the package's maintainers, or install "
          .. "another version"):format(name, version, basename(archive), h.md5, spec.source.md5),
          { package = name, version = version, expected = spec.source.md5, actual = h.md5 })
      end
    end
    if archive_kind(archive) then
      native.unpack(archive, srcdir)
      local dir = spec.source and spec.source.dir
      if dir and native.is_dir(srcdir .. "/" .. dir) then
        srcdir = srcdir .. "/" .. dir
      else
        local entries = native.list(srcdir)
        if #entries == 1 and native.is_dir(srcdir .. "/" .. entries[1]) then srcdir = srcdir .. "/" .. entries[1] end
      end
    else
      copy_file(archive, srcdir .. "/" .. basename(spec.source.url))
    end
  end
  local tree = stage .. "/tree"
  local ctx = {
    name = name, version = version, srcdir = srcdir, work = work, tree = tree, vars = lua_vars(tree), notes = {},
    format3 = type(spec.rockspec_format) == "string" and V.parse(spec.rockspec_format) ~= nil
      and V.compare(spec.rockspec_format, "3.0") >= 0,
  }
  local build = spec.build or {}
  external_deps(ctx, spec.external_dependencies)
  local builder = BUILDERS[build.type or "builtin"]
  if not builder then
    fail("Build", ("%s %s: build type %q is not supported (bioxen builds builtin, make, cmake, command)")
      :format(name, version, tostring(build.type)))
  end
  builder(ctx, build)
  install_table(ctx, build.install)
  for _, note in ipairs(ctx.notes) do say(opts, "note: %s", note) end
  local info = {
    name = name, version = version,
    rockspec = { url = item.rockspec.url, sha256 = item.rockspec.sha256 },
    source = { url = item.download.url, sha256 = item.download.sha256 },
    files = native.tree(tree),
    build_type = build.type or "builtin",
  }
  write_file(stage .. "/info.json", encode(info))
  local existing = load_info(final)
  if existing and store_intact(final, existing) then
    -- another bioxen built the same package meanwhile: keep its entry (it may be linking it)
    native.remove_tree(stage)
    native.remove_tree(work)
    return existing
  end
  local old = final .. ".old-" .. bioxen.env.facts().pid
  if exists(final) then os.rename(final, old) end
  local ok, err = os.rename(stage, final)
  if not ok then fail("Io", ("cannot move %s into the store: %s"):format(name, err)) end
  native.remove_tree(old)
  native.remove_tree(work)
  return info
end


--- Makes sure every planned package is built in the store: downloads what is
--- missing in parallel, then builds (as many at once as there are CPUs).
--- `expect` (from a lockfile) maps name -> { source sha256 } that must match.
local function realise(plan, opts, expect)
  native.mkdirs(store_root())
  local todo, infos = {}, {}
  for _, name in ipairs(plan.order) do
    local p = plan.packages[name]
    local dir = store_dir(name, p.version, p.rockspec.sha256)
    sweep(dirname(dir))
    local info = load_info(dir)
    local want = expect and expect[name]
    if info and (not want or info.source.sha256 == want.source.sha256) and store_intact(dir, info) then
      infos[name] = info
    else
      todo[#todo + 1] = p
    end
  end
  if #todo == 0 then return infos end
  local jobs, dl = {}, cache_dir() .. "/downloads"
  native.mkdirs(dl)
  for _, p in ipairs(todo) do
    local src_url = p.server and select(2, entry_urls(p))
    local url = p.source_url or src_url
    p.src_rock = url ~= nil and url:match("%.src%.rock$") ~= nil
    if not url then
      url = p.rockspec.spec.source and p.rockspec.spec.source.url
      if not url then fail("Rockspec", p.name .. " " .. p.version .. " has no source.url") end
      if not (url:match("^https?://") or url:match("^file://")) then
        fail("Source", ("%s %s: the source %s is not an archive bioxen can download (http, https or file URL); "
          .. "use a server that has the .src.rock"):format(p.name, p.version, url), { package = p.name, url = url })
      end
    end
    jobs[#jobs + 1] = { url = url, dest = dl .. "/" .. p.name .. "-" .. p.version .. "-" .. basename(url) }
  end
  say(opts, "downloading %d package%s", #jobs, #jobs == 1 and "" or "s")
  local results = native.fetch(jobs, { progress = not (opts and opts.quiet) })
  for i, r in ipairs(results) do
    local p = todo[i]
    if r.error then
      fail("Download", ("%s %s: %s. Nothing was changed; check the server and try again"):format(p.name,
        p.version, r.error), { package = p.name, url = r.url })
    end
    local want = expect and expect[p.name]
    if want and want.source.sha256 ~= r.sha256 then
      fail("Locked", ("%s %s: the source %s has sha256 %s but bioxen.lock records %s"):format(p.name, p.version,
        r.url, r.sha256, want.source.sha256), { package = p.name, expected = want.source.sha256, actual = r.sha256 })
    end
    p.download = r
  end
  local quiet = opts and opts.quiet
  local bar = quiet and { step = function() end, finish = function() end } or native.progress(#todo, "building")
  local cpus = bioxen.env.facts().cpus or 1
  parallel(todo, math.max(1, cpus), function(p)
    infos[p.name] = build_one(p, opts)
    bar:step(p.name .. " " .. p.version)
  end)
  bar:finish(("built %d package%s"):format(#todo, #todo == 1 and "" or "s"))
  return infos
end

-- ---------------------------------------------------------------------------
-- environments and generations

local function check_env_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w%-%_%.]*$") then
    fail("Argument", ("environment name %q: use letters, digits, '.', '-' and '_'"):format(tostring(name)))
  end
end

local function env_dir(name) return envs_root() .. "/" .. name end

local envs = {}
pkg.envs = envs
local read_env, local_rock

--- The active environment: BIOXEN_ENV, else the one `env use` chose, else "default".
function envs.active()
  local e = os.getenv("BIOXEN_ENV")
  if e and e ~= "" then return e end
  local text = read_file(envs_root() .. "/ACTIVE")
  return text and text:match("^%s*(.-)%s*$") or "default"
end

local function current_gen(name)
  local link = native.read_link(env_dir(name) .. "/current")
  return link and tonumber(link:match("(%d+)$")) or 0
end

local function load_state(name)
  local n = current_gen(name)
  if n == 0 then return { generation = 0, packages = {}, requests = {} } end
  local text = read_file(("%s/gens/%d/state.json"):format(env_dir(name), n))
  if not text then fail("Env", ("environment %s: generation %d has no state.json"):format(name, n)) end
  local s = json.decode(text)
  s.packages, s.requests = s.packages or {}, s.requests or {}
  return s
end

function envs.exists(name) return native.is_dir(env_dir(name)) end

function envs.create(name, opts)
  check_env_name(name)
  opts = opts or {}
  if envs.exists(name) then
    fail("Exists", ("environment %q exists already (bioxen env remove %s to start over)"):format(name, name))
  end
  local p = opts.profile and pkg.profile.show(opts.profile)
  native.mkdirs(env_dir(name) .. "/gens")
  if p then
    local ok, err = pcall(pkg.install, p.packages,
      { env = name, servers = opts.servers, quiet = opts.quiet, action = "create --profile " .. opts.profile })
    if not ok then
      -- a failed create leaves no environment behind
      native.remove_tree(env_dir(name))
      error(err, 0)
    end
  end
  return env_dir(name)
end

local function ensure_env(name)
  check_env_name(name)
  if not envs.exists(name) then native.mkdirs(env_dir(name) .. "/gens") end
end

function envs.list()
  local active, out = envs.active(), {}
  for _, name in ipairs(native.list(envs_root())) do
    if native.is_dir(env_dir(name)) then
      local s = load_state(name)
      local count = 0
      for _ in pairs(s.packages) do count = count + 1 end
      out[#out + 1] = { name = name, active = name == active, generation = s.generation, packages = count }
    end
  end
  return out
end

function envs.use(name)
  check_env_name(name)
  if not envs.exists(name) then
    fail("NotFound", ("no environment %q (bioxen env create %s)"):format(name, name))
  end
  native.mkdirs(envs_root())
  write_file(envs_root() .. "/ACTIVE", name .. "\n")
end

function envs.remove(name)
  check_env_name(name)
  if not envs.exists(name) then fail("NotFound", ("no environment %q"):format(name)) end
  native.remove_tree(env_dir(name))
  if read_file(envs_root() .. "/ACTIVE") and envs.active() == name then os.remove(envs_root() .. "/ACTIVE") end
end

--- Module search paths of an environment's tree: { path, cpath, bin, tree }.
function envs.paths(name)
  name = name or envs.active()
  local t = env_dir(name) .. "/current/tree"
  return {
    tree = t,
    path = ("%s/share/lua/%s/?.lua;%s/share/lua/%s/?/init.lua"):format(t, LUA_VERSION, t, LUA_VERSION),
    cpath = ("%s/lib/lua/%s/?.so"):format(t, LUA_VERSION),
    bin = t .. "/bin",
    lua_dir = ("%s/share/lua/%s"):format(t, LUA_VERSION),
    lib_dir = ("%s/lib/lua/%s"):format(t, LUA_VERSION),
  }
end

--- The lockfile text of an environment.
function envs.export(name)
  name = name or envs.active()
  check_env_name(name)
  if not envs.exists(name) then fail("NotFound", ("no environment %q (bioxen env list shows them)"):format(name)) end
  local n = current_gen(name)
  if n == 0 then fail("Env", ("environment %q has no packages yet, so no lockfile"):format(name)) end
  return read_file(("%s/gens/%d/bioxen.lock"):format(env_dir(name), n))
end

--- Creates an environment from a lockfile and installs exactly what it records.
function envs.import(file, opts)
  opts = opts or {}
  local text = read_file(file)
  if not text then fail("NotFound", "cannot read the lockfile " .. tostring(file)) end
  local name = opts.name or (file:match("([^/]+)%.lock$") ~= "bioxen" and file:match("([^/]+)%.lock$")) or "imported"
  check_env_name(name)
  if envs.exists(name) and current_gen(name) > 0 then
    fail("Exists", ("environment %q exists already; choose another with --name"):format(name))
  end
  local fresh = not envs.exists(name)
  ensure_env(name)
  local ok, result = pcall(pkg.install, {},
    { env = name, locked = true, lockfile = text, quiet = opts.quiet, servers = opts.servers })
  if not ok then
    if fresh then native.remove_tree(env_dir(name)) end
    error(result, 0)
  end
  return result
end

local function lock_of(state)
  local lock = { format = "bioxen.lock/1", lua = LUA_VERSION, requests = json.array(state.requests or {}),
    packages = {} }
  for name, p in pairs(state.packages) do
    lock.packages[name] = {
      version = p.version, rockspec = p.rockspec, source = p.source, dependencies = json.array(p.dependencies or {}),
      files = p.files, pinned = p.pinned or nil,
    }
  end
  return lock
end

--- Learning records (bioxen.lrs, docs/lrs.md) for what a generation added or
--- removed; no-ops unless an LRS is configured.
local function record_changes(env, before, after)
  local hook = require("bioxen.lrs").hook
  if not hook.enabled() then return end
  for pname, p in pairs(after) do
    local old = before[pname]
    if not old or old.version ~= p.version then
      hook.package_installed(pname, p.version, env, p.source and p.source.sha256)
    end
  end
  for pname, p in pairs(before) do
    if not after[pname] then hook.package_removed(pname, p.version, env) end
  end
end

--- Writes a new generation (staged, then renamed) and points `current` at it.
local function commit(name, state, action)
  ensure_env(name)
  local before = load_state(name).packages
  local gens = env_dir(name) .. "/gens"
  sweep(gens)
  local n = 0
  for _, g in ipairs(native.list(gens)) do
    local k = tonumber(g)
    if k and k > n then n = k end
  end
  n = n + 1
  local stage = ("%s/%d.tmp-%d"):format(gens, n, bioxen.env.facts().pid)
  native.remove_tree(stage)
  native.mkdirs(stage .. "/tree")
  local owner = {}
  for _, pname in ipairs(sorted_keys(state.packages)) do
    local p = state.packages[pname]
    for file in pairs(p.files or {}) do
      if owner[file] then
        native.remove_tree(stage)
        fail("Conflict", ("%s and %s both install %s; they cannot share an environment"):format(owner[file], pname,
          file), { file = file, packages = { owner[file], pname } })
      end
      owner[file] = pname
    end
    native.link_tree(p.store .. "/tree", stage .. "/tree")
  end
  state.generation, state.action, state.created = n, action, os.time()
  state.requests = json.array(state.requests or {})
  for _, p in pairs(state.packages) do p.dependencies = json.array(p.dependencies or {}) end
  write_file(stage .. "/state.json", encode(state))
  write_file(stage .. "/bioxen.lock", encode(lock_of(state)))
  local ok, err = os.rename(stage, ("%s/%d"):format(gens, n))
  if not ok then fail("Io", "cannot finish the generation: " .. tostring(err)) end
  native.swap_link("gens/" .. n, env_dir(name) .. "/current")
  record_changes(name, before, state.packages)
  return n
end

-- ---------------------------------------------------------------------------
-- operations

local function state_from(plan, infos, requests, old)
  local state = { packages = {}, requests = requests }
  for name, p in pairs(plan.packages) do
    local info = infos[name]
    state.packages[name] = {
      version = p.version, dependencies = p.dependencies, rockspec = info.rockspec, source = info.source,
      files = info.files, store = store_dir(name, p.version, info.rockspec.sha256),
      pinned = old.packages[name] and old.packages[name].pinned or nil,
    }
  end
  return state
end

local function pins_of(state)
  local pins = {}
  for name, p in pairs(state.packages) do
    if p.pinned then pins[name] = p.version end
  end
  return pins
end

local function merge_requests(old, new)
  local out, pos = {}, {}
  for _, r in ipairs(old) do
    local d = V.parse_dependency(r)
    if d then out[#out + 1] = r pos[d.name] = #out end
  end
  for _, r in ipairs(new) do
    local d, err = V.parse_dependency(r)
    if not d then fail("Argument", err) end
    if pos[d.name] then out[pos[d.name]] = r else out[#out + 1] = r pos[d.name] = #out end
  end
  return out
end

local function install_locked(name, text, opts)
  local ok, lock = pcall(json.decode, text or "")
  if not ok or type(lock) ~= "table" or type(lock.packages) ~= "table" then
    fail("Locked", "the lockfile is not a bioxen.lock (JSON with a packages table)")
  end
  if lock.format ~= "bioxen.lock/1" or (lock.lua and lock.lua ~= LUA_VERSION) then
    fail("Locked", ("the lockfile is %s for Lua %s; this bioxen reads bioxen.lock/1 for Lua %s"):format(
      tostring(lock.format), tostring(lock.lua), LUA_VERSION))
  end
  local plan, jobs, names = { packages = {}, order = sorted_keys(lock.packages) }, {}, {}
  local dir = cache_dir() .. "/rockspecs"
  native.mkdirs(dir)
  for _, pname in ipairs(plan.order) do
    local l = lock.packages[pname]
    local cached = store_dir(pname, l.version, l.rockspec.sha256)
    local info = load_info(cached)
    if info and info.source.sha256 == l.source.sha256 and store_intact(cached, info) then
      plan.packages[pname] = { name = pname, version = l.version, rockspec = { sha256 = l.rockspec.sha256 } }
    else
      jobs[#jobs + 1] = { url = l.rockspec.url, dest = dir .. "/" .. slug(l.rockspec.url) }
      names[#jobs] = pname
    end
  end
  if #jobs > 0 then
    for i, r in ipairs(native.fetch(jobs, { progress = false })) do
      local pname, l = names[i], lock.packages[names[i]]
      if r.error then fail("Download", ("%s: %s"):format(pname, r.error), { package = pname }) end
      if r.sha256 ~= l.rockspec.sha256 then
        fail("Locked", ("%s %s: the rockspec %s has sha256 %s but bioxen.lock records %s"):format(pname, l.version,
          r.url, r.sha256, l.rockspec.sha256), { package = pname, expected = l.rockspec.sha256, actual = r.sha256 })
      end
      plan.packages[pname] = {
        name = pname, version = l.version, source_url = l.source.url,
        rockspec = { spec = pkg.rockspec(read_file(r.path), basename(r.url)), url = r.url, sha256 = r.sha256 },
      }
    end
  end
  local infos = realise(plan, opts, lock.packages)
  local state = { packages = {}, requests = lock.requests or {} }
  for _, pname in ipairs(plan.order) do
    local l, info = lock.packages[pname], infos[pname]
    for _, file in ipairs(sorted_keys(l.files or {})) do
      if info.files[file] ~= l.files[file] then
        fail("Locked", ("%s %s: %s differs from bioxen.lock (built %s, locked %s); the build is not reproducible "
          .. "here (another compiler?)"):format(pname, l.version, file, tostring(info.files[file]), l.files[file]),
          { package = pname, file = file })
      end
    end
    for file in pairs(info.files) do
      if not l.files[file] then
        fail("Locked", ("%s %s: the build made %s, which bioxen.lock does not list"):format(pname, l.version, file),
          { package = pname, file = file })
      end
    end
    state.packages[pname] = {
      version = l.version, dependencies = l.dependencies, rockspec = l.rockspec, source = l.source,
      files = info.files, pinned = l.pinned, store = store_dir(pname, l.version, l.rockspec.sha256),
    }
  end
  local n = commit(name, state, opts.action or "install --locked")
  return { env = name, generation = n, packages = state.packages }
end

-- `pkg install FILE`: a .src.rock or .rockspec on disk becomes a one-rock
-- repository in the cache; returns the request "name == version" for it.
function local_rock(r)
  if type(r) ~= "string" or not (r:match("%.src%.rock$") or r:match("%.rockspec$")) then return nil end
  if not exists(r) then fail("NotFound", ("no file %s"):format(r)) end
  local base = basename(r)
  local stem = base:gsub("%.src%.rock$", ""):gsub("%.rockspec$", "")
  local name, version = stem:match("^(.+)%-([^%-]+%-%d+)$")
  if not name then
    fail("Argument", ("%s: a rock file is named NAME-VERSION-REVISION.src.rock or .rockspec (as luarocks pack "
      .. "makes them)"):format(base))
  end
  name = name:lower()
  local dir = envlib.dirs().cache .. "/pkg/local/" .. name .. "-" .. version
  native.remove_tree(dir)
  native.mkdirs(dir)
  local is_rock = base:match("%.src%.rock$") ~= nil
  if is_rock then
    native.copy(r, dir .. "/" .. name .. "-" .. version .. ".src.rock")
    local tmp = dir .. "/unpacked"
    native.unpack(r, tmp)
    local spec = tmp .. "/" .. stem .. ".rockspec"
    if not exists(spec) then fail("Unpack", ("%s holds no %s.rockspec"):format(base, stem)) end
    native.copy(spec, dir .. "/" .. name .. "-" .. version .. ".rockspec")
    native.remove_tree(tmp)
  else
    native.copy(r, dir .. "/" .. name .. "-" .. version .. ".rockspec")
  end
  write_file(dir .. "/manifest", ("repository = { [%q] = { [%q] = { { arch = \"rockspec\" }%s } } }\n")
    :format(name, version, is_rock and ', { arch = "src" }' or ""))
  manifest_cache[dir] = nil
  return name .. " == " .. version
end

-- The environment a query reads: a name given with --env must exist.
function read_env(opts)
  local name = opts and opts.env or envs.active()
  check_env_name(name)
  if opts and opts.env and not envs.exists(name) then
    fail("NotFound", ("no environment %q (bioxen env list shows them)"):format(name))
  end
  return name
end

-- The environment a change applies to: `default` is made on first use, any
-- other name must exist (so a typo in --env does not make a new environment).
local function target_env(opts)
  local name = opts and opts.env or envs.active()
  check_env_name(name)
  if not envs.exists(name) then
    if name ~= "default" then
      fail("NotFound", ("no environment %q (bioxen env create %s, or bioxen env list)"):format(name, name))
    end
    ensure_env(name)
  end
  return name
end

--- Installs packages ("name", "name >= 1.0", ...) into an environment as one
--- new generation. opts: env, servers, locked (+ lockfile text), quiet.
local function do_install(requests, opts)
  opts = opts or {}
  local name = target_env(opts)
  if opts.locked then
    local text = opts.lockfile
    if not text then
      local n = current_gen(name)
      text = n > 0 and read_file(("%s/gens/%d/bioxen.lock"):format(env_dir(name), n))
      if not text then fail("Locked", ("environment %q has no bioxen.lock to reproduce"):format(name)) end
    end
    return install_locked(name, text, opts)
  end
  if type(requests) == "string" then requests = { requests } end
  local asked = {}
  for i, r in ipairs(requests or {}) do asked[i] = local_rock(r) or r end
  requests = asked
  local old = load_state(name)
  local reqs = merge_requests(old.requests, requests or {})
  local prefer = {}
  for pname, p in pairs(old.packages) do prefer[pname] = p.version end
  local plan = pkg.resolve(reqs, { servers = opts.servers, prefer = prefer, pins = pins_of(old), quiet = opts.quiet })
  local infos = realise(plan, opts)
  local state = state_from(plan, infos, reqs, old)
  local n = commit(name, state, opts.action or ("install " .. table.concat(requests or {}, " ")))
  return { env = name, generation = n, packages = state.packages }
end

--- Removes packages; refuses while another package depends on one (unless opts.force).
local function do_remove(names, opts)
  opts = opts or {}
  if type(names) == "string" then names = { names } end
  local env = target_env(opts)
  local old = load_state(env)
  local going = {}
  for _, n in ipairs(names) do
    if not old.packages[n] then fail("NotFound", ("%s is not installed in environment %s"):format(n, env)) end
    going[n] = true
  end
  if not opts.force then
    for pname, p in pairs(old.packages) do
      if not going[pname] then
        for _, d in ipairs(p.dependencies or {}) do
          if going[d] then
            fail("Dependents", ("cannot remove %s: %s %s depends on it. Remove %s too, or use --force"):format(d,
              pname, p.version, pname), { package = d, dependent = pname })
          end
        end
      end
    end
  end
  local state = { packages = {}, requests = {} }
  for pname, p in pairs(old.packages) do
    if not going[pname] then state.packages[pname] = p end
  end
  for _, r in ipairs(old.requests) do
    local d = V.parse_dependency(r)
    if d and not going[d.name] then state.requests[#state.requests + 1] = r end
  end
  -- dependencies nothing needs any more go too (what was asked for stays)
  local keep = {}
  local function mark(name)
    if keep[name] or not state.packages[name] then return end
    keep[name] = true
    for _, d in ipairs(state.packages[name].dependencies or {}) do mark(d) end
  end
  for _, r in ipairs(state.requests) do mark(V.parse_dependency(r).name) end
  for pname, p in pairs(state.packages) do
    if p.pinned or opts.force then mark(pname) end
  end
  local removed = {}
  for pname in pairs(old.packages) do
    if not keep[pname] then removed[#removed + 1] = pname end
  end
  table.sort(removed)
  for _, pname in ipairs(removed) do state.packages[pname] = nil end
  local n = commit(env, state, "remove " .. table.concat(names, " "))
  return { env = env, generation = n, removed = removed }
end

--- Updates the named packages (or all) to the newest versions the constraints allow.
local function do_update(names, opts)
  opts = opts or {}
  local env = target_env(opts)
  local old = load_state(env)
  local prefer = {}
  local only = {}
  for _, n in ipairs(names or {}) do
    if not old.packages[n] then fail("NotFound", ("%s is not installed in environment %s"):format(n, env)) end
    only[n] = true
  end
  if next(only) then
    for pname, p in pairs(old.packages) do
      if not only[pname] then prefer[pname] = p.version end
    end
  end
  local plan = pkg.resolve(old.requests,
    { servers = opts.servers, prefer = prefer, pins = pins_of(old), quiet = opts.quiet, refresh = true })
  local changed = false
  for pname, p in pairs(plan.packages) do
    if not old.packages[pname] or old.packages[pname].version ~= p.version then changed = true end
  end
  for pname in pairs(old.packages) do
    if not plan.packages[pname] then changed = true end
  end
  if not changed then return { env = env, generation = old.generation, unchanged = true } end
  local infos = realise(plan, opts)
  local state = state_from(plan, infos, old.requests, old)
  local n = commit(env, state, "update " .. table.concat(names or {}, " "))
  return { env = env, generation = n }
end

--- Pins (or with opts.unpin, unpins) installed packages at their current version.
local function do_pin(names, opts)
  opts = opts or {}
  if type(names) == "string" then names = { names } end
  local env = target_env(opts)
  local state = load_state(env)
  for _, n in ipairs(names) do
    local p = state.packages[n]
    if not p then fail("NotFound", ("%s is not installed in environment %s"):format(n, env)) end
    p.pinned = not opts.unpin or nil
  end
  local n = commit(env, state, (opts.unpin and "unpin " or "pin ") .. table.concat(names, " "))
  return { env = env, generation = n }
end

--- Installed packages: list of { name, version, pinned, requested }.
function pkg.list(opts)
  local env = read_env(opts)
  local state = load_state(env)
  local requested = {}
  for _, r in ipairs(state.requests) do
    local d = V.parse_dependency(r)
    if d then requested[d.name] = r end
  end
  local out = {}
  for _, name in ipairs(sorted_keys(state.packages)) do
    local p = state.packages[name]
    out[#out + 1] = { name = name, version = p.version, pinned = p.pinned or false, requested = requested[name],
      dependencies = p.dependencies }
  end
  return out
end

--- The lock table of an environment (what bioxen.lock holds).
function pkg.lock(opts)
  local env = read_env(opts)
  return lock_of(load_state(env))
end

--- Packages on the servers whose name contains `text`.
function pkg.search(text, opts)
  text = (text or ""):lower()
  local index, out = pkg.index(opts), {}
  for _, name in ipairs(sorted_keys(index)) do
    if name:find(text, 1, true) then
      local versions = sorted_keys(index[name])
      V.sort(versions)
      out[#out + 1] = { name = name, versions = versions }
    end
  end
  return out
end

--- Details of a package: versions, the newest rockspec's description and dependencies.
function pkg.info(name, opts)
  local index = pkg.index(opts)
  local entries = index[name and name:lower() or ""]
  if not entries then fail("NotFound", ("no package %q on %s"):format(tostring(name), table.concat(servers(opts), ", "))) end
  local versions = sorted_keys(entries)
  V.sort(versions)
  local rs = load_rockspecs({ entries[versions[1]] })[1]
  local installed = load_state(opts and opts.env or envs.active()).packages[name]
  return {
    name = name, versions = versions, latest = versions[1], server = entries[versions[1]].server,
    summary = rs.spec.description and rs.spec.description.summary,
    homepage = rs.spec.description and rs.spec.description.homepage,
    license = rs.spec.description and rs.spec.description.license,
    dependencies = rs.spec.dependencies, installed = installed and installed.version,
  }
end

--- Generations of an environment, oldest first.
function pkg.history(opts)
  local env = read_env(opts)
  local cur, out = current_gen(env), {}
  local gens = {}
  for _, g in ipairs(native.list(env_dir(env) .. "/gens")) do
    if tonumber(g) then gens[#gens + 1] = tonumber(g) end
  end
  table.sort(gens)
  for _, n in ipairs(gens) do
    local s = json.decode(read_file(("%s/gens/%d/state.json"):format(env_dir(env), n)) or "{}")
    local count = 0
    for _ in pairs(s.packages or {}) do count = count + 1 end
    out[#out + 1] = { generation = n, action = s.action, created = s.created, packages = count, current = n == cur }
  end
  return out
end

--- Returns the environment to generation N (default: the one before the current) atomically.
local function do_rollback(n, opts)
  local env = read_env(opts)
  local cur = current_gen(env)
  if n == nil then
    local best
    for _, h in ipairs(pkg.history(opts)) do
      if h.generation < cur then best = h.generation end
    end
    if not best then fail("NotFound", ("environment %s has no generation before %d to roll back to"):format(env, cur)) end
    n = best
  end
  n = tonumber(n)
  if not n or not native.is_dir(("%s/gens/%d"):format(env_dir(env), n)) then
    fail("NotFound", ("environment %s has no generation %s (bioxen pkg history lists them)"):format(env, tostring(n)))
  end
  native.swap_link("gens/" .. n, env_dir(env) .. "/current")
  return { env = env, generation = n, previous = cur }
end


-- One change at a time per environment: the operations below hold an exclusive
-- lock on envs/NAME/lock (another bioxen waits, saying so).
local function with_lock(opts, fn, ...)
  local name = target_env(opts)
  local path = env_dir(name) .. "/lock"
  local held = native.lock(path, false)
  if not held then
    say(opts, "waiting for another bioxen that is changing environment %s", name)
    held = native.lock(path, true)
  end
  local result = { pcall(fn, ...) }
  held:unlock()
  if not result[1] then error(result[2], 0) end
  return unpack(result, 2)
end

--- Installs packages ("name", "name >= 1.0", or .src.rock/.rockspec files) into an
--- environment as one new generation. opts: env, servers, locked (+ lockfile text), quiet.
function pkg.install(requests, opts) return with_lock(opts, do_install, requests, opts) end
--- Removes packages; refuses while another package depends on one (unless opts.force).
function pkg.remove(names, opts) return with_lock(opts, do_remove, names, opts) end
--- Updates the named packages (or all) to the newest versions the constraints allow.
function pkg.update(names, opts) return with_lock(opts, do_update, names, opts) end
--- Pins (or with opts.unpin, unpins) installed packages at their current version.
function pkg.pin(names, opts) return with_lock(opts, do_pin, names, opts) end
--- Returns the environment to generation N (default: the one before the current) atomically.
function pkg.rollback(n, opts) return with_lock(opts, do_rollback, n, opts) end

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
-- separate bioxen process with only the environment on its path.
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
      if not r.ok then failures[m.module] = tostring(r.error) end
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
function pkg.health(opts)
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
    if not owner[file] then add(nil, file .. " belongs to no package", "remove " .. tree .. "/" .. file) end
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
function pkg.recommend(opts)
  local env = read_env(opts)
  local installed = load_state(env).packages
  local c = pkg.catalog()
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

pkg.LUA_VERSION = LUA_VERSION
pkg.PROVIDED = PROVIDED
-- Durations at debug level (docs/api/log.md); nothing is wrapped otherwise.
require("bioxen.log").instrument(pkg, "pkg", { "install", "remove", "update", "rollback" })

return pkg
