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
  it("makes luarocks-build-TYPE a build dependency of a build type LuaRocks lacks", function()
    local s = pkg.rockspec('package = "x" version = "1-1" build = { type = "rust-mlua" }', "x.rockspec")
    eq(s.dependencies[#s.dependencies], "luarocks-build-rust-mlua")
    local listed = pkg.rockspec('package = "x" version = "1-1" build_dependencies = { "luarocks-build-foo >= 2" } '
      .. 'build = { type = "foo" }', "x.rockspec")
    eq(#listed.dependencies, 1)
    eq(#pkg.rockspec('package = "x" version = "1-1" build = { type = "cmake" }', "x.rockspec").dependencies, 0)
  end)
end)

describe("LuaRocks tree metadata", function()
  local LR = require("bioxen.pkg.luarocks")
  it("writes tables in LuaRocks' persist format", function()
    eq(LR.persist({ rock_manifest = { lua = { ["a.lua"] = "x" }, ["b-1.0-1.rockspec"] = "y" } }),
      'rock_manifest = {\n   ["b-1.0-1.rockspec"] = "y",\n   lua = {\n      ["a.lua"] = "x"\n   }\n}\n')
    eq(LR.persist({ commands = {}, v = { 5, 1, string = "5.1" } }),
      'commands = {}\nv = {\n   5, 1, string = "5.1"\n}\n')
  end)
end)

describe("pkg.catalog", function()
  it("ships profiles and collections as data", function()
    local c = pkg.catalog()
    eq(type(c.profiles.standard.packages), "table")
    eq(c.collections.core.packages[1], "lua-cjson")
  end)
end)

describe("pkg.resolve", function()
  -- a small repository on disk: a manifest and rockspecs (Lua files)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute(("mkdir -p %q"):format(dir))
  local function write(name, text)
    local f = assert(io.open(dir .. "/" .. name, "w"))
    f:write(text)
    f:close()
  end
  local specs = {
    { "a", "1.0-1", {} },
    { "a", "2.0-1", { "c == 1.0" } },
    { "b", "1.0-1", { "c >= 2" } },
    { "c", "1.0-1", {} },
    { "c", "2.0-1", {} },
    { "c", "2.1-1", {} },
  }
  for _, s in ipairs(specs) do
    local name, version, deps = s[1], s[2], s[3]
    local quoted = {}
    for i, d in ipairs(deps) do quoted[i] = ("%q"):format(d) end
    write(name .. "-" .. version .. ".rockspec", ("package = %q version = %q dependencies = { %s }")
      :format(name, version, table.concat(quoted, ", ")))
  end
  -- the manifest: name -> version -> arches
  local by = {}
  for _, s in ipairs(specs) do
    by[s[1]] = by[s[1]] or {}
    table.insert(by[s[1]], ("[%q] = { { arch = 'rockspec' } }"):format(s[2]))
  end
  local lines = {}
  for name, versions in pairs(by) do lines[#lines + 1] = ("[%q] = { %s }"):format(name, table.concat(versions, ", ")) end
  write("manifest", "repository = { " .. table.concat(lines, ", ") .. " }")
  local opts = { servers = { dir } }

  local function versions(plan)
    local out = {}
    for _, name in ipairs(plan.order) do out[#out + 1] = name .. " " .. plan.packages[name].version end
    table.sort(out)
    return table.concat(out, ", ")
  end

  it("backtracks to an older version when the newest cannot fit", function()
    eq(versions(pkg.resolve({ "a", "b" }, opts)), "a 1.0-1, b 1.0-1, c 2.1-1")
  end)
  it("prefers the installed version while it fits", function()
    eq(versions(pkg.resolve({ "c" }, { servers = opts.servers, prefer = { c = "2.0-1" } })), "c 2.0-1")
  end)
  it("names the pin in a conflict", function()
    local e = raises("Conflict", pkg.resolve, { "b" }, { servers = opts.servers, pins = { c = "1.0-1" } })
    eq(e.package, "c")
    eq(e.message:find('excluded by "c == 1.0-1" from the pin on c', 1, true) ~= nil
      or e.message:find('excluded by "c >= 2" from b 1.0-1', 1, true) ~= nil, true)
  end)
end)
