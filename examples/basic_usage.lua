-- Basic use of child VMs: run code, get values and output back, keep state
-- between execs, call functions, run jobs in the background.
--   bioxen examples/basic_usage.lua
local vm = require("bioxen.vm")

-- A sandboxed VM (process backend and strict sandbox by default).
local v = vm.create{ id = "worker1", globals = { gc_threshold = 0.6 } }

local r = v:exec("return 2 + 2")
print("2 + 2 =", r.values[1], "ok:", r.ok)

r = v:exec('print("Hello, BioXen!")')
io.write("captured: ", r.stdout)

-- Globals persist between execs of the same VM.
v:exec([[
function gc_content(seq)
  local gc = select(2, seq:upper():gsub("[GC]", ""))
  return gc / #seq
end
]])
local gc = v:call("gc_content", "ATGCGCGTTA")
print(("GC content: %.2f (rich: %s)"):format(gc, tostring(gc > v:exec("return gc_threshold").values[1])))

-- Failures come back in the result, with a kind.
r = v:exec("return undefined_function()")
print("failure:", r.ok, r.kind)

-- Background jobs: waiting yields to other bioxen tasks.
local job = v:exec_async("local s = 0 for i = 1, 1e6 do s = s + i end return s")
print("job result:", job:wait().values[1])

-- One-shot runs and the list of live VMs.
print("one-shot:", vm.run("return ('acgt'):upper()", { backend = "thread" }).values[1])
for _, info in ipairs(vm.list()) do print("live:", info.id, info.backend, info.status) end

v:close()
print("after close:", v:status())
