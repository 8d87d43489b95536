-- bioxen logs [--follow] [--component NAME] [--level LEVEL] [-n N] [--path]:
-- prints bioxen's log file (and its rotated predecessors, oldest first).
-- Reading and filtering are bioxen.log.entries / parse / matches.
local log, task = bioxen.log, bioxen.task

local USAGE = [[
usage: bioxen logs [--follow] [--component NAME] [--level LEVEL] [-n N] [--path]
  -f, --follow        keep printing new lines (across rotations) until Ctrl-C
  --component NAME    only lines from one component: a library (vm, pkg, lrs...),
                      runtime, or the component= field a Lua caller gave
  --level LEVEL       only lines at LEVEL or more severe (trace debug info warn error)
  -n, --lines N       only the last N matching lines of what is already logged
  --path              print the log file's path and exit
The log file is off unless BIOXEN_LOG_FILE or the log.file config key turns it on.]]

local filter, follow, path_only = {}, false, false
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
  if a == "-f" or a == "--follow" then follow = true
  elseif a == "--component" then filter.component = value(a)
  elseif a == "--level" then filter.level = value(a)
  elseif a == "-n" or a == "--lines" then
    filter.last = tonumber(value(a))
    if not filter.last or filter.last < 0 then
      io.stderr:write("bioxen logs: -n needs a count of lines\n")
      os.exit(2)
    end
  elseif a == "--path" then path_only = true
  elseif a == "-h" or a == "--help" then print(USAGE) os.exit(0)
  else
    io.stderr:write("bioxen logs: unknown argument ", a, "\n", USAGE, "\n")
    os.exit(2)
  end
  i = i + 1
end
if filter.level and not log.LEVELS[filter.level:upper()] then
  io.stderr:write("bioxen logs: --level must be one of trace, debug, info, warn, error\n")
  os.exit(2)
end

local path = log.path()
if path_only then print(path) os.exit(0) end

if #log.files() == 0 and not follow then
  io.stderr:write(("bioxen logs: no log file at %s\n"):format(path))
  if not log.file() then
    io.stderr:write("file logging is off: turn it on with BIOXEN_LOG_FILE=info, or bioxen.env.config.set(\"log.file\", \"info\")\n")
  end
  os.exit(1)
end

-- What is there now. The current file is read through the handle that
-- following continues from, so no line is printed twice or skipped.
local current = io.open(path, "rb")
local id = current and log.file_id(path)
local files = log.files()
if current then files[#files] = nil end
local history = {}
local function keep(line)
  if line == "" or not log.matches(log.parse(line), filter) then return end
  history[#history + 1] = line
  if filter.last and #history > filter.last * 2 then
    history = { unpack(history, #history - filter.last + 1) }
  end
end
for _, f in ipairs(files) do
  local h = io.open(f, "rb")
  if h then
    for line in h:lines() do keep(line) end
    h:close()
  end
end
local partial = ""
local function take(text, sink)
  text = partial .. text
  local last_nl = text:match(".*()\n")
  if not last_nl then partial = text return end
  for line in text:sub(1, last_nl - 1):gmatch("[^\n]*") do sink(line) end
  partial = text:sub(last_nl + 1)
end
if current then take(current:read("*a") or "", keep) end
local first = filter.last and math.max(1, #history - filter.last + 1) or 1
for k = first, #history do io.write(history[k], "\n") end
io.stdout:flush()
if not follow then return end

-- Following: print what is appended; when the path names another file (it was
-- rotated), finish the old one and continue with the new one from its start.
local function print_new(line)
  if line ~= "" and log.matches(log.parse(line), filter) then io.write(line, "\n") end
end
local function drain(h)
  local chunk = h:read("*a")
  if chunk and chunk ~= "" then
    take(chunk, print_new)
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
