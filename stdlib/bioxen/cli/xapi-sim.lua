-- bioxen xapi-sim --listen 127.0.0.1:PORT --user U --password P [--pool FILE]
-- Serves a simulated XCP-ng pool over XAPI's XML-RPC and prints its URL as the
-- first line of stdout. The pool file is Lua (returning a table) or JSON.
local xapi = require("bioxen.xapi")
local json = require("bioxen.json")

local USAGE = [[usage: bioxen xapi-sim --listen 127.0.0.1:PORT --user U --password P [--pool FILE]
  --listen ADDR:PORT   where to serve XAPI (port 0 picks a free port)
  --user, --password   the login the pool accepts
  --pool FILE          hosts, templates, networks, SRs, memory (Lua or JSON; see docs/xcpng.md)]]

local opts = { listen = "127.0.0.1:0" }
local args = { ... }
local i = 1
while i <= #args do
  local a = args[i]
  local key = a:match("^%-%-(%w+)$")
  if a == "-h" or a == "--help" then
    print(USAGE)
    return
  elseif key == "listen" or key == "user" or key == "password" or key == "pool" then
    if args[i + 1] == nil then
      io.stderr:write("bioxen xapi-sim: ", a, " needs a value\n", USAGE, "\n")
      os.exit(2)
    end
    opts[key] = args[i + 1]
    i = i + 2
  else
    io.stderr:write("bioxen xapi-sim: unknown argument ", a, "\n", USAGE, "\n")
    os.exit(2)
  end
end
if not opts.user or not opts.password then
  io.stderr:write("bioxen xapi-sim: --user and --password are required\n", USAGE, "\n")
  os.exit(2)
end

local pool
if opts.pool then
  local f, err = io.open(opts.pool, "rb")
  if not f then error(bioxen.error("NotFound", "cannot open the pool file: " .. tostring(err))) end
  local text = f:read("*a")
  f:close()
  if opts.pool:match("%.json$") then
    pool = json.decode(text)
  else
    local chunk, perr = loadstring(text, "@" .. opts.pool)
    if not chunk then error(bioxen.error("Syntax", "pool file: " .. perr)) end
    pool = chunk()
  end
end

local sim = xapi.simulator({ listen = opts.listen, user = opts.user, password = opts.password, pool = pool })
print(sim.url)
io.stdout:flush()
if sim.ssh_key then
  io.stderr:write("xapi-sim: guests authorise the generated key ", sim.ssh_key, "\n")
end
sim:wait()
