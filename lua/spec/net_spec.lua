local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local net, task = bioxen.net, bioxen.task

-- A listener on 127.0.0.1 and a task serving exactly `n` connections with `handler`.
local function server(n, handler)
  local l = net.listen{ host = "127.0.0.1", port = 0 }
  local t = task.spawn(function()
    for _ = 1, n do
      local c = l:accept(5)
      handler(c)
    end
    l:close()
  end)
  return l:port(), t
end

describe("net validate_host", function()
  it("normalises names and addresses", function()
    eq(net.validate_host("Example.ORG."), "example.org")
    eq(net.validate_host("127.0.0.1"), "127.0.0.1")
    eq(net.validate_host("[::1]"), "::1")
  end)
  it("names what is wrong", function()
    local e = raises("Networking", net.validate_host, "")
    assert(e.message:find("empty"), e.message)
    e = raises("Networking", net.validate_host, "bad host")
    assert(e.message:find("bad character"), e.message)
    raises("Networking", net.validate_host, "-lead.org")
    raises("Networking", net.validate_host, "a..b")
    raises("Networking", net.validate_host, "300.1.1.1")
    raises("Networking", net.validate_host, ("a"):rep(64) .. ".org")
    raises("Networking", net.validate_host, 42)
  end)
end)

describe("net validate_port", function()
  it("accepts numbers and numeric strings", function()
    eq(net.validate_port(443), 443)
    eq(net.validate_port("8080"), 8080)
    eq(net.validate_port(0, { allow_zero = true }), 0)
  end)
  it("refuses port 0 where a fixed port is needed, and out-of-range ports", function()
    local e = raises("Networking", net.validate_port, 0)
    assert(e.message:find("fixed port"), e.message)
    e = raises("Networking", net.validate_port, 65536)
    assert(e.message:find("out of range"), e.message)
    raises("Networking", net.validate_port, 1.5)
    raises("Networking", net.validate_port, "http")
    raises("Networking", net.validate_port, nil)
  end)
end)

