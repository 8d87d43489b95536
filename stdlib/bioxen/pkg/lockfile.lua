-- bioxen.pkg.lockfile: bioxen.lock (format bioxen.lock/1) and reproducing an
-- environment from one byte for byte (`pkg install --locked`).
local U = require("bioxen.pkg.util")
local native = U.native()
local json = require("bioxen.json")
local ST = require("bioxen.pkg.store")
local E = require("bioxen.pkg.envs")
local S = require("bioxen.pkg.sources")
local fail = U.fail
local read_file = U.read_file
local basename = U.basename
local sorted_keys = U.sorted_keys
local cache_dir = U.cache_dir
local slug = U.slug
local LUA_VERSION = U.LUA_VERSION
local store_dir = ST.store_dir
local load_info = ST.load_info
local store_intact = ST.store_intact
local realise = ST.realise
local commit = E.commit

local M = {}

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
        rockspec = { spec = S.rockspec(read_file(r.path), basename(r.url)), url = r.url, sha256 = r.sha256, path = r.path },
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

M.lock_of = lock_of
M.install_locked = install_locked
return M
