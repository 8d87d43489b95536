---@meta
-- bioxen.net: host/port validation, TCP, UDP and an HTTP client (docs/api/net.md).

---@class bioxen.net
---@field grants string[]|nil  the granted "host:port" entries (restricted copies and child VMs only)
local net = {}

---Normalised host (lower case, no trailing dot, IPv6 without brackets); raises `Networking`.
---@param host string
---@return string
function net.validate_host(host) end

---Port as an integer; raises `Networking` (port 0 only with `{allow_zero = true}`).
---@param port integer|string
---@param opts? {allow_zero?: boolean}|boolean
---@return integer
function net.validate_port(port, opts) end

---@class bioxen.net.TcpConnection
local Conn = {}
---@param timeout? number
---@return string|nil line  nil at the end of the stream
function Conn:read_line(timeout) end
---@param max? integer default 65536
---@param timeout? number
---@return string|nil
function Conn:read(max, timeout) end
---@param n integer
---@param timeout? number
---@return string|nil
function Conn:read_exact(n, timeout) end
---@param timeout? number
---@param max? integer default 64 MiB
---@return string|nil frame
function Conn:read_frame(timeout, max) end
---@param data string
function Conn:write(data) end
---@param line string
function Conn:write_line(line) end
---@param data string
function Conn:write_frame(data) end
---@return string
function Conn:peer() end
---@return string
function Conn:address() end
function Conn:close() end

---@class bioxen.net.TcpListener
local Listener = {}
---@param timeout? number
---@return bioxen.net.TcpConnection|nil
function Listener:accept(timeout) end
---@return fun(): bioxen.net.TcpConnection|nil
function Listener:connections() end
---@param handler fun(conn: bioxen.net.TcpConnection)
---@param max? integer
---@return integer served
function Listener:serve(handler, max) end
---@return integer
function Listener:port() end
---@return string
function Listener:address() end
function Listener:close() end

---@param opts {host?: string, port?: integer}
---@return bioxen.net.TcpListener
function net.listen(opts) end

---@param opts {host: string, port: integer, timeout?: number}
---@return bioxen.net.TcpConnection
function net.connect(opts) end

---@class bioxen.net.UdpSocket
local Udp = {}
---@param data string
---@param host string
---@param port integer
---@return integer bytes
function Udp:send(data, host, port) end
---@param timeout? number
---@return string data, string host, integer port
function Udp:recv(timeout) end
---@return integer
function Udp:port() end
---@return string
function Udp:address() end

---@param opts? {host?: string, port?: integer}
---@return bioxen.net.UdpSocket
function net.udp(opts) end

---@class bioxen.net.HttpResponse
---@field status integer
---@field headers table<string, string>  lower-case names
---@field body string
---@field url string  after redirects
---@field json any  decoded body (JSON replies, or decode_json = true)

---@class bioxen.net.http
net.http = {}

---`ca`: a PEM file (or PEM text) whose certificates are trusted too; `verify_tls = false`: no verification (logged).
---@param req {method?: string, url: string, headers?: table<string, string>, body?: string, json?: any, decode_json?: boolean, timeout?: number, ca?: string, verify_tls?: boolean}|string
---@return bioxen.net.HttpResponse
function net.http.request(req) end
---@param url string
---@param opts? table
---@return bioxen.net.HttpResponse
function net.http.get(url, opts) end
---@param url string
---@param opts? table
---@return bioxen.net.HttpResponse
function net.http.post(url, opts) end

---A copy limited to `grants` ({"127.0.0.1:*", "example.org:443"}), as child VMs get it.
---@param grants string[]
---@return bioxen.net
function net.restrict(grants) end

bioxen.net = net
return net
