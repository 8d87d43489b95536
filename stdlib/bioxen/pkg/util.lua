-- bioxen.pkg.util: helpers every part of the curator shares (files, folders, the
-- native primitives, bounded parallelism). Internal to bioxen.pkg.
local json = require("bioxen.json")
local envlib = require("bioxen.env")
local task = require("bioxen.task")

local U = {}

-- The native half (src/std/pkg) reaches the Lua half as bioxen.pkg's chunk
-- argument; bioxen.pkg hands it over here before it loads the other parts.
local native_table
function U.set_native(n) native_table = n end
function U.native()
  if not native_table then require("bioxen.pkg") end
  return native_table
end
local native = setmetatable({}, { __index = function(_, k) return U.native()[k] end })

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

local function is_url(s) return s:match("^%a[%w+.-]*://") ~= nil end

local function slug(s) return (s:gsub("[^%w%.%-]", "_")) end

-- LuaRocks' name of this platform for binary rocks ("linux-x86_64").
function U.platform()
  local f = bioxen.env.facts()
  return f.os .. "-" .. f.arch
end

-- CPU slots: at most one compiler (or build command) per CPU at once, across
-- every package being built, so independent C files and rocks share the CPUs
-- without oversubscribing them. A freed slot goes to the heaviest waiting job
-- (weight: e.g. the source's size), so the longest compile does not start last.
local slots = { busy = 0, waiting = {} }
function U.with_cpu(weight, fn)
  local limit = math.max(1, bioxen.env.facts().cpus or 1)
  if slots.busy < limit and #slots.waiting == 0 then
    slots.busy = slots.busy + 1
  else
    -- wait on a gate task the releaser cancels (a wake-up, not polling)
    local me = { weight = weight or 0, gate = task.spawn(function() task.sleep(1e9) end) }
    slots.waiting[#slots.waiting + 1] = me
    pcall(task.wait, me.gate)
  end
  local result = { pcall(fn) }
  local best
  for i, w in ipairs(slots.waiting) do
    if not best or w.weight > slots.waiting[best].weight then best = i end
  end
  if best then
    task.cancel(table.remove(slots.waiting, best).gate) -- the slot passes on
  else
    slots.busy = slots.busy - 1
  end
  if not result[1] then error(result[2], 0) end
  return unpack(result, 2)
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

local function pid_alive(pid) return native.is_dir("/proc/" .. pid) end

-- Removes what interrupted runs left behind (staging folders of dead processes).
local function sweep(dir)
  for _, name in ipairs(native.list(dir)) do
    local pid = name:match("%.tmp%-(%d+)$") or name:match("%.old%-(%d+)$")
    if pid and not pid_alive(pid) then native.remove_tree(dir .. "/" .. name) end
  end
end

U.fail = fail
U.read_file = read_file
U.write_file = write_file
U.exists = exists
U.dirname = dirname
U.basename = basename
U.sorted_keys = sorted_keys
U.say = say
U.data_dir = data_dir
U.cache_dir = cache_dir
U.envs_root = envs_root
U.store_root = store_root
U.encode = encode
U.run = run
U.is_url = is_url
U.slug = slug
U.parallel = parallel
U.pid_alive = pid_alive
U.sweep = sweep
U.LUA_VERSION = LUA_VERSION
U.PROVIDED = PROVIDED
U.PLATFORMS = PLATFORMS
U.DEFAULT_SERVERS = DEFAULT_SERVERS
U.MANIFEST_TTL = MANIFEST_TTL
--- Splits the words after the verb of `bioxen COMMAND` (pkg or env) into
--- options and the remaining words. `spec.values` and `spec.flags` name the
--- options that take a value and those that do not; `--server` collects into
--- `opts.servers`; `spec.read[name](opts, value)` handles a value itself.
function U.command_line(command, args, spec)
  local opts, rest = { servers = {} }, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-(.*)")
    if name and spec.values[name] then
      local v = args[i + 1]
      if not v then error(bioxen.error("Argument", a .. " needs a value"), 0) end
      if name == "server" then opts.servers[#opts.servers + 1] = v
      elseif spec.read and spec.read[name] then spec.read[name](opts, v)
      else opts[name] = v end
      i = i + 2
    elseif name and spec.flags[name] then
      opts[name] = true
      i = i + 1
    elseif a == "-h" or a == "--help" then
      print(spec.usage) os.exit(0)
    elseif name then
      error(bioxen.error("Argument", ("unknown option %s (bioxen %s --help)"):format(a, command)), 0)
    else
      rest[#rest + 1] = a
      i = i + 1
    end
  end
  return opts, rest
end

--- Runs `main` of the `bioxen pkg` / `bioxen env` command NAME: an error is
--- reported as "bioxen NAME: Kind: message" without a Lua traceback and exits
--- 1; Ctrl-C keeps its own exit status.
function U.run_command(name, main)
  local ok, err = pcall(main)
  if ok then return end
  if type(err) ~= "string" and err.kind == "Interrupted" then error(err, 0) end
  io.stderr:write("bioxen ", name, ": ", tostring(err), "\n")
  os.exit(1)
end

return U
