-- bioxen.pkg.envs: environments and generations. Each change is a new
-- generation of hard links, staged, renamed, then `current` swapped atomically.
local U = require("bioxen.pkg.util")
local native = U.native()
local json = require("bioxen.json")
local V = require("bioxen.pkg.version")
local fail = U.fail
local read_file = U.read_file
local write_file = U.write_file
local exists = U.exists
local sorted_keys = U.sorted_keys
local envs_root = U.envs_root
local encode = U.encode
local sweep = U.sweep
local LUA_VERSION = U.LUA_VERSION

local M = {}

-- ---------------------------------------------------------------------------
-- environments and generations

local function check_env_name(name)
  if type(name) ~= "string" or not name:match("^[%w][%w%-%_%.]*$") then
    fail("Argument", ("environment name %q: use letters, digits, '.', '-' and '_'"):format(tostring(name)))
  end
end

local function env_dir(name) return envs_root() .. "/" .. name end

local envs = {}
local read_env

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
  local p = opts.profile and require("bioxen.pkg.profiles").show(opts.profile)
  native.mkdirs(env_dir(name) .. "/gens")
  if p then
    local ok, err = pcall(require("bioxen.pkg").install, p.packages,
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
  local ok, result = pcall(require("bioxen.pkg").install, {},
    { env = name, locked = true, lockfile = text, quiet = opts.quiet, servers = opts.servers })
  if not ok then
    if fresh then native.remove_tree(env_dir(name)) end
    error(result, 0)
  end
  return result
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
-- `from_tree` (rollback): hard-link that generation's tree instead of the store entries.
local function commit(name, state, action, from_tree)
  ensure_env(name)
  local old = load_state(name)
  local before = old.packages
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
  if from_tree then native.link_tree(from_tree, stage .. "/tree") end
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
    if not from_tree then native.link_tree(p.store .. "/tree", stage .. "/tree") end
  end
  -- `previous`: the generation this one replaced, where a plain rollback returns
  state.generation, state.action, state.created, state.previous = n, action, os.time(), old.generation
  state.requests = json.array(state.requests or {})
  for _, p in pairs(state.packages) do p.dependencies = json.array(p.dependencies or {}) end
  -- the tree manifest `luarocks --tree` reads (written, not linked: it spans every package)
  require("bioxen.pkg.luarocks").write_tree_manifest(stage .. "/tree", state.packages)
  write_file(stage .. "/state.json", encode(state))
  write_file(stage .. "/bioxen.lock", encode(require("bioxen.pkg.lockfile").lock_of(state)))
  local ok, err = os.rename(stage, ("%s/%d"):format(gens, n))
  if not ok then fail("Io", "cannot finish the generation: " .. tostring(err)) end
  native.swap_link("gens/" .. n, env_dir(name) .. "/current")
  record_changes(name, before, state.packages)
  return n
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

--- Installed packages: list of { name, version, pinned, requested }.
function M.list(opts)
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
function M.lock(opts)
  local env = read_env(opts)
  return require("bioxen.pkg.lockfile").lock_of(load_state(env))
end

--- Generations of an environment, oldest first.
function M.history(opts)
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
    out[#out + 1] = { generation = n, action = s.action, created = s.created, packages = count, current = n == cur,
      previous = s.previous }
  end
  return out
end

--- Returns the environment to generation N (default: the one before the current) atomically.
--- As Nix does, a rollback is itself a change: a new generation with generation
--- N's packages (its tree hard-linked), so history shows it and it can be undone.
function M.rollback(n, opts)
  local env = read_env(opts)
  local cur = current_gen(env)
  if n == nil then
    -- the generation the current one replaced (so rolling back a rollback undoes it);
    -- generations written before bioxen recorded that: the one numbered before
    local s = cur > 0 and load_state(env)
    local best = s and s.previous
    if not best or best < 1 then
      best = nil
      for _, h in ipairs(M.history(opts)) do
        if h.generation < cur then best = h.generation end
      end
    end
    if not best then fail("NotFound", ("environment %s has no generation before %d to roll back to"):format(env, cur)) end
    n = best
  end
  n = tonumber(n)
  local dir = n and ("%s/gens/%d"):format(env_dir(env), n)
  if not n or not native.is_dir(dir) then
    fail("NotFound", ("environment %s has no generation %s (bioxen pkg history lists them)"):format(env, tostring(n)))
  end
  if n == cur then
    fail("Argument", ("environment %s is at generation %d already"):format(env, n))
  end
  local text = read_file(dir .. "/state.json")
  if not text then fail("Env", ("environment %s: generation %d has no state.json"):format(env, n)) end
  local state = json.decode(text)
  state.packages, state.requests = state.packages or {}, state.requests or {}
  local g = commit(env, state, "rollback to " .. n, dir .. "/tree")
  return { env = env, generation = g, restored = n, previous = cur }
end

M.check_env_name = check_env_name
M.env_dir = env_dir
M.current_gen = current_gen
M.load_state = load_state
M.ensure_env = ensure_env
M.commit = commit
M.read_env = read_env
M.target_env = target_env
M.envs = envs
return M
