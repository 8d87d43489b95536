-- The curated catalog bioxen ships: collections of packages by category,
-- profiles (lists of package constraints) and recommendations. This is data;
-- users add or override entries with JSON files in the config folder
-- (pkg/profiles/NAME.json, pkg/collections/NAME.json), see docs/packages.md.
return {
  collections = {
    core = {
      summary = "everyday building blocks: JSON, files, utilities, inspection",
      packages = { "lua-cjson", "luafilesystem", "penlight", "inspect" },
    },
    networking = {
      summary = "sockets, HTTP clients and servers",
      packages = { "luasocket", "luasec", "http" },
    },
    parsing = {
      summary = "grammars and parsers",
      packages = { "lpeg", "lua-parser", "dkjson", "lyaml" },
    },
    testing = {
      summary = "test frameworks and assertions",
      packages = { "busted", "luassert", "say", "luaunit" },
    },
    cli = {
      summary = "command-line programs: arguments, terminal colours",
      packages = { "argparse", "ansicolors", "lua-term" },
    },
    compat = {
      summary = "compatibility between Lua versions",
      packages = { "bit32", "coxpcall", "compat53" },
    },
  },

  profiles = {
    minimal = {
      summary = "the smallest useful set: inspection and JSON in pure Lua",
      packages = { "inspect", "dkjson" },
    },
    standard = {
      summary = "the core collection plus parsing and command-line helpers",
      packages = { "lua-cjson", "luafilesystem", "penlight", "inspect", "lpeg", "dkjson", "argparse" },
    },
    full = {
      summary = "standard plus networking, testing and compatibility",
      packages = {
        "lua-cjson", "luafilesystem", "penlight", "inspect", "lpeg", "dkjson", "argparse",
        "luasocket", "luassert", "say", "ansicolors", "lua-term", "bit32", "coxpcall",
      },
    },
    development = {
      summary = "standard plus testing tools",
      packages = { "lua-cjson", "luafilesystem", "penlight", "inspect", "lpeg", "luassert", "say", "ansicolors" },
    },
    production = {
      summary = "a lean runtime set without development tools",
      packages = { "lua-cjson", "luafilesystem", "penlight", "lpeg" },
    },
    networking = {
      summary = "sockets and HTTP",
      packages = { "luasocket", "lua-cjson", "inspect" },
    },
  },

  -- When KEY is installed, suggest each entry (with its reason).
  recommendations = {
    luasocket = {
      { package = "luasec", reason = "luasocket speaks plain TCP; luasec adds TLS for https:// URLs" },
    },
    lpeg = {
      { package = "lua-parser", reason = "a Lua parser built on lpeg, for code analysis" },
    },
    luassert = {
      { package = "busted", reason = "the test runner luassert was written for" },
    },
    busted = {
      { package = "luacov", reason = "coverage reports for busted runs" },
    },
    penlight = {
      { package = "luafilesystem", reason = "penlight's path and dir modules need it" },
    },
    ["lua-cjson"] = {
      { package = "dkjson", reason = "a pure-Lua JSON fallback where C modules cannot load (standard child VMs)" },
    },
    argparse = {
      { package = "ansicolors", reason = "coloured output for command-line programs" },
    },
  },
}
