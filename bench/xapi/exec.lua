-- Remote exec round trips over one SSH connection from bioxen.
-- usage: bioxen bench/xapi/exec.lua PORT KEY KNOWN_HOSTS N
local port, key, known, n = ...
n = tonumber(n or 200)
local c = bioxen.ssh.connect({ host = "127.0.0.1", port = tonumber(port), key = key, known_hosts = known, accept_new = true })
for _ = 1, 10 do c:exec("true") end
local start = tonumber(io.popen("date +%s.%N"):read("*l"))
for _ = 1, n do assert(c:exec("true").ok) end
local s = tonumber(io.popen("date +%s.%N"):read("*l")) - start
print(("bioxen.ssh one connection: %d execs in %.3f s = %.2f ms/exec"):format(n, s, s / n * 1000))
c:close()
