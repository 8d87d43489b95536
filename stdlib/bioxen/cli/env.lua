-- bioxen env VERB ...: package environments, on top of bioxen.pkg.
local pkg = require("bioxen.pkg")
local util = require("bioxen.pkg.util")
local envs = pkg.envs

local USAGE = [[
usage: bioxen env VERB
  create NAME [--profile P]   a new environment (optionally with a profile's packages)
  list                        environments (* marks the active one)
  use NAME                    make NAME the default for bioxen pkg and for require
  remove NAME                 delete an environment and its generations
  export [NAME]               print its lockfile (bioxen.lock) to stdout
  import FILE [--name NAME]   a new environment that reproduces a lockfile exactly
  path [NAME]                 LUA_PATH / LUA_CPATH lines for other interpreters
options: --server URL (repeatable), --quiet]]

local args = { ... }
local verb = table.remove(args, 1)
local opts, rest

local function need(what)
  if not rest[1] then error(bioxen.error("Argument", ("bioxen env %s needs %s"):format(verb, what)), 0) end
end

local function main()
  opts, rest = util.command_line("env", args, {
    usage = USAGE,
    values = { profile = true, name = true, server = true },
    flags = { quiet = true },
  })
if verb == nil or verb == "help" or verb == "--help" or verb == "-h" then
  print(USAGE)
elseif verb == "create" then
  need("a name")
  envs.create(rest[1], opts)
  print("created environment " .. rest[1])
elseif verb == "list" then
  for _, e in ipairs(envs.list()) do
    print(("%s %-16s generation %d, %d packages"):format(e.active and "*" or " ", e.name, e.generation, e.packages))
  end
elseif verb == "use" then
  need("a name")
  envs.use(rest[1])
  print("active environment: " .. rest[1])
elseif verb == "remove" then
  need("a name")
  envs.remove(rest[1])
  print("removed environment " .. rest[1])
elseif verb == "export" then
  io.write(envs.export(rest[1]))
elseif verb == "import" then
  need("a lockfile")
  local r = envs.import(rest[1], opts)
  print(("imported %s as environment %s (generation %d)"):format(rest[1], r.env, r.generation))
elseif verb == "path" then
  local p = envs.paths(rest[1])
  print(("export LUA_PATH='%s;;'"):format(p.path))
  print(("export LUA_CPATH='%s;;'"):format(p.cpath))
  print(("export PATH='%s:'\"$PATH\""):format(p.bin))
else
  error(bioxen.error("Argument", ("unknown verb %q (bioxen env --help)"):format(verb)), 0)
end
end

util.run_command("env", main)
