-- provenance.lua: an audit trail for a small workflow with bioxen.lrs.
--
-- Each step of a GC-content analysis is recorded as an xAPI statement that names
-- the workflow as its parent; every statement of this run shares one context
-- registration, so the LRS can return the whole run with one query.
--
--   bioxen examples/provenance.lua                  statements wait in the spool
--   BIOXEN_LRS_ENDPOINT=http://127.0.0.1:8100/xAPI BIOXEN_LRS_USER=u BIOXEN_LRS_PASSWORD=p \
--     bioxen examples/provenance.lua                delivered, then queried back
local lrs = bioxen.lrs

local WORKFLOW = "https://example.org/workflows/gc-content"
local samples = {
  s1 = "ATGCGCGATATCGCGC",
  s2 = "ATATATATGCATATAT",
  s3 = "GGGCCCGGGCCCATGC",
}

local function gc(seq)
  local n = 0
  for c in seq:gmatch("[GC]") do n = n + 1 end
  return n / #seq
end

local function clock()
  return os.time() + (os.clock() % 1)
end

-- Steps are numbered in a context extension, so the trail reads in order even
-- when two statements share a millisecond.
local STEP = "https://example.org/xapi/step"
local step = 0
local function numbered(context)
  step = step + 1
  context = context or {}
  context.extensions = { [STEP] = step }
  return context
end

lrs.send{
  verb = "initialized",
  object = { id = WORKFLOW, definition = { name = { ["en-US"] = "GC content of three samples" } } },
  context = numbered(),
}

local names = {}
for name in pairs(samples) do names[#names + 1] = name end
table.sort(names)

local ids = {}
for _, name in ipairs(names) do
  local t0 = clock()
  local value = gc(samples[name])
  ids[#ids + 1] = lrs.send{
    verb = "completed",
    object = {
      id = WORKFLOW .. "/samples/" .. name,
      definition = { name = { ["en-US"] = "GC content of " .. name },
        type = "http://adlnet.gov/expapi/activities/interaction" },
    },
    result = {
      success = true,
      score = { raw = value, min = 0, max = 1 },
      duration = ("PT%.3fS"):format(math.max(clock() - t0, 0)),
      extensions = { ["https://example.org/xapi/gc-fraction"] = value },
    },
    context = numbered{ contextActivities = { parent = { { id = WORKFLOW } } } },
  }
  print(("%s  GC %.2f  recorded as %s"):format(name, value, ids[#ids]))
end

lrs.send{ verb = "completed", object = WORKFLOW, result = { success = true, completion = true }, context = numbered() }

local run = lrs.registration()
print("run registration: " .. run)
if not lrs.settings().endpoint then
  print(("no LRS configured: %d statements wait in the spool (bioxen lrs status)"):format(lrs.status().pending))
  return
end

lrs.flush(30)
print("delivered; the run as the LRS has it:")
local statements = lrs.query{ registration = run }
table.sort(statements, function(a, b) return a.context.extensions[STEP] < b.context.extensions[STEP] end)
for _, s in ipairs(statements) do
  local score = s.result and s.result.score and (" score %.2f"):format(s.result.score.raw) or ""
  print(("  %s %-11s %s%s"):format(s.timestamp, s.verb.display["en-US"], s.object.id, score))
end
