-- bioxen.pkg.build: how one package is built into a tree: LuaRocks' variables,
-- the builtin/make/cmake/command build types, external dependencies, install tables.
local U = require("bioxen.pkg.util")
local native = U.native()
local fail = U.fail
local read_file = U.read_file
local exists = U.exists
local dirname = U.dirname
local basename = U.basename
local sorted_keys = U.sorted_keys
local run = U.run
local parallel = U.parallel
local LUA_VERSION = U.LUA_VERSION

local M = {}

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



local CLASH = "static declaration of .luaL_setfuncs. follows non%-static"

local function compile_module(ctx, mod, info)
  local sources, defines, incdirs, libdirs, libraries = {}, {}, {}, {}, {}
  if type(info) == "string" then
    sources = { info }
  else
    -- as LuaRocks, each of these may be one string or a list
    local function list(x) return type(x) == "string" and { x } or x or {} end
    for _, s in ipairs(info) do sources[#sources + 1] = s end
    for _, s in ipairs(list(info.sources)) do sources[#sources + 1] = s end
    defines, incdirs = list(info.defines), list(info.incdirs)
    libdirs, libraries = list(info.libdirs), list(info.libraries)
  end
  local own_setfuncs, sizes = false, {}
  for i, src in ipairs(sources) do
    local text = read_file(ctx.srcdir .. "/" .. src) or ""
    sizes[i] = #text
    if text:match("static%s+void%s+luaL_setfuncs%s*%(") then own_setfuncs = true end
  end
  local function attempt(extra)
    -- object files compile in parallel (each in a CPU slot, biggest first), then link
    local objects, failed = {}, nil
    local jobs = {}
    for i = 1, #sources do jobs[i] = i end
    parallel(jobs, #jobs, function(i)
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
      local r = U.with_cpu(sizes[i], function() return run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } }) end)
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
    -- linking finishes a module: it goes before any waiting compile
    local r = U.with_cpu(math.huge, function() return run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } }) end)
    if r.status ~= 0 then return nil, r.output, table.concat(argv, " ") end
    return true
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

-- A builtin build without `modules` (rockspec format 3.0), by LuaRocks' rules
-- (luarocks/build/builtin.lua autodetect_modules): the files under src/, lua/ or
-- lib/ (the first that exists; else the top folder), minus spec/, .luarocks/,
-- lua_modules/, test.lua and tests.lua. A .lua file is the module named by its
-- path; a .c file is a C module named by its `int luaopen_NAME` (else its path),
-- linked with the libraries of the rockspec's external_dependencies. Scripts in
-- src/bin or bin become commands.
local SKIP = { spec = true, [".luarocks"] = true, lua_modules = true, ["test.lua"] = true, ["tests.lua"] = true }

