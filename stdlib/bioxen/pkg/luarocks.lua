-- bioxen.pkg.luarocks: LuaRocks tree compatibility. Each package's store tree
-- carries what `luarocks install` leaves in a tree (lib/luarocks/rocks-5.1/NAME/
-- VERSION/{rock_manifest,NAME-VERSION.rockspec}), Lua commands from
-- build.install.bin get LuaRocks-style wrappers in bin/, and every generation
-- gets the tree manifest (lib/luarocks/rocks-5.1/manifest), so
-- `luarocks --tree ENV_TREE list|show` see what bioxen installed.
local U = require("bioxen.pkg.util")
local native = U.native()
local V = require("bioxen.pkg.version")
local LUA_VERSION, sorted_keys, dirname = U.LUA_VERSION, U.sorted_keys, U.dirname

local M = {}

M.ROCKS_DIR = "lib/luarocks/rocks-" .. LUA_VERSION
M.MANIFEST = M.ROCKS_DIR .. "/manifest"

--- The folder (relative to a tree) LuaRocks keeps a rock's metadata in.
function M.rock_dir(name, version) return ("%s/%s/%s"):format(M.ROCKS_DIR, name, version) end

-- ---------------------------------------------------------------------------
-- LuaRocks' persist format (luarocks/persist.lua): sorted keys, 3-space indents

local function is_ident(k) return type(k) == "string" and k:match("^[%a_][%w_]*$") ~= nil end

