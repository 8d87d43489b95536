-- Peer-to-peer messaging: two child VMs talk over TCP on 127.0.0.1.
--
--   bioxen examples/p2p_messaging.lua [thread|process]
--
-- Each peer is a sandboxed child VM with networking granted for 127.0.0.1 only.
-- Peer A listens on a free port and tells peer B the port through a channel;
-- B connects and sends DNA sequences as length-prefixed frames; A answers each
-- with its reverse complement and GC content. The host only starts them and
-- prints what each peer reported.
local vm, channel = bioxen.vm, bioxen.channel
local backend = arg and arg[1] or "thread"

local rendezvous = channel{ capacity = 1 }
local function peer(id)
  return vm.create{
    id = id, backend = backend, timeout = 20,
    networked = true, grants = { net = { "127.0.0.1:*" } },
    channels = { rendezvous = rendezvous },
  }
end
local a, b = peer("peer-a"), peer("peer-b")

local server = a:exec_async([[
  local l = net.listen{ host = "127.0.0.1", port = 0 }
  channels.rendezvous:send(l:port())
  local conn = l:accept(10)
  print("A: connection from " .. conn:peer())
  local comp = { A = "T", C = "G", G = "C", T = "A" }
  local served = 0
  while true do
    local seq = conn:read_frame(10)
    if seq == nil then break end            -- B closed the connection
    local gc = select(2, seq:gsub("[GC]", ""))
    local rc = seq:reverse():gsub(".", comp)
    conn:write_frame(rc .. " " .. string.format("%.3f", gc / #seq))
    served = served + 1
  end
  conn:close()
  l:close()
  print("A: answered " .. served .. " messages")
  return served
]])

local client = b:exec_async([[
  local port = channels.rendezvous:recv(10)
  local conn = net.connect{ host = "127.0.0.1", port = port, timeout = 5 }
  print("B: connected to 127.0.0.1:" .. port)
  local sent = { "ACGTACGGTC", "GGGCCCATAT", "ATATATATAT", "GATTACA" }
  local replies = {}
  for i, seq in ipairs(sent) do
    conn:write_frame(seq)
    local reply = conn:read_frame(10)
    print(("B: %-10s -> %s"):format(seq, reply))
    replies[i] = reply
  end
  -- a grant is a grant: anything but 127.0.0.1 is refused
  local ok, e = pcall(net.connect, { host = "example.org", port = 80 })
  print("B: example.org:80 -> " .. tostring(e.kind))
  conn:close()
  return replies
]])

local rb = client:wait(30)
local ra = server:wait(30)
io.write(ra.stdout, rb.stdout)
assert(ra.ok, ra.error)
assert(rb.ok, rb.error)
assert(ra.values[1] == 4, "peer A answered every message")
assert(rb.values[1][1] == "GACCGTACGT 0.600", rb.values[1][1])
assert(rb.stdout:find("example.org:80 -> Sandbox", 1, true))
print(("p2p over %s VMs: ok"):format(backend))
a:close() b:close()
