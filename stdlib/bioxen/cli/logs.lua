-- bioxen logs [--follow] [--component NAME] [--level LEVEL] [-n N] [--path]:
-- prints bioxen's log file (and its rotated predecessors, oldest first).
local log, task = bioxen.log, bioxen.task

local USAGE = [[
usage: bioxen logs [--follow] [--component NAME] [--level LEVEL] [-n N] [--path]
  -f, --follow        keep printing new lines (across rotations) until Ctrl-C
  --component NAME    only lines from one component: a library (vm, pkg, lrs...),
                      runtime, or a Lua script's component= field
  --level LEVEL       only lines at LEVEL or more severe (trace debug info warn error)
  -n, --lines N       only the last N matching lines of what is already logged
  --path              print the log file's path and exit
The log file is off unless BIOXEN_LOG_FILE or the log.file config key turns it on.]]

local opts = { follow = false }
local args = { ... }
local i = 1
local function value(flag)
  i = i + 1
  if args[i] == nil then
    io.stderr:write("bioxen logs: ", flag, " needs a value\n")
    os.exit(2)
  end
  return args[i]
end
while i <= #args do
  local a = args[i]
  if a == "-f" or a == "--follow" then opts.follow = true
  elseif a == "--component" then opts.component = value(a)
  elseif a == "--level" then opts.level = value(a):upper()
  elseif a == "-n" or a == "--lines" then opts.lines = tonumber(value(a))
  elseif a == "--path" then opts.path_only = true
  elseif a == "-h" or a == "--help" then print(USAGE) os.exit(0)
  else
    io.stderr:write("bioxen logs: unknown argument ", a, "\n", USAGE, "\n")
    os.exit(2)
  end
  i = i + 1
end

local LEVELS = { TRACE = 1, DEBUG = 2, INFO = 3, WARN = 4, ERROR = 5 }
if opts.level and not LEVELS[opts.level] then
  io.stderr:write("bioxen logs: --level must be one of trace, debug, info, warn, error\n")
  os.exit(2)
end

local settings = log.file()
local path = settings and settings.path or (bioxen.env.dirs().data .. "/logs/bioxen.log")
if opts.path_only then print(path) os.exit(0) end

--- The component of a log line: a Rust library's module path
--- (bioxen::library::NAME::...), another bioxen module (bioxen::NAME), or the
--- component= field a Lua script gave bioxen.log.
local function component_of(target, text)
  local c = text:match('component="?([%w_%.%-]+)')
  if c then return c end
  if not target then return nil end
  return target:match("^bioxen::library::([%w_]+)") or target:match("^bioxen::([%w_]+)") or target
end

local function parse(line)
  if line:sub(1, 1) == "{" then
    local ok, e = pcall(bioxen.json.decode, line)
    if ok and type(e) == "table" then
      local fields = e.fields or {}
      local text = tostring(fields.message or "")
      if fields.component then text = text .. ' component="' .. tostring(fields.component) .. '"' end
      return e.level, e.target, text
    end
  end
  local level, target, text = line:match("^%S+%s+(%u+)%s+([%w_:%.%-]+):%s?(.*)$")
  return level, target, text or line
end

local function wanted(line)
  if not opts.component and not opts.level then return true end
  local level, target, text = parse(line)
  if opts.level and (LEVELS[level or ""] or 0) < LEVELS[opts.level] then return false end
  if opts.component and component_of(target, text) ~= opts.component then return false end
  return true
end

local files = {}
do
  local dir, base = path:match("^(.*)/([^/]*)$")
  local numbered = {}
  local p = io.popen(("ls -1 %q 2>/dev/null"):format(dir))
  for name in p:lines() do
    local n = name:sub(1, #base + 1) == base .. "." and tonumber(name:sub(#base + 2))
    if n then numbered[#numbered + 1] = n end
  end
  p:close()
  table.sort(numbered, function(a, b) return a > b end)
  for _, n in ipairs(numbered) do files[#files + 1] = path .. "." .. n end
end

local current = io.open(path, "rb")
if not current and #files == 0 and not opts.follow then
  io.stderr:write(("bioxen logs: no log file at %s\n"):format(path))
  if not settings then
    io.stderr:write("file logging is off: turn it on with BIOXEN_LOG_FILE=info, or bioxen.env.config.set(\"log.file\", \"info\")\n")
  end
  os.exit(1)
end

local kept = {}
local function emit_history(line)
  if not wanted(line) then return end
  if opts.lines then
    kept[#kept + 1] = line
    if #kept > opts.lines then table.remove(kept, 1) end
  else
    io.write(line, "\n")
  end
end
for _, f in ipairs(files) do
  local h = io.open(f, "rb")
  if h then
    for line in h:lines() do emit_history(line) end
    h:close()
  end
end
local partial = ""
if current then
  local text = current:read("*a")
  local last_nl = text:match(".*()\n")
  if last_nl then
    for line in text:sub(1, last_nl - 1):gmatch("[^\n]*") do
      if line ~= "" then emit_history(line) end
    end
    partial = text:sub(last_nl + 1)
  else
    partial = text
  end
end
for _, line in ipairs(kept) do io.write(line, "\n") end
io.stdout:flush()
if not opts.follow then return end

-- Following: read what was appended; when the path names another file (it was
-- rotated), finish the old one and continue with the new one from its start.
local id = current and log.file_id(path)
local function drain(h)
  local chunk = h:read("*a")
  if chunk and chunk ~= "" then
    local text = partial .. chunk
    local last_nl = text:match(".*()\n")
    if last_nl then
      for line in text:sub(1, last_nl - 1):gmatch("[^\n]*") do
        if line ~= "" and wanted(line) then io.write(line, "\n") end
      end
      partial = text:sub(last_nl + 1)
    else
      partial = text
    end
    io.stdout:flush()
  end
end
while true do
  if current then drain(current) end
  local now = log.file_id(path)
  if now and now ~= id then
    if current then drain(current) current:close() end
    partial = ""
    current = io.open(path, "rb")
    id = now
  end
  task.sleep(0.2)
end
