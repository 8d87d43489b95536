-- An environment, packages, a child VM requiring them, and a health check.
-- usage: bioxen examples/integration_demo.lua [SERVER]
--   SERVER: a LuaRocks repository URL or folder (default: your pkg.servers
--   setting, else luarocks.org). The tests' mirror: bash tests/deps/rocks.sh,
--   then SERVER=target/rocks/repo.
local pkg = bioxen.pkg
local server = ...
local opts = { env = "integration-demo", servers = server and { server } or nil }

-- 1. an environment with two pure-Lua packages (one version of each, locked)
if not pkg.envs.exists(opts.env) then pkg.envs.create(opts.env) end
local r = pkg.install({ "inspect >= 3", "dkjson" }, opts)
print(("environment %s, generation %d"):format(r.env, r.generation))
for _, p in ipairs(pkg.list(opts)) do print("  " .. p.name .. " " .. p.version) end

-- 2. the host requires them through the environment's paths
local paths = pkg.envs.paths(opts.env)
package.path = paths.path .. ";" .. package.path
local inspect = require("inspect")
print("host:", inspect({ dkjson = require("dkjson").version }))

-- 3. a sandboxed child VM requires them too (pure Lua only in `standard` VMs)
local child = bioxen.vm.create({ sandbox = "standard", package_path = { paths.lua_dir } })
local r = child:exec([[return require("dkjson").encode({ ok = true })]])
print("child VM:", r.ok and r.values[1] or r.error)
child:close()

-- 4. a health check: file hashes, require of every module, system libraries
local h = pkg.health(opts)
print(("health: %s (%d modules)"):format(h.ok and "ok" or "problems", h.modules))
for _, p in ipairs(h.problems) do print("  " .. p.problem .. "\n    fix: " .. p.fix) end

-- 5. the lockfile that reproduces this environment elsewhere
print(("lockfile: %d bytes (bioxen env export %s)"):format(#pkg.envs.export(opts.env), opts.env))
