-- bioxen.pkg.resolve: backtracking resolution, one version per package, the
-- conflict explained when nothing fits.
local U = require("bioxen.pkg.util")
local V = require("bioxen.pkg.version")
local S = require("bioxen.pkg.sources")
local fail = U.fail
local sorted_keys = U.sorted_keys
local PROVIDED = U.PROVIDED
local servers = S.servers
local load_rockspecs = S.load_rockspecs

local M = {}

-- ---------------------------------------------------------------------------
-- resolution: one version per package, conflicts explained

local function parse_request(r, from)
  if type(r) == "table" and r.name then return r end
  local dep, err = V.parse_dependency(r)
  if not dep then fail("Argument", err) end
  dep.from = from or "your request"
  return dep
end

--- Resolves requests (strings like "penlight >= 1.13" or parsed dependencies)
--- into one version per package. opts: servers, prefer = {name = version},
--- pins = {name = version}. Returns { packages = {name = entry}, order = {...} }.
function M.resolve(requests, opts)
  opts = opts or {}
  local index = opts.index or S.index(opts)
  local prefer, pins = opts.prefer or {}, opts.pins or {}
  local chosen, cons, agenda = {}, {}, {}
  local conflict
  local steps = 0

  local function versions_of(name)
    if PROVIDED[name] then return { PROVIDED[name] } end
    local list = {}
    for v in pairs(index[name] or {}) do list[#list + 1] = v end
    V.sort(list)
    return list
  end

  local function explain(name)
    local lines, versions = {}, versions_of(name)
    if #versions == 0 then
      local who = {}
      for _, c in ipairs(cons[name] or {}) do who[#who + 1] = c.from end
      return ("no package %q on the servers (%s), needed by %s"):format(name,
        table.concat(servers(opts), ", "), table.concat(who, ", "))
    end
    for _, v in ipairs(versions) do
      for _, c in ipairs(cons[name]) do
        local ok, bad = V.matches(v, c)
        if not ok then
          local label = PROVIDED[name] and (v .. " (provided by LuaJIT)") or v
          lines[#lines + 1] = ("  %s %s is excluded by %q from %s"):format(name, label,
            c.name .. " " .. bad.text, c.from)
          break
        end
      end
    end
    if chosen[name] then
      lines[#lines + 1] = ("  %s %s was already chosen"):format(name, chosen[name])
    end
    return ("no version of %s satisfies every constraint:\n%s"):format(name, table.concat(lines, "\n"))
  end

  local function note_conflict(name)
    if conflict then return end
    local cs = {}
    for _, c in ipairs(cons[name] or {}) do cs[#cs + 1] = { constraint = c.text, from = c.from } end
    conflict = { package = name, message = explain(name), constraints = cs }
  end

  local function deps_of(name, version)
    if PROVIDED[name] then return {} end
    local spec = load_rockspecs({ index[name][version] })[1].spec
    local out = {}
    for _, d in ipairs(spec.dependencies) do
      local dep, err = V.parse_dependency(d)
      if not dep then fail("Rockspec", ("%s %s: %s"):format(name, version, err)) end
      dep.from = name .. " " .. version
      out[#out + 1] = dep
    end
    return out
  end

  local function candidates(name)
    local list = {}
    for _, v in ipairs(versions_of(name)) do
      local ok = true
      for _, c in ipairs(cons[name]) do
        if not V.matches(v, c) then ok = false break end
      end
      if ok then list[#list + 1] = v end
    end
    local p = prefer[name]
    if p then
      for i, v in ipairs(list) do
        if v == p then table.remove(list, i) table.insert(list, 1, v) break end
      end
    end
    return list
  end

  local function add(dep)
    cons[dep.name] = cons[dep.name] or {}
    table.insert(cons[dep.name], dep)
    agenda[#agenda + 1] = dep.name
  end

  local function prefetch(deps)
    local entries = {}
    for _, d in ipairs(deps) do
      if not chosen[d.name] and not PROVIDED[d.name] and index[d.name] then
        local c = candidates(d.name)[1]
        if c then entries[#entries + 1] = index[d.name][c] end
      end
    end
    if #entries > 0 then load_rockspecs(entries) end
  end

  local function solve(i)
    steps = steps + 1
    if steps > 20000 then
      fail("Conflict", "dependency resolution gave up after 20000 steps; pin some versions to narrow the search")
    end
    if i > #agenda then return true end
    local name = agenda[i]
    if chosen[name] then
      for _, c in ipairs(cons[name]) do
        if not V.matches(chosen[name], c) then note_conflict(name) return false end
      end
      return solve(i + 1)
    end
    local list = candidates(name)
    if #list == 0 then note_conflict(name) return false end
    for _, v in ipairs(list) do
      chosen[name] = v
      local deps = deps_of(name, v)
      local mark = #agenda
      for _, d in ipairs(deps) do add(d) end
      prefetch(deps)
      if solve(i + 1) then return true end
      for j = #agenda, mark + 1, -1 do
        table.remove(cons[agenda[j]])
        agenda[j] = nil
      end
    end
    chosen[name] = nil
    return false
  end

  for name, version in pairs(pins) do
    add({ name = name, constraints = { { op = "==", version = V.parse(version), text = "== " .. version } },
      text = name .. " == " .. version, from = "the pin on " .. name })
  end
  local parsed = {}
  for _, r in ipairs(requests) do
    local dep = parse_request(r)
    parsed[#parsed + 1] = dep
    add(dep)
  end
  prefetch(parsed)
  if not solve(1) then
    fail("Conflict", conflict and conflict.message or "the requests cannot be satisfied together",
      conflict and { package = conflict.package, constraints = conflict.constraints } or nil)
  end

  -- the plan, dependencies before dependents (a cycle is cut where it closes)
  local plan, order, seen = {}, {}, {}
  for name, version in pairs(chosen) do
    if not PROVIDED[name] then
      local e = index[name][version]
      local rs = load_rockspecs({ e })[1]
      local deps = {}
      for _, d in ipairs(rs.spec.dependencies) do
        local dep = V.parse_dependency(d)
        if dep and not PROVIDED[dep.name] then deps[#deps + 1] = dep.name end
      end
      table.sort(deps)
      plan[name] = {
        name = name, version = version, server = e.server, src = e.src, binary = e.binary, rockspec = rs,
        dependencies = deps,
      }
    end
  end
  local function visit(name)
    if seen[name] then return end
    seen[name] = true
    for _, d in ipairs(plan[name].dependencies) do
      if plan[d] then visit(d) end
    end
    order[#order + 1] = name
  end
  for _, name in ipairs(sorted_keys(plan)) do visit(name) end
  return { packages = plan, order = order }
end

return M
