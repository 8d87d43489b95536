-- bioxen.repl: the REPL's evaluator, independent of any terminal. A session
-- evaluates chunks of input, keeps top-level `local`s between chunks, formats
-- results with bioxen.pretty and completes names. The line editor (Rust,
-- rustyline) drives it; see docs/repl.md.
--
-- Locals: a top-level `local a, b = ...` is rewritten to `a, b = ...` plus a
-- declaration, and every chunk runs with the session's environment, which
-- holds the declared names and falls back to the globals. So `local x = 41`
-- then `x + 1` prints 42, `x` never becomes a global, and functions defined
-- in the session see it. Locals inside blocks and functions are untouched.
local pretty = require("bioxen.pretty")
local repl = {}

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in local nil not or
  repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[#KEYWORDS + 1] = w
end

---------------------------------------------------------------------------
-- A small Lua tokenizer: enough to find top-level `local` statements.
---------------------------------------------------------------------------

-- Returns a list of tokens { kind, text, first, last } (kinds: name, keyword,
-- string, number, op); comments and spaces are dropped. Unfinished strings
-- and comments end the list (the chunk is incomplete anyway).
local KEYWORD_SET = {}
for _, w in ipairs(KEYWORDS) do KEYWORD_SET[w] = true end

local function long_bracket(src, i)
  local eq = src:match("^%[(=*)%[", i)
  if not eq then return nil end
  local close = src:find("]" .. eq .. "]", i, true)
  return close and close + #eq + 1 or #src
end

local function tokenize(src)
  local toks, i, n = {}, 1, #src
  while i <= n do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local stop = long_bracket(src, i + 2)
      if stop then
        i = stop + 1
      else
        local nl = src:find("\n", i, true)
        i = nl and nl + 1 or n + 1
      end
    elseif c:match("[%a_]") then
      local s, e = src:find("^[%w_]+", i)
      local word = src:sub(s, e)
      toks[#toks + 1] = { KEYWORD_SET[word] and "keyword" or "name", word, s, e }
      i = e + 1
    elseif c:match("%d") or (c == "." and src:sub(i + 1, i + 1):match("%d")) then
      local e = i
      while e <= n do
        local ch = src:sub(e, e)
        if ch:match("[%w%.]") then
          e = e + 1
        elseif (ch == "+" or ch == "-") and src:sub(e - 1, e - 1):match("[eEpP]") then
          e = e + 1
        else
          break
        end
      end
      toks[#toks + 1] = { "number", src:sub(i, e - 1), i, e - 1 }
      i = e
    elseif c == '"' or c == "'" then
      local e = i + 1
      while e <= n do
        local ch = src:sub(e, e)
        if ch == "\\" then
          e = e + 2
        elseif ch == c or ch == "\n" then
          break
        else
          e = e + 1
        end
      end
      toks[#toks + 1] = { "string", src:sub(i, e), i, e }
      i = e + 1
    elseif c == "[" and long_bracket(src, i) then
      local stop = long_bracket(src, i)
      toks[#toks + 1] = { "string", src:sub(i, stop), i, stop }
      i = stop + 1
    else
      local op = src:match("^%.%.%.", i) or src:match("^[=~<>]=", i) or src:match("^%.%.", i)
        or src:match("^::", i) or c
      toks[#toks + 1] = { "op", op, i, i + #op - 1 }
      i = i + #op
    end
  end
  return toks
end
repl.tokenize = tokenize

local OPENERS = { ["function"] = true, ["do"] = true, ["if"] = true, ["repeat"] = true }
local CLOSERS = { ["end"] = true, ["until"] = true }

local DECLARE, PENDING, PACK = "__bioxen_repl_declare", "__bioxen_repl_pending", "__bioxen_repl_pack"

--- Rewrites the top-level `local` statements of `src` into session
--- declarations; returns the new source and the declared names.
function repl.rewrite_locals(src)
  local toks = tokenize(src)
  local depth, edits, names = 0, {}, {}
  local i = 1
  while i <= #toks do
    local t = toks[i]
    if t[1] == "keyword" then
      if OPENERS[t[2]] then
        depth = depth + 1
      elseif CLOSERS[t[2]] then
        depth = depth - 1
      elseif t[2] == "local" and depth == 0 then
        local nxt = toks[i + 1]
        if nxt and nxt[2] == "function" and toks[i + 2] and toks[i + 2][1] == "name" then
          local name = toks[i + 2][2]
          names[#names + 1] = name
          edits[#edits + 1] = { t[3], t[4], ("%s(%q) "):format(DECLARE, name) }
        else
          local list, j = {}, i + 1
          while toks[j] and toks[j][1] == "name" do
            list[#list + 1] = ("%q"):format(toks[j][2])
            names[#names + 1] = toks[j][2]
            if toks[j + 1] and toks[j + 1][2] == "," then j = j + 2 else break end
          end
          if #list > 0 then
            local after = toks[j + 1]
            if after and after[2] == "=" then
              edits[#edits + 1] = { t[3], t[4], ("%s(%s) "):format(PENDING, table.concat(list, ",")) }
            else
              edits[#edits + 1] = { t[3], toks[j][4], ("%s(%s)"):format(DECLARE, table.concat(list, ",")) }
            end
            i = j
          end
        end
      end
    end
    i = i + 1
  end
  for k = #edits, 1, -1 do
    local e = edits[k]
    src = src:sub(1, e[1] - 1) .. e[3] .. src:sub(e[2] + 1)
  end
  return src, names
end

---------------------------------------------------------------------------
-- Sessions
---------------------------------------------------------------------------

local function pack(...) return { n = select("#", ...), ... } end
local function pack_results(...) return { n = select("#", ...), [PACK] = true, ... } end

local Session = {}
Session.__index = Session

--- A new session. opts: color (boolean, for results), libraries (names
--- listed when completing `bioxen.`), chunkname (default "stdin").
function repl.session(opts)
  opts = opts or {}
  local self = setmetatable({
    color = opts.color and true or false,
    libraries = opts.libraries or {},
    chunkname = opts.chunkname or "stdin",
    locals = {},   -- declared name -> value
    declared = {}, -- declared name -> true
    pending = {},  -- names of a `local` statement whose values are being computed
  }, Session)
  local declared, locals, pending = self.declared, self.locals, self.pending
  local function declare(...)
    for i = 1, select("#", ...) do
      local name = select(i, ...)
      declared[name], locals[name], pending[name] = true, nil, nil
    end
  end
  local function mark_pending(...)
    for i = 1, select("#", ...) do pending[(select(i, ...))] = true end
  end
  self.env = setmetatable({}, {
    __index = function(_, k)
      if declared[k] then return locals[k] end
      if k == DECLARE then return declare end
      if k == PENDING then return mark_pending end
      if k == PACK then return pack_results end
      return _G[k]
    end,
    __newindex = function(_, k, v)
      if pending[k] then
        pending[k] = nil
        declared[k] = true
      end
      if declared[k] then locals[k] = v else _G[k] = v end
    end,
  })
  return self
end

--- Forgets the session's locals (globals stay).
function Session:reset()
  for k in pairs(self.declared) do self.declared[k] = nil end
  for k in pairs(self.locals) do self.locals[k] = nil end
  for k in pairs(self.pending) do self.pending[k] = nil end
end

--- The session's local names, sorted.
function Session:local_names()
  local out = {}
  for k in pairs(self.declared) do out[#out + 1] = k end
  table.sort(out)
  return out
end

-- Tracebacks without the REPL's own frames: stop at the input's main chunk.
local function short_traceback(msg, chunkname)
  local tb = debug.traceback(msg, 3)
  local out, frames = {}, 0
  for line in tb:gmatch("[^\n]+") do
    if line:find("stdlib/bioxen/repl.lua", 1, true) or line:find("[bioxen", 1, true)
      or line:find("in function 'xpcall'", 1, true) or line:find("(tail call)", 1, true)
      or line:find("[C]: in ?", 1, true) or line:find("__mlua", 1, true) then
      -- the REPL's own frames
    elseif line:match("^%s") then
      frames = frames + 1
      if frames <= 12 then out[#out + 1] = line end
      if line:find(chunkname .. ":%d+: in main chunk") then break end
    else
      out[#out + 1] = line
    end
  end
  if frames > 12 then out[#out + 1] = ("\t... (%d more)"):format(frames - 12) end
  if out[#out] == "stack traceback:" then out[#out] = nil end
  return table.concat(out, "\n")
end

-- The handler also keeps the text in `last_error`: after Ctrl-C the state
-- raises again until the host clears the interrupt, so `eval` may not get
-- to return it, and the host reads it from there.
function Session:handler()
  local chunkname = self.chunkname
  local session = self
  return function(e)
    local msg = tostring(e)
    if type(e) ~= "string" then
      -- error values carry no position: name the innermost line of the
      -- user's code (not of the bioxen library that raised it)
      local where
      for level = 2, 40 do
        local info = debug.getinfo(level, "Sl")
        if not info then break end
        if info.currentline and info.currentline > 0 and info.what ~= "C" then
          local here = info.short_src .. ":" .. info.currentline .. ": "
          where = where or here
          if not info.short_src:match("^stdlib/") then
            where = here
            break
          end
        end
      end
      msg = (where or "") .. msg
    end
    local text = short_traceback(msg, chunkname)
    session.last_error = text
    return text
  end
end


-- Compiles source for the session; nil and the message when it does not compile.
function Session:compile(src, name)
  local f, err = loadstring(src, "=" .. (name or self.chunkname))
  if not f then return nil, err end
  return setfenv(f, self.env)
end

--- Evaluates one input. Returns one of:
---   "incomplete"             the chunk needs more lines
---   "ok", text               text of the results ("" when none)
---   "error", text            message and short traceback
function Session:eval(src)
  local hot = package.loaded["bioxen.hotreload"]
  if hot then hot.poll() end
  for k in pairs(self.pending) do self.pending[k] = nil end
  -- Expressions run as `return pack(expr)`: not a tail call, so errors they
  -- raise still name the input's line.
  local expr = src:match("^%s*=(.*)$")
  local f = self:compile(("return %s(%s\n)"):format(PACK, expr or src))
  if not f then
    if expr then
      local _, err = self:compile("return " .. expr)
      return "error", err
    end
    local err
    f, err = self:compile((repl.rewrite_locals(src)))
    if not f then
      if err:sub(-7) == "'<eof>'" then return "incomplete" end
      return "error", err
    end
  end
  local results = pack(xpcall(f, self:handler()))
  if not results[1] then return "error", results[2] end
  if results.n == 2 and type(results[2]) == "table" and results[2][PACK] then
    results = results[2]
    return "ok", pretty.values({ color = self.color }, unpack(results, 1, results.n))
  end
  return "ok", pretty.values({ color = self.color }, unpack(results, 2, results.n))
end

--- Runs a file in the session: its globals land in the session, and it
--- sees the session's locals. Returns like `eval`.
function Session:load(path)
  local fh, oerr = io.open(path, "rb")
  if not fh then return "error", "cannot open " .. tostring(oerr) end
  local src = fh:read("*a")
  fh:close()
  src = src:gsub("^#![^\n]*", "")
  local f, err = loadstring(src, "@" .. path)
  if not f then return "error", err end
  setfenv(f, self.env)
  local results = pack(xpcall(f, self:handler()))
  if not results[1] then return "error", results[2] end
  return "ok", pretty.values({ color = self.color }, unpack(results, 2, results.n))
end

---------------------------------------------------------------------------
-- Completion
---------------------------------------------------------------------------

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

-- Field names of a value, following __index tables; functions only for `:`.
local function fields(self, value, methods_only)
  local names, seen = {}, {}
  local function add(k, v)
    if is_identifier(k) and (not methods_only or type(v) == "function") then names[k] = true end
  end
  local t = value
  for _ = 1, 16 do
    if t == nil or seen[t] then break end
    seen[t] = true
    if type(t) == "table" then
      for k, v in pairs(t) do add(k, v) end
      if rawequal(t, rawget(_G, "bioxen")) then
        for _, lib in ipairs(self.libraries) do names[lib] = true end
      end
    end
    local mt = debug.getmetatable(t)
    local index = type(mt) == "table" and rawget(mt, "__index") or nil
    if type(index) == "table" then
      t = index
    else
      break
    end
  end
  local out = {}
  for k in pairs(names) do out[#out + 1] = k end
  return out
end

local function safe_index(v, k)
  local ok, r = pcall(function() return v[k] end)
  if ok then return r end
  return nil
end

--- Candidates for completing `line` (the text before the cursor): the byte
--- offset (0-based) where the completed word starts, and the full words.
function Session:complete(line)
  local tail = line:match("[%w_%.:]*$") or ""
  if tail:match("^%d") then return #line, {} end
  local start = #line - #tail
  local path, sep, prefix = tail:match("^(.*)([%.:])([%w_]*)$")
  local candidates
  if path then
    if path == "" or path:find(":", 1, true) or not path:match("^[%a_][%w_%.]*$") then return #line, {} end
    local value, first = nil, true
    for part in path:gmatch("[^%.]+") do
      if first then
        value, first = self.env[part], false
      else
        value = safe_index(value, part)
      end
      if value == nil then return #line, {} end
    end
    if type(value) == "string" then value = string end
    candidates = fields(self, value, sep == ":")
    start = #line - #prefix
  else
    prefix = tail
    if prefix == "" then return #line, {} end
    candidates = {}
    for _, k in ipairs(KEYWORDS) do candidates[#candidates + 1] = k end
    for k in pairs(self.declared) do candidates[#candidates + 1] = k end
    for k in pairs(_G) do
      if is_identifier(k) then candidates[#candidates + 1] = k end
    end
  end
  local out, seen = {}, {}
  for _, c in ipairs(candidates) do
    if c:sub(1, #prefix) == prefix and not seen[c] then
      seen[c] = true
      out[#out + 1] = c
    end
  end
  table.sort(out)
  return start, out
end

return repl
