-- bioxen.net: the Lua half. TCP, UDP and validation are native (src/std/net);
-- this file shapes HTTP requests (JSON in and out) and adds small conveniences.
local native_root = ...

local function build(native)
  local json = native.json
  local net = {}
  for k, v in pairs(native) do
    if k ~= "http_request" and k ~= "json" and k ~= "restrict" and k ~= "error" then net[k] = v end
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
    local resp = native.http_request(r)
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
