-- The child side of the process protocol for an external interpreter
-- (vm.create{ lua_executable = "lua5.4" }). Needs Lua 5.3+ (string.pack).
-- No sandbox: the interpreter's full library, contained only by OS limits.
local pack, unpack = string.pack, string.unpack
local stdin, stdout = io.stdin, io.stdout
local id, output_limit, result_limit = "vm", 1 << 20, 16 << 20

local function read_frame()
  local h = stdin:read(5)
  if not h or #h < 5 then os.exit(0) end
  local n, tag = unpack("<I4B", h)
  local p = n > 0 and stdin:read(n) or ""
  if #p < n then os.exit(0) end
  return tag, p
end

local function send(tag, payload)
  stdout:write(pack("<I4B", #payload, tag), payload)
  stdout:flush()
end

local function decode(s, pos)
  local tag
  tag, pos = unpack("B", s, pos)
  if tag == 0 then return nil, pos
  elseif tag == 1 then return false, pos
  elseif tag == 2 then return true, pos
  elseif tag == 3 then return unpack("<i8", s, pos)
  elseif tag == 4 then return unpack("<d", s, pos)
  elseif tag == 5 then return unpack("<s4", s, pos)
  elseif tag == 6 then
    local n
    n, pos = unpack("<I4", s, pos)
    local t = {}
    for _ = 1, n do
      local k, v
      k, pos = decode(s, pos)
      v, pos = decode(s, pos)
      if k ~= nil then t[k] = v end
    end
    return t, pos
  end
  error("bad value tag " .. tostring(tag))
end

local budget
local function encode(v, out, what, depth, seen)
  budget = budget - 16
  local t = type(v)
  if budget < 0 then error({ kind = "OutputLimit", msg = what .. " is too large to copy (result_limit)" }) end
  if v == nil then out[#out + 1] = "\0"
  elseif v == false then out[#out + 1] = "\1"
  elseif v == true then out[#out + 1] = "\2"
  elseif t == "number" then
    out[#out + 1] = math.type(v) == "integer" and pack("<Bi8", 3, v) or pack("<Bd", 4, v)
  elseif t == "string" then
    budget = budget - #v
    if budget < 0 then error({ kind = "OutputLimit", msg = what .. " is too large to copy (result_limit)" }) end
    out[#out + 1] = pack("<Bs4", 5, v)
  elseif t == "table" then
    if depth >= 100 then error({ kind = "Value", msg = what .. " is nested more than 100 tables deep" }) end
    if seen[v] then error({ kind = "Value", msg = what .. " contains a cycle (a table that contains itself)" }) end
    seen[v] = true
    local n = 0
    for _ in next, v do n = n + 1 end
    out[#out + 1] = pack("<BI4", 6, n)
    for k, x in next, v do
      encode(k, out, "a key of " .. what, depth + 1, seen)
      encode(x, out, what .. "." .. tostring(k), depth + 1, seen)
    end
    seen[v] = nil
  else
    error({ kind = "Value", msg = what .. " is a " .. t
      .. " (only nil, booleans, numbers, strings and tables of those can be copied between VMs)" })
  end
end

local out_buf, out_len, truncated = {}, 0, false
local OUTPUT_LIMIT = {}
local function write(s)
  local room = output_limit - out_len
  if #s > room then
    out_buf[#out_buf + 1] = s:sub(1, room)
    out_len, truncated = output_limit, true
    error(OUTPUT_LIMIT, 0)
  end
  out_buf[#out_buf + 1] = s
  out_len = out_len + #s
end
print = function(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  write(table.concat(parts, "\t") .. "\n")
end
io.write = function(...)
  for i = 1, select("#", ...) do write(tostring((select(i, ...)))) end
  return io
end

local function result(ok, kind, err, values, n)
  local out = {}
  local stdout_text = table.concat(out_buf)
  out_buf, out_len = {}, 0
  local was_truncated = truncated
  truncated = false
  if ok then
    budget = result_limit
    local enc = {}
    local good, e = pcall(function()
      for i = 1, n do encode(values[i], enc, "result " .. i, 0, {}) end
    end)
    if not good then
      ok, kind = false, type(e) == "table" and e.kind or "Value"
      err = type(e) == "table" and ("cannot return the values: " .. e.msg) or tostring(e)
      n = 0
    else
      out[#out + 1] = pack("<BBd s4 s4 s4 s4 I4", 1, was_truncated and 1 or 0, 0, stdout_text, "", "", "", n)
      out[#out + 1] = table.concat(enc)
      return table.concat(out)
    end
  end
  return pack("<BBd s4 s4 s4 s4 I4", 0, was_truncated and 1 or 0, 0, stdout_text, "", kind, err, 0)
end

local function failure(e)
  if e == OUTPUT_LIMIT then
    return "OutputLimit", ("output exceeded output_limit (%d bytes); raise output_limit to allow more"):format(output_limit)
  end
  local msg = type(e) == "string" and e or ("(error object is a " .. type(e) .. " value)")
  if msg:find("not enough memory", 1, true) then return "MemoryLimit", msg end
  return "Runtime", msg
end

local function run(f, ...)
  local r = table.pack(pcall(f, ...))
  if r[1] then return result(true, nil, nil, { table.unpack(r, 2, r.n) }, r.n - 1) end
  local kind, msg = failure(r[2])
  return result(false, kind, msg)
end

while true do
  local tag, p = read_frame()
  if tag == 73 then -- INIT
    local pos
    id, pos = unpack("<s4", p)
    local _, _, _, ol, rl, npath
    _, _, _, ol, rl, npath, pos = unpack("<BI8dI8I8I4", p, pos)
    output_limit, result_limit = ol, rl
    for _ = 1, npath do _, pos = unpack("<s4", p, pos) end
    local globals = decode(p, pos)
    if type(globals) == "table" then for k, v in pairs(globals) do _G[k] = v end end
    send(114, "")
  elseif tag == 88 then -- EXEC
    local f, err = load(p, "=" .. id, "t")
    if not f then send(120, result(false, "Syntax", err)) else send(120, run(f)) end
  elseif tag == 67 then -- CALL
    local name, pos = unpack("<s4", p)
    local n
    n, pos = unpack("<I4", p, pos)
    local args = {}
    for i = 1, n do args[i], pos = decode(p, pos) end
    local f = _G[name]
    if type(f) ~= "function" then
      send(120, result(false, "Runtime", ("global '%s' is %s, not a function, in VM %s"):format(name, type(f), id)))
    else
      send(120, run(f, table.unpack(args, 1, n)))
    end
  else
    send(101, "unknown frame " .. tostring(tag))
  end
end
