-- N thread-backend create + exec("return 2+2") + close cycles (after 50 warm-up
-- cycles), for instruction counts: bash bench/vm/callgrind.sh [N]
local vm = require("bioxen.vm")
local n = tonumber(arg[1]) or 1000
for _ = 1, 50 do local v = vm.create{ backend = "thread" } v:exec("return 2+2") v:close() end
for _ = 1, n do
  local v = vm.create{ backend = "thread" }
  local r = v:exec("return 2+2")
  assert(r.values[1] == 4)
  v:close()
end
