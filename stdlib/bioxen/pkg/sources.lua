-- bioxen.pkg.sources: servers and their manifests, rockspec evaluation and
-- fetching (in parallel, cached), local rock files, search and info.
local U = require("bioxen.pkg.util")
local native = U.native()
local V = require("bioxen.pkg.version")
local envlib = require("bioxen.env")
local fail = U.fail
local read_file = U.read_file
local write_file = U.write_file
local exists = U.exists
local basename = U.basename
local sorted_keys = U.sorted_keys
local say = U.say
local cache_dir = U.cache_dir
local parallel = U.parallel
local slug = U.slug
local is_url = U.is_url
local LUA_VERSION = U.LUA_VERSION
local PLATFORMS = U.PLATFORMS
local DEFAULT_SERVERS = U.DEFAULT_SERVERS
local MANIFEST_TTL = U.MANIFEST_TTL

local M = {}

local BUILTIN_TYPES = { builtin = true, module = true, none = true, make = true, cmake = true, command = true }

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
function M.index(opts)
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
            -- a binary rock for this platform (else one for all) is installed without building
            if a.arch == U.platform() then e.binary = a.arch
            elseif a.arch == "all" and not e.binary then e.binary = "all" end
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
function M.rockspec(text, name)
  local spec = native.eval(text, name or "rockspec")
  if type(spec.package) ~= "string" or type(spec.version) ~= "string" then
    fail("Rockspec", (name or "rockspec") .. " has no package or version field")
  end
  for _, field in ipairs({ "build", "dependencies", "build_dependencies", "external_dependencies", "source" }) do
    platform_overrides(spec[field])
  end
  spec.name = spec.package:lower()
  spec.dependencies = spec.dependencies or {}
  -- as LuaRocks (3.9+): a build type LuaRocks does not have itself is built by
  -- the back-end rock luarocks-build-TYPE, an implicit build dependency
  local btype = type(spec.build) == "table" and spec.build.type
  if type(btype) == "string" and not BUILTIN_TYPES[btype] then
    local rock, listed = "luarocks-build-" .. btype, false
    for _, d in ipairs(spec.build_dependencies or {}) do
      if type(d) == "string" and d:lower():match("^%s*([%w%.%-%_]+)") == rock then listed = true end
    end
    if not listed then
      spec.build_dependencies = spec.build_dependencies or {}
      table.insert(spec.build_dependencies, rock)
    end
  end
  -- build dependencies go into the same tree before the build, as LuaRocks installs them
  for _, d in ipairs(spec.build_dependencies or {}) do table.insert(spec.dependencies, d) end
  return spec
end

local function entry_urls(e)
  local stem = e.server .. "/" .. e.name .. "-" .. e.version
  -- as LuaRocks: a binary rock (this platform's, else .all.rock) before the .src.rock
  local rock = (e.binary and (stem .. "." .. e.binary .. ".rock")) or (e.src and (stem .. ".src.rock")) or nil
  return stem .. ".rockspec", rock
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
      local spec = M.rockspec(read_file(r.path), basename(r.url))
      rockspec_cache[r.url] = { spec = spec, path = r.path, sha256 = r.sha256, url = r.url }
    end
  end
  local out = {}
  for i, e in ipairs(entries) do out[i] = rockspec_cache[(entry_urls(e))] end
  return out
end


-- `pkg install FILE`: a .src.rock or .rockspec on disk becomes a one-rock
-- repository in the cache; returns the request "name == version" for it.
local function local_rock(r)
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

--- Packages on the servers whose name contains `text`.
function M.search(text, opts)
  text = (text or ""):lower()
  local index, out = M.index(opts), {}
  local dir = cache_dir() .. "/rockspecs"
  -- descriptions come from rockspecs already fetched (install, info, an earlier
  -- search) unless opts.fetch asks for the newest rockspec of every package
  local newest = {}
  for _, name in ipairs(sorted_keys(index)) do
    local versions = sorted_keys(index[name])
    V.sort(versions)
    newest[name] = { versions = versions, entry = index[name][versions[1]] }
  end
  if opts and opts.fetch then
    local entries = {}
    for _, name in ipairs(sorted_keys(newest)) do entries[#entries + 1] = newest[name].entry end
    local ok, err = pcall(load_rockspecs, entries)
    if not ok then say(opts, "warning: %s", tostring(err)) end
  end
  local function description(e)
    local url = entry_urls(e)
    local rs = rockspec_cache[url]
    if not rs then
      local path = dir .. "/" .. slug(url)
      local spec_text = read_file(path)
      local ok, spec = pcall(M.rockspec, spec_text or "", basename(url))
      if not (spec_text and ok) then return nil end
      rs = { spec = spec, path = path, url = url, sha256 = native.hash(path).sha256 }
      rockspec_cache[url] = rs
    end
    return type(rs.spec.description) == "table" and rs.spec.description or nil
  end
  -- the catalog: a collection whose name or summary matches lists its packages
  local collections = {}
  for cname, col in pairs(require("bioxen.pkg.profiles").catalog().collections) do
    if cname:lower():find(text, 1, true) or tostring(col.summary or ""):lower():find(text, 1, true) then
      for _, p in ipairs(col.packages or {}) do collections[p] = collections[p] or cname end
    end
  end
  for _, name in ipairs(sorted_keys(newest)) do
    local d = description(newest[name].entry)
    local summary = d and type(d.summary) == "string" and d.summary or nil
    local detailed = d and type(d.detailed) == "string" and d.detailed or ""
    local matched
    if name:find(text, 1, true) then matched = "name"
    elseif summary and summary:lower():find(text, 1, true) then matched = "summary"
    elseif detailed:lower():find(text, 1, true) then matched = "description"
    elseif collections[name] then matched = "collection " .. collections[name] end
    if matched then
      out[#out + 1] = { name = name, versions = newest[name].versions, summary = summary, matched = matched }
    end
  end
  return out
end

--- Details of a package: versions, the newest rockspec's description and dependencies.
function M.info(name, opts)
  local E = require("bioxen.pkg.envs")
  local index = M.index(opts)
  local entries = index[name and name:lower() or ""]
  if not entries then fail("NotFound", ("no package %q on %s"):format(tostring(name), table.concat(servers(opts), ", "))) end
  local versions = sorted_keys(entries)
  V.sort(versions)
  local rs = load_rockspecs({ entries[versions[1]] })[1]
  local installed = E.load_state(opts and opts.env or E.envs.active()).packages[name]
  return {
    name = name, versions = versions, latest = versions[1], server = entries[versions[1]].server,
    summary = rs.spec.description and rs.spec.description.summary,
    homepage = rs.spec.description and rs.spec.description.homepage,
    license = rs.spec.description and rs.spec.description.license,
    dependencies = rs.spec.dependencies, installed = installed and installed.version,
  }
end

M.servers = servers
M.entry_urls = entry_urls
M.load_rockspecs = load_rockspecs
M.local_rock = local_rock
return M
