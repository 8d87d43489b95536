-- doctor_report.lua: check this bioxen installation from a script and act on
-- the result. Run: bioxen examples/doctor_report.lua [LIBRARY...]
--
-- bioxen.doctor.run() calls every library's checks (the same ones `bioxen
-- doctor` prints), concurrently; each check has a status and, when not ok, the
-- command or setting that fixes it.
local doctor = bioxen.doctor

local only = select("#", ...) > 0 and { ... } or nil
local report = doctor.run({ only = only })

-- Group what needs attention by library.
local by_library, order = {}, {}
for _, c in ipairs(report.checks) do
  if c.status ~= "ok" then
    if not by_library[c.library] then
      by_library[c.library] = {}
      order[#order + 1] = c.library
    end
    table.insert(by_library[c.library], c)
  end
end

print(("%d checks: %d problem(s), %d warning(s)"):format(#report.checks, report.problems, report.warnings))
for _, lib in ipairs(order) do
  print("\n" .. lib)
  for _, c in ipairs(by_library[lib]) do
    print(("  [%s] %s: %s"):format(c.status, c.name, c.detail or ""))
    print("      fix: " .. c.fix)
  end
end

-- The log file, if one is configured, with the last few warnings in it.
local f = bioxen.log.file()
if f then
  print(("\nlog file %s (%s, rotated at %s, %d kept)"):format(f.path, f.format, doctor.human_size(f.max_size), f.keep))
  for _, e in ipairs(bioxen.log.entries({ level = "warn", last = 5 })) do
    print("  " .. e.line)
  end
end

-- Scripts can gate on the result, as `bioxen doctor` does with its exit status.
if not report.ok then os.exit(1) end
