-- bioxen.spec: a small spec runner for Lua-side tests (lua/spec/*_spec.lua).
-- Specs read like use: describe what a user does, then check the outcome.
local spec = {}
local current, results = nil, { passed = 0, failed = 0, failures = {} }

function spec.describe(name, body)
  local outer = current
  current = (outer and outer .. " " or "") .. name
  body()
  current = outer
end

function spec.it(name, body)
  local full = (current and current .. " " or "") .. name
  local ok, err = xpcall(body, function(e) return debug.traceback(tostring(e), 2) end)
  if ok then
    results.passed = results.passed + 1
  else
    results.failed = results.failed + 1
    results.failures[#results.failures + 1] = { name = full, error = err }
  end
end

local function show(v)
  if type(v) == "string" then return ("%q"):format(v) end
  return tostring(v)
end

--- Deep equality with a message naming both values.
function spec.eq(actual, expected, what)
  local function same(a, b)
    if type(a) ~= "table" or type(b) ~= "table" then return a == b end
    for k, v in pairs(a) do if not same(v, b[k]) then return false end end
    for k in pairs(b) do if a[k] == nil then return false end end
    return true
  end
  if not same(actual, expected) then
    local json = require("bioxen.json")
    local function render(v) return type(v) == "table" and json.encode(v) or show(v) end
    error(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", render(expected), render(actual)), 2)
  end
end

--- Asserts that `fn(...)` raises an error of `kind`; returns the error.
function spec.raises(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error(("expected an error of kind %s, but the call succeeded"):format(kind), 2) end
  local got = (type(err) == "table" or type(err) == "userdata") and err.kind or nil
  if got ~= kind then error(("expected kind %s, got %s (%s)"):format(kind, tostring(got), tostring(err)), 2) end
  return err
end

--- Runs spec files; prints failures and the closing count line. Returns true when all passed.
function spec.run(files)
  for _, file in ipairs(files) do
    local chunk, err = loadfile(file)
    if not chunk then
      results.failed = results.failed + 1
      results.failures[#results.failures + 1] = { name = file, error = err }
    else
      current = file:match("([^/]+)_spec%.lua$") or file
      local ok, e = pcall(chunk, spec)
      if not ok then
        results.failed = results.failed + 1
        results.failures[#results.failures + 1] = { name = file, error = tostring(e) }
      end
      current = nil
    end
  end
  for _, f in ipairs(results.failures) do
    io.stderr:write("FAILED ", f.name, "\n", f.error, "\n\n")
  end
  print(("%d passed, %d failed"):format(results.passed, results.failed))
  return results.failed == 0
end

return spec