describe("net tcp", function()
  it("exchanges lines, frames and raw bytes", function()
    local port, t = server(1, function(c)
      local line = c:read_line()
      local frame = c:read_frame()
      local raw = c:read_exact(3)
      c:write_line(line:upper())
      c:write_frame(frame .. "!")
      c:write(raw)
      c:close()
    end)
    local c = net.connect{ host = "127.0.0.1", port = port, timeout = 2 }
    c:write_line("ping")
    c:write_frame("bin\0ary")
    c:write("xyz")
    eq(c:read_line(1), "PING")
    eq(c:read_frame(1), "bin\0ary!")
    eq(c:read_exact(3, 1), "xyz")
    eq(c:read(10, 1), nil, "end of stream")
    task.wait(t)
    assert(c:peer():find("127.0.0.1:" .. port, 1, true))
    assert(c:address():match("^127%.0%.0%.1:%d+$"), c:address())
    assert(tostring(c):find("tcp connection"), tostring(c))
  end)
  it("tells a listener's address and port", function()
    local l = net.listen{ host = "127.0.0.1" }
    eq(l:address(), "127.0.0.1:" .. l:port())
    assert(tostring(l):find("tcp listener"))
    l:close()
    eq(l:accept(1), nil, "a closed listener accepts nothing")
  end)
  it("reads raw chunks as they arrive", function()
    local port, t = server(1, function(c) c:write("abcdef") c:close() end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    local got = {}
    while true do
      local chunk = c:read(4, 2)
      if not chunk then break end
      got[#got + 1] = chunk
    end
    eq(table.concat(got), "abcdef")
    task.wait(t)
  end)
  it("serves connections with a callback per connection", function()
    local l = net.listen{ port = 0 }
    local served = task.spawn(function()
      return l:serve(function(c) c:write_line("hi " .. c:read_line()) c:close() end, 2)
    end)
    for i = 1, 2 do
      local c = net.connect{ host = "127.0.0.1", port = l:port() }
      c:write_line("n" .. i)
      eq(c:read_line(2), "hi n" .. i)
    end
    eq(task.wait(served), 2)
    l:close()
  end)
  it("iterates connections until the listener is closed", function()
    local l = net.listen{ port = 0 }
    local count = 0
    local t = task.spawn(function()
      for c in l:connections() do count = count + 1 c:close() end
      return count
    end)
    for _ = 1, 3 do net.connect{ host = "127.0.0.1", port = l:port() }:close() end
    task.sleep(0.05)
    l:close()
    eq(task.wait(t), 3)
  end)
  it("yields while waiting, so other tasks run", function()
    local port, t = server(1, function(c) task.sleep(0.1) c:write_line("late") c:close() end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    local ticks = 0
    local ticker = task.spawn(function() for _ = 1, 5 do ticks = ticks + 1 task.sleep(0.01) end end)
    eq(c:read_line(2), "late")
    task.wait(ticker)
    eq(ticks, 5)
    task.wait(t)
  end)
  it("times out reads", function()
    local port, t = server(1, function(c) task.sleep(0.2) c:close() end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    local e = raises("Timeout", c.read_line, c, 0.05)
    eq(e.timeout, 0.05)
    task.wait(t)
  end)
  it("reports a peer that disappears mid-frame", function()
    local port, t = server(1, function(c)
      c:write("\0\0\0\10abc") -- announces 10 bytes, sends 3, then goes away
      c:close()
    end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    local e = raises("Networking", c.read_frame, c, 2)
    eq(e.received, 3)
    task.wait(t)
  end)
  it("reports writes to a peer that has gone", function()
    local port, t = server(1, function(c) c:close() end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    task.wait(t)
    eq(c:read_line(2), nil, "clean end of stream")
    local chunk = ("x"):rep(65536)
    local ok, e
    for _ = 1, 200 do
      ok, e = pcall(c.write, c, chunk)
      if not ok then break end
      task.sleep(0.001)
    end
    eq(ok, false, "a write eventually fails")
    eq(e.kind, "Networking")
  end)
  it("refuses a connection to a closed port with Networking", function()
    local l = net.listen{ port = 0 }
    local port = l:port()
    l:close()
    task.sleep(0.01)
    local e = raises("Networking", net.connect, { host = "127.0.0.1", port = port, timeout = 2 })
    eq(e.port, port)
  end)
  it("refuses bad endpoints before connecting", function()
    raises("Networking", net.connect, { host = "127.0.0.1" })
    raises("Networking", net.connect, { port = 80 })
    raises("Networking", net.connect, { host = "127.0.0.1", port = 0 })
    raises("Argument", net.connect)
  end)
  it("closes connections: further reads say so", function()
    local port, t = server(1, function(c) c:read_line() end)
    local c = net.connect{ host = "127.0.0.1", port = port }
    c:close()
    local e = raises("Networking", c.read_line, c)
    assert(e.message:find("closed"), e.message)
    task.wait(t)
  end)
end)

describe("net udp", function()
  it("sends and receives datagrams with their sender", function()
    local a, b = net.udp(), net.udp{ host = "127.0.0.1", port = 0 }
    a:send("hello", "127.0.0.1", b:port())
    local data, host, port = b:recv(2)
    eq({ data, host, port }, { "hello", "127.0.0.1", a:port() })
    b:send("back", host, port)
    eq(a:recv(2), "back")
  end)
  it("times out a receive", function()
    raises("Timeout", net.udp().recv, net.udp(), 0.02)
  end)
  it("tells its address", function()
    local u = net.udp{ port = 0 }
    eq(u:address(), "127.0.0.1:" .. u:port())
  end)
  it("refuses a bad destination", function()
    local u = net.udp()
    raises("Networking", u.send, u, "x", "127.0.0.1", 0)
  end)
end)

describe("net http", function()
  -- A tiny HTTP/1.1 server on net.listen: answers with a JSON echo of the request.
  local function http_server(n, reply)
    return server(n, function(c)
      local head = {}
      while true do
        local line = c:read_line(2)
        if line == nil or line == "" then break end
        head[#head + 1] = line
      end
      local len, hdrs = 0, {}
      for i = 2, #head do
        local k, v = head[i]:match("^([^:]+):%s*(.*)$")
        hdrs[k:lower()] = v
      end
      len = tonumber(hdrs["content-length"] or "0")
      local body = len > 0 and c:read_exact(len, 2) or ""
      local method, path = head[1]:match("^(%S+) (%S+)")
      local status, ctype, out = reply(method, path, hdrs, body)
      c:write(("HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\nX-Test: yes\r\nConnection: close\r\n\r\n%s")
        :format(status, ctype, #out, out))
      c:close()
    end)
  end

  it("sends JSON and decodes a JSON reply", function()
    local port, t = http_server(1, function(method, path, hdrs, body)
      return 201, "application/json", bioxen.json.encode({ method = method, path = path, ctype = hdrs["content-type"], got = bioxen.json.decode(body) })
    end)
    local r = net.http.request{ url = "http://127.0.0.1:" .. port .. "/items", json = { n = 3 }, timeout = 5 }
    eq(r.status, 201)
    eq(r.headers["x-test"], "yes")
    eq(r.json, { method = "POST", path = "/items", ctype = "application/json", got = { n = 3 } })
    task.wait(t)
  end)
  it("passes method, headers and body, and returns the raw body", function()
    local port, t = http_server(1, function(method, _, hdrs, body)
      return 200, "text/plain", method .. " " .. hdrs["x-key"] .. " " .. body
    end)
    local r = net.http.request{ method = "put", url = "http://127.0.0.1:" .. port .. "/", headers = { ["X-Key"] = "k1" }, body = "payload" }
    eq(r.status, 200)
    eq(r.body, "PUT k1 payload")
    eq(r.json, nil)
    task.wait(t)
  end)
  it("posts with the shorthand", function()
    local port, t = http_server(1, function(method, path, _, body) return 200, "text/plain", method .. path .. body end)
    eq(net.http.post("http://127.0.0.1:" .. port .. "/p", { body = "b" }).body, "POST/pb")
    task.wait(t)
  end)
  it("decodes JSON when asked even without a JSON content type", function()
    local port, t = http_server(1, function() return 200, "text/plain", "[1,2]" end)
    local r = net.http.get("http://127.0.0.1:" .. port .. "/", { decode_json = true })
    eq(r.json, { 1, 2 })
    task.wait(t)
  end)
  it("times out a slow server", function()
    local l = net.listen{ port = 0 }
    local t = task.spawn(function() local c = l:accept(5) task.sleep(0.5) c:close() l:close() end)
    raises("Timeout", net.http.request, { url = "http://127.0.0.1:" .. l:port() .. "/", timeout = 0.1 })
    task.wait(t)
  end)
  it("refuses bad URLs and unreachable servers", function()
    raises("Networking", net.http.request, { url = "ftp://example.org/" })
    raises("Networking", net.http.request, { url = "not a url" })
    raises("Argument", net.http.request, { method = "GET" })
    local l = net.listen{ port = 0 }
    local port = l:port()
    l:close()
    local e = raises("Networking", net.http.request, { url = "http://127.0.0.1:" .. port .. "/", timeout = 2 })
    assert(e.message:find("127.0.0.1"), e.message)
  end)
end)

describe("net restrict", function()
  local r = net.restrict{ "127.0.0.1:*", "example.org:443" }
  it("lists its grants and cannot widen them", function()
    eq(r.grants, { "127.0.0.1:*", "example.org:443" })
    eq(r.restrict, nil)
  end)
  it("allows granted addresses", function()
    local l = r.listen{ host = "127.0.0.1", port = 0 }
    local t = task.spawn(function() local c = l:accept(2) c:write_line("ok") c:close() end)
    local c = r.connect{ host = "127.0.0.1", port = l:port() }
    eq(c:read_line(2), "ok")
    task.wait(t)
    l:close()
  end)
  it("refuses everything else with Sandbox", function()
    raises("Sandbox", r.connect, { host = "localhost", port = 80 })
    raises("Sandbox", r.connect, { host = "example.org", port = 80 })
    raises("Sandbox", r.listen, { host = "0.0.0.0", port = 0 })
    raises("Sandbox", r.udp, { host = "::1", port = 0 })
    local u = r.udp()
    raises("Sandbox", u.send, u, "x", "10.0.0.1", 53)
    raises("Sandbox", r.http.request, { url = "http://example.org/" })
    raises("Sandbox", r.http.request, { url = "https://other.org/" })
  end)
  it("refuses malformed grants with Sandbox", function()
    raises("Sandbox", net.restrict, { "*:80" })
    raises("Sandbox", net.restrict, { "example.org" })
    raises("Sandbox", net.restrict, { "example.org:0" })
    raises("Sandbox", net.restrict, { "bad host:80" })
    raises("Sandbox", net.restrict, "127.0.0.1:*")
  end)
end)

for _, backend in ipairs({ "thread", "process" }) do
  describe("net in " .. backend .. " VMs", function()
    local vm = bioxen.vm
    it("is there only when networked, with the grants given", function()
      local plain = vm.create{ backend = backend }
      eq(plain:exec("return net == nil").values[1], true)
      plain:close()
      local w = vm.create{ backend = backend, networked = true, grants = { net = { "127.0.0.1:*", "example.org:443" } } }
      local r = w:exec("return net.grants, net.restrict, net.validate_port('80')")
      eq({ r.values[1], r.values[2], r.values[3] }, { { "127.0.0.1:*", "example.org:443" }, nil, 80 })
      w:close()
    end)
    it("reaches granted addresses: TCP both ways, UDP, HTTP", function()
      local l = net.listen{ port = 0 }
      local t = task.spawn(function()
        local c = l:accept(10)
        c:write_line("hello " .. c:read_line(5))
        c:close()
        local c2 = l:accept(10)
        local head = {}
        while true do local line = c2:read_line(5) if line == "" or line == nil then break end head[#head + 1] = line end
        c2:write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}")
        c2:close()
      end)
      local w = vm.create{ backend = backend, timeout = 10, networked = true, grants = { net = { "127.0.0.1:*" } } }
      -- exec_async: the host's server task must keep running while the child works
      local r = w:exec_async(([[
        local c = net.connect{ host = "127.0.0.1", port = %d, timeout = 5 }
        c:write_line("child")
        local reply = c:read_line(5)
        c:close()
        local resp = net.http.request{ url = "http://127.0.0.1:%d/x", timeout = 5 }
        local a, b = net.udp(), net.udp()
        a:send("dgram", "127.0.0.1", b:port())
        local d = b:recv(5)
        local srv = net.listen{ host = "127.0.0.1", port = 0 }
        return reply, resp.status, resp.json.ok, d, srv:port() > 0
      ]]):format(l:port(), l:port())):wait(20)
      eq({ r.ok, r.values[1], r.values[2], r.values[3], r.values[4], r.values[5] }, { true, "hello child", 200, true, "dgram", true }, r.error)
      task.wait(t)
      l:close()
      w:close()
    end)
    it("resolves granted host names (TCP and HTTP to localhost)", function()
      local l = net.listen{ host = "127.0.0.1", port = 0 }
      local t = task.spawn(function()
        local c = l:accept(10)
        c:write_line("by name") c:close()
        local c2 = l:accept(10)
        while true do local line = c2:read_line(5) if line == "" or line == nil then break end end
        c2:write("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        c2:close()
      end)
      local w = vm.create{ backend = backend, timeout = 10, networked = true, grants = { net = { "localhost:" .. l:port() } } }
      local r = w:exec_async(([[
        local c = net.connect{ host = "localhost", port = %d, timeout = 5 }
        local line = c:read_line(5)
        return line, net.http.request{ url = "http://localhost:%d/", timeout = 5 }.status
      ]]):format(l:port(), l:port())):wait(20)
      eq({ r.ok, r.values[1], r.values[2] }, { true, "by name", 204 }, r.error)
      task.wait(t)
      l:close()
      w:close()
    end)
    it("refuses everything not granted with Sandbox", function()
      local w = vm.create{ backend = backend, networked = true, grants = { net = { "127.0.0.1:9", "example.org:443" } } }
      local r = w:exec([[
        local kinds = {}
        for _, f in ipairs({
          function() return net.connect{ host = "127.0.0.1", port = 10 } end,
          function() return net.connect{ host = "localhost", port = 9 } end,
          function() return net.listen{ host = "127.0.0.1", port = 0 } end,
          function() return net.http.request{ url = "http://example.org/" } end,
          function() return net.udp{ host = "0.0.0.0", port = 0 } end,
        }) do
          local ok, e = pcall(f)
          kinds[#kinds + 1] = ok and "allowed" or e.kind
        end
        return kinds
      ]])
      eq(r.values[1], { "Sandbox", "Sandbox", "Sandbox", "Sandbox", "Sandbox" }, r.error)
      w:close()
    end)
    it("refuses bad grants at creation with Sandbox", function()
      raises("Sandbox", vm.create, { backend = backend, networked = true })
      raises("Sandbox", vm.create, { backend = backend, networked = true, grants = { net = { "*:80" } } })
      raises("Sandbox", vm.create, { backend = backend, networked = true, grants = { net = { "example.org" } } })
      raises("Sandbox", vm.create, { backend = backend, networked = true, grants = { fs = { "/" } } })
      raises("Sandbox", vm.create, { backend = backend, grants = { net = { "127.0.0.1:*" } } })
      raises("Sandbox", vm.create, { backend = backend, networked = true, grants = { net = { 80 } } })
    end)
    it("stops a child blocked on the network at the VM's timeout", function()
      local l = net.listen{ port = 0 }
      local w = vm.create{ backend = backend, timeout = 0.5, networked = true, grants = { net = { "127.0.0.1:*" } } }
      local r = w:exec_async(([[
        local c = net.connect{ host = "127.0.0.1", port = %d }
        return c:read_line()
      ]]):format(l:port())):wait(10)
      eq({ r.ok, r.kind }, { false, "Timeout" })
      l:close()
      w:close()
    end)
  end)
end

for _, backend in ipairs({ "thread", "process" }) do
  describe("net in an interactive " .. backend .. " session", function()
    it("is there when networked, limited to the grants", function()
      local m = bioxen.vm.manager()
      local s = m:session("net-" .. backend, { backend = backend, timeout = 10, networked = true,
        grants = { net = { "127.0.0.1:*" } } })
      s:send("local a, b = net.udp(), net.udp() a:send('dgram', '127.0.0.1', b:port()) print((b:recv(5)))")
      eq(s:read({ timeout = 10 }), "dgram\n")
      s:send("net.connect{ host = '10.1.2.3', port = 80, timeout = 1 }")
      assert(s:read({ timeout = 10 }):match("^Sandbox: "), "not granted")
      local plain = m:session("plain-" .. backend, { backend = backend })
      plain:send("print(net)")
      eq(plain:read({ timeout = 10 }), "nil\n")
      raises("Sandbox", m.session, m, "bad-" .. backend, { backend = backend, networked = true })
      m:close()
    end)
  end)
end
