---@meta
-- Type definitions for lua-language-server: bioxen.doctor.

---@alias bioxen.doctor.Status "ok"|"warning"|"problem"

---One finding of a library's checks(). `fix` is the exact command or setting
---that fixes it, required unless status is "ok".
---@class bioxen.doctor.Check
---@field name string
---@field status bioxen.doctor.Status
---@field detail? string
---@field fix? string

---A check in a report, with the library that made it.
---@class bioxen.doctor.ReportCheck: bioxen.doctor.Check
---@field library string

---@class bioxen.doctor.Report
---@field checks bioxen.doctor.ReportCheck[]
---@field problems integer
---@field warnings integer
---@field ok boolean true when there is no problem (warnings allowed)

---@class bioxen.doctor.Library
---@field name string
---@field summary string
---@field native boolean

---@class bioxen.doctor
local doctor = {}
bioxen.doctor = doctor

---Runs every library's checks (concurrently, as bioxen.task tasks).
---@param opts? { only?: string[] } library names to check (default: all)
---@return bioxen.doctor.Report
function doctor.run(opts) end

---What library bioxen.NAME is, with its checks (the REPL's `.help NAME`); raises NotFound for no such library.
---@param name string
---@return string
function doctor.help(name) end

---The report as text grouped by library, with fixes; ends with the counts.
---@param report bioxen.doctor.Report
---@return string
function doctor.format(report) end

---Builds a check; raises Argument for an unknown status or a missing fix.
---@param name string
---@param status bioxen.doctor.Status
---@param detail? string
---@param fix? string
---@return bioxen.doctor.Check
function doctor.check(name, status, detail, fix) end

---@param name string
---@param detail? string
---@return bioxen.doctor.Check
function doctor.ok(name, detail) end

---@param name string
---@param detail string
---@param fix string
---@return bioxen.doctor.Check
function doctor.warning(name, detail, fix) end

---@param name string
---@param detail string
---@param fix string
---@return bioxen.doctor.Check
function doctor.problem(name, detail, fix) end

---doctor's own checks: C compiler, LuaJIT headers, type definitions.
---@return bioxen.doctor.Check[]
function doctor.checks() end

---The checks function doctor uses for a library (its checks(), else its plug-in), and where it comes from.
---@param name string
---@return (fun(): bioxen.doctor.Check[])?
---@return string? where
function doctor.checks_of(name) end

---A library's native half, built afresh (nil for Lua-only libraries).
---@param name string
---@return table?
function doctor.native(name) end

---GET a URL (async). Raises Unreachable when no HTTP answer comes back.
---@param url string
---@param opts? { user?: string, password?: string, headers?: table<string, string>, timeout?: number }
---@return { status: integer, body: string }
function doctor.http_get(url, opts) end

---The message of any error value.
---@param e any
---@return string
function doctor.message(e) end

---The kind of an error value, or nil.
---@param e any
---@return string?
function doctor.kind(e) end

---The registry of libraries, in order.
---@return bioxen.doctor.Library[]
function doctor.libraries() end

---Checks one of bioxen's folders: exists, is a folder, writable, free space.
---@param label string e.g. "data"
---@param dir string
---@return bioxen.doctor.Check[]
function doctor.folder_checks(label, dir) end

---Bytes available to this user on the file system holding `path`.
---@param path string
---@return integer
function doctor.free_space(path) end

---"directory", "file", "socket", "other", or nil when nothing is at `path`.
---@param path string
---@return string?
function doctor.path_kind(path) end

---The first executable file named `name` on PATH.
---@param name string
---@return string?
function doctor.which(name) end

---Runs a shell command; returns its output (stdout and stderr) and whether it exited 0.
---@param cmd string
---@return string output
---@return boolean ok
function doctor.capture(cmd) end

---Creates a folder and its parents; returns nil, or why it failed.
---@param path string
---@return string? why
function doctor.make_dir(path) end

---Whether file descriptor `fd` is a terminal.
---@param fd integer
---@return boolean
function doctor.isatty(fd) end

---Where `bioxen init` writes these definitions for lua-language-server.
---@return string
function doctor.types_dir() end

---Writes the definitions carried in the binary to types_dir(); returns it.
---@return string
function doctor.write_types() end

---The definitions carried in the binary: relative path -> text.
---@return table<string, string>
function doctor.type_definitions() end

---"10M" -> 10485760; numbers pass through; nil when not a size.
---@param v string|number
---@return number?
function doctor.parse_size(v) end

---@param n number bytes
---@return string e.g. "1.5 GiB"
function doctor.human_size(n) end

return doctor
