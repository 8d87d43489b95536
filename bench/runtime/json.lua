-- bioxen.json beside lua-cjson (Debian's C module) in the same host state:
-- decode and encode of one document of 20,000 small objects.
-- usage: LUA_CPATH='/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;' bioxen bench/runtime/json.lua
local json, cjson = bioxen.json, require("cjson")
local doc = {}
for i = 1, 20000 do
  doc[i] = { id = i, name = "sample-" .. i, score = i / 7, tags = { "a", "b" } }
end
local text = cjson.encode(doc)

local function rate(f, arg)
  local rounds, start = 0, os.clock()
  repeat
    f(arg)
    rounds = rounds + 1
  until os.clock() - start > 0.5
  return #text * rounds / (os.clock() - start) / 1e6
end

for _, case in ipairs({ { "decode", text }, { "encode", doc } }) do
  local op, arg = case[1], case[2]
  local ours, theirs = rate(json[op], arg), rate(cjson[op], arg)
  print(("json %s  bioxen.json %6.1f MB/s   lua-cjson %6.1f MB/s   ratio %.2f"):format(
    op, ours, theirs, ours / theirs))
end
