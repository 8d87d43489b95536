-- bioxen.pkg.install: the changing operations (install, remove, update, pin,
-- rollback), each under the environment's lock.
local U = require("bioxen.pkg.util")
local native = U.native()
local V = require("bioxen.pkg.version")
local S = require("bioxen.pkg.sources")
local ST = require("bioxen.pkg.store")
local E = require("bioxen.pkg.envs")
local L = require("bioxen.pkg.lockfile")
local R = require("bioxen.pkg.resolve")
local fail = U.fail
local read_file = U.read_file
local say = U.say
local local_rock = S.local_rock
local store_dir = ST.store_dir
local realise = ST.realise
local env_dir = E.env_dir
local current_gen = E.current_gen
local load_state = E.load_state
local commit = E.commit
local target_env = E.target_env
local envs = E.envs
local install_locked = L.install_locked

local M = {}

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
  local plan = R.resolve(reqs, { servers = opts.servers, prefer = prefer, pins = pins_of(old), quiet = opts.quiet })
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
  local plan = R.resolve(old.requests,
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
function M.install(requests, opts) return with_lock(opts, do_install, requests, opts) end
--- Removes packages; refuses while another package depends on one (unless opts.force).
function M.remove(names, opts) return with_lock(opts, do_remove, names, opts) end
--- Updates the named packages (or all) to the newest versions the constraints allow.
function M.update(names, opts) return with_lock(opts, do_update, names, opts) end
--- Pins (or with opts.unpin, unpins) installed packages at their current version.
function M.pin(names, opts) return with_lock(opts, do_pin, names, opts) end
--- Returns the environment to generation N (default: the one before the current) atomically.
function M.rollback(n, opts) return with_lock(opts, E.rollback, n, opts) end

return M
