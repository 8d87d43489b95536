-- bioxen session: persistent interactive sessions from any terminal.
local session = bioxen.session
local native = session.native

local USAGE = [[
usage: bioxen session list
       bioxen session new NAME [--backend thread|process] [--sandbox strict|standard|trusted]
                               [--env ENV] [--timeout S]
       bioxen session attach [--force] NAME     (Ctrl-D or .detach detaches)
       bioxen session send [--force] NAME CODE  (prints what CODE printed)
       bioxen session kill NAME
       bioxen session status                    (is the session host running?)
       bioxen session stop                      (stop the session host and all its sessions)
Persistent sessions live in a session host that bioxen starts on demand.]]

local args = { ... }
local verb = table.remove(args, 1)

local function die(message)
  io.stderr:write("bioxen session: ", message, "\n")
  os.exit(1)
end

local function flags(list, known)
  local out, rest = {}, {}
  local i = 1
  while i <= #list do
    local a = list[i]
    local name = a:match("^%-%-(.+)$")
    if name then
      local kind = known[name]
      if kind == nil then die(("unknown option --%s\n%s"):format(name, USAGE)) end
      if kind == "flag" then
        out[name] = true
      else
        i = i + 1
        if list[i] == nil then die(("--%s needs a value"):format(name)) end
        out[name] = list[i]
      end
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return out, rest
end

local function report_lost(lost)
  if lost then
    local names = #lost.sessions > 0 and table.concat(lost.sessions, ", ") or "none"
    io.stderr:write(("bioxen: the session host (pid %d) had died; sessions lost: %s; a new session host was started\n")
      :format(lost.pid, names))
  end
end

-- Errors from the host arrive as values with a kind; print them plainly.
local function call(f, ...)
  local ok, r, lost = pcall(f, ...)
  if not ok then
    if type(r) == "userdata" and r.kind then die(tostring(r)) end
    error(r, 0)
  end
  return r, lost
end

local function request(req)
  local r, lost = call(session.host_request, req)
  report_lost(lost)
  return r
end

local function need_name(rest)
  local name = rest[1]
  if name == nil then die("needs a session NAME\n" .. USAGE) end
  return name
end

if verb == nil or verb == "help" or verb == "--help" or verb == "-h" then
  print(USAGE)
elseif verb == "list" then
  local r = request({ op = "list" })
  if #r.sessions == 0 then
    print(("no sessions (session host pid %d)"):format(r.pid))
  else
    print(("%-20s %-8s %-8s %-9s %-20s %s"):format("NAME", "STATUS", "BACKEND", "SANDBOX", "CREATED", "ATTACHED"))
    for _, s in ipairs(r.sessions) do
      print(("%-20s %-8s %-8s %-9s %-20s %s"):format(s.name, s.status, s.backend, s.sandbox,
        os.date("%Y-%m-%d %H:%M:%S", math.floor(s.created)), s.holder or "no"))
    end
  end
elseif verb == "new" then
  local o, rest = flags(args, { sandbox = "value", env = "value", timeout = "value", backend = "value" })
  local name = need_name(rest)
  local req = { op = "new", name = name, sandbox = o.sandbox, timeout = tonumber(o.timeout), backend = o.backend }
  if o.env then
    req.package_path = { call(session.env_path, o.env) }
    req.sandbox = req.sandbox or "standard"
  end
  request(req)
  print(("session '%s' created; bioxen session attach %s"):format(name, name))
elseif verb == "attach" then
  local o, rest = flags(args, { force = "flag" })
  local name = need_name(rest)
  call(native.attach_repl, name, o.force or false)
elseif verb == "send" then
  local o, rest = flags(args, { force = "flag" })
  local name = need_name(rest)
  local code = rest[2]
  if code == nil then die("send needs CODE: bioxen session send NAME CODE") end
  local conn, lost = call(session.host_connect, true)
  report_lost(lost)
  call(conn.request, conn, { op = "send", name = name, text = code, force = o.force or false })
  local r = call(conn.request, conn, { op = "read", name = name, force = o.force or false })
  conn:close()
  io.write(r.text)
elseif verb == "kill" then
  local name = need_name(args)
  request({ op = "kill", name = name })
  print(("session '%s' killed"):format(name))
elseif verb == "status" then
  local s = native.host_status()
  if s.running then
    print(("session host running (pid %s) on %s"):format(tostring(s.pid), s.socket))
  else
    print("no session host running")
  end
elseif verb == "stop" then
  local s = native.host_status()
  if not s.running then
    print("no session host running")
  else
    call(session.host_request, { op = "stop" }, false)
    print("session host stopped")
  end
elseif verb == "host" then
  -- Hidden: the session host daemon itself (started on demand by clients).
  call(native.serve_host)
else
  die(("unknown command '%s'\n%s"):format(tostring(verb), USAGE))
end
