local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local json = bioxen.json

describe("json", function()
  it("encodes arrays, objects and null", function()
    eq(json.encode({ 1, 2, { a = json.null } }), '[1,2,{"a":null}]')
  end)
  it("encodes an empty table as an object unless marked as an array", function()
    eq(json.encode({}), "{}")
    eq(json.encode(json.array()), "[]")
  end)
  it("round-trips a decoded empty array", function()
    eq(json.encode(json.decode("[]")), "[]")
  end)
  it("pretty-prints with sorted keys", function()
    eq(json.encode({ b = 1, a = 2 }, { pretty = true }), '{\n  "a": 2,\n  "b": 1\n}')
  end)
  it("names the position of bad input", function()
    local e = raises("Json", json.decode, '{"a": 1,\n "b": }')
    eq(e.line, 2)
    eq(e.column, 7)
  end)
  it("writes a table with other keys than 1..n as an object, dropping none", function()
    eq(json.encode({ 1, 2, n = 2 }), '{"1":1,"2":2,"n":2}')
    eq(json.encode({ [1] = "a", [3] = "c" }), '{"1":"a","3":"c"}')
    eq(json.encode({ [2] = 3, [10] = 1 }), '{"10":1,"2":3}')
  end)
  it("encodes tables of 100,000 entries", function()
    local big = {}
    for i = 1, 100000 do big[i] = { i } end
    eq(#json.decode(json.encode(big)), 100000)
  end)
  it("refuses cycles and values JSON cannot hold", function()
    local t = {}
    t.self = t
    raises("Json", json.encode, t)
    raises("Json", json.encode, { 0 / 0 })
    raises("Json", json.encode, { [true] = 1 })
  end)
  it("refuses functions with a clear error", function()
    raises("Json", json.encode, { f = print })
  end)
end)
