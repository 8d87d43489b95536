---@meta

---@class bioxen.ssh
local ssh = {}

---@class SshConnectOptions
---@field host string
---@field port? integer default 22
---@field user? string default $USER
---@field key? string private key file
---@field agent? boolean use ssh-agent
---@field password? string
---@field known_hosts? string default ~/.ssh/known_hosts
---@field accept_new? boolean record unknown hosts (default false)
---@field timeout? number seconds (default 30)
---@field keepalive? integer seconds (default 30)

---@class SshResult
---@field ok boolean
---@field status integer
---@field signal string|nil
---@field stdout string
---@field stderr string

---@class SshExecOptions
---@field stdin? string
---@field timeout? number
---@field env? table<string,string>

---@class SshStream
local SshStream = {}
---@return "stdout"|"stderr"|nil, string|nil
function SshStream:read() end
---@return SshResult
function SshStream:wait() end

---@class SshChannel
local SshChannel = {}
---@param data string
function SshChannel:write(data) end
---@return "stdout"|"stderr"|nil, string|integer|nil
function SshChannel:read() end
function SshChannel:close_stdin() end
function SshChannel:close() end
---@return integer|nil
function SshChannel:status() end

---@class SshConnection
local SshConnection = {}
---@param cmd string
---@param opts? SshExecOptions
---@return SshResult
function SshConnection:exec(cmd, opts) end
---@return SshStream
function SshConnection:stream(cmd, opts) end
---@return SshChannel
function SshConnection:open(cmd, opts) end
---@return integer bytes
function SshConnection:upload(local_path, remote_path) end
---@return integer bytes
function SshConnection:download(remote_path, local_path) end
function SshConnection:close() end
---@return string
function SshConnection:target() end

---@param opts SshConnectOptions
---@return SshConnection
function ssh.connect(opts) end

return ssh
