-- bioxen doctor [--json] [LIBRARY...]: checks this installation, each library
-- through its own status(). Exit status 1 when any problem is found.
local doctor = require("bioxen.doctor")
local json_out, only = false, nil
for _, a in ipairs({ ... }) do
  if a == "--json" then
    json_out = true
  elseif a == "-h" or a == "--help" then
    print("usage: bioxen doctor [--json] [LIBRARY...]\n" ..
      "Checks bioxen, its folders, tools and every library's configuration; each\n" ..
      "finding not ok names its fix. Exit status 1 when any problem is found.")
    os.exit(0)
  elseif a:sub(1, 1) == "-" then
    io.stderr:write("bioxen doctor: unknown option ", a, " (see bioxen doctor --help)\n")
    os.exit(2)
  else
    only = only or {}
    if not bioxen[a] then
      io.stderr:write("bioxen doctor: no library named ", a, " (bioxen --help lists them)\n")
      os.exit(2)
    end
    only[#only + 1] = a
  end
end
local report = doctor.run({ only = only })
if json_out then
  print(bioxen.json.encode(report, { pretty = true }))
else
  print(doctor.format(report))
end
if not report.ok then os.exit(1) end
