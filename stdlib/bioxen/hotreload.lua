-- bioxen.hotreload: reloading required modules in a running program.
-- `reload(name)` runs the module's file again and patches the table callers
-- already hold, so they see the new functions; `watch(name)` does it when the
-- file changes. A new version that fails to load or run leaves the old one in
-- place. `bioxen.reload` and `bioxen.watch` are shortcuts to these functions.
local native = ...
local M = {}

local files = {}   -- module name -> file it was loaded from
local watched = {} -- absolute path -> { module names }

local function fail(kind, message, details, level)
  error(bioxen.error(kind, message, details), level + 1)
end

-- Where `name` lives on disk, or nil for embedded and C modules.
local function file_of(name)
  return files[name] or package.searchpath(name, package.path)
end

local function shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Error handler: a message with the file and line it came from.
local function located(e)
  local msg = tostring(e)
  if type(e) ~= "string" then
    for level = 2, 30 do
      local info = debug.getinfo(level, "Sl")
      if not info then break end
      if info.currentline and info.currentline > 0 and info.what ~= "C" then
        msg = info.short_src .. ":" .. info.currentline .. ": " .. msg
        break
      end
    end
  end
  return msg
end

local function reload_error(name, path, msg)
  local file, line = msg:match("^(.-):(%d+): ")
  return bioxen.error("Reload", ("cannot reload '%s', keeping the old version: %s"):format(name, msg),
    { module = name, file = file or path, line = tonumber(line) })
end

-- Functions of the new version that captured the new table as an upvalue
-- (the usual `local M = {}`) are pointed at the table callers hold instead.
local function rewire(value, from, to, seen)
  if seen[value] then return end
  seen[value] = true
  if type(value) == "function" then
    for i = 1, 255 do
      local upname, upvalue = debug.getupvalue(value, i)
      if upname == nil then break end
      if rawequal(upvalue, from) then
        debug.setupvalue(value, i, to)
      elseif type(upvalue) == "function" then
        rewire(upvalue, from, to, seen)
      end
    end
  elseif type(value) == "table" and not rawequal(value, to) then
    for _, v in pairs(value) do
      if type(v) == "function" or type(v) == "table" then rewire(v, from, to, seen) end
    end
  end
end

--- Reloads the required module `name` from its file. Returns true, or false
--- and an error value (kind "Reload", with file and line) when the new version
--- fails; the old version then stays in place.
function M.reload(name)
  if type(name) ~= "string" then
    fail("Argument", "reload needs a module name (a string), got " .. type(name), nil, 2)
  end
  local old = package.loaded[name]
  if old == nil then
    fail("Argument", ("module '%s' is not loaded: require it before reloading it"):format(name), { module = name }, 2)
  end
  local path = file_of(name)
  if not path then
    fail("NotFound", ("module '%s' has no Lua file on package.path; only file modules can be reloaded"):format(name),
      { module = name }, 2)
  end
  files[name] = path
  local chunk, err = loadfile(path)
  if not chunk then return false, reload_error(name, path, err) end
  local ok, new = xpcall(chunk, located, name, path)
  if not ok then return false, reload_error(name, path, new) end
  if new == nil then new = package.loaded[name] end
  if type(old) ~= "table" or type(new) ~= "table" or rawequal(old, new) then
    package.loaded[name] = new == nil and true or new
    return true
  end
  local hook = rawget(new, "__reload")
  if type(hook) == "function" then
    local hooked, herr = xpcall(hook, located, shallow_copy(old))
    if not hooked then return false, reload_error(name, path, herr) end
  end
  for k in pairs(shallow_copy(old)) do
    if rawget(new, k) == nil then old[k] = nil end
  end
  for k, v in pairs(new) do old[k] = v end
  setmetatable(old, getmetatable(new))
  rewire(new, new, old, {})
  package.loaded[name] = old
  return true
end

local function report(name, ok, err)
  if ok then
    io.stderr:write(("bioxen: reloaded %s\n"):format(name))
  else
    io.stderr:write(("bioxen: %s\n"):format(tostring(err.message)))
  end
  io.stderr:flush()
end

--- Applies the given changed files (absolute paths): reloads their modules.
local function apply(paths)
  local count = 0
  for _, path in ipairs(paths) do
    for _, name in ipairs(watched[path] or {}) do
      if package.loaded[name] ~= nil then
        local ok, err = M.reload(name)
        report(name, ok, err)
        if ok then count = count + 1 end
      end
    end
  end
  return count
end

--- Reloads watched modules whose files changed since the last check; returns
--- how many were reloaded. The REPL calls it before each input; long-running
--- scripts get it automatically whenever they wait (sleep, I/O), or may call it.
function M.poll()
  return apply(native.take())
end

--- Watches module `name` (required now if it was not yet) and reloads it
--- whenever its file changes. Returns the module.
function M.watch(name)
  if type(name) ~= "string" then
    fail("Argument", "watch needs a module name (a string), got " .. type(name), nil, 2)
  end
  local module = package.loaded[name]
  if module == nil then module = require(name) end
  local path = file_of(name)
  if not path then
    fail("NotFound", ("module '%s' has no Lua file on package.path; only file modules can be watched"):format(name),
      { module = name }, 2)
  end
  files[name] = path
  local abs = native.add(path)
  local names = watched[abs] or {}
  watched[abs] = names
  for _, n in ipairs(names) do
    if n == name then return module end
  end
  names[#names + 1] = name
  native.start(apply)
  return module
end

--- Stops watching module `name`.
function M.unwatch(name)
  for path, names in pairs(watched) do
    for i = #names, 1, -1 do
      if names[i] == name then table.remove(names, i) end
    end
    if #names == 0 then
      watched[path] = nil
      native.remove(path)
    end
  end
end

--- The watched module names, sorted.
function M.watched()
  local out = {}
  for _, names in pairs(watched) do
    for _, n in ipairs(names) do out[#out + 1] = n end
  end
  table.sort(out)
  return out
end

return M