local function autodetect_modules(ctx)
  local prefix = ""
  for _, d in ipairs({ "src", "lua", "lib" }) do
    if native.is_dir(ctx.srcdir .. "/" .. d) then prefix = d .. "/" break end
  end
  local libs, incdirs, libdirs = {}, {}, {}
  for _, name in ipairs(sorted_keys(type(ctx.external) == "table" and ctx.external or {})) do
    local dep = ctx.external[name]
    if type(dep) == "table" and dep.library then
      libs[#libs + 1] = dep.library
      incdirs[#incdirs + 1] = ctx.vars[name .. "_INCDIR"]
      libdirs[#libdirs + 1] = ctx.vars[name .. "_LIBDIR"]
    end
  end
  local modules = {}
  for file in pairs(native.tree(ctx.srcdir .. "/" .. prefix)) do
    if not SKIP[file:match("^([^/]*)")] then
      if file:match("%.lua$") then
        modules[(file:gsub("%.lua$", ""):gsub("/", "."))] = prefix .. file
      elseif file:match("%.c$") then
        local text = read_file(ctx.srcdir .. "/" .. prefix .. file) or ""
        local name = text:match("int%s+luaopen_([a-zA-Z0-9_]+)") or file:gsub("%.c$", ""):gsub("/", ".")
        modules[name] = { sources = prefix .. file, libraries = libs, incdirs = incdirs, libdirs = libdirs }
      end
    end
  end
  local install
  local bindir = (native.is_dir(ctx.srcdir .. "/src/bin") and "src/bin") or (native.is_dir(ctx.srcdir .. "/bin") and "bin")
  if bindir then
    install = { bin = {} }
    for _, f in ipairs(native.list(ctx.srcdir .. "/" .. bindir)) do install.bin[#install.bin + 1] = bindir .. "/" .. f end
  end
  return modules, install
end

local function build_builtin(ctx, build)
  if build.modules == nil and ctx.format3 then
    local install
    build.modules, install = autodetect_modules(ctx)
    build.install = build.install or install
  end
  local cmods = {}
  for _, mod in ipairs(sorted_keys(build.modules or {})) do
    local info = build.modules[mod]
    if type(info) == "string" and info:match("%.lua$") then
      copy_file(ctx.srcdir .. "/" .. info, ctx.vars.LUADIR .. "/" .. module_file(mod, info, ".lua"))
    else
      cmods[#cmods + 1] = mod
    end
  end
  -- C modules compile side by side (their compilers share the CPU slots)
  parallel(cmods, #cmods, function(mod) compile_module(ctx, mod, build.modules[mod]) end)
end

local function shell(ctx, what, command)
  local env = {}
  for k, v in pairs(ctx.vars) do env[k] = v end
  local r = U.with_cpu(1e9, function() return run({ "sh", "-c", command }, { cwd = ctx.srcdir, env = env }) end)
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
    local r = U.with_cpu(1e9, function() return run(argv, { cwd = ctx.srcdir, env = { LC_ALL = "C" } }) end)
    if r.status ~= 0 then
      fail("Build", ("%s %s: make failed (exit %d):\n%s\ncommand: %s"):format(ctx.name, ctx.version, r.status,
        r.output, table.concat(argv, " ")), { package = ctx.name, version = ctx.version, output = r.output })
    end
  end
end

-- As luarocks/build/cmake.lua: an inline build.cmake becomes CMakeLists.txt; the
-- build's variables (and CMAKE_MODULE_PATH, CMAKE_LIBRARY_PATH, CMAKE_INCLUDE_PATH
-- from the environment) are passed as -D definitions; configure, build and
-- install in build.luarocks (format 3.0 honours build_pass/install_pass).
local function build_cmake(ctx, build)
  if not pcall(run, { "cmake", "--version" }) then
    fail("Build", ("%s %s uses the cmake build type, and cmake is not installed (the environment is unchanged). "
      .. "Install it (e.g. sudo apt-get install cmake), then try again"):format(ctx.name, ctx.version),
      { package = ctx.name, missing = "cmake" })
  end
  if type(build.cmake) == "string" then U.write_file(ctx.srcdir .. "/CMakeLists.txt", build.cmake) end
  local variables = { CMAKE_INSTALL_PREFIX = ctx.tree }
  for _, k in ipairs({ "CMAKE_MODULE_PATH", "CMAKE_LIBRARY_PATH", "CMAKE_INCLUDE_PATH" }) do
    variables[k] = os.getenv(k)
  end
  for k, v in pairs(build.variables or {}) do variables[k] = substitute(v, ctx.vars) end
  local argv = { "cmake", "-H.", "-Bbuild.luarocks" }
  for _, k in ipairs(sorted_keys(variables)) do argv[#argv + 1] = "-D" .. k .. "=" .. tostring(variables[k]) end
  local steps = { argv }
  local build_pass, install_pass = true, true
  if ctx.format3 then build_pass, install_pass = build.build_pass ~= false, build.install_pass ~= false end
  if build_pass then steps[#steps + 1] = { "cmake", "--build", "build.luarocks", "--config", "Release" } end
  if install_pass then
    steps[#steps + 1] = { "cmake", "--build", "build.luarocks", "--target", "install", "--config", "Release" }
  end
  for _, step in ipairs(steps) do
    local r = U.with_cpu(1e9, function() return run(step, { cwd = ctx.srcdir, env = { LC_ALL = "C" } }) end)
    if r.status ~= 0 then
      fail("Build", ("%s %s: cmake failed (the environment is unchanged):\n%s\ncommand: %s"):format(ctx.name,
        ctx.version, r.output, table.concat(step, " ")), { package = ctx.name, version = ctx.version, output = r.output })
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
          require("bioxen.pkg.luarocks").install_bin(ctx, src, name, copy_file)
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

M.lua_vars = lua_vars
M.build_builtin = build_builtin
M.BUILDERS = BUILDERS
M.external_deps = external_deps
M.install_table = install_table
M.copy_file = copy_file
return M
