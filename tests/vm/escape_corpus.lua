-- The escape corpus: attempts to break out of a child VM or take the host or
-- other VMs down. Run by tests/vm_escape.rs for each backend:
--   bioxen tests/vm/escape_corpus.lua BACKEND
-- Each attempt runs in a fresh VM and must end with the expected kind (nil = ok,
-- with `check` deciding whether the attempt was contained). After each one the
-- host must still work, a sibling VM must still answer correctly, and the
-- attacked VM must be usable again (restarted, for the process backend).
local vm = require("bioxen.vm")
local backend = assert(arg[1], "usage: escape_corpus.lua thread|process")

local BYTECODE = "\27LJ\2\0\9@x.lua\0"

local corpus = {
  -- ffi and native libraries
  { "ffi through an int64 literal", "local x = 1LL return ffi.C", "Sandbox" },
  { "int64 literal stays a harmless number", "return tostring(1LL + 1)", nil,
    function(r) return r.values[1] == "2LL" end },
  { "ffi global", "return ffi", "Sandbox" },
  { "ffi through require (strict)", "return require('ffi')", "Sandbox" },
  { "ffi through require (standard)", "return require('ffi')", "Sandbox", nil, { sandbox = "standard" } },
  { "string.buffer through require", "return require('string.buffer')", "Sandbox", nil, { sandbox = "standard" } },
  { "string.buffer field", "return string.buffer.new():reserve(8)", "Sandbox" },
  { "jit library", "jit.off() return 1", "Sandbox" },
  { "jit.util through require", "return require('jit.util')", "Sandbox", nil, { sandbox = "standard" } },
  { "package.loadlib", "return package.loadlib('libc.so.6', 'system')", "Sandbox" },
  { "package.loaded", "return package.loaded.ffi", "Sandbox" },
  { "debug.getregistry", "return debug.getregistry()", "Sandbox" },
  { "debug.sethook", "debug.sethook() while true do end", "Sandbox" },
  { "debug.getinfo", "return debug.getinfo(1)", "Sandbox" },
  -- bytecode
  { "bytecode through load", "return load(" .. ("%q"):format(BYTECODE) .. ")", "Sandbox" },
  { "bytecode through loadstring", "return loadstring(" .. ("%q"):format(BYTECODE) .. ")", "Sandbox" },
  { "load in binary mode", "return load('return 1', 'x', 'b')", "Sandbox" },
  { "bytecode through a reader function", "local s = " .. ("%q"):format(BYTECODE)
    .. " local f, e = load(function() local c = s s = nil return c end) return f == nil, e", nil,
    function(r) return r.values[1] == true and tostring(r.values[2]):find("mode") ~= nil end },
  { "string.dump", "return string.dump(print)", "Sandbox" },
  { "string.dump as a method", "return (''):dump()", "Sandbox" },
  -- environments and files
  { "getfenv(0)", "return getfenv(0)", "Sandbox" },
  { "setfenv", "setfenv(1, {})", "Sandbox" },
  { "dofile", "return dofile('/etc/passwd')", "Sandbox" },
  { "loadfile", "return loadfile('/etc/passwd')", "Sandbox" },
  { "module", "module('x')", "Sandbox" },
  { "require in strict", "return require('string')", "Sandbox" },
  { "require a path", "return require('../../etc/passwd')", "Argument", nil, { sandbox = "standard" } },
  { "io.open", "return io.open('/etc/passwd'):read('*a')", "Sandbox" },
  { "io.popen", "return io.popen('id'):read('*a')", "Sandbox" },
  { "os.execute", "return os.execute('id')", "Sandbox" },
  { "os.exit", "os.exit(1)", "Sandbox" },
  { "os.getenv", "return os.getenv('HOME')", "Sandbox" },
  { "os.remove", "return os.remove('/tmp/x')", "Sandbox" },
  { "os.tmpname", "return os.tmpname()", "Sandbox" },
  { "rawget around the guard", "return rawget(_G, 'io') == nil and rawget(_G, 'ffi') == nil", nil,
    function(r) return r.values[1] == true end },
  { "removing the guard leaves nothing behind", "setmetatable(_G, nil) return io == nil and rawget(os, 'execute') == nil and ffi == nil", nil,
    function(r) return r.values[1] == true end },
  { "newproxy with a looping __gc", "local p = newproxy(true) getmetatable(p).__gc = function() while true do end end", "Sandbox" },
  { "locked error metatable", "local ok, e = pcall(function() return io end) return getmetatable(e)", nil,
    function(r) return r.values[1] == false end },
  -- the string metatable
  { "poisoning the string metatable", "getmetatable('').__index = { upper = function() return 'pwned' end }", "Sandbox" },
  { "rawset on the string metatable", "rawset(getmetatable(''), '__index', {}) return ('a'):upper()", nil,
    function(r) return r.values[1] == "A" end },
  { "changing string functions stays in the VM", "string.upper = function() return 'pwned' end return ('a'):upper()", nil,
    function(r) return r.values[1] == "pwned" end },
  -- the garbage collector and memory
  { "collectgarbage('stop')", "collectgarbage('stop') local t = {} for i = 1, 1e8 do t[i] = {} end", "Sandbox" },
  { "collectgarbage() full cycle", "collectgarbage()", "Sandbox" },
  { "collectgarbage('count') is allowed", "return collectgarbage('count') > 0", nil,
    function(r) return r.values[1] == true end },
  { "allocation bomb", "local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(4096) .. i end", "MemoryLimit", nil, { timeout = 5 } },
  { "string.rep bomb", "return ('x'):rep(2^30)", "MemoryLimit" },
  { "separator string.rep bomb", "return ('x'):rep(1e9, ',')", "MemoryLimit" },
  { "table.concat bomb", "local t = {} for i = 1, 64 do t[i] = ('y'):rep(2^20) end local s = table.concat(t) return #table.concat({s, s, s})", "MemoryLimit" },
  { "coroutine bomb", "local t = {} for i = 1, 1e7 do t[i] = coroutine.create(print) end", "MemoryLimit" },
  -- recursion and time
  { "unbounded recursion", "local function f() return 1 + f() end return f()", "Runtime" },
  { "recursion through coroutines", "local function f() return coroutine.wrap(f)() end return f()", "Runtime", nil, { timeout = 10 } },
  { "unbounded tail calls", "local function f() return f() end return f()", "Timeout" },
  { "infinite loop under the JIT", "while true do end", "Timeout" },
  { "long numeric loop under the JIT", "local x = 0 for i = 1, 1e15 do x = x + i end return x", "Timeout" },
  { "loop inside pcall", "while true do pcall(function() while true do end end) end", "Timeout" },
  { "pcall catching the timeout", "local n = 0 while true do local ok = pcall(function() while true do end end) n = n + 1 end", "Timeout" },
  { "loop inside a coroutine", "local co = coroutine.wrap(function() while true do end end) co()", "Timeout" },
  { "coroutines catching the timeout", "while true do coroutine.resume(coroutine.create(function() while true do end end)) end", "Timeout" },
  { "xpcall with a looping handler", "xpcall(function() error('x') end, function() while true do end end)", "Timeout" },
  { "error object whose __tostring loops", "error(setmetatable({}, { __tostring = function() while true do end end }))", "Timeout" },
  { "print of a value whose __tostring loops", "print(setmetatable({}, { __tostring = function() while true do end end }))", "Timeout" },
  { "gsub callback that loops", "return ('aaa'):gsub('a', function() while true do end end)", "Timeout" },
  { "table.sort comparator that loops", "local t = {3, 2, 1} table.sort(t, function() while true do end end)", "Timeout" },
  { "catastrophic pattern backtracking",
    backend == "thread"
      and "local r = string.find(('a'):rep(24), ('a*'):rep(8) .. 'b') for i = 1, 10 do end return r"
      or "return string.find(('a'):rep(40), ('a*'):rep(12) .. 'b')", "Timeout" },
  -- output and results
  { "output flood", "while true do print('flood') end", "OutputLimit", function(r) return r.truncated and #r.stdout <= 4096 end },
  { "one huge print", "print(('x'):rep(2^20))", "OutputLimit", function(r) return r.truncated and #r.stdout == 4096 end },
  { "huge return value", "return ('x'):rep(2^22)", "OutputLimit" },
  { "deep nested tables in results", "local t = {} for i = 1, 1e5 do t = { t } end return t", "Value" },
  { "cyclic table in results", "local t = {} t.self = t return t", "Value" },
  { "function in results", "return print", "Value" },
  { "coroutine in results", "return coroutine.create(print)", "Value" },
  { "cdata in results", "return 1LL", "Value" },
  { "too many results", "return unpack({}, 1, 1e8)", "Runtime" },
}

-- Contained only by the process backend: trusted code with the whole library.
if backend == "process" then
  local more = {
    { "fork through os.execute (trusted)", "local r = os.execute('echo escaped > escaped.txt') return io.open('escaped.txt') == nil", nil,
      function(r) return r.values[1] == true end },
    { "fork through io.popen (trusted)", "local ok, p = pcall(io.popen, 'id') return (not ok) or p == nil or p:read('*a') == ''", nil,
      function(r) return r.values[1] == true end },
    { "fork through ffi (trusted)", "local ffi = require('ffi') ffi.cdef('int fork(void);') return ffi.C.fork()", nil,
      function(r) return r.values[1] == -1 end },
    -- exec replaces the child (same limits, protocol descriptors closed): the
    -- host sees the pipe close, kills what runs there and reports a crash.
    { "exec through ffi (trusted)", "local ffi = require('ffi') ffi.cdef('int execl(const char*, const char*, ...);') return ffi.C.execl('/bin/sh', 'sh', nil)", "Crashed" },
    { "environment is cleared (trusted)", "return os.getenv('HOME') == nil and os.getenv('PATH') == nil", nil,
      function(r) return r.values[1] == true end },
    { "no inherited descriptors (trusted)", "for fd = 5, 64 do if io.open('/proc/self/fd/' .. fd) then return fd end end return 0", nil,
      function(r) return r.values[1] == 0 end },
    { "private working folder (trusted)", "local f = assert(io.open('mine.txt', 'w')) f:write('x') f:close() return io.open('mine.txt'):read('*a')", nil,
      function(r) return r.values[1] == "x" end },
    { "segfault through ffi (trusted)", "local ffi = require('ffi') return ffi.cast('int*', 0)[0]", "Crashed" },
    { "abort through ffi (trusted)", "local ffi = require('ffi') ffi.cdef('void abort(void);') ffi.C.abort()", "Crashed" },
    { "os.exit (trusted)", "os.exit(0)", "Crashed" },
    { "blocking forever in C (trusted)", "local ffi = require('ffi') ffi.cdef('int poll(void*, unsigned long, int);') ffi.C.poll(nil, 0, -1)", "Timeout" },
    { "looping __gc finalizer (trusted)", "local p = newproxy(true) getmetatable(p).__gc = function() while true do end end p = nil collectgarbage()", "Timeout" },
    { "address-space bomb through ffi (trusted)", "local ffi = require('ffi') ffi.cdef('void *malloc(size_t);') return ffi.C.malloc(2^40) == nil", nil,
      function(r) return r.values[1] == true end },
    { "killing the parent (trusted)", "local ffi = require('ffi') ffi.cdef('int kill(int, int); int getppid(void);') return ffi.C.kill(ffi.C.getppid(), 9)", nil,
      function(r) return r.values[1] == -1 end },
  }
  for _, e in ipairs(more) do
    e[5] = e[5] or { sandbox = "trusted" }
    corpus[#corpus + 1] = e
  end
end

local sibling = vm.create{ backend = backend, id = "sibling" }
sibling:exec("secret = 42")
local passed, failed = 0, 0
for i, e in ipairs(corpus) do
  local name, code, kind, check, extra = e[1], e[2], e[3], e[4], e[5] or {}
  local opts = { backend = backend, timeout = 0.3, memory_limit = 32 * 2^20, output_limit = 4096,
    result_limit = 2^20 }
  for k, v in pairs(extra) do opts[k] = v end
  local v = vm.create(opts)
  local r = v:exec(code)
  local problems = {}
  if kind == nil and not r.ok then
    problems[#problems + 1] = ("expected ok, got %s: %s"):format(tostring(r.kind), tostring(r.error))
  elseif kind ~= nil and r.kind ~= kind then
    problems[#problems + 1] = ("expected kind %s, got %s: %s"):format(kind, tostring(r.kind), tostring(r.error))
  end
  if check and not check(r) then problems[#problems + 1] = "the check on the result failed" end
  if type(r.duration) ~= "number" or r.duration > opts.timeout + 2 then problems[#problems + 1] = "took " .. tostring(r.duration) end
  local again = v:exec("return 6 * 7")
  if not (again.ok and again.values[1] == 42) then
    problems[#problems + 1] = "the VM is unusable afterwards: " .. tostring(again.kind) .. " " .. tostring(again.error)
  end
  local s = sibling:exec("return secret, ('a'):upper(), string.rep('b', 2)")
  if not (s.ok and s.values[1] == 42 and s.values[2] == "A" and s.values[3] == "bb") then
    problems[#problems + 1] = "the sibling VM was affected: " .. tostring(s.error)
  end
  if ("a"):upper() ~= "A" or not io or not os.execute then problems[#problems + 1] = "the host was affected" end
  v:close()
  if #problems == 0 then
    passed = passed + 1
    print(("PASS %s"):format(name))
  else
    failed = failed + 1
    print(("FAIL %s: %s"):format(name, table.concat(problems, "; ")))
  end
end
sibling:close()
print(("escape corpus (%s): %d attempts, %d contained, %d failed"):format(backend, #corpus, passed, failed))
os.exit(failed == 0 and 0 or 1)
