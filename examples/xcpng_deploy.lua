-- Deploys a guest on an XCP-ng pool, runs a command in it over SSH and removes it.
-- With no arguments it starts the pool simulator in-process (a dry run);
-- against a real pool: bioxen examples/xcpng_deploy.lua https://POOL-MASTER USER PASSWORD KEY
local xapi, xcpng = bioxen.xapi, bioxen.xcpng
local url, user, password, key = ...
local sim
if not url then
  sim = xapi.simulator({ user = "root", password = "secret" })
  url, user, password, key = sim.url, "root", "secret", sim.ssh_key
end

local pool = xapi.connect({ url = url, user = user, password = password })
local known_hosts = os.getenv("BIOXEN_HOME") and (os.getenv("BIOXEN_HOME") .. "/known_hosts") or nil
local guest = xcpng.deploy({
  pool = pool,
  template = "Debian Bookworm 12",
  name = "bioxen-example",
  memory = "1GiB",
  vcpus = 2,
  network = "Pool-wide network associated with eth0",
  ssh = { user = "root", key = key, known_hosts = known_hosts, accept_new = true },
  address_timeout = 120,
})
print(("guest %s is up at %s"):format(guest.name, guest.address))
local r = guest:exec("echo hello from $(hostname)")
io.write(r.stdout)
print("shutdown:", xcpng.shutdown(guest))
xcpng.destroy(guest)
pool:close()
if sim then sim:stop() end
