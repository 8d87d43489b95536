local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local pkg = bioxen.pkg
local V = pkg.version

local function newest_first(list) return table.concat(V.sort(list), " ") end
local function ok(version, dep) return (V.matches(version, assert(V.parse_dependency("x " .. dep)))) end

describe("pkg.version", function()
  it("orders revisions after the version", function()
    eq(newest_first({ "1.0-1", "1.0-10", "1.0-2" }), "1.0-10 1.0-2 1.0-1")
  end)
  it("puts rc, pre, beta and alpha before the release", function()
    eq(newest_first({ "2.0-1", "2.0rc1-1", "2.0beta-1", "2.0alpha-1", "2.0pre-1" }),
      "2.0-1 2.0rc1-1 2.0pre-1 2.0beta-1 2.0alpha-1")
  end)
  it("puts dev above scm above cvs above every numbered release", function()
    eq(newest_first({ "99.0-1", "cvs-1", "scm-1", "dev-1" }), "dev-1 scm-1 cvs-1 99.0-1")
  end)
  it("compares numerically, not as text", function()
    eq(V.compare("1.10-1", "1.9-1"), 1)
    eq(V.compare("1.0", "1.0-1"), 0)
  end)
  it("keeps every component given with ~>", function()
    eq(ok("1.13.1-1", "~> 1.13"), true)
    eq(ok("1.14-1", "~> 1.13"), false)
    eq(ok("1.3-1", "~> 1"), true)
    eq(ok("2.0-1", "~> 1"), false)
  end)
  it("reads several constraints and a bare version as ==", function()
    eq(ok("1.5-1", ">= 1.0, < 2"), true)
    eq(ok("2.0-1", ">= 1.0, < 2"), false)
    eq(ok("1.0-1", "1.0"), true)
    eq(ok("1.0-2", "~= 1.0-1"), true)
  end)
  it("lowercases package names like LuaRocks", function()
    eq(V.parse_dependency("LuaSocket >= 3").name, "luasocket")
  end)
  it("rejects an unknown operator with a clear message", function()
    local d, err = V.parse_dependency("x => 1")
    eq(d, nil)
    eq(err:find("unknown operator", 1, true) ~= nil, true)
  end)
end)

describe("pkg.rockspec", function()
  it("evaluates a rockspec and applies unix/linux platform overrides", function()
    local r = pkg.rockspec([[
      package = "Demo"  version = "1.0-1"
      dependencies = { "lua >= 5.1", platforms = { linux = { "inspect" } } }
      build = { type = "builtin", modules = { a = "a.lua" },
        platforms = { unix = { modules = { b = "b.c" } }, windows = { modules = { c = "c.c" } } } }
    ]], "demo-1.0-1.rockspec")
    eq(r.name, "demo")
    eq(r.dependencies[1], "inspect")
    eq(r.build.modules.b, "b.c")
    eq(r.build.modules.c, nil)
  end)
  it("runs the rockspec with an empty environment", function()
    local e = raises("Rockspec", pkg.rockspec, 'package = "x" version = "1-1" os.execute("true")', "x.rockspec")
    eq(e.message:find("attempt to index global 'os'", 1, true) ~= nil, true)
  end)
  it("refuses bytecode", function()
    raises("Rockspec", pkg.rockspec, string.dump(function() end), "dump.rockspec")
  end)
  it("stops an endless rockspec at the instruction limit", function()
    local e = raises("Rockspec", pkg.rockspec, "while true do end", "loop.rockspec")
    eq(e.message:find("instruction", 1, true) ~= nil, true)
  end)
end)

describe("pkg.catalog", function()
  it("ships profiles and collections as data", function()
    local c = pkg.catalog()
    eq(type(c.profiles.standard.packages), "table")
    eq(c.collections.core.packages[1], "lua-cjson")
  end)
end)
