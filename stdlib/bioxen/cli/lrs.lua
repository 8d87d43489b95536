-- bioxen lrs: the learning-record spool and its LRS.
--   bioxen lrs status              spool depth, oldest pending, last error
--   bioxen lrs flush [--timeout S] send everything pending; exit 1 if anything is left
--   bioxen lrs tail [-n N] [--json] [--rejected]
--                                  the last N statements waiting in the spool (or refused)
local lrs = require("bioxen.lrs")
local json = require("bioxen.json")
local args = { ... }
local command = args[1]

local USAGE = [[usage: bioxen lrs status
       bioxen lrs flush [--timeout SECONDS]
       bioxen lrs tail [-n N] [--json] [--rejected]]

local function fail(message, code)
  io.stderr:write("bioxen lrs: ", message, "\n")
  os.exit(code or 1)
end

local function describe_error(e)
  if type(e) ~= "table" then return tostring(e) end
  local text = (e.kind or "Error") .. ": " .. (e.message or json.encode(e))
  if e.status then text = text .. (" [HTTP %s]"):format(e.status) end
  return text
end

local function summary(s)
  local object = s.object and s.object.id or "?"
  local verb = s.verb and s.verb.display and (s.verb.display["en-US"] or select(2, next(s.verb.display))) or "?"
  return ("%s  %s  %-10s %s"):format(s.timestamp or "-", s.id or "-", verb, object)
end

if command == "status" then
  local st = lrs.status()
  print(("endpoint      %s"):format(st.endpoint or "(not configured: set lrs.endpoint or BIOXEN_LRS_ENDPOINT)"))
  print(("spool         %s"):format(st.spool))
  print(("pending       %d"):format(st.pending))
  print(("oldest        %s"):format(st.oldest or "-"))
  print(("rejected      %d%s"):format(st.rejected, st.rejected > 0 and "  (bioxen lrs tail --rejected)" or ""))
  print(("recording     %s"):format(st.recording and "on" or "off"))
  print(("last error    %s"):format(st.last_error and describe_error(st.last_error) or "-"))
elseif command == "flush" then
  local timeout
  local i = 2
  while args[i] do
    if args[i] == "--timeout" then
      timeout = tonumber(args[i + 1])
      if not timeout or timeout < 0 then fail("--timeout needs a number of seconds", 2) end
      i = i + 2
    else
      fail(("unknown option %s\n%s"):format(args[i], USAGE), 2)
    end
  end
  local before = lrs.status().pending
  local ok, err = pcall(lrs.flush, timeout)
  local left = lrs.status().pending
  if not ok then
    fail(("%s; %d statement(s) left in the spool"):format(describe_error(err), left))
  end
  print(("flushed %d statement(s); %d left"):format(before - left, left))
  if left > 0 then os.exit(1) end
elseif command == "tail" then
  local n, raw, rejected = 10, false, false
  local i = 2
  while args[i] do
    local a = args[i]
    if a == "-n" then
      n = tonumber(args[i + 1]) or fail("-n needs a number", 2)
      i = i + 2
    elseif a == "--json" then
      raw, i = true, i + 1
    elseif a == "--rejected" then
      rejected, i = true, i + 1
    else
      fail(("unknown option %s\n%s"):format(a, USAGE), 2)
    end
  end
  if rejected then
    local list = lrs.rejected()
    for k = math.max(1, #list - n + 1), #list do
      local r = list[k]
      if raw then print(json.encode(r)) else
        print(("%s  HTTP %s  %s\n    %s"):format(r.rejected_at, r.status, summary(r.statement), r.reason))
      end
    end
  else
    for _, s in ipairs(lrs.pending(n)) do
      print(raw and json.encode(s) or summary(s))
    end
  end
else
  fail(USAGE, 2)
end