local function write_value(out, v, indent)
  if type(v) == "table" then
    local n = #v
    local keys = {}
    for k in pairs(v) do
      if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    if n == 0 and #keys == 0 then out[#out + 1] = "{}" return end
    local inner = indent .. "   "
    local items = {}
    if n > 0 and #keys > 0 then
      -- a version table { 5, 1, string = "5.1" } stays on one line, as LuaRocks writes it
      local parts = {}
      for i = 1, n do parts[#parts + 1] = tostring(v[i]) end
      for _, k in ipairs(keys) do
        local sub = {}
        write_value(sub, v[k], inner)
        parts[#parts + 1] = (is_ident(k) and k or ("[%q]"):format(k)) .. " = " .. table.concat(sub)
      end
      out[#out + 1] = "{\n" .. inner .. table.concat(parts, ", ") .. "\n" .. indent .. "}"
      return
    end
    for i = 1, n do
      local sub = {}
      write_value(sub, v[i], inner)
      items[#items + 1] = inner .. table.concat(sub)
    end
    for _, k in ipairs(keys) do
      local sub = {}
      write_value(sub, v[k], inner)
      local key = is_ident(k) and k or ("[%q]"):format(tostring(k))
      items[#items + 1] = inner .. key .. " = " .. table.concat(sub)
    end
    out[#out + 1] = "{\n" .. table.concat(items, ",\n") .. "\n" .. indent .. "}"
  elseif type(v) == "string" then
    out[#out + 1] = ("%q"):format(v)
  else
    out[#out + 1] = tostring(v)
  end
end

--- A file of top-level assignments, as LuaRocks writes manifests.
function M.persist(t)
  local lines = {}
  for _, k in ipairs(sorted_keys(t)) do
    local sub = {}
    write_value(sub, t[k], "")
    lines[#lines + 1] = k .. " = " .. table.concat(sub)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- ---------------------------------------------------------------------------
-- per package, at build time (into the store tree)

local function is_lua_script(path)
  local text = U.read_file(path)
  if not text then return false end
  text = text:gsub("^#![^\n]*", "")
  return loadstring(text) ~= nil
end

local WRAPPER = [[#!/bin/sh
# LuaRocks-style wrapper written by bioxen for %s %s: runs the rock's command
# with bioxen (BIOXEN, else bioxen on PATH) and this tree's modules first.
TREE=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
LUA_PATH="$TREE/share/lua/%s/?.lua;$TREE/share/lua/%s/?/init.lua;${LUA_PATH:-;}"
LUA_CPATH="$TREE/lib/lua/%s/?.so;${LUA_CPATH:-;}"
export LUA_PATH LUA_CPATH
exec "${BIOXEN:-bioxen}" "$TREE/%s/bin/%s" "$@"
]]

--- Installs a command from build.install.bin as LuaRocks does: a Lua script is
--- kept in the rock's folder and bin/NAME is a wrapper that runs it with bioxen;
--- anything else is copied to bin/ as it is.
function M.install_bin(ctx, src, name, copy)
  if not is_lua_script(src) then
    copy(src, ctx.vars.BINDIR .. "/" .. name)
    return
  end
  local rel = M.rock_dir(ctx.name, ctx.version)
  copy(src, ctx.tree .. "/" .. rel .. "/bin/" .. name)
  local wrapper = ctx.vars.BINDIR .. "/" .. name
  native.mkdirs(ctx.vars.BINDIR)
  U.write_file(wrapper, WRAPPER:format(ctx.name, ctx.version, LUA_VERSION, LUA_VERSION, LUA_VERSION, rel, name))
  U.run({ "chmod", "755", wrapper, ctx.tree .. "/" .. rel .. "/bin/" .. name })
  ctx.commands = ctx.commands or {}
  ctx.commands[name] = true
end

--- Installs the files of an unpacked binary rock (lua/, lib/, bin/, conf/ as
--- `luarocks pack` lays them out) after checking each against its rock_manifest.
function M.install_binary(ctx, rock, copy)
  local text = U.read_file(rock .. "/rock_manifest")
  if not text then
    U.fail("Rock", ("%s %s: the binary rock has no rock_manifest"):format(ctx.name, ctx.version))
  end
  local manifest = native.eval(text, "rock_manifest").rock_manifest
  if type(manifest) ~= "table" then
    U.fail("Rock", ("%s %s: the binary rock's rock_manifest has no rock_manifest table"):format(ctx.name, ctx.version))
  end
  local dests = { lua = ctx.vars.LUADIR, lib = ctx.vars.LIBDIR, conf = ctx.vars.CONFDIR }
  local function walk(node, prefix, fn)
    for _, k in ipairs(sorted_keys(node)) do
      local path = prefix == "" and k or (prefix .. "/" .. k)
      if type(node[k]) == "table" then walk(node[k], path, fn) else fn(path, node[k]) end
    end
  end
  local rock_dir = ctx.tree .. "/" .. M.rock_dir(ctx.name, ctx.version)
  for _, cat in ipairs(sorted_keys(manifest)) do
    if type(manifest[cat]) == "table" then
      walk(manifest[cat], "", function(path, md5)
        local src = rock .. "/" .. cat .. "/" .. path
        local ok, h = pcall(native.hash, src)
        if not ok or h.md5 ~= md5 then
          U.fail("Hash", ("%s %s: %s/%s in the binary rock %s (rock_manifest says md5 %s); the rock is corrupt. "
            .. "Nothing was changed"):format(ctx.name, ctx.version, cat, path,
            ok and ("has md5 " .. h.md5) or "is missing", md5), { package = ctx.name, file = cat .. "/" .. path })
        end
        if cat == "bin" then
          M.install_bin(ctx, src, path, copy)
        elseif dests[cat] then
          copy(src, dests[cat] .. "/" .. path)
        else
          copy(src, rock_dir .. "/" .. cat .. "/" .. path) -- doc/, tests/: the rock's own folder
        end
      end)
    end
  end
end

--- The rock's documentation, as `luarocks build` copies it into the rock's folder:
--- build.copy_directories (default {"doc"}) that exist, else the top folder's
--- README*, LICENSE*, COPYING* and *.md files into doc/.
function M.copy_docs(ctx, build)
  local rock = ctx.tree .. "/" .. M.rock_dir(ctx.name, ctx.version)
  local dirs = type(build.copy_directories) == "table" and build.copy_directories or { "doc" }
  local any = false
  for _, d in ipairs(dirs) do
    if type(d) == "string" and native.is_dir(ctx.srcdir .. "/" .. d) then
      native.link_tree(ctx.srcdir .. "/" .. d, rock .. "/" .. d)
      any = true
    end
  end
  if any then return end
  for _, file in ipairs(native.list(ctx.srcdir)) do
    local lower = file:lower()
    if (lower:match("^readme") or lower:match("^license") or lower:match("^copying") or lower:match("^.*%.md$"))
      and not native.is_dir(ctx.srcdir .. "/" .. file) then
      native.mkdirs(rock .. "/doc")
      native.copy(ctx.srcdir .. "/" .. file, rock .. "/doc/" .. file)
    end
  end
end

local CATEGORIES = {
  { "^share/lua/[%d%.]+/(.+)$", "lua" },
  { "^lib/lua/[%d%.]+/(.+)$", "lib" },
  { "^bin/(.+)$", "bin" },
  { "^etc/(.+)$", "conf" },
}

--- Writes the rock's metadata folder: the rockspec and rock_manifest (md5 of
--- every installed file by category, as `luarocks install` writes it).
function M.write_rock_files(ctx, rockspec_path)
  local rel = M.rock_dir(ctx.name, ctx.version)
  local dir = ctx.tree .. "/" .. rel
  native.mkdirs(dir)
  local spec_name = ctx.name .. "-" .. ctx.version .. ".rockspec"
  native.copy(rockspec_path, dir .. "/" .. spec_name)
  local manifest = {}
  local function put(cat, path, md5)
    local node = manifest
    if cat then
      manifest[cat] = manifest[cat] or {}
      node = manifest[cat]
    end
    local parts = {}
    for p in path:gmatch("[^/]+") do parts[#parts + 1] = p end
    for i = 1, #parts - 1 do
      node[parts[i]] = node[parts[i]] or {}
      node = node[parts[i]]
    end
    node[parts[#parts]] = md5
  end
  for _, file in ipairs(sorted_keys(native.tree(ctx.tree))) do
    local md5 = native.hash(ctx.tree .. "/" .. file).md5
    local inside = file:sub(1, #rel + 1) == rel .. "/" and file:sub(#rel + 2)
    if inside then
      -- the rock's own folder: its rockspec, and Lua commands kept under bin/
      if inside == spec_name then put(nil, spec_name, md5)
      elseif inside:match("^bin/") then put("bin", inside:sub(5), md5)
      elseif inside ~= "rock_manifest" then put(nil, inside, md5) end -- doc/, tests/, ...
    elseif not file:match("^lib/luarocks/") then
      for _, c in ipairs(CATEGORIES) do
        local path = file:match(c[1])
        if path then
          -- a wrapper stands for the command it runs (recorded above)
          if not (c[2] == "bin" and ctx.commands and ctx.commands[path]) then put(c[2], path, md5) end
          break
        end
      end
    end
  end
  U.write_file(dir .. "/rock_manifest", M.persist({ rock_manifest = manifest }))
end

-- ---------------------------------------------------------------------------
-- per generation: the tree manifest

local function luarocks_version(v)
  local out = { string = v.string }
  for i = 1, #v do out[i] = v[i] end
  if v.revision then out.revision = v.revision end
  return out
end

--- The tree manifest of a set of installed packages (state.packages), as
--- `luarocks install` keeps it: commands, dependencies, modules, repository.
function M.tree_manifest(tree, packages)
  local m = { commands = {}, dependencies = {}, modules = {}, repository = {} }
  for _, name in ipairs(sorted_keys(packages)) do
    local p = packages[name]
    local nv = name .. "/" .. p.version
    local entry = { arch = "installed", commands = {}, dependencies = {}, modules = {} }
    for file in pairs(p.files or {}) do
      local lua = file:match("^share/lua/[%d%.]+/(.+)%.lua$")
      local so = file:match("^lib/lua/[%d%.]+/(.+)%.so$")
      local mod = lua or so
      if mod then
        mod = mod:gsub("/", ".") -- as LuaRocks names them (pl/init.lua is pl.init)
        entry.modules[mod] = file:match("^[^/]+/lua/[%d%.]+/(.+)$")
        m.modules[mod] = m.modules[mod] or {}
        table.insert(m.modules[mod], nv)
      end
      local cmd = file:match("^bin/([^/]+)$")
      if cmd then
        entry.commands[cmd] = cmd
        m.commands[cmd] = m.commands[cmd] or {}
        table.insert(m.commands[cmd], nv)
      end
    end
    for _, d in ipairs(p.dependencies or {}) do
      if packages[d] then entry.dependencies[d] = packages[d].version end
    end
    -- the rockspec's own constraints, from the copy in the rock's folder
    local deps = {}
    local text = U.read_file(("%s/%s/%s-%s.rockspec"):format(tree, M.rock_dir(name, p.version), name, p.version))
    if text then
      local ok, spec = pcall(require("bioxen.pkg.sources").rockspec, text, name)
      for _, d in ipairs(ok and spec.dependencies or {}) do
        local dep = V.parse_dependency(d)
        if dep then
          local cs = {}
          for _, c in ipairs(dep.constraints) do cs[#cs + 1] = { op = c.op, version = luarocks_version(c.version) } end
          deps[#deps + 1] = { name = dep.name, constraints = cs }
        end
      end
    end
    m.dependencies[name] = { [p.version] = deps }
    m.repository[name] = { [p.version] = { entry } }
  end
  for _, list in pairs(m.modules) do table.sort(list) end
  for _, list in pairs(m.commands) do table.sort(list) end
  return M.persist(m)
end

--- Writes the tree manifest into a generation's tree (replacing, never editing,
--- a hard-linked copy).
function M.write_tree_manifest(tree, packages)
  local path = tree .. "/" .. M.MANIFEST
  native.mkdirs(dirname(path))
  os.remove(path)
  U.write_file(path, M.tree_manifest(tree, packages))
end

return M
