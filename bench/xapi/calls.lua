-- XAPI calls per second from bioxen: N sequential calls on one session.
-- usage: bioxen bench/xapi/calls.lua URL N
local url, n = ..., tonumber(select(2, ...) or 5000)
local x = bioxen.xapi.connect({ url = url, user = "root", password = "pw" })
local vm = x.VM.get_by_name_label("Debian Bookworm 12")[1]
for _ = 1, 200 do x.VM.get_power_state(vm) end -- warm up
local start = io.popen("date +%s.%N"):read("*l")
for _ = 1, n do x.VM.get_power_state(vm) end
local stop = io.popen("date +%s.%N"):read("*l")
local s = tonumber(stop) - tonumber(start)
print(("bioxen  %d calls in %.3f s = %.0f calls/s"):format(n, s, n / s))
x:close()
