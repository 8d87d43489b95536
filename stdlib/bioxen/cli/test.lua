-- bioxen test [PATH...]: runs Lua spec files (*_spec.lua), default lua/spec/.
local spec = require("bioxen.spec")
local paths = { ... }
if #paths == 0 then paths = { "lua/spec" } end

local files = {}
for _, path in ipairs(paths) do
  if path:match("%.lua$") then
    files[#files + 1] = path
  else
    local p = io.popen(("find %q -name '*_spec.lua' | sort"):format(path))
    for line in p:lines() do files[#files + 1] = line end
    p:close()
  end
end
if #files == 0 then
  io.stderr:write("bioxen test: no *_spec.lua files under ", table.concat(paths, " "), "\n")
  os.exit(1)
end
if not spec.run(files) then os.exit(1) end
