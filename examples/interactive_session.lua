-- Interactive sessions: talk to a long-lived VM the way you would at a REPL,
-- read its output the moment it is ready, and keep a session alive across
-- scripts and terminals. Run: bioxen examples/interactive_session.lua
local m = bioxen.vm.manager()

-- A session on the thread backend (use backend = "process" for a separate
-- process with OS limits). Input is fed like a REPL.
local s = m:session("analysis", { backend = "thread" })
s:send("gc = function(seq) local n = 0 for c in seq:gmatch('[GC]') do n = n + 1 end return n / #seq end\n")
s:send("x = 42\nprint('Value:', x)\n")
io.write((s:read({ timeout = 1 })))                --> Value:	42

-- Expressions print their values; multi-line chunks wait until complete.
s:send("gc('ATGCGC')")
s:send("for i = 1, 3 do\n")
local text, busy, incomplete = s:read({ timeout = 1 })
print(("%q busy=%s incomplete=%s"):format(text, busy, incomplete))   -- the gc value; incomplete=true
s:send("  print('codon', i)\nend\n")
io.write((s:read({ timeout = 1 })))

-- Long-running input: read returns at its timeout with busy = true.
s:send("local t = os.clock() while os.clock() - t < 0.2 do end print('done')")
local partial, still_running = s:read({ timeout = 0.01 })
print("still running:", still_running)
io.write((s:read({ timeout = 5 })))                 --> done

-- Detach keeps the session running; attach returns it.
m:detach("analysis")
local again = m:attach("analysis")
again:send("x")
io.write((m:read("analysis", { timeout = 1 })))     --> 42

-- Errors are values with a kind.
local ok, e = pcall(m.get, m, "nope")
print(ok, e.kind)                                 --> false	SessionNotFound

-- A persistent session lives in the session host (started on demand): it
-- outlives this script. From a terminal: bioxen session attach notebook
local p = m:session("notebook", { persistent = true })
p:send("notes = { 'started from examples/interactive_session.lua' }")
p:read({ timeout = 1 })
print("persistent session 'notebook' is running; try: bioxen session attach notebook")
print("(and bioxen session kill notebook when you are done)")

for id, info in pairs(m:list()) do
  print(id, info.backend, info.status, info.attached, info.persistent)
end
m:close()   -- closes 'analysis'; 'notebook' is only detached and keeps running
