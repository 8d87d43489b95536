local spec = ...
local describe, it, eq, raises = spec.describe, spec.it, spec.eq, spec.raises
local lrs = bioxen.lrs

local function refused(fields, field, rule_part)
  local e = raises("Validation", lrs.statement, fields)
  eq(e.field, field)
  assert(e.rule:find(rule_part, 1, true), ("rule %q does not mention %q"):format(e.rule, rule_part))
end

describe("lrs statements", function()
  it("fills id, actor, timestamp and registration, and expands verb names", function()
    local s = lrs.statement{ verb = "completed", object = "https://example.org/a" }
    assert(s.id:match("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$"), s.id)
    assert(s.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"), s.timestamp)
    eq(s.verb.id, "http://adlnet.gov/expapi/verbs/completed")
    eq(s.object, { objectType = "Activity", id = "https://example.org/a" })
    eq(s.context.registration, lrs.registration())
    eq(s.actor, lrs.settings().actor)
  end)
  it("accepts every kind of actor identifier, one at a time", function()
    for _, actor in ipairs({
      { mbox = "mailto:ada@example.org" },
      { mbox_sha1sum = string.rep("a", 40) },
      { openid = "https://id.example.org/ada" },
      { account = { homePage = "https://example.org", name = "ada" } },
      { objectType = "Group", member = { { mbox = "mailto:b@example.org" } } },
    }) do
      lrs.statement{ actor = actor, verb = "completed", object = "https://example.org/a" }
    end
  end)
  it("refuses an agent with two identifiers or none", function()
    refused({ actor = { mbox = "mailto:a@b.org", openid = "https://x.org/a" }, verb = "completed", object = "https://e.org/a" },
      "statement.actor", "exactly one identifier")
    refused({ actor = { name = "nobody" }, verb = "completed", object = "https://e.org/a" }, "statement.actor", "exactly one identifier")
    refused({ actor = { mbox = "ada@example.org" }, verb = "completed", object = "https://e.org/a" }, "statement.actor.mbox", "mailto:")
  end)
  it("refuses an anonymous group without members", function()
    refused({ actor = { objectType = "Group" }, verb = "completed", object = "https://e.org/a" }, "statement.actor", "list its members")
  end)
  it("needs a verb IRI with a display map", function()
    refused({ verb = { id = "https://e.org/v" }, object = "https://e.org/a" }, "statement.verb.display", "required")
    refused({ verb = { id = "not an iri", display = { en = "x" } }, object = "https://e.org/a" }, "statement.verb.id", "IRI")
    refused({ verb = { id = "https://e.org/v", display = { ["not a tag!"] = "x" } }, object = "https://e.org/a" },
      "statement.verb.display.not a tag!", "RFC 5646")
  end)
  it("needs an Activity with an IRI id or a StatementRef with a UUID", function()
    refused({ verb = "completed", object = "no scheme" }, "statement.object.id", "IRI")
    refused({ verb = "completed", object = { objectType = "StatementRef", id = "x" } }, "statement.object.id", "UUID")
    refused({ verb = "voided", object = "https://e.org/a" }, "statement.object", "StatementRef")
    refused({ verb = "completed", object = { id = "https://e.org/a", definition = { type = "nope" } } },
      "statement.object.definition.type", "IRI")
  end)
  it("checks results: booleans, score bounds, ISO 8601 durations, extension IRIs", function()
    refused({ verb = "completed", object = "https://e.org/a", result = { success = "yes" } }, "statement.result.success", "boolean")
    refused({ verb = "completed", object = "https://e.org/a", result = { score = { scaled = 2 } } }, "statement.result.score.scaled", "between -1 and 1")
    refused({ verb = "completed", object = "https://e.org/a", result = { score = { raw = 11, max = 10 } } }, "statement.result.score.raw", "greater")
    refused({ verb = "completed", object = "https://e.org/a", result = { duration = "5 seconds" } }, "statement.result.duration", "ISO 8601")
    refused({ verb = "completed", object = "https://e.org/a", result = { extensions = { size = 1 } } }, "statement.result.extensions.size", "IRIs")
    for _, d in ipairs({ "PT1S", "PT0.000125S", "P1DT2H", "P2W", "PT1H30M", "P1Y2M3DT4H5M6.5S" }) do
      assert(lrs.is_duration(d), d)
    end
    for _, d in ipairs({ "P", "PT", "1S", "PT1.5H2M", "P1S", "PTS", "P1DT" }) do
      assert(not lrs.is_duration(d), d)
    end
  end)
  it("checks context: registration UUID, activities, platform only for activities", function()
    refused({ verb = "completed", object = "https://e.org/a", context = { registration = "r1" } }, "statement.context.registration", "UUID")
    refused({ verb = "completed", object = "https://e.org/a", context = { contextActivities = { parent = { { id = "bad" } } } } },
      "statement.context.contextActivities.parent[1].id", "IRI")
    refused({ verb = "completed", object = { objectType = "StatementRef", id = lrs.registration() }, context = { platform = "x" } },
      "statement.context.platform", "Activity")
  end)
  it("needs UTC timestamps with milliseconds and a UUID v4 id", function()
    refused({ verb = "completed", object = "https://e.org/a", timestamp = "2026-11-21T12:00:00Z" }, "statement.timestamp", "millisecond")
    refused({ verb = "completed", object = "https://e.org/a", timestamp = "2026-11-21T12:00:00.000+01:00" }, "statement.timestamp", "UTC")
    refused({ verb = "completed", object = "https://e.org/a", timestamp = "2026-13-21T12:00:00.000Z" }, "statement.timestamp", "valid")
    refused({ verb = "completed", object = "https://e.org/a", id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8" }, "statement.id", "UUID v4")
  end)
  it("refuses properties xAPI does not define and those only the LRS sets", function()
    refused({ verb = "completed", object = "https://e.org/a", colour = "red" }, "statement.colour", "not an xAPI property")
    refused({ verb = "completed", object = "https://e.org/a", stored = "2026-11-21T12:00:00.000Z" }, "statement.stored", "set by the LRS")
  end)
  it("names the list position of a bad statement in send", function()
    local e = raises("Validation", lrs.send, { { verb = "completed", object = "https://e.org/a" }, { verb = "completed", object = "bad" } })
    eq(e.index, 2)
  end)
  it("refuses bad configuration with the setting named", function()
    eq(raises("Argument", lrs.configure, { endpoint = "ftp://x" }).field, "endpoint")
    eq(raises("Argument", lrs.configure, { auth = { user = "u" } }).field, "auth")
    raises("Argument", lrs.configure, { endpiont = "https://x" })
    raises("Validation", lrs.configure, { actor = { name = "no identifier" } })
  end)
end)

describe("lrs statement encoding", function()
  local json = require("bioxen.json")
  it("encodes statements as bioxen.json does", function()
    local X = "https://example.org/ext/"
    for _, fields in ipairs({
      { verb = "completed", object = "https://example.org/a" },
      { verb = "failed", object = { id = "https://example.org/q", definition = { name = { ["en-US"] = "say \"hi\" \\ back" } } },
        result = { success = false, score = { raw = 0.98, min = 0, max = 1, scaled = -0.25 },
          duration = "PT1.5S", response = "line 1\nline 2\ttab\r",
          extensions = { [X .. "n"] = 1e300, [X .. "list"] = { 1, 2.5, "three", true, { a = "b" } },
            [X .. "big"] = 2 ^ 52, [X .. "neg"] = -7, [X .. "tiny"] = 1 / 3 } },
        context = { contextActivities = { parent = { { id = "https://example.org/p" } } } } },
    }) do
      local s = lrs.statement(fields)
      local fast = lrs._fast_encode(s)
      assert(fast, "the fast path applies")
      eq(json.decode(fast), json.decode(json.encode(s)))
      assert(not fast:find("\n"), "compact, one line")
    end
  end)
  it("leaves unusual values to bioxen.json", function()
    local s = lrs.statement{ verb = "completed", object = "https://example.org/a" }
    for _, odd in ipairs({ json.null, {}, json.array({}), "caf\195\169", "bell\7", 0 / 0, math.huge }) do
      s.result = { extensions = { ["https://example.org/x"] = odd } }
      eq(lrs._fast_encode(s), nil)
    end
  end)
end)
