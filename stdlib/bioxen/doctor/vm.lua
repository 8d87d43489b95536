-- Checks for bioxen.vm (a doctor plug-in: see docs/api/doctor.md): every
-- registered backend creates a child VM that runs code and returns its result.
local doctor = require("bioxen.doctor")

return function(vm)
  local names = {}
  for name in pairs(vm.backends or {}) do names[#names + 1] = name end
  table.sort(names)
  local checks = {}
  for _, name in ipairs(names) do
    local label = "VM backend " .. name
    local t0 = bioxen.log.clock()
    local ok, r = pcall(vm.run, "return 6 * 7", { backend = name, timeout = 10 })
    local ms = (bioxen.log.clock() - t0) * 1000
    if ok and r.ok and r.values and r.values[1] == 42 then
      checks[#checks + 1] = doctor.ok(label, ("created a VM, ran code, closed it in %.1f ms"):format(ms))
    else
      local why = ok and ("%s: %s"):format(tostring(r.kind), tostring(r.error)) or doctor.message(r)
      checks[#checks + 1] = doctor.problem(label, "cannot run code in a child VM: " .. why,
        ("bioxen --debug -e 'print(bioxen.vm.run(\"return 1\", { backend = %q }).ok)' shows the details; "
          .. "for the process backend check that %s can be executed"):format(name, tostring(bioxen.env.facts().executable)))
    end
  end
  if #names == 0 then
    checks[1] = doctor.problem("VM backends", "no backend is registered", "report this as a bug in bioxen")
  end
  return checks
end
