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

return xcpng
