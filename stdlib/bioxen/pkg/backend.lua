-- bioxen.pkg.backend: LuaRocks build back-ends from rocks. A rockspec whose
-- build.type is none of builtin, make, cmake, command (e.g. "foo") is built by
-- the module `luarocks.build.foo` of the rock `luarocks-build-foo`, as LuaRocks
-- does: the rock is a (build) dependency, built first, and its `run(rockspec)`
-- is called with the source folder as the current directory. The back-end sees
-- the part of LuaRocks' API back-ends use (luarocks.fs, .dir, .path, .util,
-- .core.cfg, .build.builtin), implemented here on bioxen's primitives; its
-- lib_dir/lua_dir/bin_dir/conf_dir are the package's tree, so what it installs
-- lands in the store like any build's output.
local U = require("bioxen.pkg.util")
local native = U.native()

local M = {}

--- The rock that provides build type `t`.
function M.rock_name(t) return "luarocks-build-" .. t end

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The LuaRocks modules a back-end may require, for one build.
local function shim(ctx, build_builtin)
  local cwd = { ctx.srcdir }
  local function here() return cwd[#cwd] end
  local function abs(p)
    p = tostring(p)
    if p:sub(1, 1) == "/" then return p end
    return here() .. "/" .. p
  end
  local function sh(command, quiet)
    local r = U.with_cpu(1e9, function()
      return U.run({ "sh", "-c", command }, { cwd = here(), env = ctx.vars })
    end)
    if not quiet and r.output ~= "" then io.stderr:write(r.output) end
    return r.status == 0, r
  end

  local dir = {}
  function dir.path(...)
    local parts = { ... }
    return (table.concat(parts, "/"):gsub("//+", "/"))
  end
  function dir.base_name(p) return (tostring(p):gsub("/+$", ""):match("([^/]*)$")) end
  function dir.dir_name(p) return (tostring(p):gsub("/+$", ""):match("^(.*)/[^/]*$")) or "" end
  function dir.normalize(p) return (tostring(p):gsub("//+", "/")) end

  local fs = {}
  fs.Q = shell_quote
  function fs.current_dir() return here() end
  function fs.change_dir(d) cwd[#cwd + 1] = abs(d) return native.is_dir(abs(d)) end
  function fs.change_dir_to_root() cwd[#cwd + 1] = "/" return true end
  function fs.pop_dir() if #cwd > 1 then cwd[#cwd] = nil end return true end
  function fs.is_dir(p) return native.is_dir(abs(p)) end
  function fs.exists(p) return U.exists(abs(p)) end
  function fs.is_file(p) return U.exists(abs(p)) and not native.is_dir(abs(p)) end
  function fs.make_dir(p) native.mkdirs(abs(p)) return true end
  function fs.delete(p) native.remove_tree(abs(p)) return true end
  function fs.list_dir(p) return native.list(abs(p or here())) end
  function fs.dir(p)
    local list, i = native.list(abs(p or here())), 0
    return function() i = i + 1 return list[i] end
  end
  function fs.find(p)
    local out = {}
    for file in pairs(native.tree(abs(p or here()))) do out[#out + 1] = file end
    table.sort(out)
    return out
  end
  function fs.copy(src, dest)
    src, dest = abs(src), abs(dest)
    if native.is_dir(dest) then dest = dest .. "/" .. dir.base_name(src) end
    native.copy(src, dest)
    return true
  end
  function fs.copy_contents(src, dest)
    native.link_tree(abs(src), abs(dest))
    return true
  end
  function fs.execute_string(command) return (sh(command)) end
  function fs.execute_quiet(command, ...)
    local parts = { command }
    for _, a in ipairs({ ... }) do parts[#parts + 1] = shell_quote(a) end
    return (sh(table.concat(parts, " "), true))
  end
  function fs.execute(command, ...)
    local parts = { command }
    for _, a in ipairs({ ... }) do parts[#parts + 1] = shell_quote(a) end
    return (sh(table.concat(parts, " ")))
  end
  function fs.execute_env(env, command, ...)
    local parts = {}
    for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. shell_quote(v) end
    parts[#parts + 1] = command
    for _, a in ipairs({ ... }) do parts[#parts + 1] = shell_quote(a) end
    return (sh(table.concat(parts, " ")))
  end
  function fs.is_tool_available(tool, name)
    if sh("command -v " .. shell_quote(tool) .. " >/dev/null", true) then return true end
    return nil, ("'%s' needed for %s but not found"):format(tool, name or tool)
  end

  local cfg = {
    lua_version = U.LUA_VERSION, lua_interpreter = "bioxen", variables = ctx.vars,
    lib_extension = "so", obj_extension = "o", static_lib_extension = "a",
    arch = U.platform(), target_cpu = bioxen.env.facts().arch,
    platforms = { unix = true, linux = true }, deps_mode = "one", verbose = false,
    lib_modules_path = "/lib/lua/" .. U.LUA_VERSION, lua_modules_path = "/share/lua/" .. U.LUA_VERSION,
  }
  function cfg.is_platform(p) return p == "unix" or p == "linux" end

  local util = {}
  function util.printout(...) io.stderr:write(table.concat({ ... }, "\t"), "\n") end
  util.printerr = util.printout
  function util.warning(msg) io.stderr:write("Warning: ", tostring(msg), "\n") end
  function util.variable_substitutions(t, vars)
    for k, v in pairs(t) do
      if type(v) == "string" then
        t[k] = v:gsub("%$%(([%w_]+)%)", function(name) return vars[name] or "" end)
      end
    end
  end
  function util.split_string(s, sep)
    local out = {}
    for part in (s .. sep):gmatch("(.-)" .. sep:gsub("%p", "%%%0")) do out[#out + 1] = part end
    return out
  end

  local path = {}
  function path.lib_dir() return ctx.vars.LIBDIR end
  function path.lua_dir() return ctx.vars.LUADIR end
  function path.bin_dir() return ctx.vars.BINDIR end
  function path.conf_dir() return ctx.vars.CONFDIR end
  function path.doc_dir() return ctx.tree .. "/" .. require("bioxen.pkg.luarocks").rock_dir(ctx.name, ctx.version) .. "/doc" end
  function path.install_dir() return ctx.tree .. "/" .. require("bioxen.pkg.luarocks").rock_dir(ctx.name, ctx.version) end
  function path.module_to_path(mod) return (mod:gsub("[^.]*$", ""):gsub("%.", "/")) end

  local builtin = {}
  function builtin.run(rockspec)
    build_builtin(ctx, rockspec.build)
    return true
  end

  return {
    ["luarocks.fs"] = fs, ["luarocks.dir"] = dir, ["luarocks.core.dir"] = dir, ["luarocks.path"] = path,
    ["luarocks.util"] = util, ["luarocks.core.util"] = util, ["luarocks.core.cfg"] = cfg, ["luarocks.cfg"] = cfg,
    ["luarocks.build.builtin"] = builtin,
  }
end

--- Builds with the back-end for build type `t`, installed in the store at `backend_tree`.
function M.build(ctx, spec, t, backend_tree, build_builtin)
  local lua_dir = backend_tree .. "/share/lua/" .. U.LUA_VERSION
  local file = lua_dir .. "/luarocks/build/" .. t:gsub("%.", "/") .. ".lua"
  local text = U.read_file(file) or U.read_file(lua_dir .. "/luarocks/build/" .. t .. "/init.lua")
  if not text then
    U.fail("Build", ("%s %s: build type %q needs the module luarocks.build.%s, which %s does not install"):format(
      ctx.name, ctx.version, t, t, M.rock_name(t)), { package = ctx.name, build_type = t })
  end
  local modules = shim(ctx, build_builtin)
  local loaded = {}
  -- the back-end's own modules come from its tree; LuaRocks' from the shim
  local function req(name)
    if modules[name] then return modules[name] end
    if loaded[name] ~= nil then return loaded[name] end
    local rel = name:gsub("%.", "/")
    for _, candidate in ipairs({ lua_dir .. "/" .. rel .. ".lua", lua_dir .. "/" .. rel .. "/init.lua" }) do
      local src = U.read_file(candidate)
      if src then
        local f = assert(loadstring(src, "@" .. candidate))
        setfenv(f, setmetatable({ require = req }, { __index = _G }))
        loaded[name] = f(name) or true
        return loaded[name]
      end
    end
    if name:match("^luarocks%.") then
      U.fail("Build", ("%s %s: the %s build back-end needs LuaRocks' module %s, which bioxen does not provide "
        .. "(it provides luarocks.fs, .dir, .path, .util, .core.cfg and .build.builtin)"):format(ctx.name,
        ctx.version, t, name), { package = ctx.name, build_type = t, module = name })
    end
    return require(name)
  end
  local chunk, err = loadstring(text, "@" .. file)
  if not chunk then U.fail("Build", ("%s: %s"):format(file, tostring(err))) end
  setfenv(chunk, setmetatable({ require = req }, { __index = _G }))
  local driver = chunk("luarocks.build." .. t)
  if type(driver) ~= "table" or type(driver.run) ~= "function" then
    U.fail("Build", ("%s does not return a LuaRocks build back-end (a table with run)"):format(file))
  end
  local rockspec = setmetatable({}, { __index = spec })
  rockspec.name, rockspec.version, rockspec.variables = ctx.name, ctx.version, ctx.vars
  function rockspec.type() return "rockspec" end
  function rockspec.format_is_at_least(_, v)
    local V = require("bioxen.pkg.version")
    return V.compare(spec.rockspec_format or "1.0", v) >= 0
  end
  local ok, res, msg = pcall(driver.run, rockspec, false)
  if not ok or not res then
    U.fail("Build", ("%s %s: the %s build back-end (%s) failed: %s"):format(ctx.name, ctx.version, t,
      M.rock_name(t), tostring(ok and msg or res)), { package = ctx.name, build_type = t })
  end
end

return M
