-- Checks for bioxen.ssh (a doctor plug-in: see docs/api/doctor.md): the SSH
-- agent and the known_hosts file bioxen.ssh verifies hosts against.
local doctor = require("bioxen.doctor")

local function home() return os.getenv("HOME") or "" end

--- SSH agent: SSH_AUTH_SOCK set, the socket alive, keys loaded.
local function agent_check()
  local sock = os.getenv("SSH_AUTH_SOCK")
  if not sock or sock == "" then
    return doctor.warning("SSH agent", "SSH_AUTH_SOCK is not set: ssh connections use key files only",
      "eval \"$(ssh-agent -s)\" && ssh-add")
  end
  if doctor.path_kind(sock) ~= "socket" then
    return doctor.problem("SSH agent", ("SSH_AUTH_SOCK=%s is not a socket (stale agent)"):format(sock),
      "eval \"$(ssh-agent -s)\" && ssh-add, or unset SSH_AUTH_SOCK")
  end
  if not doctor.which("ssh-add") then
    return doctor.ok("SSH agent", sock .. " (ssh-add not installed, keys not listed)")
  end
  local out = doctor.capture(("SSH_AUTH_SOCK=%q ssh-add -l"):format(sock))
  if out:match("Could not open") or out:match("Error connecting") or out:match("Connection refused") then
    return doctor.problem("SSH agent", ("the agent at %s does not answer (stale socket)"):format(sock),
      "eval \"$(ssh-agent -s)\" && ssh-add")
  end
  if out:match("no identities") then
    return doctor.warning("SSH agent", sock .. " is running but holds no keys", "ssh-add ~/.ssh/id_ed25519")
  end
  local n = select(2, out:gsub("\n", ""))
  return doctor.ok("SSH agent", ("%s (%d key%s)"):format(sock, n, n == 1 and "" or "s"))
end

--- ~/.ssh/known_hosts: present and readable (hosts are verified against it).
local function known_hosts_check()
  local path = home() .. "/.ssh/known_hosts"
  if doctor.path_kind(path) == nil then
    return doctor.warning("SSH known_hosts", path .. " does not exist: unknown hosts are refused",
      "ssh-keyscan -H HOST >> ~/.ssh/known_hosts (after checking the key), or connect once with ssh HOST")
  end
  local f = io.open(path, "r")
  if not f then
    return doctor.problem("SSH known_hosts", path .. " is not readable", "chmod 600 ~/.ssh/known_hosts")
  end
  local n = 0
  for line in f:lines() do
    if line:match("^%s*[^#%s]") then n = n + 1 end
  end
  f:close()
  return doctor.ok("SSH known_hosts", ("%s (%d host key%s)"):format(path, n, n == 1 and "" or "s"))
end


return function()
  return { agent_check(), known_hosts_check() }
end
