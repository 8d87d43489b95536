-- bioxen.net: the Lua half. TCP, UDP and validation are native (src/std/net);
-- this file shapes HTTP requests (JSON in and out) and adds small conveniences.
local native_root = ...

local function build(native)
  local json = native.json
  local net = {}
  local hidden = { http_request = 1, json = 1, restrict = 1, error = 1, block = 1, blocking = 1 }
  for k, v in pairs(native) do
    if not hidden[k] then net[k] = v end
  end
  local http_request = native.http_request

  -- In a child VM (no event loop) every operation runs to completion through
  -- native.block, and sockets come back as proxies whose methods do the same.
  if native.blocking then
    local block = native.block
    local wrap
    local function blocking(f)
      return function(...) return wrap(block(f, ...)) end
    end
    local function proxy(obj)
      local methods = {}
      local p = {}
      return setmetatable(p, {
        __index = function(_, k)
          local m = methods[k]
          if m then return m end
          local f = obj[k]
          if type(f) ~= "function" then return f end
          if k == "serve" then
            -- no tasks in a child VM: connections are handled one after another
            m = function(_, handler, max)
              local served = 0
              while max == nil or served < max do
                local c = p:accept()
                if c == nil then break end
                handler(c)
                served = served + 1
              end
              return served
            end
          else
            local fast = obj[k .. "_b"] -- a native blocking twin, when there is one
            if fast then
              m = function(self, ...) return fast(self == p and obj or self, ...) end
            else
              m = function(self, ...)
                return wrap(block(f, self == p and obj or self, ...))
              end
            end
          end
          methods[k] = m
          return m
        end,
        __tostring = function() return tostring(obj) end,
      })
    end
    function wrap(...)
      local n = select("#", ...)
      if n == 0 then return end
      local v = ...
      if n == 1 then
        if type(v) == "userdata" then return proxy(v) end
        if type(v) == "function" then return blocking(v) end
        return v
      end
      return ...
    end
    for k, v in pairs(net) do
      if type(v) == "function" and k ~= "validate_host" and k ~= "validate_port" then
        net[k] = blocking(v)
      end
    end
    http_request = blocking(http_request)
  end

  local function fail(kind, message, details, level)
    error(native.error(kind, message, details), (level or 1) + 1)
  end

  net.http = {}

  --- Performs an HTTP request.
  --- `req`: { method = "GET", url = "...", headers = {}, body = "...", json = value,
  ---          decode_json = bool, timeout = seconds }
  --- Returns { status, headers, body, url, json } where `json` is the decoded body when
  --- the reply is JSON (Content-Type) or `decode_json = true` was asked.
  function net.http.request(req)
    if type(req) == "string" then req = { url = req } end
    if type(req) ~= "table" then
      fail("Argument", "http.request needs a table {url = ..., method = ...}, got a " .. type(req), nil, 2)
    end
    local r = {}
    for k, v in pairs(req) do r[k] = v end
    local headers = {}
    for k, v in pairs(req.headers or {}) do headers[k] = tostring(v) end
    if req.json ~= nil then
      if req.body ~= nil then
        fail("Argument", "http.request: give either body or json, not both", nil, 2)
      end
      r.body = json.encode(req.json)
      local has_type = false
      for k in pairs(headers) do if k:lower() == "content-type" then has_type = true end end
      if not has_type then headers["Content-Type"] = "application/json" end
      if not r.method then r.method = "POST" end
    end
    r.headers = headers
    r.json = nil
    local resp = http_request(r)
    local ctype = resp.headers["content-type"] or ""
    if req.decode_json or (req.decode_json == nil and ctype:find("json", 1, true)) then
      resp.json = json.decode(resp.body)
    end
    return resp
  end

  function net.http.get(url, opts)
    local r = { url = url, method = "GET" }
    for k, v in pairs(opts or {}) do r[k] = v end
    return net.http.request(r)
  end

  function net.http.post(url, opts)
    local r = { url = url, method = "POST" }
    for k, v in pairs(opts or {}) do r[k] = v end
    return net.http.request(r)
  end

  if native.restrict then
    --- A copy of bioxen.net limited to `grants` ({"127.0.0.1:*", "example.org:443"}),
    --- as a child VM gets it; anything else is refused with kind `Sandbox`.
    function net.restrict(grants)
      if type(grants) ~= "table" then
        fail("Sandbox", "net.restrict needs a list of \"host:port\" grants", nil, 2)
      end
      return build(native.restrict(grants))
    end
  end

  return net
end

return build(native_root)
