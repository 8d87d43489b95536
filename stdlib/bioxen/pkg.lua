-- bioxen.pkg: the curator. LuaRocks-compatible package environments with one
-- consistent version set each, a lockfile, generations with rollback, health
-- checks and recommendations. Rust primitives (sandboxed rockspec evaluation,
-- downloads, archives, hashes, linking) come in as `native`; the policy is here.
--
-- Layout (docs/packages.md):
--   DATA/envs/NAME/current -> gens/N         the active generation (symlink, swapped atomically)
--   DATA/envs/NAME/gens/N/{tree,state.json,bioxen.lock}
--   DATA/envs/ACTIVE                          the name `env use` chose
--   DATA/pkg/store/NAME/VERSION-KEY/{tree,info.json}   built packages, hard-linked into generations
--   CACHE/pkg/{manifests,rockspecs,downloads,build,local}
--
-- The parts (stdlib/bioxen/pkg/), in the order `pkg.install` uses them:
--   sources.lua   servers and manifests (pkg.index), rockspecs fetched in
--                 parallel and evaluated sandboxed (pkg.rockspec), search, info
--   resolve.lua   pkg.resolve: backtracking, one version per package, the
--                 conflict explained when nothing fits
--   store.lua     realise: store entries that exist and are intact are reused;
--                 the rest are downloaded in parallel and built into the store
--   build.lua     how one package is built (builtin, make, cmake, command)
--   envs.lua      environments and generations: commit writes a new generation
--                 of hard links, staged, renamed, then `current` swapped
--   lockfile.lua  bioxen.lock and `install --locked`
--   install.lua   install/remove/update/pin/rollback, each under the
--                 environment's lock
--   health.lua    health checks and recommendations
--   profiles.lua  catalogs and profiles; util.lua the shared helpers
local native = ...
local U = require("bioxen.pkg.util")
U.set_native(native)

local profiles = require("bioxen.pkg.profiles")
local sources = require("bioxen.pkg.sources")
local envs = require("bioxen.pkg.envs")
local install = require("bioxen.pkg.install")
local health = require("bioxen.pkg.health")

local pkg = { version = require("bioxen.pkg.version") }

--- The catalog: { collections, profiles, recommendations }, user files overriding shipped ones.
pkg.catalog = profiles.catalog
pkg.profile = { list = profiles.list, show = profiles.show, create = profiles.create }

--- All versions on the servers: name -> version -> { server, rockspec = bool, src = bool }.
pkg.index = sources.index
--- Evaluates rockspec text as LuaRocks does and applies this platform's overrides.
pkg.rockspec = sources.rockspec
--- Packages on the servers whose name contains `text`.
pkg.search = sources.search
--- Details of a package: versions, the newest rockspec's description and dependencies.
pkg.info = sources.info

--- Resolves requests into one version per package (see resolve.lua).
pkg.resolve = require("bioxen.pkg.resolve").resolve

--- Environments: active, exists, create, list, use, remove, paths, export, import.
pkg.envs = envs.envs
--- Installed packages: list of { name, version, pinned, requested }.
pkg.list = envs.list
--- The lock table of an environment (what bioxen.lock holds).
pkg.lock = envs.lock
--- Generations of an environment, oldest first.
pkg.history = envs.history

--- Installs packages ("name", "name >= 1.0", or .src.rock/.rockspec files) into an
--- environment as one new generation. opts: env, servers, locked (+ lockfile text), quiet.
pkg.install = install.install
--- Removes packages; refuses while another package depends on one (unless opts.force).
pkg.remove = install.remove
--- Updates the named packages (or all) to the newest versions the constraints allow.
pkg.update = install.update
--- Pins (or with opts.unpin, unpins) installed packages at their current version.
pkg.pin = install.pin
--- Returns the environment to generation N (default: the one before the current) atomically.
pkg.rollback = install.rollback

--- Checks an environment: hashes, `require` of every module, system libraries.
pkg.health = health.health
--- Suggestions from the catalog given what is installed: { package, reason }.
pkg.recommend = health.recommend

pkg.LUA_VERSION = U.LUA_VERSION
pkg.PROVIDED = U.PROVIDED
-- Durations at debug level (docs/api/log.md); nothing is wrapped otherwise.
require("bioxen.log").instrument(pkg, "pkg", { "install", "remove", "update", "rollback" })

return pkg
