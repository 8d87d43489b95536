-- bioxen.lrs: xAPI 1.0.3 learning records. Statements are built and validated
-- here, queued through the durable spool (Rust, src/std/lrs/spool.rs) and
-- delivered by the background sender (src/std/lrs/sender.rs).
local native = ...
local json = require("bioxen.json")
local lrs = {}

local ADL = "http://adlnet.gov/expapi/verbs/"
local BIOXEN = "https://bioxen.dev/xapi/"

local function verb(base, name)
  local id = base == BIOXEN and (BIOXEN .. "verbs/" .. name) or (base .. name)
  return { id = id, display = { ["en-US"] = name } }
end

--- Verbs by short name: ADL's vocabulary, then bioxen's own (docs/lrs.md).
lrs.verbs = {}
for _, n in ipairs({ "launched", "initialized", "completed", "failed", "terminated", "attempted", "voided",
  "passed", "experienced", "answered", "interacted", "progressed", "suspended", "resumed" }) do
  lrs.verbs[n] = verb(ADL, n)
end
for _, n in ipairs({ "attached", "detached", "installed", "removed", "deployed", "destroyed", "recorded" }) do
  lrs.verbs[n] = verb(BIOXEN, n)
end

----------------------------------------------------------------------------
-- Validation (xAPI 1.0.3, Data section 2.4)
----------------------------------------------------------------------------

local function invalid(field, rule, value)
  local shown = value
  if type(value) == "table" then
    local ok, text = pcall(json.encode, value)
    shown = ok and text or tostring(value)
  end
  local msg = ("%s: %s"):format(field, rule)
  if value ~= nil then msg = msg .. (" (got %s)"):format(type(shown) == "string" and ("%q"):format(shown) or tostring(shown)) end
  error(bioxen.error("Validation", msg, { field = field, rule = rule }), 0)
end

local function is_uuid(s)
  return type(s) == "string"
    and s:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") ~= nil
end

local function is_uuid4(s)
  return is_uuid(s) and s:sub(15, 15) == "4" and s:sub(20, 20):lower():match("[89ab]") ~= nil
end

-- An absolute IRI: a scheme, a colon, and no whitespace or forbidden characters.
local function is_iri(s)
  return type(s) == "string" and s:match("^[%a][%w+.%-]*:[^%s<>\"{}|\\^`]+$") ~= nil
end

local function is_irl(s)
  return is_iri(s) and s:match("^https?://[^/%s]+") ~= nil
end

local function is_lang_tag(s)
  if type(s) ~= "string" or s:find("%-%-") then return false end
  return s:match("^%a%a?%a?%a?%a?%a?%a?%a?$") ~= nil or s:match("^%a%a?%a?%a?%a?%a?%a?%a?%-[%w%-]*%w$") ~= nil
end

