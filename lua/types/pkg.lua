---@meta bioxen.pkg
-- Type definitions for bioxen.pkg (docs/api/pkg.md).

---@class bioxen.pkg.Opts
---@field env? string environment name (default: the active one)
---@field servers? string[] LuaRocks repositories (URLs or folders)
---@field quiet? boolean no progress output
---@field locked? boolean reproduce the lockfile
---@field lockfile? string lockfile text for `locked`
---@field force? boolean remove even when a package depends on it
---@field fetch? boolean `search`: fetch every package's newest rockspec to search descriptions

---@class bioxen.pkg.Change
---@field env string
---@field generation integer
---@field packages? table<string, table>

---@class bioxen.pkg.Problem
---@field package? string
---@field problem string
---@field fix string

---@class bioxen.pkg.Health
---@field ok boolean
---@field env string
---@field modules integer
---@field problems bioxen.pkg.Problem[]

---@class bioxen.pkg.Dependency
---@field name string
---@field constraints {op: string, version: table, text: string}[]
---@field text string

---@class bioxen.pkg.version
local version = {}
---@param text string
---@return table|nil version, string? err
function version.parse(text) end
---@return integer
function version.compare(a, b) end
---@param list string[]
---@return string[]
function version.sort(list) end
---@return bioxen.pkg.Dependency|nil, string? err
function version.parse_dependency(text) end
---@return boolean, table? failed_constraint
function version.matches(v, dep) end

---@class bioxen.pkg.envs
local envs = {}
---@return string
function envs.active() end
---@param opts? {profile?: string, servers?: string[], quiet?: boolean}
function envs.create(name, opts) end
---@return {name: string, active: boolean, generation: integer, packages: integer}[]
function envs.list() end
function envs.use(name) end
function envs.remove(name) end
---@return {tree: string, path: string, cpath: string, bin: string, lua_dir: string, lib_dir: string}
function envs.paths(name) end
---@return string
function envs.export(name) end
---@return bioxen.pkg.Change
function envs.import(file, opts) end
---@return boolean
function envs.exists(name) end

---@class bioxen.pkg.profile
local profile = {}
function profile.list() end
function profile.show(name) end
---@param packages string[]
---@return string path
function profile.create(name, packages, summary) end

---@class bioxen.pkg
---@field version bioxen.pkg.version
---@field envs bioxen.pkg.envs
---@field profile bioxen.pkg.profile
local pkg = {}
---@param requests string[]
---@param opts? bioxen.pkg.Opts
---@return bioxen.pkg.Change
function pkg.install(requests, opts) end
---@return bioxen.pkg.Change
function pkg.remove(names, opts) end
---@return bioxen.pkg.Change
function pkg.update(names, opts) end
---@return bioxen.pkg.Change
function pkg.pin(names, opts) end
---@return {name: string, version: string, pinned: boolean, requested?: string}[]
function pkg.list(opts) end
---@return {packages: table<string, table>, order: string[]}
function pkg.resolve(requests, opts) end
---@return table
function pkg.lock(opts) end
--- Packages whose name, (cached) rockspec summary/description or catalog collection matches `text`.
---@return {name: string, versions: string[], summary?: string, matched: string}[]
function pkg.search(text, opts) end
function pkg.info(name, opts) end
---@return {generation: integer, action: string, created: integer, packages: integer, current: boolean, previous?: integer}[]
function pkg.history(opts) end
--- A new generation with generation `n`'s packages (default: the one the current replaced).
---@return {env: string, generation: integer, restored: integer, previous: integer}
function pkg.rollback(n, opts) end
---@return bioxen.pkg.Health
function pkg.health(opts) end
---@return {package: string, reason: string}[]
function pkg.recommend(opts) end
---@return table
function pkg.rockspec(text, name) end
---@return table
function pkg.catalog() end
function pkg.index(opts) end

return pkg
