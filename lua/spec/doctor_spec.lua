local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local doctor = bioxen.doctor

describe("doctor", function()
  it("builds checks and insists on a fix for anything not ok", function()
    eq(doctor.ok("x", "fine"), { name = "x", status = "ok", detail = "fine" })
    eq(doctor.problem("y", "broken", "do z").fix, "do z")
    raises("Argument", doctor.check, "y", "problem", "broken")
    raises("Argument", doctor.check, "y", "bad-status", "broken", "fix")
  end)
  it("runs the status of the libraries asked for, each check tagged with its library", function()
    local r = doctor.run({ only = { "env", "log" } })
    local libs = {}
    for _, c in ipairs(r.checks) do libs[c.library] = true end
    eq(libs, { env = true, log = true })
    eq(r.ok, r.problems == 0)
  end)
  it("lists every registered library", function()
    local names = {}
    for _, l in ipairs(doctor.libraries()) do names[l.name] = l.native end
    eq(names.env, true)
    eq(names.doctor, true)
  end)
  it("formats a report with fixes and counts", function()
    local text = doctor.format({ problems = 1, warnings = 0, checks = {
      { library = "lrs", name = "LRS reachable", status = "problem", detail = "refused", fix = "start it" },
    } })
    assert(text:find("PROBLEM  LRS reachable  refused", 1, true), text)
    assert(text:find("fix: start it", 1, true), text)
    assert(text:find("1 check, 1 problem, 0 warnings", 1, true), text)
  end)
  it("parses sizes", function()
    eq(doctor.parse_size("10M"), 10 * 2 ^ 20)
    eq(doctor.parse_size(5), 5)
    eq(doctor.parse_size("lots"), nil)
  end)
  it("writes the type definitions carried in the binary", function()
    local dir = doctor.write_types()
    local f = assert(io.open(dir .. "/doctor.lua"))
    assert(f:read("*a"):find("---@class bioxen.doctor", 1, true))
    f:close()
  end)
end)
