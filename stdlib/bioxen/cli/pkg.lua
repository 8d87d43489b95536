-- bioxen pkg VERB ...: the package commands, on top of bioxen.pkg.
local pkg = require("bioxen.pkg")
local util = require("bioxen.pkg.util")

local USAGE = [[
usage: bioxen pkg VERB [options]
  install NAME[ CONSTRAINT]...   install packages (e.g. "penlight >= 1.13"), or FILE.src.rock / FILE.rockspec;
                                 --locked reproduces bioxen.lock (--lockfile FILE: another one)
  remove NAME...                 remove packages (refuses to break a dependent unless --force)
  update [NAME...]               newest versions the constraints allow
  list                           installed packages
  pin NAME... / unpin NAME...    keep packages at their installed version
  search TEXT [--fetch]          packages whose name, summary or description (of rockspecs
                                 already fetched; --fetch gets every newest one) or catalog
                                 collection matches
  info NAME                      versions, summary and dependencies of a package
  profile list|show P|create P NAME...   curated package sets
  history                        generations of the environment
  rollback [N]                   a new generation with generation N's packages (default: the one before)
  health                         re-hash files, require every module, check system libraries
  recommend                      suggestions from the catalog
options: --env NAME, --server URL (repeatable), --quiet]]

local args = { ... }
local verb = table.remove(args, 1)
local opts, rest

-- "NAME CONSTRAINT" may come as one argument or as NAME followed by operator words.
local function requests(list)
  local out = {}
  for _, a in ipairs(list) do
    if #out > 0 and (a:match("^[<>=~!]") or (a:match("^[%d]") and out[#out]:match("[<>=~]%s*$"))) then
      out[#out] = out[#out] .. " " .. a
    else
      out[#out + 1] = a
    end
  end
  return out
end

local function need(n, what)
  if #rest < n then error(bioxen.error("Argument", ("bioxen pkg %s needs %s"):format(verb, what)), 0) end
end

local function show_changes(r)
  print(("environment %s: generation %d"):format(r.env, r.generation))
end

local function main()
  opts, rest = util.command_line("pkg", args, {
    usage = USAGE,
    values = { env = true, server = true, lockfile = true, summary = true },
    flags = { locked = true, force = true, quiet = true, json = true, fetch = true },
    read = {
      lockfile = function(opts, path)
        local f = assert(io.open(path, "rb"), "cannot read " .. path)
        opts.lockfile = f:read("*a")
        f:close()
        opts.locked = true
      end,
    },
  })
if verb == nil or verb == "help" or verb == "--help" or verb == "-h" then
  print(USAGE)
elseif verb == "install" then
  if not opts.locked then need(1, "at least one package name") end
  local before = {}
  if not opts.env or pkg.envs.exists(opts.env) then
    for _, p in ipairs(pkg.list(opts)) do before[p.name] = p.version end
  end
  local r = pkg.install(requests(rest), opts)
  show_changes(r)
  -- every package with its version; what changed is marked + (new) or ~ (other version)
  local names = {}
  for name in pairs(r.packages) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local v, was = r.packages[name].version, before[name]
    local mark = was == nil and "+ " or (was ~= v and "~ " or "  ")
    print(("%s%s %s%s"):format(mark, name, v, (was and was ~= v) and (" (was " .. was .. ")") or ""))
  end
  for name, was in pairs(before) do
    if not r.packages[name] then print(("- %s %s"):format(name, was)) end
  end
elseif verb == "remove" then
  need(1, "a package name")
  local r = pkg.remove(rest, opts)
  show_changes(r)
  for _, name in ipairs(r.removed) do print("- " .. name) end
elseif verb == "update" then
  local r = pkg.update(rest, opts)
  if r.unchanged then print("everything is up to date") else show_changes(r) end
elseif verb == "list" then
  for _, p in ipairs(pkg.list(opts)) do
    print(("%-20s %-12s%s%s"):format(p.name, p.version, p.pinned and " pinned" or "",
      p.requested and "" or " (dependency)"))
  end
elseif verb == "pin" or verb == "unpin" then
  need(1, "a package name")
  opts.unpin = verb == "unpin"
  show_changes(pkg.pin(rest, opts))
elseif verb == "search" then
  for _, p in ipairs(pkg.search(rest[1] or "", opts)) do
    local why = p.matched ~= "name" and p.matched ~= "summary" and ("  [" .. p.matched .. "]") or ""
    print(("%-20s %-24s %s%s"):format(p.name, table.concat(p.versions, " "), p.summary or "", why))
  end
elseif verb == "info" then
  need(1, "a package name")
  local p = pkg.info(rest[1], opts)
  print(("%s %s  (%s)"):format(p.name, p.latest, p.license or "license unknown"))
  if p.summary then print("  " .. p.summary) end
  if p.homepage then print("  " .. p.homepage) end
  print("  versions: " .. table.concat(p.versions, " "))
  print("  dependencies: " .. (#p.dependencies > 0 and table.concat(p.dependencies, ", ") or "none"))
  print("  installed: " .. (p.installed or "no"))
elseif verb == "profile" then
  local sub = table.remove(rest, 1)
  if sub == "list" or sub == nil then
    for _, p in ipairs(pkg.profile.list()) do
      print(("%-12s %s%s"):format(p.name, p.summary or "", p.user and " (yours)" or ""))
    end
  elseif sub == "show" then
    need(1, "a profile name")
    local p = pkg.profile.show(rest[1])
    print(p.name .. ": " .. (p.summary or ""))
    for _, d in ipairs(p.packages) do print("  " .. d) end
  elseif sub == "create" then
    need(1, "a profile name")
    local name = table.remove(rest, 1)
    print("wrote " .. pkg.profile.create(name, requests(rest), opts.summary))
  else
    error(bioxen.error("Argument", "bioxen pkg profile list|show NAME|create NAME PACKAGE..."), 0)
  end
elseif verb == "history" then
  for _, h in ipairs(pkg.history(opts)) do
    print(("%s%3d  %s  %2d packages  %s"):format(h.current and "*" or " ", h.generation,
      os.date("!%Y-%m-%d %H:%M:%S", h.created or 0), h.packages, h.action or ""))
  end
elseif verb == "rollback" then
  local r = pkg.rollback(rest[1] and tonumber(rest[1]) or nil, opts)
  print(("environment %s: generation %d restores generation %d (was %d)"):format(r.env, r.generation, r.restored,
    r.previous))
elseif verb == "health" then
  local r = pkg.health(opts)
  if r.ok then
    print(("environment %s is healthy (%d modules load)"):format(r.env, r.modules))
  else
    for _, p in ipairs(r.problems) do
      print(("%s: %s\n  fix: %s"):format(p.package or "?", p.problem, p.fix))
    end
    print(("environment %s: %d problem%s"):format(r.env, #r.problems, #r.problems == 1 and "" or "s"))
    os.exit(1)
  end
elseif verb == "recommend" then
  local list = pkg.recommend(opts)
  if #list == 0 then print("no suggestions") end
  for _, r in ipairs(list) do print(("%-16s %s"):format(r.package, r.reason)) end
else
  error(bioxen.error("Argument", ("unknown verb %q (bioxen pkg --help)"):format(verb)), 0)
end
end

util.run_command("pkg", main)
