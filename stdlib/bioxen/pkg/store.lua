-- bioxen.pkg.store: the store of built packages. Downloads (parallel), md5
-- checks, unpacking, building (staged then renamed) and reuse of intact entries.
local U = require("bioxen.pkg.util")
local native = U.native()
local json = require("bioxen.json")
local V = require("bioxen.pkg.version")
local S = require("bioxen.pkg.sources")
local B = require("bioxen.pkg.build")
local fail = U.fail
local read_file = U.read_file
local write_file = U.write_file
local exists = U.exists
local dirname = U.dirname
local basename = U.basename
local say = U.say
local cache_dir = U.cache_dir
local store_root = U.store_root
local encode = U.encode
local parallel = U.parallel
local sweep = U.sweep
local entry_urls = S.entry_urls
local lua_vars = B.lua_vars
local BUILDERS = B.BUILDERS
local external_deps = B.external_deps
local install_table = B.install_table
local copy_file = B.copy_file

local M = {}

local function archive_kind(path)
  local p = path:lower()
  return p:match("%.tar%.gz$") or p:match("%.tgz$") or p:match("%.zip$") or p:match("%.tar$")
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
local build_staged, install_binary, finish
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

-- A binary rock (NAME-VERSION.ARCH.rock, as `luarocks pack` makes them from an
-- installed tree): its files are checked against its rock_manifest and copied
-- into place; nothing is built.
function install_binary(item, opts, final, stage, work)
  local tree = stage .. "/tree"
  local ctx = { name = item.name, version = item.version, work = work, tree = tree, vars = lua_vars(tree), notes = {} }
  local rock = work .. "/rock"
  native.unpack(item.download.path, rock)
  require("bioxen.pkg.luarocks").install_binary(ctx, rock, copy_file)
  return finish(item, ctx, "binary", final, stage, work)
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
  if item.binary_rock then return install_binary(item, opts, final, stage, work) end
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
    external = spec.external_dependencies,
    format3 = type(spec.rockspec_format) == "string" and V.parse(spec.rockspec_format) ~= nil
      and V.compare(spec.rockspec_format, "3.0") >= 0,
  }
  local build = spec.build or {}
  external_deps(ctx, spec.external_dependencies)
  local builder = BUILDERS[build.type or "builtin"]
  if builder then
    builder(ctx, build)
  else
    -- a LuaRocks build back-end from the rock luarocks-build-TYPE (built first)
    local backend = require("bioxen.pkg.backend")
    local t = tostring(build.type)
    local b = item.plan and item.plan.packages[backend.rock_name(t)]
    if not b then
      fail("Build", ("%s %s: build type %q needs the rock %s (bioxen builds builtin, make, cmake and command "
        .. "itself)"):format(name, version, t, backend.rock_name(t)), { package = name, build_type = t })
    end
    backend.build(ctx, spec, t, store_dir(b.name or backend.rock_name(t), b.version, b.rockspec.sha256) .. "/tree",
      B.build_builtin)
  end
  install_table(ctx, build.install)
  require("bioxen.pkg.luarocks").copy_docs(ctx, build)
  for _, note in ipairs(ctx.notes) do say(opts, "note: %s", note) end
  return finish(item, ctx, build.type or "builtin", final, stage, work)
end

-- The rock's LuaRocks metadata, info.json, then the staged entry renamed into the store.
function finish(item, ctx, build_type, final, stage, work)
  local name, version, tree = item.name, item.version, ctx.tree
  require("bioxen.pkg.luarocks").write_rock_files(ctx, item.rockspec.path)
  local info = {
    name = name, version = version,
    rockspec = { url = item.rockspec.url, sha256 = item.rockspec.sha256 },
    source = { url = item.download.url, sha256 = item.download.sha256 },
    files = native.tree(tree),
    build_type = build_type,
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
    p.binary_rock = url ~= nil and not p.src_rock and url:match("%.rock$") ~= nil
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
  -- every package at once (bounded): unpacking and copying overlap, and the
  -- compilers share the CPU slots (U.with_cpu)
  -- LuaRocks build back-ends (luarocks-build-*) first: other builds may need them
  local backends, rest = {}, {}
  for _, p in ipairs(todo) do
    p.plan = plan
    if p.name:match("^luarocks%-build%-") then backends[#backends + 1] = p else rest[#rest + 1] = p end
  end
  for _, group in ipairs({ backends, rest }) do
    parallel(group, math.min(#group, 16), function(p)
      infos[p.name] = build_one(p, opts)
      bar:step(p.name .. " " .. p.version)
    end)
  end
  bar:finish(("built %d package%s"):format(#todo, #todo == 1 and "" or "s"))
  return infos
end

M.archive_kind = archive_kind
M.store_dir = store_dir
M.load_info = load_info
M.store_intact = store_intact
M.realise = realise
return M
