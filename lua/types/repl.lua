---@meta bioxen.repl

---@class bioxen.repl
local repl = {}

---@class bioxen.repl.Options
---@field color? boolean
---@field libraries? string[]
---@field chunkname? string

---@class bioxen.repl.Session
local Session = {}

--- Evaluates one input: "incomplete", or "ok"/"error" and the text to show.
---@param source string
---@return "incomplete"|"ok"|"error" status
---@return string? text
function Session:eval(source) end

--- Runs a file in the session.
---@param path string
---@return "ok"|"error" status
---@return string text
function Session:load(path) end

--- Completions for the text before the cursor: 0-based start offset and words.
---@param line string
---@return integer start
---@return string[] words
function Session:complete(line) end

--- Forgets the session's locals.
function Session:reset() end

---@return string[]
function Session:local_names() end

---@param opts? bioxen.repl.Options
---@return bioxen.repl.Session
function repl.session(opts) end

--- Rewrites top-level `local` statements into session declarations.
---@param source string
---@return string source
---@return string[] names
function repl.rewrite_locals(source) end

---@param source string
---@return table[] tokens { kind, text, first, last }
function repl.tokenize(source) end

return repl
