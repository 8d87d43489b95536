---@meta

---@class bioxen.xcpng
local xcpng = {}

---@class XcpngDeployOptions
---@field pool XapiSession
---@field template string name or OpaqueRef
---@field name string
---@field memory? number|string bytes or "2GiB"
---@field vcpus? integer
---@field network? string name label
---@field sr? string name label (copy onto it instead of cloning)
---@field ssh? SshConnectOptions|false host is filled in
---@field address_timeout? number seconds (default 300)

---@class XcpngGuest
---@field vm string
---@field name string
---@field address string
---@field pool XapiSession
---@field ssh SshConnection|nil
local XcpngGuest = {}
---@return SshResult
function XcpngGuest:exec(cmd, opts) end
function XcpngGuest:stream(cmd, opts) end
function XcpngGuest:upload(l, r) end
function XcpngGuest:download(r, l) end
---@return "clean"|"hard"|"halted"
function XcpngGuest:shutdown() end
function XcpngGuest:destroy() end

---@param opts XcpngDeployOptions
---@return XcpngGuest
function xcpng.deploy(opts) end

---@return "clean"|"hard"|"halted"
function xcpng.shutdown(guest_or_pool, vm) end

function xcpng.destroy(guest_or_pool, vm) end

---@return string|nil address
function xcpng.wait_address(pool, vm, timeout) end

---@return number bytes
function xcpng.size(v, what) end

---@return string path of bioxen in the guest
function xcpng.ensure_bioxen(guest, dir) end

---Reproduces a package environment in a guest with the guest's curator.
---@param guest XcpngGuest
---@param exe string the guest's bioxen (from ensure_bioxen)
---@param name string environment name
---@param lock string lockfile text (bioxen env export)
---@param opts? {servers?: string[], timeout?: number}
---@return "present"|"installed"
function xcpng.install_env(guest, exe, name, lock, opts) end

---Options of bioxen.vm.create{backend = "xcpng", ...} beyond the usual VM options.
---@class XcpngVmOptions: bioxen.vm.Options
---@field pool XapiSession
---@field template string
---@field memory? number|string
---@field vcpus? integer
---@field network? string
---@field sr? string
---@field ssh? SshConnectOptions
---@field name? string default "bioxen-<id>"
---@field address_timeout? number
---@field keep? boolean leave the guest running on close
---@field guest_dir? string where the guest keeps an uploaded bioxen
---@field guest_backend? string the guest's VM backend
---@field env? string package environment to reproduce in the guest (sandbox "standard")
---@field env_servers? string[] extra --server URLs for the guest's curator
---@field env_timeout? number seconds for the guest's install (default 900)
---@field max_jobs? integer concurrent exec_async jobs, one SSH channel each (default 8)

return xcpng
