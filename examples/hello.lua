#!/usr/bin/env bioxen
-- The smallest bioxen script: Lua as usual, plus the bioxen.* library.
-- Run: bioxen examples/hello.lua [name]
local name = arg[1] or "BioXen"
print(("Hello, %s!"):format(name))

local facts = bioxen.env.facts()
print(("%s on %s/%s, %d CPUs, JIT %s"):format(facts.luajit_version, facts.os, facts.arch, facts.cpus,
  facts.jit and "on" or "off"))

-- Errors are values with a kind that scripts can test.
local ok, err = pcall(bioxen.json.decode, "{not json")
print(ok, err.kind, err.message)