local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function only_keys(t, field, allowed)
  for k in pairs(t) do
    if not allowed[k] then
      local names = {}
      for a in pairs(allowed) do names[#names + 1] = a end
      table.sort(names)
      invalid(field .. "." .. tostring(k), "is not an xAPI property here (allowed: " .. table.concat(names, ", ") .. ")")
    end
  end
end

local function set(...)
  local s = {}
  for _, k in ipairs({ ... }) do s[k] = true end
  return s
end

-- Allowed properties, built once (validation runs for every statement).
local KEYS1 = set("homePage", "name")
local KEYS2 = set("objectType", "name", "mbox", "mbox_sha1sum", "openid", "account")
local KEYS3 = set("objectType", "name", "member", "mbox", "mbox_sha1sum", "openid", "account")
local KEYS4 = set("id", "display")
local KEYS5 = set("objectType", "id", "definition")
local KEYS7 = set("objectType", "id")
local KEYS8 = set("score", "success", "completion", "response", "duration", "extensions")
local KEYS9 = set("scaled", "raw", "min", "max")
local KEYS10 = set("registration", "instructor", "team", "contextActivities", "revision", "platform", "language", "statement", "extensions")
local KEYS11 = set("parent", "grouping", "category", "other")
local KEYS12 = set("id", "actor", "verb", "object", "result", "context", "timestamp", "stored", "authority", "version", "attachments")

local function check_table(v, field, what)
  if type(v) ~= "table" then invalid(field, "must be " .. what, v) end
end

local function check_string(v, field)
  if type(v) ~= "string" then invalid(field, "must be a string", v) end
end

local function check_lang_map(v, field)
  check_table(v, field, "a language map such as { [\"en-US\"] = \"...\" }")
  if next(v) == nil then invalid(field, "must name at least one language") end
  for k, s in pairs(v) do
    if not is_lang_tag(k) then invalid(field .. "." .. tostring(k), "must be an RFC 5646 language tag such as en-US") end
    check_string(s, field .. "." .. k)
  end
end

local function check_extensions(v, field)
  check_table(v, field, "a table whose keys are IRIs")
  for k in pairs(v) do
    if not is_iri(k) then invalid(field .. "." .. tostring(k), "extension keys must be IRIs") end
  end
end

local IFIS = { "mbox", "mbox_sha1sum", "openid", "account" }

local function count_ifis(a, field)
  local n = 0
  for _, k in ipairs(IFIS) do if a[k] ~= nil then n = n + 1 end end
  if a.mbox ~= nil and not (type(a.mbox) == "string" and a.mbox:match("^mailto:[^@%s]+@[^@%s]+$")) then
    invalid(field .. ".mbox", "must be a mailto: IRI with an email address", a.mbox)
  end
  if a.mbox_sha1sum ~= nil and not (type(a.mbox_sha1sum) == "string" and #a.mbox_sha1sum == 40 and a.mbox_sha1sum:match("^%x+$")) then
    invalid(field .. ".mbox_sha1sum", "must be the 40 hex digits of a SHA-1", a.mbox_sha1sum)
  end
  if a.openid ~= nil and not is_iri(a.openid) then invalid(field .. ".openid", "must be a URI", a.openid) end
  if a.account ~= nil then
    check_table(a.account, field .. ".account", "a table { homePage, name }")
    only_keys(a.account, field .. ".account", KEYS1)
    if not is_irl(a.account.homePage) then invalid(field .. ".account.homePage", "must be an IRL (an http or https URL)", a.account.homePage) end
    check_string(a.account.name, field .. ".account.name")
  end
  if a.name ~= nil then check_string(a.name, field .. ".name") end
  return n
end

local check_agent_or_group

local function check_agent(a, field)
  check_table(a, field, "an Agent")
  only_keys(a, field, KEYS2)
  if a.objectType ~= nil and a.objectType ~= "Agent" then invalid(field .. ".objectType", "must be \"Agent\"", a.objectType) end
  if count_ifis(a, field) ~= 1 then
    invalid(field, "an Agent must have exactly one identifier (mbox, mbox_sha1sum, openid or account)")
  end
end

local function check_group(g, field)
  only_keys(g, field, KEYS3)
  local n = count_ifis(g, field)
  if n > 1 then invalid(field, "a Group must have at most one identifier (mbox, mbox_sha1sum, openid or account)") end
  if g.member ~= nil then
    if not is_array(g.member) then invalid(field .. ".member", "must be a list of Agents", g.member) end
    for i, m in ipairs(g.member) do check_agent(m, ("%s.member[%d]"):format(field, i)) end
  end
  if n == 0 and (g.member == nil or #g.member == 0) then
    invalid(field, "an anonymous Group (no identifier) must list its members")
  end
end

function check_agent_or_group(a, field)
  check_table(a, field, "an Agent or a Group")
  if a.objectType == "Group" then check_group(a, field) else check_agent(a, field) end
end

local function check_verb(v, field)
  check_table(v, field, "a Verb { id = IRI, display = { [\"en-US\"] = ... } } or a name from bioxen.lrs.verbs")
  only_keys(v, field, KEYS4)
  if not is_iri(v.id) then invalid(field .. ".id", "must be an IRI", v.id) end
  if v.display == nil then invalid(field .. ".display", "is required: a language map naming the verb") end
  check_lang_map(v.display, field .. ".display")
end

local DEFINITION_KEYS = set("name", "description", "type", "moreInfo", "extensions", "interactionType",
  "correctResponsesPattern", "choices", "scale", "source", "target", "steps")

local function check_activity(o, field)
  local allowed = KEYS5
  only_keys(o, field, allowed)
  if not is_iri(o.id) then invalid(field .. ".id", "an Activity id must be an IRI", o.id) end
  local d = o.definition
  if d ~= nil then
    local df = field .. ".definition"
    check_table(d, df, "an Activity definition")
    local dk = DEFINITION_KEYS
    only_keys(d, df, dk)
    if d.name ~= nil then check_lang_map(d.name, df .. ".name") end
    if d.description ~= nil then check_lang_map(d.description, df .. ".description") end
    if d.type ~= nil and not is_iri(d.type) then invalid(df .. ".type", "must be an IRI", d.type) end
    if d.moreInfo ~= nil and not is_irl(d.moreInfo) then invalid(df .. ".moreInfo", "must be an IRL", d.moreInfo) end
    if d.extensions ~= nil then check_extensions(d.extensions, df .. ".extensions") end
  end
end

local function check_object(o, field)
  check_table(o, field, "an Activity, a StatementRef, an Agent or a Group")
  local t = o.objectType
  if t == nil or t == "Activity" then
    check_activity(o, field)
  elseif t == "StatementRef" then
    only_keys(o, field, KEYS7)
    if not is_uuid(o.id) then invalid(field .. ".id", "a StatementRef id must be a UUID", o.id) end
  elseif t == "Agent" or t == "Group" then
    check_agent_or_group(o, field)
  elseif t == "SubStatement" then
    invalid(field .. ".objectType", "SubStatement objects are not supported by bioxen.lrs")
  else
    invalid(field .. ".objectType", "must be Activity, StatementRef, Agent or Group", t)
  end
end

local DURATION_PARTS = { "Y", "M", "W", "D" }

--- Whether `s` is an ISO 8601 duration (PnYnMnWnDTnHnMnS; only the last part may have a fraction).
local function is_duration(s)
  if type(s) ~= "string" or not s:match("^P") or s == "P" then return false end
  local date, time = s:match("^P([^T]*)T?(.*)$")
  if s:find("T") and time == "" then return false end
  local function parts(text, allowed)
    local pos, idx, last_frac = 1, 1, false
    while pos <= #text do
      local num, unit, nxt = text:match("^(%d+[%.,]?%d*)(%a)()", pos)
      if not num then return false end
      if last_frac then return false end
      if num:find("[%.,]") then last_frac = true end
      local found = false
      while idx <= #allowed do
        if allowed[idx] == unit then found = true; idx = idx + 1; break end
        idx = idx + 1
      end
      if not found then return false end
      pos = nxt
    end
    return true
  end
  return parts(date, DURATION_PARTS) and parts(time, { "H", "M", "S" })
end
lrs.is_duration = is_duration

local function check_timestamp(s, field)
  check_string(s, field)
  local y, mo, d, h, mi, sec, frac, zone = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)%.?(%d*)(.*)$")
  if not y then invalid(field, "must be an ISO 8601 timestamp such as 2026-11-21T12:40:01.123Z", s) end
  if not (zone == "Z" or zone == "+00:00") then invalid(field, "must be in UTC (end in Z)", s) end
  if #frac < 3 then invalid(field, "must have millisecond precision (.sss)", s) end
  mo, d, h, mi, sec = tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > 31 or h > 23 or mi > 59 or sec > 60 then
    invalid(field, "is not a valid date and time", s)
  end
end

local function check_result(r, field)
  check_table(r, field, "a Result")
  only_keys(r, field, KEYS8)
  if r.success ~= nil and type(r.success) ~= "boolean" then invalid(field .. ".success", "must be a boolean", r.success) end
  if r.completion ~= nil and type(r.completion) ~= "boolean" then invalid(field .. ".completion", "must be a boolean", r.completion) end
  if r.response ~= nil then check_string(r.response, field .. ".response") end
  if r.duration ~= nil and not is_duration(r.duration) then
    invalid(field .. ".duration", "must be an ISO 8601 duration such as PT1.5S", r.duration)
  end
  if r.extensions ~= nil then check_extensions(r.extensions, field .. ".extensions") end
  local s = r.score
  if s ~= nil then
    local sf = field .. ".score"
    check_table(s, sf, "a Score { scaled, raw, min, max }")
    only_keys(s, sf, KEYS9)
    for _, k in ipairs({ "scaled", "raw", "min", "max" }) do
      if s[k] ~= nil and type(s[k]) ~= "number" then invalid(sf .. "." .. k, "must be a number", s[k]) end
    end
    if s.scaled and (s.scaled < -1 or s.scaled > 1) then invalid(sf .. ".scaled", "must be between -1 and 1", s.scaled) end
    if s.min and s.max and s.min > s.max then invalid(sf .. ".min", "must not be greater than score.max") end
    if s.raw and s.min and s.raw < s.min then invalid(sf .. ".raw", "must not be less than score.min") end
    if s.raw and s.max and s.raw > s.max then invalid(sf .. ".raw", "must not be greater than score.max") end
  end
end

local function check_context(c, field, object)
  check_table(c, field, "a Context")
  only_keys(c, field, KEYS10)
  if c.registration ~= nil and not is_uuid(c.registration) then invalid(field .. ".registration", "must be a UUID", c.registration) end
  if c.instructor ~= nil then check_agent_or_group(c.instructor, field .. ".instructor") end
  if c.team ~= nil then
    check_table(c.team, field .. ".team", "a Group")
    if c.team.objectType ~= "Group" then invalid(field .. ".team.objectType", "must be \"Group\"", c.team.objectType) end
    check_group(c.team, field .. ".team")
  end
  local ca = c.contextActivities
  if ca ~= nil then
    local cf = field .. ".contextActivities"
    check_table(ca, cf, "a table with parent, grouping, category or other")
    only_keys(ca, cf, KEYS11)
    for k, v in pairs(ca) do
      check_table(v, cf .. "." .. k, "an Activity or a list of Activities")
      local list = is_array(v) and #v > 0 and v or { v }
      for i, a in ipairs(list) do
        check_table(a, ("%s.%s[%d]"):format(cf, k, i), "an Activity")
        if a.objectType ~= nil and a.objectType ~= "Activity" then
          invalid(("%s.%s[%d].objectType"):format(cf, k, i), "must be \"Activity\"", a.objectType)
        end
        check_activity(a, ("%s.%s[%d]"):format(cf, k, i))
      end
    end
  end
  local activity_object = object and (object.objectType == nil or object.objectType == "Activity")
  for _, k in ipairs({ "revision", "platform" }) do
    if c[k] ~= nil then
      check_string(c[k], field .. "." .. k)
      if not activity_object then invalid(field .. "." .. k, "may only be used when the object is an Activity") end
    end
  end
  if c.language ~= nil and not is_lang_tag(c.language) then invalid(field .. ".language", "must be an RFC 5646 language tag", c.language) end
  if c.statement ~= nil then
    check_table(c.statement, field .. ".statement", "a StatementRef")
    if c.statement.objectType ~= "StatementRef" then invalid(field .. ".statement.objectType", "must be \"StatementRef\"", c.statement.objectType) end
    if not is_uuid(c.statement.id) then invalid(field .. ".statement.id", "must be a UUID", c.statement.id) end
  end
  if c.extensions ~= nil then check_extensions(c.extensions, field .. ".extensions") end
end

--- Checks a complete statement against xAPI 1.0.3; raises Validation naming the field and rule.
function lrs.validate(s)
  check_table(s, "statement", "a table")
  only_keys(s, "statement", KEYS12)
  if not is_uuid4(s.id) then invalid("statement.id", "must be a UUID v4 (leave it out and bioxen makes one)", s.id) end
  if s.actor == nil then invalid("statement.actor", "is required") end
  check_agent_or_group(s.actor, "statement.actor")
  if s.verb == nil then invalid("statement.verb", "is required") end
  check_verb(s.verb, "statement.verb")
  if s.object == nil then invalid("statement.object", "is required") end
  check_object(s.object, "statement.object")
  if s.verb.id == ADL .. "voided" and s.object.objectType ~= "StatementRef" then
    invalid("statement.object", "a voiding statement's object must be a StatementRef to the voided statement")
  end
  if s.result ~= nil then check_result(s.result, "statement.result") end
  if s.context ~= nil then check_context(s.context, "statement.context", s.object) end
  if s.timestamp ~= nil then check_timestamp(s.timestamp, "statement.timestamp") end
  if s.version ~= nil and not (type(s.version) == "string" and s.version:match("^1%.0%.%d+$")) then
    invalid("statement.version", "must be 1.0.x", s.version)
  end
  if s.stored ~= nil or s.authority ~= nil then
    invalid(s.stored ~= nil and "statement.stored" or "statement.authority", "is set by the LRS, not by the client")
  end
  return s
end

local default_actor -- the configured actor, cached (configure resets it)

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = copy(v) end
  return setmetatable(c, getmetatable(t))
end

--- Builds a statement: fills id (UUID v4), actor (the configured one),
--- timestamp (now, UTC, ms) and context.registration (this run's), expands a
--- verb name (`"completed"`) and an object IRI string, then validates.
function lrs.statement(fields)
  if type(fields) ~= "table" then
    error(bioxen.error("Argument", "statement needs a table { actor, verb, object, result, context, timestamp }"), 2)
  end
  local s = copy(fields)
  s.id = s.id or native.uuid()
  if s.actor == nil then
    default_actor = default_actor or native.settings().actor
    s.actor = copy(default_actor)
  end
  if type(s.verb) == "string" then
    local v = lrs.verbs[s.verb]
    if not v then
      if is_iri(s.verb) then
        invalid("statement.verb", "a verb IRI needs a display map: { id = IRI, display = { [\"en-US\"] = name } }", s.verb)
      end
      invalid("statement.verb", "is not a known verb name (see bioxen.lrs.verbs) nor a Verb table", s.verb)
    end
    s.verb = copy(v)
  end
  if type(s.object) == "string" then s.object = { objectType = "Activity", id = s.object } end
  s.timestamp = s.timestamp or native.now()
  if s.context == nil then s.context = {} end
  if type(s.context) == "table" and s.context.registration == nil then s.context.registration = native.registration() end
  if type(s.context) == "table" and s.context.registration == false then s.context.registration = nil end
  local ok, err = pcall(lrs.validate, s)
  if not ok then error(err, 2) end
  return s
end

-- Compact JSON for a built statement, in Lua: 3-4x faster than bioxen.json's
-- general path (which goes through serde values) for the plain tables a
-- statement is made of. Anything unusual (json.null, empty or marked tables,
-- non-ASCII or odd strings, non-finite numbers) makes it return nil, and
-- bioxen.json encodes the statement instead.
local fast_encode
do
  local concat, type, pairs, next, getmetatable = table.concat, type, pairs, next, getmetatable
  local find, format, huge = string.find, string.format, math.huge
  local ESCAPE = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
  local function str(buf, n, v)
    if find(v, "[%z\1-\31\"\\\128-\255]") then
      if find(v, "[%z\1-\8\11\12\14-\31\128-\255]") then return nil end
      v = v:gsub('[%c"\\]', ESCAPE)
    end
    buf[n + 1], buf[n + 2], buf[n + 3] = '"', v, '"'
    return n + 3
  end
  local KEYS, nkeys = {}, 0 -- key -> '"key":'
  local function value(buf, n, v)
    local t = type(v)
    if t == "string" then return str(buf, n, v) end
    if t == "boolean" then buf[n + 1] = v and "true" or "false" return n + 1 end
    if t == "number" then
      if v ~= v or v == huge or v == -huge then return nil end
      if v % 1 == 0 and v > -2^53 and v < 2^53 then
        buf[n + 1] = format("%d", v)
      else
        local text = format("%.14g", v)
        if tonumber(text) ~= v then text = format("%.17g", v) end
        buf[n + 1] = text
      end
      return n + 1
    end
    if t ~= "table" or getmetatable(v) ~= nil or next(v) == nil then return nil end
    local len = #v
    if len > 0 then
      local count = 0
      for _ in pairs(v) do count = count + 1 end
      if count ~= len then return nil end
      buf[n + 1] = "["
      n = n + 1
      for i = 1, len do
        if i > 1 then buf[n + 1] = "," n = n + 1 end
        n = value(buf, n, v[i])
        if not n then return nil end
      end
      buf[n + 1] = "]"
      return n + 1
    end
    local sep = "{"
    for k, x in pairs(v) do
      -- keys repeat (property names, extension IRIs): each is checked once
      local key = KEYS[k]
      if key == nil then
        if type(k) ~= "string" then return nil end
        local b = {}
        if not str(b, 0, k) then return nil end
        key = b[1] .. b[2] .. b[3] .. ":"
        if nkeys < 4096 then KEYS[k], nkeys = key, nkeys + 1 end
      end
      buf[n + 1], buf[n + 2] = sep, key
      n = value(buf, n + 2, x)
      if not n then return nil end
      sep = ","
    end
    buf[n + 1] = "}"
    return n + 1
  end
  function fast_encode(s)
    local buf = {}
    local n = value(buf, 0, s)
    return n and concat(buf, "", 1, n) or nil
  end
end
lrs._fast_encode = fast_encode -- internal: tested against bioxen.json in lua/spec/lrs_spec.lua

local function is_statement_list(v)
  return type(v) == "table" and v[1] ~= nil and v.verb == nil and v.actor == nil
end

--- Queues statements for delivery: each is validated, then appended to the
--- durable spool and synced before this returns. Returns the id (or list of ids).
function lrs.send(statements)
  if type(statements) ~= "table" then
    error(bioxen.error("Argument", "send needs a statement or a list of statements"), 2)
  end
  local single = not is_statement_list(statements)
  local list = single and { statements } or statements
  local lines, ids = {}, {}
  for i, s in ipairs(list) do
    local ok, built = pcall(lrs.statement, s)
    if not ok then
      if not single and type(built) ~= "string" and built.kind == "Validation" then
        error(bioxen.error("Validation", ("statement %d: %s"):format(i, built.message), { field = built.field, rule = built.rule, index = i }), 2)
      end
      error(built, 2)
    end
    lines[i] = fast_encode(built) or json.encode(built)
    ids[i] = built.id
  end
  native.enqueue(lines)
  if single then return ids[1] end
  return ids
end

--- Waits until everything queued is acknowledged by the LRS (or `timeout` seconds).
function lrs.flush(timeout)
  return native.flush(timeout)
end

--- Voids a stored statement (sends a "voided" statement referring to it); returns the voiding statement's id.
function lrs.void(id, fields)
  if not is_uuid(id) then
    error(bioxen.error("Argument", ("void needs the UUID of the statement to void, got %s"):format(tostring(id))), 2)
  end
  local s = copy(fields or {})
  s.verb = "voided"
  s.object = { objectType = "StatementRef", id = id }
  return lrs.send(s)
end

--- Switches automatic records on or off for this process; returns whether they are on.
function lrs.record(on)
  if on ~= nil and type(on) ~= "boolean" then
    error(bioxen.error("Argument", "record takes true or false"), 2)
  end
  return native.record(on)
end

lrs.registration = native.registration
lrs.status = native.status
lrs.settings = native.settings
lrs.default_actor = native.default_actor
lrs._bench_record = native._bench_record -- internal: benchmarks the automatic-records hook
lrs._sync_recorder = native._sync_recorder -- internal: waits until automatic records are spooled
lrs._request = native.request -- internal: one raw HTTP request to the LRS (method, target relative to the endpoint)

--- Automatic records for Lua halves of other libraries (docs/api/lrs.md). Each is
--- a no-op costing one native call when recording is off.
lrs.hook = {
  enabled = function() return native.record(nil) end, -- whether recording is on
  -- (vm_id, backend) -> token or nil; with the token, the VM is also recorded
  -- as terminated when it is collected (vm_collected) or still open at exit
  vm_created = native.hook_vm_created,
  vm_closed = native.hook_vm_closed,           -- (vm_id, lifetime_seconds[, token])
  vm_collected = function(token) native.hook_vm_closed(nil, nil, token, "collected") end,
  code_executed = native.hook_code_executed,   -- (vm_id, code, result{ok, duration, stdout, stderr, kind})
  function_called = native.hook_function_called, -- (vm_id, function_name, result{...})
  session_attached = function(session, target) native.hook_event("session_attached", session, target) end,
  session_detached = function(session, target) native.hook_event("session_detached", session, target) end,
  package_installed = function(name, version, target, hash)
    native.hook_event("package_installed", name, version, target, hash)
  end,
  package_removed = function(name, version, target) native.hook_event("package_removed", name, version, target) end,
  guest_deployed = function(pool, guest, template) native.hook_event("guest_deployed", pool, guest, template) end,
  guest_destroyed = function(pool, guest) native.hook_event("guest_destroyed", pool, guest) end,
}

--- The last `n` statements still waiting in the spool, oldest first.
function lrs.pending(n)
  local out = {}
  for i, line in ipairs(native.pending(n or 10)) do out[i] = json.decode(line) end
  return out
end

--- Statements the LRS refused for good, with status and reason.
function lrs.rejected()
  return native.rejected()
end

local CONFIG_KEYS = set("endpoint", "auth", "actor", "verify_tls", "record", "batch_size", "max_backoff",
  "exit_timeout", "request_timeout", "save", "reset")

--- Configures the client for this process (`save = true` also writes the
--- config file). Other settings keep their values from the config file and
--- BIOXEN_LRS_ENDPOINT / _USER / _PASSWORD / _TOKEN.
function lrs.configure(opts)
  if type(opts) ~= "table" then
    error(bioxen.error("Argument", "configure needs a table { endpoint, auth = { user, password } | { token }, actor, verify_tls }"), 2)
  end
  for k in pairs(opts) do
    if not CONFIG_KEYS[k] then
      error(bioxen.error("Argument", ("configure: unknown setting %q (known: endpoint, auth, actor, verify_tls, record, batch_size, max_backoff, exit_timeout, request_timeout, save)"):format(tostring(k))), 2)
    end
  end
  if opts.endpoint ~= nil and not (type(opts.endpoint) == "string" and opts.endpoint:match("^https?://[^/%s]+")) then
    error(bioxen.error("Argument", ("configure: endpoint must be an http(s) URL such as https://lrs.example.org/xAPI, got %s"):format(tostring(opts.endpoint)), { field = "endpoint" }), 2)
  end
  local auth = opts.auth
  if auth ~= nil then
    local user = auth.user or auth[1]
    local password = auth.password or auth[2]
    if type(auth) ~= "table" or not ((type(user) == "string" and type(password) == "string") or type(auth.token) == "string") then
      error(bioxen.error("Argument", "configure: auth must be { user = ..., password = ... } or { token = ... }", { field = "auth" }), 2)
    end
    auth = { user = user, password = password, token = auth.token }
  end
  if opts.actor ~= nil then
    local ok, err = pcall(check_agent_or_group, opts.actor, "actor")
    if not ok then error(err, 2) end
  end
  if opts.verify_tls ~= nil and type(opts.verify_tls) ~= "boolean" then
    error(bioxen.error("Argument", "configure: verify_tls must be true or false", { field = "verify_tls" }), 2)
  end
  local values = {}
  for k, v in pairs(opts) do if k ~= "save" then values[k] = v end end
  values.auth = auth
  if opts.save then
    local cfg = bioxen.env.config
    local saved = cfg.get("lrs", {})
    for k, v in pairs(values) do if k ~= "reset" then saved[k] = v end end
    cfg.set("lrs", saved)
  end
  default_actor = nil
  return native.configure(json.encode(values))
end

local function urlencode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function check_reply(status, body, what)
  if status ~= 200 then
    error(bioxen.error((status == 401 or status == 403) and "LrsAuth" or "LrsQuery",
      ("%s: the LRS answered %d: %s"):format(what, status, body:sub(1, 300)), { status = status }), 3)
  end
  return json.decode(body)
end

--- Queries statements: { verb, activity, registration, since, until, agent,
--- related_activities, ascending, limit, page_size }. Follows `more` links
--- until `limit` statements (all when nil). Returns the list; `list.more` is
--- the next page's link when statements are left.
function lrs.query(q)
  q = q or {}
  local params = {}
  local function add(k, v) params[#params + 1] = k .. "=" .. urlencode(v) end
  if q.verb ~= nil then
    local v = type(q.verb) == "table" and q.verb.id or (lrs.verbs[q.verb] and lrs.verbs[q.verb].id) or q.verb
    if not is_iri(v) then error(bioxen.error("Argument", "query: verb must be an IRI or a name from bioxen.lrs.verbs", { field = "verb" }), 2) end
    add("verb", v)
  end
  if q.activity ~= nil then
    if not is_iri(q.activity) then error(bioxen.error("Argument", "query: activity must be an IRI", { field = "activity" }), 2) end
    add("activity", q.activity)
  end
  if q.registration ~= nil then
    if not is_uuid(q.registration) then error(bioxen.error("Argument", "query: registration must be a UUID", { field = "registration" }), 2) end
    add("registration", q.registration)
  end
  if q.agent ~= nil then add("agent", json.encode(q.agent)) end
  for _, k in ipairs({ "since", "until" }) do
    if q[k] ~= nil then
      local ok, err = pcall(check_timestamp, q[k], k)
      if not ok then error(bioxen.error("Argument", "query: " .. err.message, { field = k }), 2) end
      add(k, q[k])
    end
  end
  if q.related_activities then add("related_activities", "true") end
  if q.ascending then add("ascending", "true") end
  local limit = q.limit
  local page = q.page_size or 500
  if limit ~= nil and limit < page then page = limit end
  add("limit", page)
  local target = "statements?" .. table.concat(params, "&")
  local out = {}
  while target do
    local status, body = native.request("GET", target)
    local reply = check_reply(status, body, "query")
    for _, s in ipairs(reply.statements or {}) do
      if limit and #out >= limit then break end
      out[#out + 1] = s
    end
    local more = reply.more
    if more == "" or more == json.null then more = nil end
    if limit and #out >= limit then
      out.more = more
      break
    end
    if more and #(reply.statements or {}) == 0 then break end
    target = more
  end
  return out
end

--- One statement by id (`voided = true` for a voided one); nil when the LRS has none.
function lrs.get(id, opts)
  if not is_uuid(id) then error(bioxen.error("Argument", "get needs a statement UUID", { field = "id" }), 2) end
  local key = opts and opts.voided and "voidedStatementId" or "statementId"
  local status, body = native.request("GET", "statements?" .. key .. "=" .. id)
  if status == 404 then return nil end
  return check_reply(status, body, "get")
end

return lrs
