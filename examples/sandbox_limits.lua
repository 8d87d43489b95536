-- What the sandboxes and limits do: each attempt below is stopped, and the
-- result says why (r.kind). Runs on both backends.
--   bioxen examples/sandbox_limits.lua
local vm = require("bioxen.vm")

local attempts = {
  { "read a file", "return io.open('/etc/passwd'):read('*a')" },
  { "run a command", "return os.execute('id')" },
  { "reach the FFI", "local x = 1LL return ffi.C" },
  { "load bytecode", "return load('\\27LJ\\2')" },
  { "loop forever", "while true do end" },
  { "hide a loop in pcall", "while true do pcall(function() while true do end end) end" },
  { "eat memory", "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end" },
  { "flood the output", "while true do print('spam') end" },
  { "return a function", "return print" },
  { "syntax error", "return +" },
}

for _, backend in ipairs({ "thread", "process" }) do
  print(("-- %s backend"):format(backend))
  local v = vm.create{ backend = backend, timeout = 0.2, memory_limit = 16 * 2^20, output_limit = 1024 }
  for _, a in ipairs(attempts) do
    local r = v:exec(a[2])
    print(("%-22s -> %-12s %s"):format(a[1], tostring(r.kind), r.truncated and "(output truncated)" or ""))
  end
  -- The VM is still usable after all of that.
  print("still works:", v:exec("return 6 * 7").values[1])
  v:close()
end

-- standard: pure-Lua modules from package_path, and bioxen.json.
local s = vm.create{ backend = "thread", sandbox = "standard" }
print("standard json:", s:exec("return require('bioxen.json').encode({ gc = 0.42 })").values[1])
print("standard ffi:", s:exec("return require('ffi')").kind)
s:close()

-- trusted: the full library, for your own code (its own process here).
local t = vm.create{ backend = "process", sandbox = "trusted" }
print("trusted io:", t:exec("return io.open('note.txt', 'w') ~= nil").values[1])
print("trusted fork:", t:exec("return os.execute('true')").values[1] ~= 0 and "blocked" or "allowed")
t:close()
